"""Installing, finding and checking the agent CLIs blitz runs (today: the Codex CLI, from npm).

Each CLI is pinned: blitz installs the version it was checked against into its tools directory
(``<home>/tools`` by default), one directory per version, with the ordinary ``npm install
--prefix``. The npm package ships the platform's native binary in a registry package, so nothing
is downloaded from elsewhere. An install is staged in a temporary directory and moved into place
only when complete, so an interrupted one is never taken for an installed CLI.

Before a CLI is run it is checked, once per executable and process: its version (a codex older
than :data:`CODEX_MIN_VERSION` is refused) and whether its sandbox can start on this machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from blitz import process
from blitz.errors import RunError, UserError

if TYPE_CHECKING:
    from blitz.backends.options import CodexConfig

CODEX_PACKAGE = "@openai/codex"
CODEX_VERSION = "0.169.0"
"""The version ``blitz backends install codex`` installs: the one the backend was checked
against (its flags, its config keys, its JSON events)."""

CODEX_MIN_VERSION = (0, 169, 0)
"""The oldest codex the backend accepts (a codex on PATH or configured as ``[codex] binary``)."""

NPM_TIMEOUT = 900.0
"""Seconds one ``npm install`` may take (the package's native binary is a few hundred MB)."""

INSTALL_HINT = "blitz backends install codex"

VERSION_TIMEOUT = 30.0
"""Seconds ``codex --version`` (or the sandbox check) may take."""

NOISE = ("WARNING: proceeding, even though we could not create PATH aliases",)
"""Lines codex prints on stderr that say nothing about a failure."""


class InstallError(RunError):
    """npm failed to install a CLI; the message carries the end of its output."""


def codex_dir(tools_dir: Path, version: str = CODEX_VERSION) -> Path:
    """Where ``version`` of the Codex CLI is installed under ``tools_dir``."""
    return tools_dir / "codex" / version


def _installed_binary(prefix: Path) -> Path:
    return prefix / "node_modules" / ".bin" / "codex"


def installed_codex(tools_dir: Path, version: str = CODEX_VERSION) -> Path | None:
    """The codex executable of ``version`` installed under ``tools_dir``, if it is there."""
    binary = _installed_binary(codex_dir(tools_dir, version))
    return binary if _is_executable(binary) else None


def find_codex(
    cfg: CodexConfig | None,
    tools_dir: Path | None,
    *,
    path: str | None = None,
) -> Path | None:
    """The codex CLI to run: ``[codex] binary`` when set (a path, or a name looked up on PATH),
    else the pinned version installed under ``tools_dir``, else ``codex`` on PATH (``path``, or
    the process's PATH when None). None when there is none."""
    if cfg is not None and cfg.binary:
        return _executable(cfg.binary, path)
    if tools_dir is not None and (installed := installed_codex(tools_dir)) is not None:
        return installed
    return _executable("codex", path)


def _executable(name: str, path: str | None) -> Path | None:
    if os.sep in name:
        candidate = Path(name).expanduser()
        return candidate if _is_executable(candidate) else None
    found = shutil.which(name, path=path)
    return Path(found) if found else None


def _is_executable(candidate: Path) -> bool:
    return candidate.is_file() and os.access(candidate, os.X_OK)


async def install_codex(
    tools_dir: Path,
    *,
    version: str = CODEX_VERSION,
    npm: str | None = None,
    timeout: float = NPM_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Install ``@openai/codex@version`` under ``tools_dir`` (a no-op when it is there) and
    return its ``codex`` executable.

    ``npm`` is the npm to run (default: the one on PATH); ``env`` its environment (default:
    this process's, so the user's npm registry settings apply). npm runs in its own process group
    and is killed with it after ``timeout`` seconds. Raises :class:`UserError` when npm is
    missing and :class:`InstallError` when it fails.
    """
    existing = installed_codex(tools_dir, version)
    if existing is not None:
        return existing
    target = codex_dir(tools_dir, version)
    binary = _installed_binary(target)
    npm_path = npm or shutil.which("npm", path=(env or {}).get("PATH"))
    if not npm_path:
        raise UserError(
            "npm was not found: the Codex CLI is installed from npm. Install Node.js (it brings "
            f"npm), then run `{INSTALL_HINT}` again."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
    try:
        done = await process.run(
            [
                npm_path,
                "install",
                "--prefix",
                str(staging),
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--loglevel=error",
                f"{CODEX_PACKAGE}@{version}",
            ],
            cwd=staging,
            timeout=timeout,
            env=env,
        )
        if done.timed_out:
            raise InstallError(
                f"npm install {CODEX_PACKAGE}@{version} did not finish within {timeout:g}s and was "
                f"stopped:\n{done.tail(2000)}",
                retryable=True,
            )
        if not done.ok:
            raise InstallError(
                f"npm install {CODEX_PACKAGE}@{version} failed (exit {done.exit_code}):\n"
                f"{done.tail(2000)}",
                retryable=True,
            )
        if not _is_executable(_installed_binary(staging)):
            raise InstallError(
                f"npm installed {CODEX_PACKAGE}@{version} but it has no codex executable "
                f"(is this platform supported?):\n{done.tail(2000)}"
            )
        try:
            staging.rename(target)
        except OSError:
            # Another install finished first; keep its copy.
            if not _is_executable(binary):
                raise
    except FileNotFoundError as exc:
        raise UserError(f"npm could not be run ({npm_path}): {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            if staging.exists():
                shutil.rmtree(staging)
    return binary


_versions: dict[tuple[str, int, int], str] = {}
"""Version check outcomes ("" = fine) by binary path, modification time and size."""


async def check_version(binary: Path) -> str:
    """What makes ``binary`` a codex blitz cannot use ("" when nothing does). Each binary is
    asked (``codex --version``) once per process."""
    try:
        stat = binary.stat()
    except OSError as exc:
        return f"the codex CLI at {binary} cannot be read: {exc}"
    key = (str(binary), stat.st_mtime_ns, stat.st_size)
    if key in _versions:
        return _versions[key]
    try:
        done = await process.run(
            [str(binary), "--version"],
            cwd=binary.parent,
            timeout=VERSION_TIMEOUT,
            env=process.clean_env({"NO_COLOR": "1"}),
        )
    except OSError as exc:
        return f"the codex CLI at {binary} cannot be run: {exc}"
    if done.timed_out:
        return f"`{binary} --version` did not answer within {VERSION_TIMEOUT:g}s"
    version = parse_version(done.output) if done.ok else None
    minimum = format_version(CODEX_MIN_VERSION)
    if version is None:
        problem = (
            f"`{binary} --version` did not print a version (exit {done.exit_code}: "
            f"{_said(done.output)!r}); blitz needs codex {minimum} or newer: "
            f"run `{INSTALL_HINT}`"
        )
    elif version < CODEX_MIN_VERSION:
        problem = (
            f"the codex CLI at {binary} is version {format_version(version)}; blitz needs "
            f"{minimum} or newer: run `{INSTALL_HINT}` (installs {CODEX_VERSION})"
        )
    else:
        problem = ""
    _versions[key] = problem
    return problem


_sandboxes: dict[tuple[str, int, int], str] = {}
"""Sandbox check outcomes ("" = it works) by binary path, modification time and size."""


async def check_sandbox(binary: Path, *, cwd: Path, env: Mapping[str, str]) -> str:
    """Why codex's sandbox cannot start here, and how to fix it ("" when it can). Checked once
    per binary and process, by running ``true`` in it (``codex sandbox -- true``)."""
    stat = binary.stat()
    key = (str(binary), stat.st_mtime_ns, stat.st_size)
    if key in _sandboxes:
        return _sandboxes[key]
    done = await process.run(
        [str(binary), "sandbox", "--", "true"], cwd=cwd, timeout=VERSION_TIMEOUT, env=env
    )
    if done.ok:
        _sandboxes[key] = ""
        return ""
    said = _said(done.output) or f"exit {done.exit_code}"
    problem = (
        f"codex's sandbox cannot start here ({said}). On Linux it needs unprivileged user "
        "namespaces (user.max_user_namespaces > 0; on Ubuntu also "
        "kernel.apparmor_restrict_unprivileged_userns = 0). Only where blitz itself runs in a "
        'sandbox, set [codex] sandbox = "danger-full-access" instead.'
    )
    if not done.timed_out:
        _sandboxes[key] = problem
    return problem


def _said(output: str) -> str:
    """The last lines of a command's output, without codex's noise, on one line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    said = " ".join(line for line in lines[-6:] if not line.startswith(NOISE))
    return said if len(said) <= 300 else said[:297] + "..."


_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The first ``X.Y.Z`` in ``text`` (``codex-cli 0.169.0``), or None."""
    found = _VERSION.search(text)
    if found is None:
        return None
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def format_version(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)
