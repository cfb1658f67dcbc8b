"""The embedded agent's finish runs the project's gates and the task's command checks (the ones
the request names), and one failing on the change sends the finish back with what it printed, so
the model fixes its work in the same run (Qwen2.5-Coder-1.5B finished a wrong slugify whose own
test could not fault it). The real pydantic-ai/openai client talks to a scripted chat-completions
server on 127.0.0.1; the tools change a real git worktree and the gates are real commands
(pytest)."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_helpers import assert_script_done
from embedded_helpers import COMPATIBLE, KEY, backend, call, call_text, slugify_task

from blitz.backends.base import ACCEPTANCE, GateCommand
from blitz.backends.finish_gates import ROUNDS
from blitz.conductor import briefing
from blitz.domain import Baseline, Check, GateResult, Gates, Task
from blitz.testing.model_server import ModelServer
from blitz.validation import Validator

WRONG = "def slugify(text):\n    return text.lower()"
SLUG_TEST = (
    "def test_slugify():\n    from textutil import slugify\n"
    "    assert slugify('Hello World') == 'hello-world'"
)
PYTEST = GateCommand("test", f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider")


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


def wrong_slugify_then_finish() -> list[dict[str, object]]:
    """The model's first turns: a wrong slugify, a test that faults it, and finish."""
    return [
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=WRONG)},
        },
        {
            "match": "appended 2 line(s) to textutil.py",
            "reply": {"text": call_text("append_to_file", path="test_textutil.py", text=SLUG_TEST)},
        },
        {
            "match": "appended 3 line(s) to test_textutil.py",
            "reply": {"tool_calls": [call("finish", summary="Added.")]},
        },
    ]


