from __future__ import annotations

import itertools
import random
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from blitz.dag import MAX_NODES, TRANSITIONS, Dag, Node, NodeStatus, validate
from blitz.domain import IllegalTransition
from blitz.errors import PlanError

S = NodeStatus
SATISFYING = {S.DONE, S.SKIPPED}
NEVER_FINISHING = {S.FAILED, S.BLOCKED, S.REPLACED}


def n(id: str, *deps: str, priority: int = 0) -> Node:
    return Node(id=id, depends_on=deps, priority=priority)


def problems(nodes: list[Node], **kwargs) -> list[str]:
    with pytest.raises(PlanError) as caught:
        validate(nodes, **kwargs)
    return caught.value.problems


def statuses(dag: Dag) -> dict[str, NodeStatus]:
    return {id: dag.status(id) for id in dag.order()}


def snapshot(dag: Dag) -> tuple:
    """Everything observable about a graph, to check that a rejected change changed nothing."""
    return (
        [(dag.node(id), dag.status(id), dag.dependents(id)) for id in dag.order()],
        dag.counts(),
        dag.peek_ready_count(),
    )


def run(dag: Dag, *ids: str) -> None:
    """Pop everything ready and check that ``ids`` were among it; the rest goes back."""
    popped = dag.pop_ready()
    assert set(ids) <= set(popped), (ids, popped)
    for id in set(popped) - set(ids):
        dag.requeue(id)


# --- validate -------------------------------------------------------------------------------


def test_a_valid_plan_passes() -> None:
    validate([n("a"), n("b", "a"), n("c", "a", "b")])


def test_dependencies_may_point_forward() -> None:
    validate([n("c", "a", "b"), n("b", "a"), n("a")])


def test_an_empty_plan_is_rejected() -> None:
    assert problems([]) == ["the plan has no tasks"]


def test_no_new_nodes_is_fine_when_some_exist() -> None:
    validate([], existing=["a"])


@pytest.mark.parametrize("id", ["a", "A-b_c.9", "x" * 64, "0", "...", "-_-"])
def test_good_ids(id: str) -> None:
    validate([n(id)])


@pytest.mark.parametrize("id", ["a b", " a", "a\n", "a/b", "a:b", "ä", "x" * 65, "a\tb", "a'b"])
def test_bad_ids(id: str) -> None:
    assert problems([n(id)]) == [
        f"task id {id!r} is invalid: use 1-64 characters from A-Z, a-z, 0-9, '.', '_' and '-'"
    ]


def test_empty_id() -> None:
    assert problems([n("a"), n("")]) == ["task #2 has an empty id"]


def test_duplicate_ids_are_reported_once() -> None:
    assert problems([n("a"), n("a"), n("a"), n("b")]) == ["duplicate task id 'a'"]


def test_ids_must_not_clash_with_existing() -> None:
    assert problems([n("a"), n("b")], existing=["b", "z"]) == ["task id 'b' already exists"]


def test_existing_may_be_any_collection() -> None:
    for existing in (["z"], ("z",), {"z"}, frozenset({"z"}), {"z": 1}, {"z": 1}.keys()):
        validate([n("a", "z")], existing=existing)


def test_self_loop() -> None:
    assert problems([n("a", "a")]) == ["task 'a' depends on itself"]


def test_unknown_dependency() -> None:
    assert problems([n("a", "b", "c"), n("b")]) == ["task 'a' depends on unknown task 'c'"]


def test_dependencies_on_existing_ids_are_known() -> None:
    validate([n("a", "x")], existing=["x"])


def test_duplicated_dependency() -> None:
    assert problems([n("a"), n("b"), n("c", "a", "b", "a", "b", "a")]) == [
        "task 'c' lists dependency 'a' more than once",
        "task 'c' lists dependency 'b' more than once",
    ]


def test_unknown_duplicated_dependency_is_named_once_as_unknown() -> None:
    assert problems([n("a", "x", "x")]) == [
        "task 'a' depends on unknown task 'x'",
        "task 'a' lists dependency 'x' more than once",
    ]


def test_cycle_names_its_members_in_dependency_order() -> None:
    assert problems([n("a", "b"), n("b", "c"), n("c", "a")]) == ["cycle: a -> b -> c -> a"]


def test_cycle_starts_at_its_first_node_whatever_the_input_order() -> None:
    assert problems([n("x"), n("c", "a"), n("b", "c"), n("a", "b", "x")]) == [
        "cycle: c -> a -> b -> c"
    ]


def test_two_node_cycle() -> None:
    assert problems([n("a", "b"), n("b", "a")]) == ["cycle: a -> b -> a"]


def test_every_separate_cycle_is_reported() -> None:
    nodes = [n("a", "b"), n("b", "a"), n("ok"), n("c", "d", "ok"), n("d", "c")]
    assert problems(nodes) == ["cycle: a -> b -> a", "cycle: c -> d -> c"]


def test_nodes_downstream_of_a_cycle_are_not_called_a_cycle() -> None:
    assert problems([n("a", "b"), n("b", "a"), n("c", "a"), n("d", "c")]) == ["cycle: a -> b -> a"]


