"""Leases in the SQL store: claims are compare-and-swaps, renewals keep a goal, and a store whose
goal was taken over has its writes to that goal refused in the flush's own transaction.

Two stores on one database stand for two processes (each store keeps its own epochs); owners
are runner ids, and a dead owner is a real process that has ended.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from backdoor import Backdoor
from pause import LONGEST_WAIT, Pause, starts

from blitz.domain import Goal, GoalState, Task, TaskState
from blitz.events import Event, EventKind
from blitz.store.sql import SqlStore

HOST = socket.gethostname()
ME = f"{os.getpid()}@{HOST}"
OTHER = f"{os.getppid()}@{HOST}"  # a live process of this host that is not this one
TTL = 60.0


@pytest.fixture
def stores(url: str) -> Iterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database: two processes' views of it."""
    first, second = SqlStore(url, flush_delay=60), SqlStore(url, flush_delay=60)
    yield first, second
    first.close()
    second.close()


def goal(id: str = "g-1", **changes: object) -> Goal:
    fields: dict[str, object] = {
        "id": id,
        "project_id": "p-1",
        "title": "a goal",
        "state": GoalState.RUNNING,
        "branch": f"blitz/{id}",
        "base_branch": "main",
    }
    fields.update(changes)
    return Goal(**fields)  # type: ignore[arg-type]


def task(id: str, goal_id: str = "g-1", **changes: object) -> Task:
    return Task(goal_id=goal_id, id=id, title=id, **changes)  # type: ignore[arg-type]


def started(goal_id: str, task_id: str) -> Event:
    return Event(kind=EventKind.TASK_STARTED, goal_id=goal_id, task_id=task_id, message="go")


def expire(url: str, goal_id: str) -> None:
    """Make a lease run out now (as if its owner had stopped renewing it long ago)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE leases SET expires_at = 0 WHERE goal_id = :g"), {"g": goal_id})
    engine.dispose()


def a_dead_runner() -> str:
    """The runner id of a process that has ended (its pid reused meanwhile is unlikely)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{proc.pid}@{HOST}"


# -- claims --------------------------------------------------------------------------------------


def test_a_free_goal_is_claimed_and_a_held_one_is_not(stores: tuple[SqlStore, SqlStore]) -> None:
    first, second = stores
    mine = first.claim("g-1", ME, TTL)
    assert (mine.owner, mine.epoch) == (ME, 1)
    assert first.held() == {"g-1"}

    theirs = second.claim("g-1", OTHER, TTL)
    assert theirs == mine  # refused: the holder's lease comes back
    assert second.held() == set()
    assert second.lease("g-1") == mine


def test_claiming_again_renews_at_the_same_epoch(stores: tuple[SqlStore, SqlStore]) -> None:
    first, _ = stores
    before = first.claim("g-1", ME, TTL)
    again = first.claim("g-1", ME, TTL * 2)
    assert again.epoch == before.epoch == 1
    assert again.expires_at > before.expires_at


def test_an_expired_lease_is_taken_over_with_a_new_epoch(
    url: str, stores: tuple[SqlStore, SqlStore]
) -> None:
    first, second = stores
    first.claim("g-1", OTHER, TTL)
    expire(url, "g-1")
    taken = second.claim("g-1", ME, TTL)
    assert (taken.owner, taken.epoch) == (ME, 2)
    assert first.renew(OTHER, TTL) == {"g-1"}  # the first finds out at its next renewal
    assert first.lost() == {"g-1"}
    assert first.held() == set()


def test_a_dead_owner_on_this_host_loses_its_lease_at_once(
    stores: tuple[SqlStore, SqlStore],
) -> None:
    first, second = stores
    dead = a_dead_runner()
    first.claim("g-1", dead, TTL)
    taken = second.claim("g-1", ME, TTL)
    assert (taken.owner, taken.epoch) == (ME, 2)


def test_a_released_goal_is_free_at_once_and_its_epoch_goes_on(
    stores: tuple[SqlStore, SqlStore],
) -> None:
    first, second = stores
    first.claim("g-1", OTHER, TTL)
    first.release("g-1")
    assert first.held() == set()
    taken = second.claim("g-1", ME, TTL)
    assert (taken.owner, taken.epoch) == (ME, 2)


def test_renewal_keeps_what_is_still_held(stores: tuple[SqlStore, SqlStore]) -> None:
    first, second = stores
    before = first.claim("g-1", ME, 1.0)
    assert first.renew(ME, TTL) == set()
    after = second.lease("g-1")
    assert after is not None
    assert after.epoch == before.epoch
    assert after.expires_at > before.expires_at


