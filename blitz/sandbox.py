"""The sandbox: every agent process and every gate runs inside bubblewrap, one jail per command
(or per agent CLI run), where the attempt's worktree is the only writable place.

Inside a jail:

* the system is visible read-only; ``/tmp`` is a private tmpfs and ``HOME`` an empty directory
  in it; the user's home, every other home, ``/run`` (the machine's sockets), blitz's data
  directory (its store, its worktrees, its locks) and the paths the policy hides are not visible;
* writable are only the worktree, ``/tmp`` and ``HOME``. The repository's ``.git`` is
  read-only, the worktree's own entry in it (``.git/worktrees/<name>``) and its ``.git`` file
  included: history is readable, no ref, object or git file can be written. The agent's git
  works on a private copy of the index (``GIT_INDEX_FILE``, copied as the jail starts) and a
  private object directory, so ``git add``, ``git diff`` and ``git status`` work. blitz's own
  git, which runs outside the jail, finds exactly what it left;
* a PID namespace of its own (blitz's ``/proc`` is invisible), ``--die-with-parent``, a new
  session, no new privileges, no capabilities (root included) and no user namespace inside.
  When the command ends, times out or is cancelled, bubblewrap's init dies and the kernel kills
  every process left in the namespace, ``setsid`` or not;
* an allowlisted environment (:data:`PASSED_ENV` plus what the caller names): no secret of
  blitz's reaches it;
* network: none (its own empty network namespace), or the host's when the project allows it
  (gates that download), or only blitz's model proxy: the proxy's unix socket is mounted in and a
  small relay inside the namespace listens on ``127.0.0.1:PROXY_PORT``, so an agent CLI reaches
  the proxy and nothing else, not even another loopback port of the host.

With ``[sandbox] mode = "off"`` commands run unconfined (:class:`Unconfined`), with a warning.
:func:`probe` says whether bubblewrap works here and why not.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from blitz import process, sandbox_relay, tempdirs

MODES = ("required", "off")
PROXY_PORT = 7890
"""The port, inside a jail's own network namespace, where the relay to blitz's proxy listens."""

PROXY_ORIGIN = f"http://127.0.0.1:{PROXY_PORT}"
"""Where an agent CLI inside a jail reaches blitz's model proxy."""

_SOCKET_DIR = "/tmp/.blitz-proxy"
PASSED_ENV = (
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TERM", "TZ", "NO_COLOR",
    "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONIOENCODING",
)  # fmt: skip
"""Variables of blitz's environment a jailed command gets (others only when a caller names them)."""

HOME = "/tmp/home"
_ISOLATION = ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
"""Every namespace of its own, no capabilities, no user namespace inside (bubblewrap 0.8+)."""
_RESOLVERS = ("/run/systemd/resolve", "/run/resolvconf", "/run/NetworkManager")
PRIVATE_INDEX = "/tmp/.git-index"
_COPY_INDEX = f'cp "$1" {PRIVATE_INDEX} 2>/dev/null; shift; exec "$@"'
"""Run first in a jail of a worktree: the agent's git gets a private copy of the index."""
INSTALL_HINT = (
    "install bubblewrap 0.8 or later (Debian/Ubuntu: apt-get install bubblewrap; Fedora: "
    "dnf install bubblewrap) and make sure unprivileged user namespaces are enabled "
    '(sysctl kernel.unprivileged_userns_clone=1), or set [sandbox] mode = "off" in blitz.toml '
    "to run agents unconfined"
)

Network = Literal["none", "host", "proxy"]


class SandboxUnavailable(Exception):
    """The sandbox is required but cannot start here; the message says why and how to fix it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """How one project's agents and gates are confined (``[sandbox]`` and where blitz keeps its
    own files)."""

    mode: str = "required"
    network: bool = False  # host network for gates and the embedded agent's commands
    hidden: tuple[Path, ...] = ()  # blitz's data directory, worktrees root, store: not visible
    readable: tuple[Path, ...] = ()  # shown read-only even inside a hidden place (tool dirs)
    proxy_socket: Path | None = None  # blitz's model proxy, for agent CLIs

    @property
    def confined(self) -> bool:
        return self.mode != "off"

    def jail(self, worktree: Path, *, network: Network | None = None) -> Jail:
        """The jail for commands in ``worktree``; ``network`` defaults to the project's setting
        for commands (none, or host when ``[sandbox] network = true``)."""
        chosen: Network = network or ("host" if self.network else "none")
        if not self.confined:
            return Unconfined(worktree=worktree, policy=self, network=chosen)
        return Bubblewrap(worktree=worktree, policy=self, network=chosen)


UNCONFINED = Policy(mode="off")


@dataclass(frozen=True, slots=True)
class Probe:
    ok: bool
    reason: str  # why not, when not ok; what works, when ok
    bwrap: str = ""


@functools.cache
def probe() -> Probe:
    """Whether bubblewrap can start a jail here (checked once per process)."""
    found = shutil.which("bwrap")
    if sys.platform != "linux":
        return Probe(False, f"the sandbox needs Linux (this is {sys.platform}); {INSTALL_HINT}")
    if found is None:
        return Probe(False, f"bubblewrap (bwrap) is not installed; {INSTALL_HINT}")
    try:
        done = subprocess.run(
            [found, "--ro-bind", "/", "/", *_ISOLATION, "--die-with-parent", "--", "true"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Probe(False, f"bubblewrap cannot run ({exc}); {INSTALL_HINT}", found)
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()[:300] or f"exit {done.returncode}"
        return Probe(
            False, f"bubblewrap cannot create a sandbox here ({said}); {INSTALL_HINT}", found
        )
    return Probe(True, f"bubblewrap works ({found})", found)


def require() -> str:
    """The path of ``bwrap``; SandboxUnavailable when the sandbox cannot start here."""
    found = probe()
    if not found.ok:
        raise SandboxUnavailable(f"the sandbox is required but cannot start: {found.reason}")
    return found.bwrap


@dataclass(frozen=True, slots=True)
class GitEntry:
    """The git files of a worktree: its ``.git`` file, its entry in the repository's
    ``.git/worktrees`` and the repository's git directory."""

    dot_git: Path
    entry: Path
    common: Path