def test_a_self_loop_is_not_also_a_cycle() -> None:
    assert problems([n("a", "a", "b"), n("b")]) == ["task 'a' depends on itself"]


def test_too_many_nodes() -> None:
    assert problems([n("a"), n("b"), n("c")], max_nodes=2) == [
        "the plan has 3 tasks; the limit is 2"
    ]
    validate([n("a"), n("b")], max_nodes=2)


def test_existing_nodes_count_against_the_limit() -> None:
    assert problems([n("a"), n("b")], existing=["x"], max_nodes=2) == [
        "the plan has 3 tasks; the limit is 2"
    ]


def test_the_default_limit() -> None:
    assert MAX_NODES == 100_000
    assert problems([n(f"t{i}") for i in range(MAX_NODES + 1)]) == [
        "the plan has 100001 tasks; the limit is 100000"
    ]


def test_every_problem_is_reported_at_once() -> None:
    nodes = [
        n("ok"),
        n("bad id"),
        n("ok"),
        n("x", "x"),
        n("y", "nowhere", "ok", "ok"),
        n("p", "q"),
        n("q", "p"),
        n("old"),
    ]
    with pytest.raises(PlanError) as caught:
        validate(nodes, existing=["old"], max_nodes=7)
    assert caught.value.problems == [
        "the plan has 9 tasks; the limit is 7",
        "task id 'bad id' is invalid: use 1-64 characters from A-Z, a-z, 0-9, '.', '_' and '-'",
        "duplicate task id 'ok'",
        "task id 'old' already exists",
        "task 'x' depends on itself",
        "task 'y' depends on unknown task 'nowhere'",
        "task 'y' lists dependency 'ok' more than once",
        "cycle: p -> q -> p",
    ]
    assert str(caught.value).startswith("invalid plan:\n  - the plan has 9 tasks")


# --- building and looking at a graph --------------------------------------------------------


def test_an_empty_graph_is_allowed_and_finished() -> None:
    dag = Dag()
    assert len(dag) == 0
    assert dag.finished()
    assert not dag.deadlocked()
    assert dag.pop_ready() == []
    assert dag.order() == []


def test_the_constructor_validates() -> None:
    with pytest.raises(PlanError) as caught:
        Dag([n("a", "b"), n("b", "a"), n("c", "z")])
    assert caught.value.problems == [
        "task 'c' depends on unknown task 'z'",
        "cycle: a -> b -> a",
    ]
    with pytest.raises(PlanError):
        Dag([n("a"), n("b")], max_nodes=1)


def test_accessors() -> None:
    dag = Dag([n("a"), n("b", "a", priority=3), n("c", "a", "b")])
    assert len(dag) == 3
    assert "a" in dag
    assert "z" not in dag
    assert 42 not in dag
    assert dag.node("b") == n("b", "a", priority=3)
    assert dag.dependents("a") == ("b", "c")
    assert dag.dependents("c") == ()
    assert statuses(dag) == {"a": S.READY, "b": S.WAITING, "c": S.WAITING}
    assert dag.counts() == {**dict.fromkeys(NodeStatus, 0), S.READY: 1, S.WAITING: 2}
    assert dag.peek_ready_count() == 1
    assert dag.running_count() == 0
    assert "ready=1" in repr(dag)


@pytest.mark.parametrize(
    "call",
    [
        lambda d: d.status("zz"),
        lambda d: d.node("zz"),
        lambda d: d.dependents("zz"),
        lambda d: d.complete("zz"),
        lambda d: d.fail("zz"),
        lambda d: d.retry("zz"),
        lambda d: d.skip("zz"),
        lambda d: d.requeue("zz"),
        lambda d: d.inject([n("new")], before="zz"),
        lambda d: d.inject([n("new")], replace="zz"),
    ],
)
def test_unknown_ids_raise_key_error(call) -> None:
    dag = Dag([n("a")])
    before = snapshot(dag)
    with pytest.raises(KeyError, match="unknown task 'zz'"):
        call(dag)
    assert snapshot(dag) == before


def test_order_is_topological_and_keeps_an_ordered_plan_as_is() -> None:
    assert Dag([n("a"), n("b"), n("c", "a"), n("d", "c", "b")]).order() == ["a", "b", "c", "d"]
    assert Dag([n("d", "c", "b"), n("c", "a"), n("b"), n("a")]).order() == ["b", "a", "c", "d"]


# --- scheduling -----------------------------------------------------------------------------


def test_pop_ready_takes_the_highest_priority_first_then_the_earliest() -> None:
    dag = Dag([n("low", priority=-1), n("mid1"), n("high", priority=5), n("mid2")])
    assert dag.pop_ready(2) == ["high", "mid1"]
    assert dag.status("high") is S.RUNNING
    assert dag.running_count() == 2
    assert dag.peek_ready_count() == 2
    assert dag.pop_ready() == ["mid2", "low"]
    assert dag.pop_ready() == []