def test_claims_at_the_same_moment_have_one_winner(url: str) -> None:
    """Eight stores (eight processes' views) race for one goal; exactly one gets it."""
    stores = [SqlStore(url, flush_delay=60) for _ in range(8)]
    owners = [f"{os.getpid()}@host-{n}" for n in range(8)]  # other hosts: assumed alive
    barrier = threading.Barrier(len(stores))
    leases = [None] * len(stores)

    def claim(n: int) -> None:
        barrier.wait()
        leases[n] = stores[n].claim("g-1", owners[n], TTL)  # type: ignore[call-overload]

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        winners = [n for n, store in enumerate(stores) if store.held() == {"g-1"}]
        assert len(winners) == 1, leases
        assert {lease.owner for lease in leases if lease is not None} == {owners[winners[0]]}
    finally:
        for store in stores:
            store.close()


def locking(backdoor: Backdoor) -> Callable[[str], bool]:
    """The statement with which a claim or a flush's fence asks for the lease's lock: SQLite's
    BEGIN (IMMEDIATE: the write lock), PostgreSQL's SELECT ... FOR UPDATE (the row)."""
    if backdoor.sqlite:
        return starts("BEGIN")
    return lambda statement: "FOR UPDATE" in statement


async def waits_for_the_lock(backdoor: Backdoor, sent: Pause) -> None:
    """Return once the statement ``sent`` watches for was sent and, on PostgreSQL, is seen
    waiting for a lock. (A SQLite writer waits out of sight, but a BEGIN IMMEDIATE sent while
    another transaction holds the write lock cannot get in before that one ends.)"""
    await sent.wait()
    if backdoor.sqlite:
        return
    deadline = time.monotonic() + LONGEST_WAIT
    while not await asyncio.to_thread(backdoor.waiting_for_locks):
        assert time.monotonic() < deadline, "the statement never waited for the lock"
        await asyncio.sleep(0.01)


async def test_two_first_claims_that_both_found_no_lease_have_one_winner(url: str) -> None:
    """The first claim is stopped after it found no lease, before it inserts one, while a second
    claim comes: on PostgreSQL the second inserts first (the first's insert then does nothing and
    it reads the winner's lease); on SQLite the second waits for the first's transaction."""
    one, two, backdoor = SqlStore(url, flush_delay=60), SqlStore(url, flush_delay=60), Backdoor(url)
    owners = (f"{os.getpid()}@host-1", f"{os.getpid()}@host-2")  # other hosts: assumed alive
    try:
        with Pause(one._engine, starts("INSERT INTO leases")) as found_none:
            first = asyncio.ensure_future(asyncio.to_thread(one.claim, "g-1", owners[0], TTL))
            await found_none.wait()
            second_sent = Pause(two._engine, locking(backdoor), hold=False)
            second = asyncio.ensure_future(asyncio.to_thread(two.claim, "g-1", owners[1], TTL))
            if backdoor.sqlite:
                await waits_for_the_lock(backdoor, second_sent)
            else:
                assert (await second).owner == owners[1]  # it got in while the first was stopped
        leases = [await first, await second]
        winners = [n for n, store in enumerate((one, two)) if store.held() == {"g-1"}]
        assert len(winners) == 1
        assert {(lease.owner, lease.epoch) for lease in leases} == {(owners[winners[0]], 1)}
    finally:
        backdoor.close()
        one.close()
        two.close()


# -- the fence -----------------------------------------------------------------------------------


async def test_a_store_that_lost_its_goal_cannot_write_to_it(
    url: str, stores: tuple[SqlStore, SqlStore]
) -> None:
    first, second = stores
    first.claim("g-1", OTHER, TTL)
    first.write(goal(), task("a"), events=[started("g-1", "a")])
    await first.flush()

    expire(url, "g-1")
    second.claim("g-1", ME, TTL)
    second.write(task("a", state=TaskState.SUCCEEDED, commit="c0ffee"))
    await second.flush()

    # The first does not know yet: its writes to the goal are dropped in the flush itself, and
    # its writes to anything else still land.
    first.write(
        goal(state=GoalState.FAILED),
        task("a", state=TaskState.FAILED),
        task("b"),
        goal("g-2"),
        events=[started("g-1", "b"), started("g-2", "x")],
    )
    await first.flush()
    assert first.lost() == {"g-1"}

    assert second.get_goal("g-1") == goal()
    assert [(t.id, t.state) for t in second.load_tasks("g-1")] == [("a", TaskState.SUCCEEDED)]
    assert second.get_goal("g-2") == goal("g-2")
    assert [(e.goal_id, e.task_id) for e in second.events()] == [("g-1", "a"), ("g-2", "x")]

    # Later writes to the lost goal are dropped too (no need to ask the database again).
    first.write(task("c"), events=[started("g-1", "c")])
    await first.flush()
    assert [t.id for t in second.load_tasks("g-1")] == ["a"]


