"""The Claude Code backend with CLIs that cannot be used: missing, too old, no Claude CLI at all,
broken mid-stream or exiting with an error. Small scripts stand in for them."""

from __future__ import annotations

from pathlib import Path

import pytest
from backend_helpers import Sink, script, task
from claude_helpers import KEY, backend, fake_cli

from blitz.errors import ConfigError

pytestmark = pytest.mark.timeout(90)


async def test_a_missing_cli_is_a_configuration_error(tmp_path: Path, worktree: Path) -> None:
    missing = tmp_path / "nowhere" / "claude"

    result = await backend(cli_path=str(missing)).run(task(worktree))

    assert not result.ok and not result.crashed
    assert str(missing) in result.config_error and "cli_path" in result.config_error


async def test_a_cli_too_old_is_a_configuration_error_checked_once(
    tmp_path: Path, worktree: Path
) -> None:
    calls = tmp_path / "calls"
    old = script(
        tmp_path / "old-claude", f"#!/bin/sh\necho x >> {calls}\necho '1.0.3 (Claude Code)'\n"
    )
    agent = backend(cli_path=str(old))

    first = await agent.run(task(worktree))
    second = await agent.run(task(worktree))

    for result in (first, second):
        assert not result.ok and not result.crashed
        assert "1.0.3" in result.config_error and "older than 2.0.0" in result.config_error
        assert str(old) in result.config_error
    assert calls.read_text() == "x\n"  # the version was asked once


async def test_a_program_that_is_no_claude_cli_is_a_configuration_error(
    tmp_path: Path, worktree: Path
) -> None:
    other = script(tmp_path / "not-claude", "#!/bin/sh\necho 'usage: frobnicate'\nexit 2\n")

    result = await backend(cli_path=str(other)).run(task(worktree))

    assert "did not report a Claude Code version" in result.config_error
    assert "usage: frobnicate" in result.config_error


async def test_a_malformed_line_crashes_the_attempt(tmp_path: Path, worktree: Path) -> None:
    cli = fake_cli(
        tmp_path, 'print(\'{"type": "assistant", "message": {"content": [oops\', flush=True)'
    )
    sink = Sink()

    result = await backend(cli_path=str(cli)).run(task(worktree), sink)

    assert not result.ok and result.crashed and not result.config_error
    assert "malformed line" in result.error and "oops" in result.error
    assert "Starting." in sink.messages  # what came before is still shown


async def test_a_message_the_sdk_cannot_parse_crashes_the_attempt(
    tmp_path: Path, worktree: Path
) -> None:
    cli = fake_cli(tmp_path, 'send({"type": "assistant", "message": {"role": "assistant"}})')

    result = await backend(cli_path=str(cli)).run(task(worktree))

    assert not result.ok and result.crashed
    assert "unreadable message from the claude CLI" in result.error


async def test_a_cli_exiting_with_an_error_crashes_the_attempt(
    tmp_path: Path, worktree: Path
) -> None:
    body = (
        f"print('fatal: the session store is locked (key {KEY})', file=sys.stderr, flush=True)\n"
        "sys.exit(3)"
    )
    cli = fake_cli(tmp_path, body)

    result = await backend(cli_path=str(cli)).run(task(worktree))

    assert not result.ok and result.crashed and not result.config_error
    assert "exited with code 3" in result.error
    assert "the session store is locked" in result.error
    assert KEY not in result.error and "[redacted]" in result.error


async def test_a_cli_exiting_over_its_credentials_is_a_configuration_error(
    tmp_path: Path, worktree: Path
) -> None:
    cli = fake_cli(
        tmp_path, "print('Invalid API key · Please run /login', file=sys.stderr)\nsys.exit(1)"
    )

    result = await backend(cli_path=str(cli)).run(task(worktree))

    assert not result.ok and not result.crashed
    assert "ANTHROPIC_API_KEY" in result.config_error and "Invalid API key" in result.config_error


def test_the_permission_mode_is_checked() -> None:
    with pytest.raises(ConfigError, match="permission_mode"):
        backend(permission_mode="yolo")