def test_pop_ready_limits() -> None:
    dag = Dag([n("a"), n("b")])
    assert dag.pop_ready(0) == []
    with pytest.raises(ValueError, match="limit must not be negative"):
        dag.pop_ready(-1)
    assert dag.pop_ready(5) == ["a", "b"]


def test_complete_releases_dependents_when_all_their_deps_are_satisfied() -> None:
    dag = Dag([n("a"), n("b"), n("c", "a", "b"), n("d", "a")])
    run(dag, "a", "b")
    assert dag.complete("a") == ["d"]
    assert dag.status("c") is S.WAITING
    assert dag.complete("b") == ["c"]
    assert dag.status("c") is S.READY


def test_complete_returns_newly_ready_nodes_in_priority_order() -> None:
    dag = Dag([n("a"), n("x", "a"), n("y", "a", priority=2), n("z", "a", priority=2)])
    run(dag, "a")
    assert dag.complete("a") == ["y", "z", "x"]
    assert dag.pop_ready() == ["y", "z", "x"]


def test_complete_may_reconcile_waiting_and_ready_nodes() -> None:
    dag = Dag([n("a"), n("b", "a"), n("c", "b"), n("d", "a", "b")])
    assert dag.complete("b") == ["c"]  # b's work is already on the goal branch
    assert dag.status("b") is S.DONE
    assert dag.status("d") is S.WAITING
    assert dag.complete("a") == ["d"]  # a was READY
    assert dag.pop_ready() == ["c", "d"]


def test_reconciled_ready_node_is_not_popped() -> None:
    dag = Dag([n("a"), n("b")])
    dag.complete("a")
    assert dag.pop_ready() == ["b"]
    assert dag.peek_ready_count() == 0


@pytest.mark.parametrize(
    ("verb", "call", "allowed"),
    [
        ("complete", lambda d, id: d.complete(id), "running or ready or waiting"),
        ("fail", lambda d, id: d.fail(id), "running"),
        ("retry", lambda d, id: d.retry(id), "failed"),
        ("skip", lambda d, id: d.skip(id), "waiting or ready or running or failed"),
        ("requeue", lambda d, id: d.requeue(id), "running"),
        (
            "inject before",
            lambda d, id: d.inject([n("new")], before=id),
            "failed or waiting or ready",
        ),
        ("replace", lambda d, id: d.inject([n("new")], replace=id), "failed or waiting or ready"),
    ],
)
def test_illegal_transitions_are_refused_with_a_clear_message(verb, call, allowed) -> None:
    dag = _one_of_each()
    for id, status in statuses(dag).items():
        if status.value in allowed.split(" or "):
            continue
        before = snapshot(dag)
        with pytest.raises(IllegalTransition) as caught:
            call(dag, id)
        assert str(caught.value) == f"cannot {verb} task {id!r}: it is {status}, not {allowed}"
        assert snapshot(dag) == before


def _one_of_each() -> Dag:
    """A graph with one node in every status, each named after its status."""
    dag = Dag.restore(
        [
            n("done"),
            n("failed"),
            n("skipped"),
            n("blocked"),
            n("replaced"),
            n("ready"),
            n("running", priority=1),
            n("waiting", "failed"),
        ],
        {s: S(s) for s in ("done", "failed", "skipped", "blocked", "replaced")},
    )
    assert dag.pop_ready(1) == ["running"]
    assert all(dag.status(id) == id for id in dag.order())
    return dag


def test_the_transition_table_is_the_one_documented() -> None:
    terminal = {s for s, targets in TRANSITIONS.items() if not targets}
    assert terminal == {S.DONE, S.SKIPPED, S.BLOCKED, S.REPLACED}
    assert TRANSITIONS[S.RUNNING] == {S.READY, S.DONE, S.FAILED, S.SKIPPED}


def test_fail_and_retry() -> None:
    dag = Dag([n("a"), n("b", "a")])
    run(dag, "a")
    dag.fail("a")
    assert dag.status("a") is S.FAILED
    assert dag.status("b") is S.WAITING
    assert dag.deadlocked()
    dag.retry("a")
    assert dag.status("a") is S.READY
    assert not dag.deadlocked()
    assert dag.pop_ready() == ["a"]
    assert dag.complete("a") == ["b"]


def test_retry_waits_when_a_dependency_is_not_satisfied() -> None:
    dag = Dag.restore([n("a"), n("b", "a")], {"a": S.FAILED, "b": S.FAILED})
    dag.retry("b")
    assert dag.status("b") is S.WAITING
    dag.retry("a")
    assert dag.pop_ready() == ["a"]
    assert dag.complete("a") == ["b"]


def test_requeue_puts_a_running_node_back_in_priority_order() -> None:
    dag = Dag([n("a", priority=1), n("b")])
    assert dag.pop_ready(1) == ["a"]
    dag.requeue("a")
    assert dag.status("a") is S.READY
    assert dag.pop_ready() == ["a", "b"]


