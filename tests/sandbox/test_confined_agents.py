"""Every backend, confined for real: the attacks of :mod:`attacks` run through the embedded agent
(scripted model server), a command backend, the real ``claude`` CLI and the real ``codex`` CLI,
each in blitz's bubblewrap jail and reaching its model only through blitz's model proxy."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import Sink, task
from attacks import (
    NEEDS_BUBBLEWRAP,
    SECRET,
    SSH_KEY,
    Target,
    commands,
    make_target,
    outcome_problems,
)

from blitz.backends.registry import BackendOptions, create_backend
from blitz.config import ClaudeCodeConfig, CodexConfig, CommandBackendConfig
from blitz.domain import Usage
from blitz.llm.usage import PriceTable
from blitz.proxy import ModelProxy, Upstream
from blitz.sandbox import Policy
from blitz.testing.clock import ManualClock
from blitz.testing.model_server import ModelServer

pytestmark = [
    NEEDS_BUBBLEWRAP,
    pytest.mark.timeout(180),
]

KEY = "sk-real-provider-key-only-blitz-knows-0123456789"


@pytest.fixture
def target(tmp_path: Path, git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    yield from make_target(tmp_path, git_repo)


@pytest.fixture
def worktree(target: Target, tmp_path: Path) -> Path:
    """An attempt's worktree, in blitz's own data directory (as the engine makes it)."""
    path = tmp_path / "blitz-home" / "worktrees" / "r" / "w1"
    subprocess.run(
        ["git", "worktree", "add", "-q", "--detach", str(path), "main"],
        cwd=target.repo,
        check=True,
        capture_output=True,
    )
    return path


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY, fallback={"text": "Done."}) as running:
        yield running


@pytest.fixture
async def proxy(server: ModelServer, tmp_path: Path) -> AsyncIterator[ModelProxy]:
    upstreams = {
        "anthropic": Upstream(
            provider="anthropic", base_url=server.anthropic_base_url, api_key=KEY
        ),
        "openai": Upstream(provider="openai", base_url=server.openai_base_url, api_key=KEY),
    }
    running = ModelProxy(upstreams, prices=PriceTable())
    yield running
    await running.stop()


@pytest.fixture
def policy(tmp_path: Path) -> Iterator[Policy]:
    socket_dir = Path(
        subprocess.check_output(["mktemp", "-d", "/tmp/blitz-t-XXXX"], text=True).strip()
    )
    yield Policy(hidden=(tmp_path / "blitz-home",), proxy_socket=socket_dir / "proxy.sock")
    subprocess.run(["rm", "-rf", str(socket_dir)], check=True)


def options(policy: Policy, proxy: ModelProxy, **more: Any) -> BackendOptions:
    env = {"ANTHROPIC_API_KEY": KEY, "OPENAI_API_KEY": KEY}
    return BackendOptions(
        env=env, sandbox=policy, proxy=proxy, clock=ManualClock(), prices=PriceTable(), **more
    )


def assert_contained(target: Target, server: ModelServer, remote: str, main: str) -> None:
    """Every attack was refused or contained, and nothing secret went back to the model."""
    assert not server.pending, [(r.path, r.turn, r.last_user_text[:200]) for r in server.requests]
    results = "".join(r.tool_results for r in server.requests)
    assert "Read-only file system" in results  # the attacks ran, and hit the sandbox's walls
    assert outcome_problems(target, remote, main) == []
    sent = json.dumps([r.body for r in server.requests])
    assert SECRET not in sent  # blitz's environment never reached the agent's tool results
    assert SSH_KEY not in sent
    assert KEY not in sent  # the real key is not in the agent's environment either


def bash_calls(target: Target) -> list[dict[str, Any]]:
    return [{"name": "Bash", "input": {"command": c}} for c in commands(target)]


async def test_claude_code_is_confined_and_metered(
    target: Target, worktree: Path, server: ModelServer, proxy: ModelProxy, policy: Policy
) -> None:
    remote, main = target.remote_main, target.local_main
    server.add(
        {
            "match": "Task t1",
            "reply": {"tool_calls": bash_calls(target), "usage": {"input": 1000, "output": 100}},
        },
    )
    spent: list[Usage] = []
    backend = create_backend("claude-code", options(policy, proxy, claude_code=ClaudeCodeConfig()))
    sink = Sink()
    result = await backend.run(task(worktree, on_usage=spent.append, timeout=150), sink)
    assert result.ok, (result.error, sink.text())
    assert_contained(target, server, remote, main)
    assert spent and sum(u.input_tokens for u in spent) >= 1000  # metered by the proxy, live
    assert all(r.api_key_header for r in server.requests)  # the proxy put the real key in


async def test_codex_is_confined_and_metered(
    target: Target,
    worktree: Path,
    server: ModelServer,
    proxy: ModelProxy,
    policy: Policy,
    tools_dir: Path,
) -> None:
    remote, main = target.remote_main, target.local_main
    calls = [{"name": "exec_command", "input": {"cmd": c}} for c in commands(target)]
    server.add(
        {
            "match": "Task t1",
            "reply": {"tool_calls": calls, "usage": {"input": 1000, "output": 100}},
        }
    )
    spent: list[Usage] = []
    backend = create_backend(
        "codex", options(policy, proxy, codex=CodexConfig(model="gpt-5"), tools_dir=tools_dir)
    )
    sink = Sink()
    result = await backend.run(task(worktree, on_usage=spent.append, timeout=150), sink)
    assert result.ok, (result.error, sink.text())
    assert_contained(target, server, remote, main)
    assert spent and sum(u.input_tokens for u in spent) >= 1000


async def test_a_command_backend_is_confined(
    target: Target, worktree: Path, server: ModelServer, proxy: ModelProxy, policy: Policy
) -> None:
    remote, main = target.remote_main, target.local_main
    script = worktree / "agent.sh"
    script.write_text("\n".join(f"{c} 2>&1" for c in commands(target)) + "\necho finished\n")
    command = CommandBackendConfig(
        command=["sh", str(script)], pass_env=["OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY"]
    )
    backend = create_backend("evil", options(policy, proxy, commands={"evil": command}))
    sink = Sink()
    result = await backend.run(task(worktree, timeout=120), sink)
    assert "finished" in sink.text(), result.error
    assert outcome_problems(target, remote, main) == []
    assert SECRET not in sink.text() and SSH_KEY not in sink.text() and KEY not in sink.text()
    assert result.ok


async def test_the_embedded_agent_is_confined(
    target: Target, worktree: Path, server: ModelServer, policy: Policy
) -> None:
    from blitz.llm.models import ProviderConfig

    remote, main = target.remote_main, target.local_main
    calls = [{"name": "run_command", "input": {"command": c}} for c in commands(target)]
    server.add({"match": "Task t1", "api": "openai", "reply": {"tool_calls": calls}})
    providers = ProviderConfig(openai_base_url=server.openai_base_url, openai_api_key=KEY)
    backend = create_backend(
        "embedded",
        BackendOptions(
            model="openai:gpt-5", providers=providers, sandbox=policy, clock=ManualClock()
        ),
    )
    sink = Sink()
    await backend.run(task(worktree, timeout=120), sink)
    assert_contained(target, server, remote, main)


def key_hunt() -> str:
    """A command that prints the real key wherever it finds it inside the jail (the key is
    spelt in two halves, so only a find shows it whole)."""
    half = len(KEY) // 2
    pattern = f'"$(echo {KEY[:half]})$(echo {KEY[half:]})"'
    places = "/tmp $HOME . /proc/[0-9]*/environ /proc/[0-9]*/cmdline"
    return f"grep -r -a -o -h {pattern} {places} 2>/dev/null; echo hunted"


async def test_the_real_key_is_nowhere_in_the_jails_of_the_cli_agents(
    target: Target,
    worktree: Path,
    server: ModelServer,
    proxy: ModelProxy,
    policy: Policy,
    tools_dir: Path,
) -> None:
    server.add(
        {"match": "Task t1", "api": "anthropic", "reply": {"tool_calls": [bash(key_hunt())]}},
        {"match": "Task t1", "api": "openai", "reply": {"tool_calls": [exec_command(key_hunt())]}},
    )
    for name in ("claude-code", "codex"):
        backend = create_backend(
            name, options(policy, proxy, codex=CodexConfig(model="gpt-5"), tools_dir=tools_dir)
        )
        result = await backend.run(task(worktree, timeout=120), Sink())
        assert result.ok, (name, result.error)
    results = [r.tool_results for r in server.requests if r.tool_results]
    assert len(results) == 2 and all("hunted" in r for r in results)
    assert KEY not in json.dumps([r.body for r in server.requests])


@pytest.mark.parametrize("name", ["claude-code", "codex"])
async def test_a_budget_spent_mid_run_cuts_the_cli_off(
    name: str,
    target: Target,
    worktree: Path,
    server: ModelServer,
    proxy: ModelProxy,
    policy: Policy,
    tools_dir: Path,
) -> None:
    usage = {"input": 1000, "output": 100}  # $0.006 on claude-opus-5-5, $0.00225 on gpt-5
    call = bash if name == "claude-code" else exec_command
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [call("echo one")], "usage": usage}},
    )
    spent: list[Usage] = []
    backend = create_backend(
        name, options(policy, proxy, codex=CodexConfig(model="gpt-5"), tools_dir=tools_dir)
    )
    result = await backend.run(
        task(worktree, timeout=120, budget_usd=0.002, on_usage=spent.append), Sink()
    )
    assert not result.ok and not result.crashed
    assert "spent its budget of $0.00" in result.error
    assert sum(u.cost_usd for u in spent) > 0.002  # counted as it was spent
    assert len([r for r in server.requests if r.status == 200]) == 1  # nothing after the cut


def bash(command: str) -> dict[str, Any]:
    return {"name": "Bash", "input": {"command": command}}


def exec_command(command: str) -> dict[str, Any]:
    return {"name": "exec_command", "input": {"cmd": command}}