async def test_a_gate_failing_on_the_finish_is_sent_back_with_its_output_and_fixed_in_the_run(
    server: ModelServer, textutil: Path
) -> None:
    fixed = "return '-'.join(text.lower().split())"
    server.add(
        *wrong_slugify_then_finish(),
        {
            "match": "the project's test check fails",
            "reply": {
                "text": call_text(
                    "edit_file", path="textutil.py", old="return text.lower()", new=fixed
                )
            },
        },
        {
            "match": "edited textutil.py",
            "reply": {"tool_calls": [call("finish", summary="Fixed.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil, PYTEST))

    assert result.ok and result.summary == "Fixed.", result.error
    # The task as the model got it names the gate it will be judged by.
    first = server.requests[0].text
    assert "When you finish, your change is checked with these commands" in first
    assert f"- test: `{PYTEST.command}`" in first
    # The finish was sent back with pytest's own words of the failure.
    said = server.requests[3].text
    assert (
        f"You called finish, but the project's test check fails with your change"
        f" (`{PYTEST.command}`, exit code 1)"
    ) in said
    assert "assert 'hello world' == 'hello-world'" in said
    assert "re-asked: finish was called with the test gate failing" in result.messages
    assert fixed in (textutil / "textutil.py").read_text()
    assert_script_done(server)


async def test_a_gate_that_keeps_failing_is_sent_back_at_most_twice_then_the_finish_is_believed(
    server: ModelServer, textutil: Path
) -> None:
    failing = GateCommand("lint", "echo 'E501 line too long'; exit 1")
    finishes = [
        {
            "match": marker,
            "reply": {"tool_calls": [call("finish", summary=f"Done {n}.")]},
        }
        for n, marker in enumerate(["appended 3 line(s)", "E501 line too long", "E501"], 1)
    ]
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"text": call_text("append_to_file", path="textutil.py", text=WRONG)},
        },
        {
            "match": "appended 2 line(s) to textutil.py",
            "reply": {"text": call_text("append_to_file", path="test_textutil.py", text=SLUG_TEST)},
        },
        *finishes,
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil, failing))

    assert result.ok and result.summary == "Done 3.", result.error
    assert ROUNDS == 2
    sent_back = [m for m in result.messages if m.startswith("re-asked: finish was called with")]
    assert sent_back == ["re-asked: finish was called with the lint gate failing"] * ROUNDS
    assert "E501 line too long" in server.requests[3].text
    assert len(server.requests) == 5
    assert_script_done(server)


async def test_gates_run_in_order_and_the_first_failing_one_is_the_one_told(
    server: ModelServer, textutil: Path, tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    build = GateCommand("build", f"echo build >> {ran}")
    lint = GateCommand("lint", f"echo lint >> {ran}; echo 'unused import'; exit 1")
    test = GateCommand("test", f"echo test >> {ran}")
    server.add(
        *wrong_slugify_then_finish(),
        {
            "match": "the project's lint check fails",
            "times": ROUNDS,
            "reply": {"tool_calls": [call("finish", summary="It is fine.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil, build, lint, test))

    assert result.ok and result.summary == "It is fine.", result.error
    # Each of the first two finishes: build passed, lint failed, test not run; the third is
    # believed without running them (the rounds are spent).
    assert ran.read_text().split() == ["build", "lint", "build", "lint"]
    assert "unused import" in server.requests[3].text
    assert_script_done(server)


async def test_a_finish_with_nothing_changed_runs_no_gate(
    server: ModelServer, textutil: Path, tmp_path: Path
) -> None:
    ran = tmp_path / "ran"
    finish = {"tool_calls": [call("finish", summary="No change needed.")]}
    server.add({"match": "Task add-slugify", "reply": finish})

    result = await backend(server, COMPATIBLE).run(
        slugify_task(textutil, GateCommand("test", f"touch {ran}; exit 1"), allow_empty=True)
    )

    assert result.ok and result.summary == "No change needed.", result.error
    assert not ran.exists()
    assert_script_done(server)


async def test_a_gate_that_times_out_on_the_finish_is_not_sent_back(
    server: ModelServer, textutil: Path
) -> None:
    server.add(*wrong_slugify_then_finish())
    started = time.monotonic()

    result = await backend(server, COMPATIBLE).run(
        slugify_task(textutil, GateCommand("test", "sleep 30"), gate_timeout=0.5)
    )

    assert result.ok and result.summary == "Added.", result.error
    assert time.monotonic() - started < 20  # the gate was stopped, not waited for
    assert not any("gate failing" in m for m in result.messages)
    assert_script_done(server)


async def test_gates_on_finish_off_runs_none(server: ModelServer, textutil: Path) -> None:
    server.add(*wrong_slugify_then_finish())

    result = await backend(server, COMPATIBLE, gates_on_finish=False).run(
        slugify_task(textutil, PYTEST)
    )

    assert result.ok and result.summary == "Added.", result.error
    assert len(server.requests) == 3  # the failing pytest gate never sent the finish back
    assert_script_done(server)


def test_an_attempt_is_given_the_gates_that_passed_on_the_goals_base() -> None:
    validator = Validator(Gates(build="make", lint="ruff check .", test="pytest"))
    lint_failed = GateResult(
        name="lint", command="ruff check .", passed=False, exit_code=1, duration=1.0
    )
    test_passed = GateResult(name="test", command="pytest", passed=True, exit_code=0, duration=1.0)
    baseline = Baseline(goal_id="g", sha="abc", results=(lint_failed, test_passed))

    assert briefing.gates(validator, baseline) == (
        GateCommand("build", "make"),
        GateCommand("test", "pytest"),
    )
    assert [g.name for g in briefing.gates(validator, None)] == ["build", "lint", "test"]
    assert briefing.gates(None, baseline) == ()
    assert briefing.gates(Validator(Gates()), None) == ()


def test_an_attempt_is_given_its_tasks_command_checks_after_the_gates() -> None:
    task = Task(
        goal_id="g",
        id="t1",
        title="Add slugify",
        checks=(
            Check(kind="file_exists", path="textutil.py"),  # the prompt says it; no command
            Check(kind="command", command="python -m pytest -q test_textutil.py"),
            Check(kind="command", command="  "),  # refused by the validation, not run here
        ),
    )
    validator = Validator(Gates(lint="ruff check ."))

    assert briefing.gates(validator, None, task) == (
        GateCommand("lint", "ruff check ."),
        GateCommand(ACCEPTANCE, "python -m pytest -q test_textutil.py"),
    )
    assert briefing.gates(None, None, task) == (
        GateCommand(ACCEPTANCE, "python -m pytest -q test_textutil.py"),
    )


async def test_a_tasks_acceptance_check_failing_on_the_finish_is_sent_back_as_the_tasks(
    server: ModelServer, textutil: Path
) -> None:
    check = GateCommand(
        ACCEPTANCE,
        f"{shlex.quote(sys.executable)} -c 'from textutil import slugify;"
        ' assert slugify("A b") == "a-b", slugify("A b")\'',
    )
    fixed = "return '-'.join(text.lower().split())"
    server.add(
        *wrong_slugify_then_finish(),
        {
            "match": "the task's acceptance check fails with your change",
            "reply": {
                "text": call_text(
                    "edit_file", path="textutil.py", old="return text.lower()", new=fixed
                )
            },
        },
        {"match": "edited textutil.py", "reply": {"tool_calls": [call("finish", summary="Ok.")]}},
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil, check))

    assert result.ok and result.summary == "Ok.", result.error
    assert f"- acceptance: `{check.command}`" in server.requests[0].text
    assert "AssertionError: a b" in server.requests[3].text
    assert "re-asked: finish was called with the task's acceptance check failing" in (
        result.messages
    )
    assert_script_done(server)


@pytest.mark.parametrize("then_fails", [False, True], ids=["alone", "a-gate-fails-after-it"])
async def test_an_acceptance_check_that_changes_files_is_put_back_and_not_sent_back(
    server: ModelServer, textutil: Path, then_fails: bool
) -> None:
    """The 1.5B's planner checked a rename with ``sed -i``: run on the finish, it would make
    the change it is to judge. What it changed is put back; it sends nothing back (the
    planner's mistake, not the agent's: the attempt's checks fail it), and the gates after it
    still run."""
    check = GateCommand(ACCEPTANCE, "sed -i 's/text.lower()/text.upper()/' textutil.py")
    after = GateCommand("test", "false") if then_fails else None
    server.add(*wrong_slugify_then_finish())
    if then_fails:
        server.add(
            {
                "match": "the project's test check fails with your change",
                "reply": {"tool_calls": [call("finish", summary="Believed.")]},
                "times": ROUNDS,
            }
        )
    gates = (check, after) if after is not None else (check,)

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil, *gates))

    assert result.ok, result.error
    assert (textutil / "textutil.py").read_text().endswith(WRONG + "\n")
    assert_script_done(server)