async def test_a_held_goal_is_written_and_a_reclaimed_one_again(
    url: str, stores: tuple[SqlStore, SqlStore]
) -> None:
    first, second = stores
    first.claim("g-1", OTHER, TTL)
    expire(url, "g-1")
    second.claim("g-1", ME, TTL)
    first.write(task("a"))
    await first.flush()
    assert first.lost() == {"g-1"}
    assert second.load_tasks("g-1") == []

    second.release("g-1")
    assert first.claim("g-1", OTHER, TTL).epoch == 3
    assert first.lost() == set()
    first.write(task("b"))
    await first.flush()
    assert [t.id for t in second.load_tasks("g-1")] == ["b"]


# The fence and a claim are serialized: the goal's writes land before a takeover or not at all,
# never after it. Each order is forced: one side is stopped inside its transaction until the
# other has come to the database and waits for it.


@pytest.fixture
def racing(url: str) -> Iterator[tuple[SqlStore, SqlStore, Backdoor]]:
    """Two stores and a backdoor; the first store held the goal, its lease ran out, and it has
    200 tasks of the goal staged."""
    first, second, backdoor = (
        SqlStore(url, flush_delay=60),
        SqlStore(url, flush_delay=60),
        Backdoor(url),
    )
    first.claim("g-1", OTHER, TTL)
    expire(url, "g-1")
    for n in range(200):
        first.write(task(f"t{n:03}"))
    yield first, second, backdoor
    backdoor.close()
    first.close()
    second.close()


async def test_a_takeover_during_a_flush_comes_after_it(
    racing: tuple[SqlStore, SqlStore, Backdoor],
) -> None:
    first, second, backdoor = racing
    with Pause(first._engine, starts("INSERT INTO tasks")) as flush_inside:
        flushing = asyncio.ensure_future(first.flush())
        await flush_inside.wait()  # past the fence, inside the flush's transaction
        claim_sent = Pause(second._engine, locking(backdoor), hold=False)
        claiming = asyncio.ensure_future(asyncio.to_thread(second.claim, "g-1", ME, TTL))
        await waits_for_the_lock(backdoor, claim_sent)
        assert not claiming.done()
    await flushing
    lease = await claiming
    assert (lease.owner, lease.epoch) == (ME, 2)
    assert len(second.load_tasks("g-1")) == 200  # landed before the takeover
    assert first.lost() == set()  # it learns with its next write, which is dropped
    first.write(task("late"))
    await first.flush()
    assert first.lost() == {"g-1"}
    assert len(second.load_tasks("g-1")) == 200


async def test_a_flush_during_a_takeover_comes_after_it_and_writes_nothing(
    racing: tuple[SqlStore, SqlStore, Backdoor],
) -> None:
    first, second, backdoor = racing
    with Pause(second._engine, starts("UPDATE leases")) as claim_inside:
        claiming = asyncio.ensure_future(asyncio.to_thread(second.claim, "g-1", ME, TTL))
        await claim_inside.wait()  # the claim read the lease and is about to take it
        fence_sent = Pause(first._engine, locking(backdoor), hold=False)
        flushing = asyncio.ensure_future(first.flush())
        await waits_for_the_lock(backdoor, fence_sent)
        assert not flushing.done()
    lease = await claiming
    await flushing
    assert (lease.owner, lease.epoch) == (ME, 2)
    assert first.lost() == {"g-1"}
    assert second.load_tasks("g-1") == []


def test_deleting_a_project_deletes_its_goals_leases(
    url: str, stores: tuple[SqlStore, SqlStore]
) -> None:
    first, second = stores
    first.write(goal())
    first.flush_sync()
    first.claim("g-1", ME, TTL)
    first.delete_project("p-1")
    assert second.lease("g-1") is None
    assert first.held() == set()
