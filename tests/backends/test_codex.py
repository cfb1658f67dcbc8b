"""The Codex backend end to end: the real ``codex`` CLI (installed from npm through
blitz.backends.install into a cache shared by the test session) talks to the scripted model
server's Responses API on 127.0.0.1 and changes a real git worktree inside its sandbox; outages,
a rejected key, the command line's install and list, and the engine committing codex's work.
A CLI that is missing, too old, broken or hung, and installing, are in test_codex_cli.py.

The CLI is installed into ``$BLITZ_TEST_TOOLS_DIR`` (CI installs it there first with ``blitz
backends install codex``), else ``~/.cache/blitz-test-tools``. If npm cannot install it, the tests
that need it fail: they are not skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_helpers import Sink, assert_script_done, script, task
from codex_helpers import KEY, MODEL, PRICE, backend
from codex_script import MUL_CHECK, apply_patch, mul_script, reply, shell
from engine_helpers import (
    CALC,
    MUL,
    MUL_TEST,
    PYTHON,
    UNITTEST,
    assert_engine_invariants,
    branch_commits,
    git,
    goal_events,
    isolated_git,  # noqa: F401 - the fixture, used by the engine test
    make_app,
    make_repo,
    of_kind,
    run_one,
)
from pydantic_ai.usage import RequestUsage

from blitz.backends.codex import BREAKER_KEY
from blitz.backends.install import (
    installed_codex,
)
from blitz.breaker import BreakerBoard, BreakerPolicy, BreakerState
from blitz.domain import GoalState
from blitz.llm.usage import PriceTable
from blitz.testing.clock import ManualClock
from blitz.testing.model_server import ModelServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


# -- the real CLI ---------------------------------------------------------------------------------

HELLO = "def hello():\n    return 'hello'\n"


async def test_codex_edits_and_runs_a_command_in_the_worktree(
    tools_dir: Path, server: ModelServer, worktree: Path
) -> None:
    check = f"{PYTHON} -B -c 'import hello; print(hello.hello())'"
    server.add(
        reply(
            apply_patch("*** Add File: hello.py", *(f"+{line}" for line in HELLO.splitlines())),
            text="Adding hello.py.",
            match="Task t1: Add hello.py",
        ),
        reply(shell(check), match_tool_result="A hello.py"),
        {
            "match_tool_result": "hello\n",
            "reply": {
                "text": "Added hello() in hello.py.",
                "usage": {"input": 1000, "output": 100, "cached": 200},
            },
        },
    )
    prices = PriceTable({f"openai:{MODEL}": PRICE})
    sink = Sink()

    result = await backend(server, tools=tools_dir, prices=prices).run(task(worktree), sink)

    assert result.ok, result
    assert result.summary == "Added hello() in hello.py."
    assert (worktree / "hello.py").read_text() == HELLO
    assert git_status(worktree) == "?? hello.py"
    # Live messages: what it said, the file it changed, the command and its output.
    assert sink.messages[0] == "Adding hello.py."
    assert "edit: add hello.py" in sink.messages
    assert f"$ {check}" in sink.messages
    assert any(m.endswith("hello") for m in sink.messages)
    assert sink.messages[-1] == "Added hello() in hello.py."
    assert list(result.messages) == sink.messages
    # Tokens of all three requests (input counts the cached ones), priced from the table.
    assert (result.usage.input_tokens, result.usage.cached_tokens) == (1400, 200)
    assert result.usage.output_tokens == 140
    expected = PRICE.cost(RequestUsage(input_tokens=1400, cache_read_tokens=200, output_tokens=140))
    assert result.usage.cost_usd == pytest.approx(expected)
    # What codex sent: the model, the task in the prompt, the key, its tools.
    first = server.requests[0]
    assert first.path == "/v1/responses" and first.stream and first.api_key_present
    assert first.body["model"] == MODEL
    assert "Task t1: Add hello.py" in first.text and "Greet people" in first.text
    assert "Do not commit" in first.text
    tools = {tool.get("name"): tool.get("type") for tool in first.body["tools"]}
    assert tools["exec_command"] == "function" and tools["apply_patch"] == "custom"
    assert KEY not in " ".join(result.messages)
    assert_script_done(server)


def git_status(worktree: Path) -> str:
    return git(worktree, "status", "--porcelain")


async def test_the_sandbox_refuses_writes_outside_the_worktree(
    tools_dir: Path, server: ModelServer, worktree: Path, git_repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    readme = (git_repo / "README.md").read_text()
    server.add(
        reply(apply_patch(f"*** Add File: {outside / 'patched.txt'}", "+escaped"), match="t1"),
        reply(
            shell(
                f"echo escaped > {outside / 'shell.txt'}; echo x >> {git_repo / 'README.md'}; "
                'echo private > "$TMPDIR/scratch" && cat "$TMPDIR/scratch"; '
                "echo inside > inside.txt"
            ),
            match_tool_result="patch rejected",
        ),
        {"match_tool_result": "Read-only file system", "reply": {"text": "Could not escape."}},
    )

    result = await backend(server, tools=tools_dir).run(task(worktree))

    assert result.ok, result
    assert list(outside.iterdir()) == []
    assert (git_repo / "README.md").read_text() == readme
    assert (worktree / "inside.txt").read_text() == "inside\n"
    last = server.requests[-1].tool_results
    assert "writing outside of the project" in last
    assert last.count("Read-only file system") == 2
    assert "private" in last  # its own TMPDIR is writable
    assert_script_done(server)


def without_user_namespaces(tmp_path: Path, codex: Path) -> Path:
    """``codex`` run where no user namespace can be made, as on hosts that forbid them."""
    assert shutil.which("unshare"), "unshare (util-linux) is needed to take user namespaces away"
    inner = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" "$@"'
    return script(
        tmp_path / "codex-without-userns",
        f"#!/bin/sh\nexec unshare --user --map-root-user sh -c '{inner}' {codex} \"$@\"\n",
    )


async def test_a_sandbox_that_cannot_start_is_a_configuration_error(
    tools_dir: Path, server: ModelServer, worktree: Path, tmp_path: Path
) -> None:
    codex = installed_codex(tools_dir)
    assert codex is not None
    wrapped = without_user_namespaces(tmp_path, codex)

    result = await backend(server, binary=str(wrapped)).run(task(worktree))

    assert not result.ok and not result.crashed
    assert "sandbox cannot start here" in result.config_error
    assert "namespace" in result.config_error and "danger-full-access" in result.config_error
    assert server.requests == []  # refused before any model call

    # Without the sandbox (where blitz itself is sandboxed) the same codex works.
    server.add(
        reply(shell("echo unsandboxed > note.txt"), match="t1"),
        {"match_tool_result": "exited with code 0", "reply": {"text": "Wrote note.txt."}},
    )
    unsandboxed = backend(server, binary=str(wrapped), sandbox="danger-full-access")
    result = await unsandboxed.run(task(worktree))
    assert result.ok, result
    assert (worktree / "note.txt").read_text() == "unsandboxed\n"
    assert_script_done(server)


async def test_rate_limits_and_server_errors_are_outages_and_open_the_breaker(
    tools_dir: Path, server: ModelServer, worktree: Path
) -> None:
    breakers = BreakerBoard(ManualClock(), default=BreakerPolicy(threshold=2, cooldown=60))
    agent = backend(server, tools=tools_dir, breakers=breakers)

    server.fail_next(1, 429)
    limited = await agent.run(task(worktree))
    assert not limited.ok and limited.unavailable and not limited.crashed
    assert not limited.config_error
    assert "429" in limited.error
    assert breakers.get(BREAKER_KEY).failures == 1

    server.fail_next(1, 500)
    broken = await agent.run(task(worktree))
    assert not broken.ok and broken.unavailable and not broken.crashed
    assert not broken.config_error
    assert broken.error.startswith("OpenAI: ")
    assert breakers.get(BREAKER_KEY).state is BreakerState.OPEN

    refused = await agent.run(task(worktree))
    assert not refused.ok and refused.unavailable and not refused.crashed
    assert "circuit breaker" in refused.error
    assert [r.status for r in server.requests] == [429, 500]  # codex was not started again


async def test_a_dropped_stream_is_an_outage(
    tools_dir: Path, server: ModelServer, worktree: Path
) -> None:
    breakers = BreakerBoard(ManualClock())
    server.add({"match": "t1", "reply": {"text": "Half an answer", "cut_stream_after": 3}})

    result = await backend(server, tools=tools_dir, breakers=breakers).run(task(worktree))

    assert not result.ok and result.unavailable and not result.crashed
    assert not result.config_error
    assert "stream disconnected" in result.error
    assert breakers.get(BREAKER_KEY).failures == 1


async def test_a_rejected_key_is_a_configuration_error(
    tools_dir: Path, server: ModelServer, worktree: Path
) -> None:
    breakers = BreakerBoard(ManualClock())
    wrong = "sk-wrong-key-abcdefghijklmnop"

    result = await backend(server, tools=tools_dir, key=wrong, breakers=breakers).run(
        task(worktree)
    )

    assert not result.ok and not result.crashed
    assert "OPENAI_API_KEY" in result.config_error and "401" in result.config_error
    assert result.error == result.config_error
    assert breakers.get(BREAKER_KEY).failures == 0  # the provider answered
    assert wrong not in " ".join([result.error, *result.messages])
    assert [r.status for r in server.requests] == [401]


BLITZ = str(Path(sys.executable).with_name("blitz"))


def blitz(
    tmp_path: Path, *args: str, path: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BLITZ_HOME": str(tmp_path / "home"), "COLUMNS": "300", **extra}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [BLITZ, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_command_line_installs_and_lists_codex(tools_dir: Path, tmp_path: Path) -> None:
    installed = blitz(tmp_path, "backends", "install", "codex", "--tools-dir", str(tools_dir))
    # A run of codex needs its key: the list says it is usable only with one.
    listed = blitz(
        tmp_path, "backends", "list", "--json", "--tools-dir", str(tools_dir), OPENAI_API_KEY=KEY
    )
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    missing = blitz(
        tmp_path,
        "backends", "list", "--json", "--tools-dir", str(tmp_path / "none"),
        path=f"{empty}:{Path(sys.executable).parent}",
    )  # fmt: skip
    unknown = blitz(tmp_path, "backends", "install", "aider")

    assert installed.returncode == 0, installed.stderr
    assert str(installed_codex(tools_dir)) in installed.stdout
    assert listed.returncode == 0, listed.stderr
    by_name = {item["name"]: item for item in json.loads(listed.stdout)}
    assert {"scripted", "embedded", "claude-code", "codex"} <= set(by_name)
    assert by_name["codex"] == {
        "name": "codex",
        "available": True,
        "detail": str(installed_codex(tools_dir)),
    }
    codex = {item["name"]: item for item in json.loads(missing.stdout)}["codex"]
    assert not codex["available"] and "blitz backends install codex" in codex["detail"]
    assert unknown.returncode == 2
    assert "installable: codex" in unknown.stderr and "Traceback" not in unknown.stderr


# -- through the engine ---------------------------------------------------------------------------


@pytest.mark.usefixtures("isolated_git")
async def test_the_engine_commits_what_codex_wrote_once_the_gate_passes(
    tools_dir: Path, tmp_path: Path, server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    codex = installed_codex(tools_dir)
    assert codex is not None
    repo = make_repo(tmp_path, files=CALC, gates={"test": UNITTEST, "timeout": 120})
    toml = (repo / "blitz.toml").read_text()
    toml = toml.replace('backend = "scripted"', 'backend = "codex"')
    toml += f'[codex]\nmodel = "{MODEL}"\nbinary = "{codex}"\n'
    (repo / "blitz.toml").write_text(toml)
    git(repo, "commit", "-qam", "Let Codex do the work")
    # codex gets the provider settings from blitz's own.
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    plan = {
        "summary": "Multiply numbers",
        "tasks": [
            {
                "id": "mul",
                "title": "Add mul()",
                "instructions": "Add mul(a, b) in calc/mul.py with a unittest.",
                "checks": [
                    {
                        "kind": "command",
                        "command": f"{PYTHON} -c '{MUL_CHECK}'",
                    }
                ],
            }
        ],
    }
    server.add(*mul_script(UNITTEST))
    app = make_app(tmp_path / "home", plan)
    try:
        _, goal = await run_one(app, repo, "Multiply numbers")

        assert goal.state is GoalState.SUCCEEDED, goal
        commits = branch_commits(repo, goal.branch)
        assert [c.tasks for c in commits] == [("mul",)]
        assert git(repo, "show", f"{goal.branch}:calc/mul.py") + "\n" == MUL
        assert git(repo, "show", f"{goal.branch}:tests/test_mul.py") + "\n" == MUL_TEST
        assert_engine_invariants(app, repo, goal)
        attempts = app.store.load_attempts(goal.id)
        assert [(a.backend, a.state) for a in attempts] == [("codex", "succeeded")]
        assert attempts[0].summary == "Added calc/mul.py and its test."
        assert attempts[0].usage.input_tokens > 0
        shown = [e.message for e in of_kind(goal_events(app, goal.id), "agent.message")]
        assert "edit: add calc/mul.py, add tests/test_mul.py" in shown
        assert f"$ {UNITTEST} 2>&1" in shown
        assert git(repo, "status", "--porcelain") == ""  # the user's checkout is untouched
        assert_script_done(server)
    finally:
        await app.aclose()
