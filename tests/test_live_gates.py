"""Gate output followed while gates run: a real validator running real commands, its output
seen by a follower line by line before the gate ends, and nothing kept outside an attempt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path

from blitz.domain import Gates
from blitz.live_gates import Cursor, LiveGates, Update, for_attempt
from blitz.validation import Validator


async def next_update(follower: AsyncGenerator[Update, None], timeout: float = 30) -> Update:
    return await asyncio.wait_for(anext(follower), timeout)


async def test_a_followers_sees_a_gates_lines_while_it_runs(tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.write_text("")
    command = f"echo first line; while [ -e {hold} ]; do sleep 0.02; done; printf 'last'"
    board = LiveGates()
    validator = Validator(Gates(test=command, timeout=60), live=board)
    follower = board.follow("a-1")

    with for_attempt("a-1"):
        running = asyncio.create_task(validator.run_gates(tmp_path))
    started = await next_update(follower)
    assert (started.gate, started.command, started.ended) == ("test", command, False)
    text = started.text
    while "first line" not in text:
        text += (await next_update(follower)).text
    assert text == "first line\n"
    assert not running.done()  # seen while the gate still runs

    hold.unlink()
    rest = await next_update(follower)
    while not rest.ended:
        rest = await next_update(follower)
    assert rest.text == "last"  # the unfinished line once the gate ended
    [result] = await running
    assert result.passed and result.output_tail == "first line\nlast"
    await follower.aclose()


async def test_a_late_follower_gets_what_was_kept_and_the_end(tmp_path: Path) -> None:
    board = LiveGates(cap=10)
    validator = Validator(Gates(test="printf 'aaaaaaaaaa\\nbbbbbbbbbb\\nccc\\n'"), live=board)
    with for_attempt("a-2"):
        await validator.run_gates(tmp_path)

    follower = board.follow("a-2")
    update = await next_update(follower)
    assert update.ended and update.text.endswith("ccc\n") and update.skipped > 0
    assert update.skipped + len(update.text) == 26
    await follower.aclose()


async def test_gates_outside_an_attempt_are_not_kept(tmp_path: Path) -> None:
    board = LiveGates()
    await Validator(Gates(test="echo baseline"), live=board).run_gates(tmp_path)
    stop = asyncio.Event()
    stop.set()
    assert [u async for u in board.follow("", until=stop.is_set)] == []


async def test_a_follower_goes_on_from_its_cursor(tmp_path: Path) -> None:
    board = LiveGates()
    validator = Validator(
        Gates(build="printf 'b1\\nb2\\n'", test="printf 't1\\n'", timeout=60), live=board
    )
    with for_attempt("a-3"):
        await validator.run_gates(tmp_path)

    cursor = Cursor(board.board)
    first = board.follow("a-3", cursor=cursor)
    build = await next_update(first)
    assert (build.gate, build.text, build.ended) == ("build", "b1\nb2\n", True)
    await first.aclose()
    sent = cursor.encode()
    assert sent == f"{board.board}/6!"

    resumed = Cursor.parse(sent, board.board)
    assert resumed == cursor
    again = board.follow("a-3", cursor=resumed)
    test = await next_update(again)
    assert (test.gate, test.text, test.ended) == ("test", "t1\n", True)  # not the build again
    assert resumed is not None and resumed.encode() == f"{board.board}/6!,3!"
    await again.aclose()


def test_a_cursor_of_another_board_or_garbled_is_not_taken() -> None:
    assert Cursor.parse("abcd/6!,-,3", "abcd") == Cursor("abcd", {0: 6, 2: 3}, {0})
    assert Cursor.parse("abcd/6!,-,3", "ef01") is None  # another process's
    assert Cursor.parse("abcd/six", "abcd") is None
    assert Cursor.parse("", "abcd") is None
    assert Cursor.parse("abcd/", "abcd") == Cursor("abcd")