def test_skip_satisfies_dependents() -> None:
    dag = Dag([n("a"), n("b"), n("c", "a", "b", priority=1), n("d", "a")])
    run(dag, "a")
    dag.fail("a")
    assert dag.skip("a") == ["d"]
    assert dag.skip("b") == ["c"]  # b was READY
    assert dag.pop_ready() == ["c", "d"]
    assert dag.skip("c") == []  # c was RUNNING
    assert statuses(dag) == {"a": S.SKIPPED, "b": S.SKIPPED, "c": S.SKIPPED, "d": S.RUNNING}


def test_a_skipped_ready_node_is_never_popped() -> None:
    dag = Dag([n("a", priority=1), n("b")])
    dag.skip("a")
    assert dag.peek_ready_count() == 1
    assert dag.pop_ready(1) == ["b"]


def test_skipping_a_waiting_node_keeps_it_from_running_and_frees_its_dependents() -> None:
    dag = Dag([n("a"), n("b", "a"), n("c", "b")])
    assert dag.skip("b") == ["c"]
    run(dag, "a", "c")
    assert dag.complete("a") == []
    assert dag.status("b") is S.SKIPPED


def test_finished_and_deadlocked() -> None:
    dag = Dag([n("a"), n("b", "a")])
    assert not dag.finished()
    run(dag, "a")
    assert not dag.deadlocked()
    dag.complete("a")
    run(dag, "b")
    dag.complete("b")
    assert dag.finished()
    assert not dag.deadlocked()


def test_failed_or_blocked_leaves_count_as_finished() -> None:
    dag = Dag([n("a"), n("b")])
    run(dag, "a", "b")
    dag.fail("a")
    dag.complete("b")
    assert dag.finished()
    assert not dag.deadlocked()


# --- blocking -------------------------------------------------------------------------------


def test_block_unreachable_names_the_root_failure() -> None:
    dag = Dag([n("a"), n("b", "a"), n("c", "b"), n("d", "c"), n("e")])
    run(dag, "a", "e")
    dag.fail("a")
    dag.complete("e")
    assert dag.deadlocked()
    assert dag.block_unreachable() == {
        "b": "depends on failed task 'a'",
        "c": "depends on blocked task 'b' (depends on failed task 'a')",
        "d": "depends on blocked task 'c' (depends on failed task 'a')",
    }
    assert statuses(dag) == {
        "a": S.FAILED,
        "b": S.BLOCKED,
        "c": S.BLOCKED,
        "d": S.BLOCKED,
        "e": S.DONE,
    }
    assert dag.finished()
    assert not dag.deadlocked()
    assert dag.block_unreachable() == {}


def test_block_unreachable_prefers_a_direct_failure() -> None:
    dag = Dag([n("a"), n("b", "a"), n("f"), n("c", "b", "f")])
    run(dag, "a", "f")
    dag.fail("a")
    dag.fail("f")
    assert dag.block_unreachable() == {
        "b": "depends on failed task 'a'",
        "c": "depends on failed task 'f'",
    }


def test_block_unreachable_leaves_nodes_that_can_still_run() -> None:
    dag = Dag([n("a"), n("b"), n("x", "a"), n("y", "b"), n("z", "x", "y")])
    run(dag, "a", "b")
    dag.fail("a")
    assert not dag.deadlocked()
    assert dag.block_unreachable() == {
        "x": "depends on failed task 'a'",
        "z": "depends on blocked task 'x' (depends on failed task 'a')",
    }
    assert dag.status("y") is S.WAITING
    assert dag.complete("b") == ["y"]


def test_blocked_nodes_stay_blocked_when_their_cause_is_retried() -> None:
    dag = Dag([n("a"), n("b", "a"), n("c")])
    run(dag, "a")
    dag.fail("a")
    dag.block_unreachable()
    dag.retry("a")
    run(dag, "a")
    assert dag.complete("a") == []
    assert dag.status("b") is S.BLOCKED


def test_blocking_after_a_restore_and_on_replaced_nodes() -> None:
    dag = Dag.restore(
        [n("old"), n("gone"), n("a", "old"), n("b", "gone"), n("c", "a")],
        {"old": S.BLOCKED, "gone": S.REPLACED},
    )
    assert dag.deadlocked()
    assert dag.block_unreachable() == {
        "a": "depends on blocked task 'old'",
        "b": "depends on replaced task 'gone'",
        "c": "depends on blocked task 'a' (depends on blocked task 'old')",
    }


def test_new_blocks_remember_the_root_of_earlier_ones() -> None:
    dag = Dag([n("a"), n("b", "a"), n("c")])
    run(dag, "a", "c")
    dag.fail("a")
    dag.block_unreachable()
    dag.inject([n("d", "b", "c")])
    dag.complete("c")
    assert dag.block_unreachable() == {
        "d": "depends on blocked task 'b' (depends on failed task 'a')"
    }


# --- injection ------------------------------------------------------------------------------


def test_inject_plain_nodes() -> None:
    dag = Dag([n("a"), n("b")])
    run(dag, "a")
    dag.complete("a")
    assert dag.inject([n("x", "a"), n("y", "b"), n("z", priority=1), n("w", "x", "y")]) == [
        "z",
        "x",
    ]
    assert dag.status("y") is S.WAITING
    assert dag.dependents("a") == ("x",)
    assert dag.order()[-1] == "w"


