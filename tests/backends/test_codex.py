"""The Codex backend end to end: the real ``codex`` CLI (installed from npm through
blitz.backends.install into a cache shared by the test session) talks to the scripted model
server's Responses API on 127.0.0.1 and changes a real git worktree inside its sandbox; small
scripts stand in for CLIs that are missing, too old, broken or hung.

The CLI is installed into ``$BLITZ_TEST_TOOLS_DIR`` (CI installs it there first with ``blitz
backends install codex``), else ``~/.cache/blitz-test-tools``. If npm cannot install it, the tests
that need it fail: they are not skipped.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import Sink, assert_script_done, script, task
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
    sleeping_processes,
    wait_until,
)
from pydantic_ai.usage import RequestUsage

from blitz.backends.base import AgentBackend
from blitz.backends.codex import BREAKER_KEY, MARKER_VARIABLE, classify_failure
from blitz.backends.install import (
    CODEX_VERSION,
    codex_dir,
    find_codex,
    install_codex,
    installed_codex,
)
from blitz.backends.registry import BackendOptions, create_backend
from blitz.breaker import BreakerBoard, BreakerPolicy, BreakerState
from blitz.config import CodexConfig
from blitz.domain import GoalState
from blitz.errors import UserError
from blitz.llm.usage import Price, PriceTable
from blitz.testing.clock import ManualClock
from blitz.testing.model_server import ModelServer

pytestmark = pytest.mark.timeout(120)

KEY = "sk-codex-test-key-0123456789abcdef"
MODEL = "gpt-5.5"  # a model codex 0.169 has metadata for (others get a warning item)
PRICE = Price(input=2.0, output=10.0, cached_input=0.2, cache_write=2.0)


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


def backend(
    server: ModelServer | None = None,
    *,
    tools: Path | None = None,
    key: str = KEY,
    breakers: BreakerBoard | None = None,
    prices: PriceTable | None = None,
    **config: Any,
) -> AgentBackend:
    """The backend as the registry builds it, pointed at ``server``."""
    env = {"OPENAI_API_KEY": key} if key else {}
    if server is not None:
        env["OPENAI_BASE_URL"] = server.openai_base_url
    config.setdefault("model", MODEL)
    options = BackendOptions(
        codex=CodexConfig(**config),
        env=env,
        tools_dir=tools,
        breakers=breakers,
        prices=prices,
        clock=ManualClock(),
    )
    return create_backend("codex", options)


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


# -- what codex says went wrong -------------------------------------------------------------------

# The messages codex 0.169 prints in turn.failed, for answers of the Responses API.
OBSERVED = [
    ("unexpected status 401 Unauthorized: Incorrect API key provided, url: http://x", "config"),
    ("unexpected status 403 Forbidden: Country, region, or territory not supported", "config"),
    ("Quota exceeded. Check your plan and billing details.", "config"),
    ("The model `nope` does not exist or you do not have access to it.", "config"),
    ("exceeded retry limit, last status: 429 Too Many Requests", "transient"),
    ("rate limit exceeded: Rate limit reached for gpt-5.5.", "transient"),
    (
        "We\u2019re currently experiencing high demand, which may cause temporary errors.",
        "transient",
    ),
    ("unexpected status 503 Service Unavailable: Service unavailable., url: http://x", "transient"),
    ("unexpected status 529 <unknown status code>: Overloaded, url: http://x", "transient"),
    ("Selected model is at capacity. Please try a different model.", "transient"),
    ("stream disconnected before completion: stream closed before response.completed", "transient"),
    ("Connection failed: error sending request", "transient"),
    ("Codex ran out of room in the model's context window. Start a new thread.", "other"),
    ('{"error": {"message": "Bad thing.", "type": "invalid_request_error"}}', "other"),
]


@pytest.mark.parametrize(("message", "kind"), OBSERVED)
def test_codex_failures_are_classified(message: str, kind: str) -> None:
    failure = classify_failure(message)

    assert failure.kind == kind
    assert message in failure.message


def test_a_configuration_failure_says_what_to_fix() -> None:
    assert "check OPENAI_API_KEY" in classify_failure("unexpected status 401 Unauthorized").message
    assert "add credit" in classify_failure("Quota exceeded.").message
    assert "[codex] model" in classify_failure("model_not_found").message


# -- the CLI missing, too old, broken or hung -----------------------------------------------------

FAKE_CODEX = """#!{python}
import json, os, pathlib, subprocess, sys, time
if sys.argv[1:] == ["--version"]:
    print("codex-cli {version}")
    sys.exit(0)