def installation(program: Path) -> Path:
    """The directory a program is installed in, to show it read-only in a jail: the directory
    holding its ``node_modules`` for an npm package, else the directory of the real file."""
    for parent in program.parents:
        if parent.name == "node_modules":
            return parent.parent
    return Path(os.path.realpath(program)).parent


def as_shown(program: Path) -> Path:
    """The program's path in a jail that shows its :func:`installation`: under the installation's
    real path (a path through a symlink, say a tools directory linked from ``/tmp``, which the jail
    replaces, is not there)."""
    place = installation(program)
    if place in program.parents:
        return Path(os.path.realpath(place)) / program.relative_to(place)
    return Path(os.path.realpath(program))


def git_entry(worktree: Path) -> GitEntry | None:
    """The git entry of a linked worktree (None for a main checkout or no repository)."""
    dot_git = worktree / ".git"
    try:
        text = dot_git.read_text(encoding="utf-8")
    except (IsADirectoryError, FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    entry = (worktree / text.removeprefix("gitdir:").strip()).resolve()
    try:
        common_text = (entry / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return GitEntry(dot_git, entry, (entry / common_text).resolve())


@dataclass(frozen=True, slots=True, kw_only=True)
class Jail:
    """Runs commands for one worktree under a policy; subclasses say how."""

    worktree: Path
    policy: Policy
    network: Network = "none"
    binds: tuple[Path, ...] = ()  # more writable places (a prompt file's directory, a CLI's config)
    shown: tuple[Path, ...] = ()  # more read-only places (the agent CLI's own installation)

    @property
    def confined(self) -> bool:
        return False

    def environment(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """What a command sees: the allowlist from blitz's environment, then ``env`` (what the
        caller chose to pass), then the jail's own (HOME, TMPDIR, git's object directory)."""
        raise NotImplementedError

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as it is started (inside bubblewrap, for a confined jail)."""
        raise NotImplementedError

    async def run(
        self,
        args: Sequence[str] | str,
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        cap: int = process.DEFAULT_CAP,
        stdin: bytes | None = None,
        on_output: Callable[[bytes], None] | None = None,
    ) -> process.Completed:
        """:func:`blitz.process.run` in the jail, in the worktree."""
        argv = self.command(process.argv_of(args))
        return await process.run(
            argv,
            cwd=self.worktree,
            timeout=timeout,
            env=self.environment(env),
            cap=cap,
            stdin=stdin,
            on_output=on_output,
        )

    async def stream(
        self,
        args: Sequence[str] | str,
        *,
        timeout: float,
        on_line: Callable[[str], Awaitable[None]],
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        marker: str = "",
    ) -> process.Completed:
        """:func:`blitz.process.stream` in the jail, in the worktree."""
        argv = self.command(process.argv_of(args))
        return await process.stream(
            argv,
            cwd=self.worktree,
            timeout=timeout,
            on_line=on_line,
            env=self.environment(env),
            stdin=stdin,
            marker=marker,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Unconfined(Jail):
    """``[sandbox] mode = "off"``: commands run as they are, without secrets in their env."""

    def environment(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        base = dict(env) if env is not None else process.clean_env()
        return base

    def command(self, argv: Sequence[str]) -> list[str]:
        return list(argv)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bubblewrap(Jail):
    """A bubblewrap jail (see the module's docstring for what it allows)."""

    @property
    def confined(self) -> bool:
        return True

    def environment(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        chosen = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        chosen.update(env or {})
        chosen.update(HOME=HOME, TMPDIR="/tmp", USER="agent", LOGNAME="agent")
        found = git_entry(self.worktree)
        if found is not None:
            # git add and git stash write to a private index (a copy of the worktree's, made as
            # the jail starts) and a private object directory: the repository, the worktree's
            # git entry included, is read-only and must stay whole.
            chosen["GIT_INDEX_FILE"] = PRIVATE_INDEX
            chosen["GIT_OBJECT_DIRECTORY"] = "/tmp/.git-objects"
            chosen["GIT_ALTERNATE_OBJECT_DIRECTORIES"] = str(found.common / "objects")
        return chosen

    def command(self, argv: Sequence[str]) -> list[str]:
        bwrap = require()
        worktree = str(self.worktree)
        args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for path in hidden_places(self.policy):
            args += ["--tmpfs", str(path)]
        args += ["--tmpfs", "/tmp", "--dir", HOME, "--dir", "/tmp/.git-objects"]
        for shown in _readable(self.policy, self.shown):
            args += ["--ro-bind", shown, shown]
        found = git_entry(self.worktree)
        if found is not None:
            args += ["--ro-bind", str(found.common), str(found.common)]
            config = found.common / "config"
            if config.is_file():  # credentials in remote URLs or http headers stay outside
                args += ["--ro-bind", str(git_config_copy(config)), str(config)]
        args += ["--bind", worktree, worktree]
        for place in self.binds:
            args += ["--bind", str(place), str(place)]
        if found is not None:
            # Read-only, as the worktree's .git file: blitz's own git, outside the jail, reads
            # them, and must find nothing the agent planted (a symlink, a rebase in progress).
            args += ["--ro-bind", str(found.dot_git), str(found.dot_git)]
            args += ["--ro-bind", str(found.entry), str(found.entry)]
            argv = ["/bin/sh", "-c", _COPY_INDEX, "sh", str(found.entry / "index"), *argv]
        # No capabilities even for root (no remounting the read-only system), no user namespace
        # inside (no way to gain them back).
        args += _ISOLATION
        args += ["--die-with-parent", "--new-session"]
        if self.network == "host":
            args.append("--share-net")
            for resolver in _RESOLVERS:  # name resolution, hidden with the rest of /run
                if os.path.exists(resolver):
                    args += ["--ro-bind", resolver, resolver]
        args += ["--chdir", worktree]
        if self.network == "proxy":
            socket = self.policy.proxy_socket
            if socket is None:
                raise SandboxUnavailable("the model proxy is not running: no network for the agent")
            args += ["--ro-bind", str(socket.parent), _SOCKET_DIR, "--"]
            inside = f"{_SOCKET_DIR}/{socket.name}"
            return [*args, *sandbox_relay.command(inside, PROXY_PORT), "--", *argv]
        return [*args, "--", *argv]


_KEPT_SECTIONS = ("core", "extensions")
_DROPPED_CORE = ("sshcommand", "fsmonitor", "hookspath", "askpass", "editor", "pager", "gitproxy")
_copies: dict[tuple[str, int, int], Path] = {}


def git_config_copy(config: Path) -> Path:
    """A copy of a repository's git config that a jail sees instead of it: only ``[core]`` (less
    the settings that name commands) and ``[extensions]``, what git needs to read the repository;
    no remote URL, credential, ``http`` header or include. Made once per version of the file."""
    info = config.stat()
    key = (str(config), info.st_mtime_ns, info.st_size)
    if key not in _copies:
        kept, keep = [], False
        for line in config.read_text(encoding="utf-8", errors="replace").splitlines():
            stripped = line.strip()
            if stripped.startswith("["):
                name = stripped.strip("[]").split()[0].split(".")[0].lower() if stripped else ""
                keep = name in _KEPT_SECTIONS and stripped.count('"') == 0
            elif keep and stripped.split("=")[0].strip().lower() in _DROPPED_CORE:
                continue
            if keep:
                kept.append(line)
        text = "\n".join(kept) + "\n"
        _copies[key] = tempdirs.shared_file("blitz-gitconfig-", "config", text.encode())
    return _copies[key]


def hidden_places(policy: Policy) -> list[Path]:
    """Directories replaced by an empty tmpfs, outermost first (a later mount sits on top)."""
    home = Path.home()
    # /run holds the machine's sockets (docker, dbus, databases): no network means none of them.
    places = [Path("/home"), home, Path("/run"), Path("/mnt"), Path("/media"), *policy.hidden]
    seen: list[Path] = []
    for place in places:
        try:
            real = place.resolve()
        except OSError:
            continue
        if real == Path("/") or real == Path("/tmp") or not real.is_dir() or real in seen:
            continue
        seen.append(real)
    return sorted(seen, key=lambda p: len(p.parts))


def _readable(policy: Policy, more: Sequence[Path] = ()) -> list[str]:
    """Read-only paths shown inside hidden places: the policy's, the jail's, and the Python
    blitz runs on (the proxy relay needs it)."""
    places = [*policy.readable, *more, Path(sys.prefix), Path(sys.base_prefix)]
    shown: list[str] = []
    for place in places:
        real = os.path.realpath(place)
        if os.path.exists(real) and real not in shown:
            shown.append(real)
    return shown