def test_inject_before_a_failed_node_retries_it_after_the_new_sinks() -> None:
    dag = Dag([n("base"), n("t", "base"), n("after", "t")])
    run(dag, "base")
    dag.complete("base")
    run(dag, "t")
    dag.fail("t")
    ready = dag.inject([n("fix1", "base"), n("fix2", "fix1"), n("fix3")], before="t")
    assert ready == ["fix1", "fix3"]
    assert dag.status("t") is S.WAITING
    assert dag.node("t").depends_on == ("base", "fix2", "fix3")
    assert dag.dependents("fix2") == ("t",)
    assert dag.dependents("fix1") == ("fix2",)
    run(dag, "fix1", "fix3")
    assert dag.complete("fix1") == ["fix2"]
    assert dag.complete("fix3") == []
    run(dag, "fix2")
    assert dag.complete("fix2") == ["t"]
    assert dag.pop_ready() == ["t"]
    assert dag.complete("t") == ["after"]


def test_inject_before_a_ready_node_holds_it_back() -> None:
    dag = Dag([n("t", priority=9), n("other")])
    assert dag.inject([n("first")], before="t") == ["first"]
    assert dag.status("t") is S.WAITING
    assert dag.peek_ready_count() == 2
    assert dag.pop_ready() == ["other", "first"]
    assert dag.complete("first") == ["t"]
    assert dag.pop_ready() == ["t"]
    assert dag.pop_ready() == []


def test_inject_before_a_waiting_node() -> None:
    dag = Dag([n("a"), n("t", "a")])
    dag.inject([n("x")], before="t")
    assert dag.node("t").depends_on == ("a", "x")
    run(dag, "a", "x")
    assert dag.complete("a") == []
    assert dag.complete("x") == ["t"]


def test_replace_rewires_the_dependents_in_place() -> None:
    dag = Dag([n("a"), n("t", "a"), n("d1", "a", "t", priority=1), n("d2", "t")])
    run(dag, "a")
    dag.complete("a")
    run(dag, "t")
    dag.fail("t")
    ready = dag.inject([n("r1", "a"), n("r2", "r1"), n("r3")], replace="t")
    assert ready == ["r1", "r3"]
    assert dag.status("t") is S.REPLACED
    assert dag.dependents("t") == ()
    assert dag.node("d1").depends_on == ("a", "r2", "r3")
    assert dag.node("d2").depends_on == ("r2", "r3")
    assert dag.dependents("r3") == ("d1", "d2")
    run(dag, "r1", "r3")
    dag.complete("r1")
    dag.complete("r3")
    run(dag, "r2")
    assert dag.complete("r2") == ["d1", "d2"]


def test_replace_a_ready_node_drops_it_from_the_queue() -> None:
    dag = Dag([n("t", priority=1), n("d", "t")])
    assert dag.inject([n("r")], replace="t") == ["r"]
    assert dag.pop_ready() == ["r"]
    assert dag.complete("r") == ["d"]


def test_inject_rejects_both_targets() -> None:
    dag = Dag([n("a"), n("b")])
    with pytest.raises(ValueError, match="before or replace, not both"):
        dag.inject([n("x")], before="a", replace="b")


def _rejected(dag: Dag, nodes: list[Node], **kwargs) -> list[str]:
    before = snapshot(dag)
    with pytest.raises(PlanError) as caught:
        dag.inject(nodes, **kwargs)
    assert snapshot(dag) == before
    return caught.value.problems


def test_inject_rejects_an_empty_injection() -> None:
    assert _rejected(Dag([n("a")]), []) == ["there are no tasks to inject"]


def test_inject_validates_like_a_plan() -> None:
    dag = Dag([n("a"), n("b", "a")])
    assert _rejected(dag, [n("a"), n("x", "nope"), n("y", "y"), n("p", "q"), n("q", "p")]) == [
        "task id 'a' already exists",
        "task 'x' depends on unknown task 'nope'",
        "task 'y' depends on itself",
        "cycle: p -> q -> p",
    ]


def test_inject_respects_the_size_limit() -> None:
    dag = Dag([n("a"), n("b")], max_nodes=3)
    dag.inject([n("c")])
    assert _rejected(dag, [n("d")]) == ["the plan has 4 tasks; the limit is 3"]


def test_inject_before_rejects_a_new_node_that_depends_on_the_target() -> None:
    dag = Dag([n("a"), n("t", "a")])
    assert _rejected(dag, [n("x"), n("y", "x", "t")], before="t") == ["cycle: t -> y -> t"]


def test_inject_before_rejects_a_cycle_through_existing_nodes() -> None:
    dag = Dag([n("t"), n("d1", "t"), n("d2", "d1")])
    assert _rejected(dag, [n("x", "d2")], before="t") == ["cycle: t -> x -> d2 -> d1 -> t"]


def test_replace_rejects_a_new_node_that_depends_on_the_target() -> None:
    dag = Dag([n("t"), n("d", "t")])
    assert _rejected(dag, [n("x", "t")], replace="t") == [
        "task 'x' depends on 't', which it replaces"
    ]