if sys.argv[1:2] == ["sandbox"]:
    sys.exit(0)

def emit(**event):
    print(json.dumps(event), flush=True)

emit(type="thread.started", thread_id="t-1")
emit(type="turn.started")
emit(type="item.completed", item={{"id": "i0", "type": "agent_message", "text": "Starting."}})
{body}
"""


def fake_codex(tmp_path: Path, body: str, *, version: str = CODEX_VERSION) -> Path:
    """A script speaking codex's JSONL events up to a first message, then ``body``."""
    text = FAKE_CODEX.format(python=sys.executable, version=version, body=body)
    return script(tmp_path / "fake-codex", text)


FINISH = """
emit(type="item.completed", item={"id": "i1", "type": "agent_message", "text": "Done."})
emit(type="turn.completed", usage={"input_tokens": 50, "cached_input_tokens": 10,
     "cache_write_input_tokens": 0, "output_tokens": 5, "reasoning_output_tokens": 0})
"""


async def test_a_missing_cli_is_a_configuration_error(
    tmp_path: Path, worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no codex on PATH either
    missing = tmp_path / "nowhere" / "codex"

    configured = await backend(binary=str(missing)).run(task(worktree))
    installed = await backend(tools=tmp_path / "no-tools").run(task(worktree))

    assert not configured.ok and not configured.crashed
    assert str(missing) in configured.config_error and "[codex] binary" in configured.config_error
    assert not installed.ok and not installed.crashed
    assert "blitz backends install codex" in installed.config_error


async def test_the_cli_is_found_in_the_config_then_the_tools_dir_then_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bin").mkdir()
    on_path = script(tmp_path / "bin" / "codex", "#!/bin/sh\n")
    tools = tmp_path / "tools"
    installed = codex_dir(tools) / "node_modules" / ".bin" / "codex"
    installed.parent.mkdir(parents=True)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    assert find_codex(None, tmp_path / "no-tools") == on_path
    assert find_codex(CodexConfig(), None) == on_path
    script(installed, "#!/bin/sh\n")
    assert find_codex(None, tools) == installed
    assert find_codex(CodexConfig(binary=str(on_path)), tools) == on_path
    assert find_codex(CodexConfig(binary="codex"), tools) == on_path  # a name looks on PATH
    assert find_codex(CodexConfig(binary=str(tmp_path / "nope")), tools) is None


async def test_a_cli_too_old_is_a_configuration_error_checked_once(
    tmp_path: Path, worktree: Path
) -> None:
    calls = tmp_path / "calls"
    old = script(tmp_path / "old-codex", f"#!/bin/sh\necho x >> {calls}\necho 'codex-cli 0.98.0'\n")
    agent = backend(binary=str(old))

    first = await agent.run(task(worktree))
    second = await agent.run(task(worktree))

    for result in (first, second):
        assert not result.ok and not result.crashed
        assert "version 0.98.0" in result.config_error
        assert f"needs {'.'.join(CODEX_VERSION.split('.'))} or newer" in result.config_error
        assert "blitz backends install codex" in result.config_error
    assert calls.read_text() == "x\n"  # the version was asked once


async def test_a_program_that_is_no_codex_is_a_configuration_error(
    tmp_path: Path, worktree: Path
) -> None:
    other = script(tmp_path / "not-codex", "#!/bin/sh\necho 'usage: frobnicate'\nexit 2\n")

    result = await backend(binary=str(other)).run(task(worktree))

    assert "did not print a version" in result.config_error
    assert "usage: frobnicate" in result.config_error


async def test_what_codex_is_given(
    tmp_path: Path, worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen.json"
    body = (
        "home = pathlib.Path(os.environ['CODEX_HOME'])\n"
        f"pathlib.Path({str(seen)!r}).write_text(json.dumps({{'argv': sys.argv[1:], "
        "'env': dict(os.environ), 'config': (home / 'config.toml').read_text(), "
        "'stdin': sys.stdin.read(), 'cwd': os.getcwd()}))\n" + FINISH
    )
    codex = fake_codex(tmp_path, body)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_outer_secret_0123456789")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-outer")
    server_url = "http://127.0.0.1:9/v1"
    options = BackendOptions(
        codex=CodexConfig(binary=str(codex)),
        env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server_url},
        prices=PriceTable({f"openai:{MODEL}": PRICE}),
    )
    request = task(worktree, model=f"openai:{MODEL}", attempt=2, guidance="Mind the tests.")

    result = await create_backend("codex", options).run(request)

    assert result.ok, result
    assert result.summary == "Done."
    assert result.messages == ("Starting.", "Done.")
    assert (result.usage.input_tokens, result.usage.cached_tokens) == (50, 10)
    assert result.usage.cost_usd == pytest.approx(
        PRICE.cost(RequestUsage(input_tokens=50, cache_read_tokens=10, output_tokens=5))
    )
    given = json.loads(seen.read_text())
    argv = given["argv"]
    assert argv[:2] == ["exec", "--json"] and argv[-1] == "-"
    assert "--strict-config" in argv and "--ephemeral" in argv
    assert argv[argv.index("--sandbox") + 1] == "workspace-write"
    assert argv[argv.index("--cd") + 1] == str(worktree)
    assert argv[argv.index("--model") + 1] == MODEL  # "openai:" stripped
    assert given["cwd"] == str(worktree)
    env = given["env"]
    assert env["OPENAI_API_KEY"] == KEY
    assert "GITHUB_TOKEN" not in env and "OPENAI_ORG_ID" not in env
    assert "OPENAI_BASE_URL" not in env  # the config holds it
    assert MARKER_VARIABLE in env
    assert Path(env["TMPDIR"]).parent == Path(env["CODEX_HOME"]).parent
    assert not Path(env["CODEX_HOME"]).exists()  # removed after the run
    config = tomllib.loads(given["config"])
    assert config["approval_policy"] == "never" and config["sandbox_mode"] == "workspace-write"
    assert config["model_provider"] == "blitz"
    provider = config["model_providers"]["blitz"]
    assert provider["base_url"] == server_url and provider["env_key"] == "OPENAI_API_KEY"
    assert provider["wire_api"] == "responses"
    assert provider["request_max_retries"] == provider["stream_max_retries"] == 0
    assert config["features"]["unbounded_connection_retries"] is False
    assert config["sandbox_workspace_write"]["exclude_slash_tmp"] is True
    assert "*_API_KEY" in config["shell_environment_policy"]["exclude"]
    assert KEY not in given["config"]
    prompt = given["stdin"]
    assert "Task t1: Add hello.py" in prompt and "attempt 2" in prompt
    assert "Mind the tests." in prompt


