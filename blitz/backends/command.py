"""Any agent CLI as a backend, configured in blitz.toml (aider, gemini, ...)::

    [backends.aider]
    command = ["aider", "--yes", "--no-auto-commits", "--message", "{prompt}"]
    pass_env = ["OPENAI_API_KEY"]

In each argument, ``{prompt}`` becomes the task's prompt (the task, its instructions, the goal,
and on a retry what went wrong and recovery's advice), ``{prompt_file}`` the path of a file
holding it (in a temporary directory outside the worktree, removed afterwards) and
``{worktree}`` the worktree's path. A command with neither prompt placeholder gets the prompt on
stdin; with one, stdin is empty so the agent never waits for a person.

The command runs in the worktree, in its own process group, for at most the attempt's timeout
(then it is killed with every process it started). Each line it prints is an agent message, shown
live. Its environment is blitz's own without secrets (variables ending in ``_API_KEY``,
``_TOKEN``, ...), plus ``env``; the variables named in ``pass_env`` are passed on as they are,
secrets included: that is how an agent gets its API key.

Exit code 0 means the agent is done; the gates judge its work as for every backend. Another exit
code is failed work (recovery looks at the output); death by a signal is a crash (retried); a
program that is missing or cannot be executed is a configuration error (the project is paused).
The agent must not commit: blitz commits checked work itself. Commits it makes anyway are undone
with ``git reset --soft``, keeping their changes in the worktree.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from blitz import git, process
from blitz.backends.base import AgentRequest, AgentResult, MessageSink, task_prompt
from blitz.backends.options import CommandBackendConfig
from blitz.backends.proxied import PROVIDER_ENV, model_access
from blitz.sandbox import (
    UNCONFINED,
    Network,
    Policy,
    SandboxUnavailable,
    hidden_places,
    installation,
)

if TYPE_CHECKING:
    from blitz.proxy import ModelProxy

MESSAGES_KEPT = 20
"""Output lines kept in :attr:`AgentResult.messages`, the newest ones."""

TAIL_CHARS = 3000
"""Characters of the command's output put in a failure's error."""

GIT_TIMEOUT = 60.0
"""Seconds for the git commands that check whether the agent committed."""

_PLACEHOLDER = re.compile(r"\{(prompt|prompt_file|worktree)\}")

_NOT_RUNNABLE = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.ENOTDIR}
"""Errors starting the program that the user must fix (missing, not executable, not a program)."""


class CommandBackend:
    """An agent backend that runs a configured command line (``[backends.NAME]``)."""

    def __init__(
        self,
        name: str,
        config: CommandBackendConfig,
        env: Mapping[str, str] | None = None,
        *,
        sandbox: Policy = UNCONFINED,
        proxy: ModelProxy | None = None,
    ) -> None:
        """``env``: variables blitz provides to agent CLIs (provider URLs and keys) on top of its
        own environment; secrets among them are passed only when ``pass_env`` names them.
        ``sandbox``: the jail the command runs in; ``proxy``: the model proxy through which it
        reaches the providers whose keys ``pass_env`` names."""
        self.name = name
        self.config = config
        self._env = dict(env or {})
        self.sandbox = sandbox
        self.proxy = proxy

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        worktree = request.worktree
        if not worktree.is_dir():
            return AgentResult(ok=False, crashed=True, error=f"the worktree {worktree} is missing")
        text = prompt(request)
        messages: list[str] = []

        async def on_line(line: str) -> None:
            if not line.strip():
                return
            messages.append(line)
            del messages[:-MESSAGES_KEPT]
            if on_message is not None:
                await on_message(line)

        if problem := _unrunnable(self.config.command[0], worktree):
            return self._not_started(problem)
        providers = [p for p, (_, key) in PROVIDER_ENV.items() if key in self.config.pass_env]
        network: Network = "proxy" if self.proxy is not None and providers else "none"
        jail = self.sandbox.jail(worktree, network=network)
        head = await git.head(worktree, timeout=GIT_TIMEOUT)
        with tempfile.TemporaryDirectory(prefix="blitz-prompt-") as tmp:
            shown = _shown(self.config.command, worktree, hidden_places(self.sandbox))
            jail = dataclasses.replace(jail, binds=(Path(tmp),), shown=shown)
            prompt_file = Path(tmp) / "prompt.md"
            prompt_file.write_text(text, encoding="utf-8")
            values = {"prompt": text, "prompt_file": str(prompt_file), "worktree": str(worktree)}
            args = [_PLACEHOLDER.sub(lambda m: values[m[1]], arg) for arg in self.config.command]
            takes_prompt = any(
                "{prompt}" in arg or "{prompt_file}" in arg for arg in self.config.command
            )
            direct = {k: v for k, v in self._env.items() if k in self.config.pass_env}
            access = model_access(self.proxy, self.sandbox, providers, request, direct=direct)
            try:
                async with access as models:
                    done = await jail.stream(
                        args,
                        timeout=request.timeout,
                        env=self.environment(models.env, confined=jail.confined),
                        on_line=on_line,
                        stdin=None if takes_prompt else text.encode("utf-8"),
                    )
            except OSError as exc:
                return self._not_started(exc)
            except SandboxUnavailable as exc:
                return AgentResult.configuration(str(exc))
        result = models.settle(self._result(done, request.timeout, tuple(messages)))
        undone = await git.undo_commits(worktree, head, timeout=GIT_TIMEOUT) if head else ""
        if undone:
            await on_line(f"the agent made {undone}; undone, its changes are kept to be checked")
            result = dataclasses.replace(result, messages=tuple(messages))
        return result

    def environment(
        self, models: Mapping[str, str] | None = None, *, confined: bool = False
    ) -> dict[str, str]:
        """The command's environment: blitz's without secrets (in a jail, only the jail's
        allowlist), plus ``pass_env``, plus ``env``, plus ``models`` (the proxy's URLs and
        tokens, which stand in for the keys). In a jail no secret is passed: a key reaches the
        agent only as a proxy token."""
        source = {**process.clean_env(keep_secrets=True), **self._env}
        env = {} if confined else {
            name: value
            for name, value in source.items()
            if not _secret(name) and name not in git.SCRUBBED_ENV
        }  # fmt: skip
        for name in self.config.pass_env:
            if name in source and not (confined and _secret(name)):
                env[name] = source[name]
        env.update(self.config.env)
        env.update(models or {})
        return env

    def _result(
        self, done: process.Completed, timeout: float, messages: tuple[str, ...]
    ) -> AgentResult:
        tail = done.tail(TAIL_CHARS).strip()
        shown = f":\n{tail}" if tail else " (it printed nothing)"
        if done.timed_out:
            return AgentResult(
                ok=False,
                error=f"the {self.name} agent did not finish within {timeout:g}s"
                f" and was stopped{shown}",
                messages=messages,
            )
        code = done.exit_code
        if code == 0:
            summary = messages[-1] if messages else f"{self.name} finished"
            return AgentResult(ok=True, summary=summary[:500], messages=messages)
        if code is not None and code < 0:
            return AgentResult(
                ok=False,
                crashed=True,
                error=f"the {self.name} agent was killed by signal {-code}{shown}",
                messages=messages,
            )
        return AgentResult(
            ok=False,
            error=f"the {self.name} agent exited with code {code}{shown}",
            messages=messages,
        )

    def _not_started(self, exc: OSError) -> AgentResult:
        program = self.config.command[0]
        if exc.errno == errno.E2BIG:
            message = (
                f"the task's prompt is too long for a command-line argument of {program!r}: use "
                f'"{{prompt_file}}" instead of "{{prompt}}" under [backends.{self.name}] in '
                "blitz.toml, or no placeholder to send the prompt on stdin"
            )
            return AgentResult(ok=False, error=message, config_error=message)
        if exc.errno not in _NOT_RUNNABLE:
            return AgentResult(
                ok=False, crashed=True, error=f"cannot start the {self.name} agent: {exc}"
            )
        reason = exc.strerror or str(exc)
        message = (
            f"the {self.name} backend cannot run {program!r} ({reason}). Install it, or fix "
            f"`command` under [backends.{self.name}] in blitz.toml"
        )
        return AgentResult(ok=False, error=message, config_error=message)


def _secret(name: str) -> bool:
    return process.secret_name(name)


def _shown(command: Sequence[str], worktree: Path, hidden: Sequence[Path]) -> tuple[Path, ...]:
    """What the jail shows read-only for the command: the program's installation (it may be
    under a home) and the files and directories its arguments name by absolute path (a script of
    the user's), except any that would uncover one of blitz's hidden places."""
    program = command[0]
    found = shutil.which(program) if "/" not in program else str(worktree / program)
    shown = [installation(Path(found))] if found else []
    for arg in command[1:]:
        path = Path(arg)
        if path.is_absolute() and path.exists():
            shown.append(path)
    return tuple(p for p in shown if not any(h == p or h.is_relative_to(p) for h in hidden))


def _unrunnable(program: str, worktree: Path) -> OSError | None:
    """Why ``program`` cannot be started (a jail reports that only as an exit code), or None."""
    if "/" in program:
        path = worktree / program  # an absolute path stays as it is
        if not path.is_file():
            return FileNotFoundError(errno.ENOENT, "No such file or directory")
        if not os.access(path, os.X_OK):
            return PermissionError(errno.EACCES, "Permission denied")
        return None
    if shutil.which(program) is None:
        return FileNotFoundError(errno.ENOENT, "not found on PATH")
    return None


RULES = (
    "Work only in the current directory (a git worktree of the project). Do not commit: "
    "your changes are checked and committed for you. No person is watching; do not ask "
    "questions."
)


def prompt(request: AgentRequest) -> str:
    """The task as the agent is given it."""
    return task_prompt(request, after=RULES)