def test_replace_rejects_a_cycle_through_a_dependent() -> None:
    dag = Dag([n("a"), n("t"), n("d", "t"), n("e", "d")])
    assert _rejected(dag, [n("x", "a"), n("y", "x", "e")], replace="t") == [
        "cycle: d -> y -> e -> d"
    ]


def test_inject_rejects_dependencies_on_replaced_nodes() -> None:
    dag = Dag([n("t"), n("d", "t")])
    dag.inject([n("r")], replace="t")
    assert _rejected(dag, [n("x", "t")]) == ["task 'x' depends on 't', which was replaced"]


def test_replace_without_dependents() -> None:
    dag = Dag([n("t")])
    assert dag.inject([n("a"), n("b", "a")], replace="t") == ["a"]
    assert dag.status("t") is S.REPLACED


# --- restore --------------------------------------------------------------------------------


def test_restore_requeues_running_nodes_and_recomputes_waiting_and_ready() -> None:
    nodes = [n("a"), n("b", "a"), n("c", "a"), n("d", "b"), n("e", priority=1), n("f", "c")]
    dag = Dag.restore(
        nodes,
        {"a": S.DONE, "b": S.RUNNING, "c": S.WAITING, "d": S.READY, "e": S.RUNNING, "f": S.FAILED},
    )
    assert statuses(dag) == {
        "a": S.DONE,
        "b": S.READY,
        "c": S.READY,
        "d": S.WAITING,
        "e": S.READY,
        "f": S.FAILED,
    }
    assert dag.pop_ready() == ["e", "b", "c"]
    assert dag.complete("b") == ["d"]


def test_restore_treats_missing_statuses_as_waiting() -> None:
    dag = Dag.restore([n("a"), n("b", "a")], {"a": S.SKIPPED})
    assert statuses(dag) == {"a": S.SKIPPED, "b": S.READY}


def test_restore_accepts_status_strings() -> None:
    dag = Dag.restore([n("a")], {"a": "done"})  # type: ignore[dict-item]
    assert dag.status("a") is S.DONE


def test_restore_rejects_unknown_ids_and_statuses() -> None:
    with pytest.raises(PlanError) as caught:
        Dag.restore([n("a"), n("b", "zz")], {"a": "bogus", "x": S.DONE})  # type: ignore[dict-item]
    assert caught.value.problems == [
        "task 'b' depends on unknown task 'zz'",
        "task 'a' has an unknown status 'bogus'",
        "a status is given for unknown task 'x'",
    ]


# --- properties -----------------------------------------------------------------------------


@st.composite
def dags(draw, max_size: int = 25, shuffle: bool = True) -> list[Node]:
    """A random DAG: node ``t<i>`` only depends on lower numbers; listed in a random order."""
    size = draw(st.integers(1, max_size))
    nodes = []
    for i in range(size):
        deps = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=min(i, 4))) if i else []
        nodes.append(n(f"t{i}", *(f"t{d}" for d in deps), priority=draw(st.integers(-2, 2))))
    return draw(st.permutations(nodes)) if shuffle else nodes


@given(nodes=dags(), data=st.data())
@settings(max_examples=200, deadline=None)
def test_driving_a_random_dag_visits_every_node_once_in_order(nodes, data) -> None:
    dag = Dag(nodes)
    by_id = {node.id: node for node in nodes}
    position = {node.id: k for k, node in enumerate(nodes)}

    def rank(id: str) -> tuple[int, int]:
        return (-by_id[id].priority, position[id])

    done: set[str] = set()
    running: set[str] = set()
    ready = {node.id for node in nodes if not node.depends_on}
    visited: list[str] = []
    while ready or running:
        assert dag.peek_ready_count() == len(ready)
        assert dag.running_count() == len(running)
        limit = data.draw(st.integers(1, 4))
        popped = dag.pop_ready(limit)
        assert popped == sorted(ready, key=rank)[:limit]
        assert all(set(by_id[id].depends_on) <= done for id in popped)
        ready -= set(popped)
        running |= set(popped)
        for id in data.draw(st.lists(st.sampled_from(sorted(running)), min_size=1, unique=True)):
            assert set(by_id[id].depends_on) <= done
            running.remove(id)
            done.add(id)
            visited.append(id)
            became = dag.complete(id)
            expected = [
                d
                for d, node in by_id.items()
                if id in node.depends_on
                and set(node.depends_on) <= done
                and d not in done | running | ready
            ]
            assert became == sorted(expected, key=rank)
            ready |= set(became)
    assert sorted(visited) == sorted(by_id)
    assert len(visited) == len(set(visited))
    assert dag.finished()
    assert dag.counts()[S.DONE] == len(nodes)


def _ancestors(nodes: list[Node], id: str) -> set[str]:
    by_id = {node.id: node for node in nodes}
    found: set[str] = set()
    todo = list(by_id[id].depends_on)
    while todo:
        dep = todo.pop()
        if dep not in found:
            found.add(dep)
            todo.extend(by_id[dep].depends_on)
    return found