@pytest.mark.parametrize(
    ("config", "request_model", "default_model", "passed"),
    [
        ({"model": "gpt-5.6-terra"}, "openai:gpt-5.5", "", "gpt-5.5"),  # the attempt's own
        ({"model": "gpt-5.6-terra"}, "", "openai:gpt-5.6-luna", "gpt-5.6-terra"),
        ({}, "gpt-5.5", "", "gpt-5.5"),  # a portfolio's "codex:gpt-5.5"
        ({}, "", "openai:gpt-5.6-luna", "gpt-5.6-luna"),
        ({}, "", "anthropic:claude-sonnet-4-6", None),  # the planner's model: codex's default
        ({}, "", "", None),
    ],
)
async def test_the_model_codex_runs(
    tmp_path: Path,
    worktree: Path,
    config: dict[str, str],
    request_model: str,
    default_model: str,
    passed: str | None,
) -> None:
    seen = tmp_path / "argv.json"
    codex = fake_codex(
        tmp_path, f"pathlib.Path({str(seen)!r}).write_text(json.dumps(sys.argv))\n" + FINISH
    )
    options = BackendOptions(
        codex=CodexConfig(binary=str(codex), **config),
        env={"OPENAI_API_KEY": KEY},
        model=default_model,
    )

    result = await create_backend("codex", options).run(task(worktree, model=request_model))

    assert result.ok, result
    argv = json.loads(seen.read_text())
    assert (argv[argv.index("--model") + 1] if "--model" in argv else None) == passed


