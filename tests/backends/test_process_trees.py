"""Every agent CLI backend stops the whole process tree of a hung CLI: at the attempt's timeout,
and when the run is cancelled, including a child that left the CLI's session (``setsid``) and a
grandchild. One copy of these tests, run over each backend that starts a CLI."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from backend_helpers import hung_cli, task
from engine_helpers import sleeping_processes, wait_until
from timeouts import long_enough

from blitz.backends.base import AgentBackend, AgentResult
from blitz.backends.install import CODEX_VERSION
from blitz.backends.registry import BackendOptions, create_backend
from blitz.config import ClaudeCodeConfig, CodexConfig, CommandBackendConfig

pytestmark = pytest.mark.timeout(90)


def claude_code(cli: Path) -> AgentBackend:
    env = {"ANTHROPIC_API_KEY": "sk-ant-test-key-0123456789", "CLAUDE_CODE_MAX_RETRIES": "0"}
    config = ClaudeCodeConfig(cli_path=str(cli))
    return create_backend("claude-code", BackendOptions(claude_code=config, env=env))


def codex(cli: Path) -> AgentBackend:
    config = CodexConfig(binary=str(cli), model="gpt-5.5")
    env = {"OPENAI_API_KEY": "sk-codex-test-key-0123456789"}
    return create_backend("codex", BackendOptions(codex=config, env=env))


def command(cli: Path) -> AgentBackend:
    commands = {"hung": CommandBackendConfig(command=[str(cli), "{prompt}"])}
    return create_backend("hung", BackendOptions(commands=commands))


BACKENDS: dict[str, tuple[Callable[[Path], AgentBackend], str, str]] = {
    # name: (the backend on a CLI, what the CLI says to --version, how a timeout is reported)
    "claude-code": (claude_code, "2.1.330 (Claude Code)", "timed out after {:g}s"),
    "codex": (codex, f"codex-cli {CODEX_VERSION}", "codex did not finish within {:g}s"),
    "command": (command, "hung 1.0", "did not finish within {:g}s"),
}


def new_marker() -> str:
    """A ``sleep`` duration no other process on the machine sleeps."""
    return f"{600 + secrets.randbelow(1000)}.{secrets.randbelow(10**6)}"


@pytest.fixture(params=sorted(BACKENDS))
def hung(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[AgentBackend, str, str]:
    """A backend on a hung CLI, the marker of the CLI's sleeping children, the timeout message."""
    build, version, timed_out = BACKENDS[request.param]
    marker = new_marker()
    return build(hung_cli(tmp_path / "hung-cli", marker, version=version)), marker, timed_out


async def test_a_hung_cli_is_killed_with_its_process_tree_at_the_timeout(
    hung: tuple[AgentBackend, str, str], worktree: Path
) -> None:
    backend, marker, timed_out = hung

    async def run(timeout: float) -> tuple[AgentResult, bool]:
        """The run, and whether the CLI's two children were seen alive during it."""
        running = asyncio.ensure_future(backend.run(task(worktree, timeout=timeout)))
        seen = False
        while not running.done():
            seen = seen or len(sleeping_processes(marker)) == 2
            await asyncio.sleep(0.02)
        return running.result(), seen

    # The timeout must fire after the CLI started its children (or nothing is shown about
    # them): a timeout too short for this machine's load is tried again, twice as long.
    (result, _), timeout = await long_enough(run, lambda done: done[1], first=2.0)

    assert not result.ok and not result.crashed
    assert timed_out.format(timeout) in result.error  # the CLI itself would hang for 600 s
    await wait_until(lambda: not sleeping_processes(marker))


async def test_a_cancelled_run_kills_the_cli_with_its_process_tree(
    hung: tuple[AgentBackend, str, str], worktree: Path
) -> None:
    backend, marker, _ = hung
    running = asyncio.ensure_future(backend.run(task(worktree)))
    await wait_until(lambda: len(sleeping_processes(marker)) == 2)

    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    await wait_until(lambda: not sleeping_processes(marker))