def _assert_is_cycle(problem: str, edges: dict[str, set[str]]) -> None:
    assert problem.startswith("cycle: ")
    cycle = problem.removeprefix("cycle: ").split(" -> ")
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for a, b in itertools.pairwise(cycle):
        assert b in edges[a], f"{a} does not depend on {b}"


@given(nodes=dags(shuffle=False), data=st.data())
@settings(max_examples=200, deadline=None)
def test_a_back_edge_is_always_rejected_as_a_cycle(nodes, data) -> None:
    with_deps = [node.id for node in nodes if node.depends_on]
    if not with_deps:
        nodes = [*nodes, n("extra", nodes[0].id)]
        with_deps = ["extra"]
    late = data.draw(st.sampled_from(with_deps))
    early = data.draw(st.sampled_from(sorted(_ancestors(nodes, late))))
    edited = [
        n(node.id, *node.depends_on, late, priority=node.priority) if node.id == early else node
        for node in data.draw(st.permutations(nodes))
    ]
    with pytest.raises(PlanError) as caught:
        Dag(edited)
    assert len(caught.value.problems) == 1
    _assert_is_cycle(caught.value.problems[0], {x.id: set(x.depends_on) for x in edited})


@given(nodes=dags(shuffle=False), data=st.data())
@settings(max_examples=200, deadline=None)
def test_injecting_before_an_ancestor_is_always_rejected_as_a_cycle(nodes, data) -> None:
    dag = Dag(nodes)
    late = data.draw(st.sampled_from([node.id for node in nodes]))
    target = data.draw(st.sampled_from(sorted({late} | _ancestors(nodes, late))))
    before = snapshot(dag)
    with pytest.raises(PlanError) as caught:
        dag.inject([n("fix", late), n("fix2", "fix")], before=target)
    assert snapshot(dag) == before
    edges = {node.id: set(node.depends_on) for node in nodes}
    edges |= {"fix": {late}, "fix2": {"fix"}, target: edges[target] | {"fix2"}}
    assert len(caught.value.problems) == 1
    _assert_is_cycle(caught.value.problems[0], edges)