async def test_settings_codex_cannot_use_are_configuration_errors(
    tmp_path: Path, worktree: Path
) -> None:
    codex = fake_codex(tmp_path, FINISH)

    other = await backend(binary=str(codex), model="").run(
        task(worktree, model="anthropic:claude-x")
    )
    sandbox = await backend(binary=str(codex), sandbox="everything").run(task(worktree))
    no_key = await backend(binary=str(codex), key="").run(task(worktree))

    assert "runs OpenAI models" in other.config_error
    assert "[codex] sandbox = 'everything'" in sandbox.config_error
    assert "needs an OpenAI API key" in no_key.config_error
    for result in (other, sandbox, no_key):
        assert not result.ok and not result.crashed


async def test_a_malformed_line_crashes_the_attempt_and_stops_codex(
    tmp_path: Path, worktree: Path
) -> None:
    codex = fake_codex(
        tmp_path, 'print("{\\"type\\": \\"item.completed\\", oops", flush=True)\ntime.sleep(60)'
    )
    sink = Sink()
    started = time.monotonic()

    result = await backend(binary=str(codex)).run(task(worktree), sink)

    assert not result.ok and result.crashed and not result.config_error
    assert "not a JSON event" in result.error and "oops" in result.error
    assert sink.messages == ["Starting."]  # what came before is still shown
    assert time.monotonic() - started < 20  # not left to run for its minute


async def test_a_failed_turn_of_unknown_cause_fails_the_work(
    tmp_path: Path, worktree: Path
) -> None:
    body = (
        'emit(type="turn.failed", error={"message": "the tool output was unusable"})\nsys.exit(1)'
    )
    codex = fake_codex(tmp_path, body)

    result = await backend(binary=str(codex)).run(task(worktree))

    assert not result.ok and not result.crashed and not result.config_error
    assert result.error == "codex: the tool output was unusable"


async def test_a_cli_exiting_with_an_error_crashes_the_attempt(
    tmp_path: Path, worktree: Path
) -> None:
    body = (
        f"print('fatal: the state database is locked (key {KEY})', file=sys.stderr, flush=True)\n"
        "sys.exit(3)"
    )
    codex = fake_codex(tmp_path, body)

    result = await backend(binary=str(codex)).run(task(worktree))

    assert not result.ok and result.crashed and not result.config_error
    assert "exited with code 3" in result.error
    assert "the state database is locked" in result.error
    assert KEY not in result.error and "[redacted]" in result.error


async def test_a_cli_ending_without_its_turn_crashes_the_attempt(
    tmp_path: Path, worktree: Path
) -> None:
    codex = fake_codex(tmp_path, "sys.exit(0)")

    result = await backend(binary=str(codex)).run(task(worktree))

    assert not result.ok and result.crashed
    assert result.error == "codex exited without finishing its turn"


# -- installing -----------------------------------------------------------------------------------


async def test_installing_is_a_no_op_once_installed(tools_dir: Path, tmp_path: Path) -> None:
    fails = script(tmp_path / "npm", "#!/bin/sh\necho npm must not run >&2\nexit 1\n")

    binary = await install_codex(tools_dir, npm=str(fails))

    assert binary == installed_codex(tools_dir)
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == f"codex-cli {CODEX_VERSION}"


async def test_a_failing_npm_is_reported_and_leaves_nothing_installed(tmp_path: Path) -> None:
    npm = script(tmp_path / "npm", "#!/bin/sh\necho 'npm ERR! code E404' >&2\nexit 1\n")
    tools = tmp_path / "tools"

    with pytest.raises(Exception, match="E404") as failed:
        await install_codex(tools, npm=str(npm))

    assert "failed (exit 1)" in str(failed.value)
    assert installed_codex(tools) is None
    assert list(codex_dir(tools).parent.iterdir()) == []  # the staging directory is gone


async def test_a_hung_npm_is_killed_at_the_timeout(tmp_path: Path) -> None:
    marker = f"{600 + secrets.randbelow(1000)}.{secrets.randbelow(10**6)}"
    npm = script(tmp_path / "npm", f"#!/bin/sh\nsleep {marker} &\nsleep {marker}\n")

    with pytest.raises(Exception, match="did not finish within 1s"):
        await install_codex(tmp_path / "tools", npm=str(npm), timeout=1.0)

    await wait_until(lambda: not sleeping_processes(marker), 5)


async def test_no_npm_says_to_install_node(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="npm was not found"):
        await install_codex(tmp_path / "tools", env={"PATH": str(tmp_path)})


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
