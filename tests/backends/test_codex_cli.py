"""The Codex backend with a CLI that is missing, too old, no codex, broken or hung (small scripts
speaking codex's JSONL events stand in for it), how codex's own failure messages are classified,
and installing it from npm (a failing, hung or missing npm). The real CLI's runs are in
test_codex.py."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from backend_helpers import Sink, script, task
from codex_helpers import KEY, MODEL, PRICE, backend
from engine_helpers import (
    sleeping_processes,
    wait_until,
)
from pydantic_ai.usage import RequestUsage

from blitz.backends.codex import MARKER_VARIABLE, classify_failure
from blitz.backends.install import (
    CODEX_VERSION,
    codex_dir,
    find_codex,
    install_codex,
    installed_codex,
)
from blitz.backends.registry import BackendOptions, create_backend
from blitz.config import CodexConfig
from blitz.errors import UserError
from blitz.llm.usage import PriceTable

pytestmark = pytest.mark.timeout(120)


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