class DagMachine(RuleBasedStateMachine):
    """Random fail/skip/retry/inject/complete sequences keep the graph's invariants."""

    dag: Dag

    @initialize(nodes=dags())
    def build(self, nodes: list[Node]) -> None:
        self.dag = Dag(nodes)
        self.fresh = itertools.count()

    def having(self, *wanted: NodeStatus) -> list[str]:
        return [id for id in self.dag.order() if self.dag.status(id) in wanted]

    def pick(self, data: st.DataObject, *wanted: NodeStatus) -> str:
        return data.draw(st.sampled_from(self.having(*wanted)))

    @rule(limit=st.none() | st.integers(0, 3))
    def pop(self, limit: int | None) -> None:
        expected = min(self.dag.peek_ready_count(), len(self.dag) if limit is None else limit)
        assert len(self.dag.pop_ready(limit)) == expected

    @precondition(lambda self: self.dag.running_count())
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        became = self.dag.complete(self.pick(data, S.RUNNING))
        assert all(self.dag.status(id) is S.READY for id in became)

    @precondition(lambda self: self.dag.running_count())
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        self.dag.fail(self.pick(data, S.RUNNING))

    @precondition(lambda self: self.dag.running_count())
    @rule(data=st.data())
    def requeue(self, data: st.DataObject) -> None:
        self.dag.requeue(self.pick(data, S.RUNNING))

    @precondition(lambda self: self.dag.counts()[S.FAILED])
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        self.dag.retry(self.pick(data, S.FAILED))

    @precondition(lambda self: not self.dag.finished() or self.dag.counts()[S.FAILED])
    @rule(data=st.data())
    def skip(self, data: st.DataObject) -> None:
        self.dag.skip(self.pick(data, S.WAITING, S.READY, S.RUNNING, S.FAILED))

    @rule(data=st.data(), how=st.sampled_from(["plain", "before", "replace"]))
    def inject(self, data: st.DataObject, how: str) -> None:
        targets = self.having(S.FAILED, S.WAITING, S.READY)
        if how != "plain" and not targets:
            return
        kwargs = {how: data.draw(st.sampled_from(targets))} if how != "plain" else {}
        existing = self.dag.order()
        new = [f"new{next(self.fresh)}" for _ in range(data.draw(st.integers(1, 3)))]
        nodes = []
        for k, id in enumerate(new):
            pool = existing + new[:k]
            deps = data.draw(st.lists(st.sampled_from(pool), unique=True, max_size=3))
            nodes.append(n(id, *deps, priority=data.draw(st.integers(-2, 2))))
        before = snapshot(self.dag)
        try:
            ready = self.dag.inject(nodes, **kwargs)
        except PlanError:
            assert snapshot(self.dag) == before
            return
        priority = {node.id: node.priority for node in nodes}
        by_rank = sorted(new, key=lambda id: -priority[id])
        assert ready == [id for id in by_rank if self.dag.status(id) is S.READY]
        if how == "before":
            assert self.dag.status(kwargs["before"]) is S.WAITING
        if how == "replace":
            assert self.dag.status(kwargs["replace"]) is S.REPLACED
            assert self.dag.dependents(kwargs["replace"]) == ()

    @rule()
    def block(self) -> None:
        was_deadlocked = self.dag.deadlocked()
        reasons = self.dag.block_unreachable()
        for id, reason in reasons.items():
            assert self.dag.status(id) is S.BLOCKED
            assert reason.startswith("depends on ")
        for id in self.having(S.WAITING):
            assert not any(
                self.dag.status(dep) in NEVER_FINISHING for dep in self.dag.node(id).depends_on
            )
        if was_deadlocked:
            assert self.dag.finished()

    @invariant()
    def statuses_match_dependencies(self) -> None:
        if not hasattr(self, "dag"):
            return
        dag = self.dag
        for id in dag.order():
            satisfied = all(dag.status(dep) in SATISFYING for dep in dag.node(id).depends_on)
            if dag.status(id) in (S.READY, S.RUNNING):
                assert satisfied, f"{id} is {dag.status(id)} with an unsatisfied dependency"
            if dag.status(id) is S.WAITING:
                assert not satisfied, f"{id} waits for nothing"

    @invariant()
    def edges_and_counts_agree(self) -> None:
        if not hasattr(self, "dag"):
            return
        dag = self.dag
        order = dag.order()
        assert len(set(order)) == len(order) == len(dag)
        seen: set[str] = set()
        for id in order:
            assert set(dag.node(id).depends_on) <= seen
            seen.add(id)
            for dep in dag.node(id).depends_on:
                assert id in dag.dependents(dep)
            for d in dag.dependents(id):
                assert id in dag.node(d).depends_on
        counted = dict.fromkeys(NodeStatus, 0)
        for id in order:
            counted[dag.status(id)] += 1
        assert dag.counts() == counted
        assert dag.peek_ready_count() == counted[S.READY]
        assert dag.running_count() == counted[S.RUNNING]
        assert dag.finished() == (counted[S.WAITING] + counted[S.READY] + counted[S.RUNNING] == 0)
        assert dag.deadlocked() == (
            counted[S.WAITING] > 0 and counted[S.READY] == 0 and counted[S.RUNNING] == 0
        )

    @invariant()
    def a_deadlock_can_always_be_settled(self) -> None:
        if not hasattr(self, "dag") or not self.dag.deadlocked():
            return
        nodes = [self.dag.node(id) for id in self.dag.order()]
        copy = Dag.restore(nodes, statuses(self.dag))
        assert copy.deadlocked()
        copy.block_unreachable()
        assert copy.finished()

    def teardown(self) -> None:
        if not hasattr(self, "dag"):
            return
        dag = self.dag
        for id in self.having(S.RUNNING):
            dag.complete(id)
        for _ in range(len(dag) + 1):
            if dag.finished():
                break
            for id in dag.pop_ready():
                dag.complete(id)
            if dag.deadlocked():
                dag.block_unreachable()
        assert dag.finished()


DagMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_dag_state_machine = DagMachine.TestCase


# --- scale ----------------------------------------------------------------------------------


def _layered(layers: int, width: int, seed: int = 7) -> list[Node]:
    rng = random.Random(seed)
    nodes = []
    for layer in range(layers):
        for k in range(width):
            deps = {f"n{layer - 1}.{rng.randrange(width)}" for _ in range(3)} if layer else set()
            nodes.append(n(f"n{layer}.{k}", *sorted(deps), priority=rng.randrange(4)))
    return nodes


def test_a_100k_node_layered_graph_builds_and_drives_to_the_end() -> None:
    nodes = _layered(layers=100, width=1000)
    dag = Dag(nodes)
    assert len(dag) == MAX_NODES
    completed = 0
    while not dag.finished():
        batch = dag.pop_ready(500)
        assert batch
        for id in batch:
            dag.complete(id)
        completed += len(batch)
    assert completed == MAX_NODES
    assert dag.counts()[S.DONE] == MAX_NODES
    assert len(dag.order()) == MAX_NODES


def test_a_100k_node_chain_validates_blocks_and_reports_a_long_cycle() -> None:
    chain = [n(f"c{i}", *([f"c{i - 1}"] if i else [])) for i in range(MAX_NODES)]
    dag = Dag(chain)
    dag.fail(dag.pop_ready()[0])
    reasons = dag.block_unreachable()
    assert len(reasons) == MAX_NODES - 1
    assert reasons["c99999"] == "depends on blocked task 'c99998' (depends on failed task 'c0')"
    assert dag.finished()
    looped = [n("c0", "c99999"), *chain[1:]]
    with pytest.raises(PlanError) as caught:
        validate(looped)
    assert caught.value.problems[0].startswith("cycle: c0 -> c99999 -> c99998 -> ")


def test_memory_stays_well_under_a_kilobyte_per_node() -> None:
    nodes = _layered(layers=20, width=1000)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        dag = Dag(nodes)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(dag) == len(nodes)
    assert (after - before) / len(nodes) < 512
