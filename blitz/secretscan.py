"""The secret scan: an attempt whose change adds a secret blitz knows fails, as the agent's fault.

The secrets are every value registered with :func:`blitz.redact.register_secret` (the API keys
and tokens of the settings, the dashboard's token, ...) and the values of blitz's environment
variables named like secrets (:func:`blitz.process.secret_name`), 8 characters or more.
Only added lines of the worktree's whole patch against the attempt's base count: a secret the
base already holds is not the agent's doing. The patch is read in one regular-expression pass,
however large. A secret found is registered for redaction, so it is hidden wherever the attempt's
records go; the error names the files and shows the lines redacted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from blitz import git, process, redact

GIT_TIMEOUT = 120.0
"""Seconds for the git commands that produce the patch."""

MAX_LEAKS_SHOWN = 10
LINE_SHOWN = 160
"""Characters of a leaking line shown in the error."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Leak:
    """A secret on an added line of ``path``; ``line`` is that line, redacted."""

    path: str
    line: str


def known_secrets() -> list[str]:
    """Every secret blitz knows, longest first."""
    # redact.py keeps the registered values; it offers no reader yet (asked of its owner).
    values = set(redact.registered())
    for name, value in process.clean_env(keep_secrets=True).items():
        if process.secret_name(name):
            values.add(value)
    return sorted((v for v in values if len(v) >= redact.MIN_SECRET_LENGTH), key=len, reverse=True)


def scan(patch: str, secrets: Iterable[str]) -> list[Leak]:
    """The secrets on added lines of a unified ``patch`` (as ``git diff`` prints it), one leak
    per file and secret."""
    values = [s for s in secrets if s]
    if not values or not patch:
        return []
    pattern = re.compile("|".join(re.escape(s) for s in sorted(values, key=len, reverse=True)))
    leaks: dict[tuple[str, str], Leak] = {}
    for match in pattern.finditer(patch):
        start = patch.rfind("\n", 0, match.start()) + 1
        # A hunk's lines start with "+", "-", " " or "\": a line starting "@@ " or "diff --git "
        # is a header, so the match is on a changed line if the last hunk header is after the
        # last file header.
        header = _header_start(patch, match.start())
        hunk = patch.rfind("\n@@ ", header, start)
        if patch[start] != "+" or hunk < 0:
            continue
        path = _path(patch, header, hunk)
        if (path, match[0]) in leaks:
            continue
        end = patch.find("\n", start)
        line = patch[start + 1 : end if end >= 0 else len(patch)]
        shown = redact.redact(pattern.sub(redact.REDACTED, line))
        leaks[(path, match[0])] = Leak(path=path, line=shown[:LINE_SHOWN])
    return list(leaks.values())


def _header_start(patch: str, pos: int) -> int:
    found = patch.rfind("\ndiff --git ", 0, pos)
    return found if found >= 0 else 0


def _path(patch: str, header: int, hunk: int) -> str:
    """The file a hunk belongs to, from its ``+++ b/<path>`` line."""
    marker = patch.find("\n+++ ", header, hunk)
    if marker < 0:
        return "?"
    end = patch.find("\n", marker + 1)
    name = patch[marker + 5 : end].strip().strip('"')
    return name.removeprefix("b/")


def error(leaks: list[Leak]) -> str:
    """The attempt's error for ``leaks`` ("" when there are none)."""
    if not leaks:
        return ""
    files = sorted({leak.path for leak in leaks})
    lines = "\n".join(f"- {leak.path}: {leak.line}" for leak in leaks[:MAX_LEAKS_SHOWN])
    more = f"\n(and {len(leaks) - MAX_LEAKS_SHOWN} more)" if len(leaks) > MAX_LEAKS_SHOWN else ""
    return (
        f"the change writes a secret blitz knows into {', '.join(files)}; an agent must never "
        f"put a key or token in the code:\n{lines}{more}"
    )


async def check(worktree: Path, base: str) -> str:
    """Scan the worktree's change against ``base``; the attempt's error, "" when it is clean."""
    secrets = known_secrets()
    if not secrets:
        return ""
    patch = await git.added_lines_patch(worktree, base, timeout=GIT_TIMEOUT)
    leaks = scan(patch, secrets)
    if leaks:  # hidden from now on wherever the attempt's records go
        for secret in secrets:
            if secret in patch:
                redact.register_secret(secret)
    return error(leaks)
