"""The per-project environment set-up: the command (``[workspace] setup``, e.g. ``uv sync`` or
``npm ci``) that installs a worktree's dependencies before its first attempt, and again only when
the files it depends on (``setup_inputs``, by default the lockfiles) change.

Whether a worktree's set-up is current is told by a marker file kept outside the worktree (the
agent cannot forge it): it holds the digest of the set-up's command and inputs, as the worktree
has them after the set-up ran. The marker is removed before a set-up runs and written only when
it succeeds: a half-done install is never taken for a current one. Whoever makes a worktree anew
(the pool) removes its marker.

The set-up runs in the project's jail with the host network (package managers fetch from their
registries) and the project's own cache directory (:func:`cache_dir`, under blitz's data
directory, never the user's) bound writable, with the package managers' caches pointed into it
(:func:`cache_env`). Nothing secret is in its environment, as for gates. Gates get the same cache
and the same package-manager variables, so a Go or Rust build finds the modules the set-up
fetched, but not the network.

Gates and set-ups run with the worktree's own environment (:func:`worktree_env`): its ``.venv``
and ``node_modules/.bin`` first on ``PATH``, and no other virtual environment (blitz's own
included), so a package installed in editable mode from the user's checkout is never what a
worktree's tests import.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from blitz.domain import GateResult
from blitz.errors import ConfigError, RunError
from blitz.process import Completed
from blitz.sandbox import Jail, Policy, SandboxUnavailable

DEFAULT_INPUTS = (
    "uv.lock", "poetry.lock", "pdm.lock", "requirements*.txt", "Pipfile.lock",
    "package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "yarn.lock", "bun.lockb",
    "bun.lock", "Cargo.lock", "go.sum", "Gemfile.lock", "composer.lock",
)  # fmt: skip
"""The files a set-up depends on unless ``setup_inputs`` says otherwise: the lockfiles."""

NAME = "setup"
"""The name of the set-up's :class:`GateResult`."""

TAIL_CHARS = 4000
"""Characters of the set-up's output kept in its result (as for a gate)."""

_GLOB = frozenset("*?[")

UNATTENDED = {
    "npm_config_update_notifier": "false",
    "npm_config_fund": "false",
    "npm_config_audit": "false",
    "npm_config_progress": "false",
    "NO_UPDATE_NOTIFIER": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_INPUT": "1",
}
"""Package-manager settings for a set-up no one watches: no prompt, no update check, no audit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupSpec:
    """A project's set-up (``[workspace]`` in blitz.toml)."""

    command: str = ""  # "" = no set-up
    inputs: tuple[str, ...] = DEFAULT_INPUTS  # paths or globs relative to the worktree's root
    keep: tuple[str, ...] = ()  # ignored directories kept between attempts (node_modules, .venv)
    timeout: float = 1800.0


def cache_dir(home: Path, project_id: str) -> Path:
    """The project's package-manager cache, under blitz's data directory ``home``."""
    return home / "cache" / project_id


def cache_env(cache: Path) -> dict[str, str]:
    """Variables that point the common package managers' caches (and Go's and Cargo's homes)
    into ``cache``, so they are kept between set-ups and never touch the user's own."""
    places = {
        "XDG_CACHE_HOME": "xdg",
        "npm_config_cache": "npm",
        "npm_config_store_dir": "pnpm-store",
        "YARN_CACHE_FOLDER": "yarn",
        "BUN_INSTALL_CACHE_DIR": "bun",
        "UV_CACHE_DIR": "uv",
        "UV_PYTHON_INSTALL_DIR": "uv-python",
        "PIP_CACHE_DIR": "pip",
        "POETRY_CACHE_DIR": "poetry",
        "CARGO_HOME": "cargo",
        "GOPATH": "go",
        "GOMODCACHE": "go/pkg/mod",
        "GOCACHE": "go/build",
    }
    env = {name: str(cache / sub) for name, sub in places.items()}
    # The cache may be on another file system than the worktree: uv would warn that it cannot
    # hard-link. Poetry and pipenv would make their environments in their caches: the
    # worktree's .venv is what gates use and what ``keep`` keeps.
    env.update(
        UV_LINK_MODE="copy", POETRY_VIRTUALENVS_IN_PROJECT="true", PIPENV_VENV_IN_PROJECT="1"
    )
    return env


def worktree_env(worktree: Path, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a command in ``worktree``: the worktree's ``.venv/bin`` and
    ``node_modules/.bin`` first on ``PATH`` (when they exist), ``VIRTUAL_ENV`` naming the
    worktree's ``.venv`` (or unset), ``PYTHONPATH`` and ``PYTHONHOME`` unset, and every other
    virtual environment's ``bin`` (blitz's own included) and ``node_modules/.bin`` off ``PATH``."""
    out = dict(env)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__"):
        out.pop(name, None)
    foreign = {_bin_of(env.get("VIRTUAL_ENV", ""))}
    if sys.prefix != sys.base_prefix:
        foreign.add(_bin_of(sys.prefix))
    own: list[str] = []
    venv = worktree / ".venv"
    if (venv / "bin").is_dir():
        own.append(str(venv / "bin"))
        out["VIRTUAL_ENV"] = str(venv)
    if (worktree / "node_modules" / ".bin").is_dir():
        own.append(str(worktree / "node_modules" / ".bin"))
    entries = env.get("PATH", os.defpath).split(os.pathsep)
    kept = [p for p in entries if p and p not in own and p not in foreign and not _foreign(p)]
    out["PATH"] = os.pathsep.join([*own, *kept])
    return out


def _bin_of(prefix: str) -> str:
    return str(Path(prefix) / "bin") if prefix else ""


def _foreign(entry: str) -> bool:
    """Whether a PATH entry is a virtual environment's or a Node project's own programs."""
    path = Path(entry)
    if path.name == "bin" and (path.parent / "pyvenv.cfg").is_file():
        return True
    return path.name == ".bin" and path.parent.name == "node_modules"


def inputs_digest(worktree: Path, spec: SetupSpec) -> str:
    """A sha256 over the set-up's command, the directories it keeps, and each input's path and
    content as found in ``worktree`` (a missing input counts as missing; a symbolic link counts
    as where it points, never followed)."""
    digest = hashlib.sha256()

    def field(kind: str, data: bytes) -> None:
        digest.update(kind.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)

    field("command", spec.command.encode())
    field("keep", "\0".join(spec.keep).encode())
    for pattern in spec.inputs:
        found = _matches(worktree, pattern)
        if not found:
            field("missing", pattern.encode())
        for path in found:
            field("path", path.relative_to(worktree).as_posix().encode())
            if path.is_symlink():
                field("symlink", os.readlink(path).encode(errors="surrogateescape"))
            elif path.is_file():
                field("content", path.read_bytes())
            else:
                field("other", b"")
    return digest.hexdigest()


def _matches(worktree: Path, pattern: str) -> list[Path]:
    if not pattern or Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        return []  # blitz.toml refuses these; an input is always inside the worktree
    if _GLOB.isdisjoint(pattern):
        path = worktree / pattern
        return [path] if path.is_symlink() or path.exists() else []
    return sorted(worktree.glob(pattern))


async def ensure_setup(
    worktree: Path, spec: SetupSpec, *, marker: Path, jail: Jail, cache: Path | None = None
) -> GateResult | None:
    """Run the set-up in ``worktree`` unless ``marker`` (a file outside the worktree) says it is
    current; its result when it ran, None when it was current or there is none.

    It runs in ``jail`` (the worktree's) with the host network and, when ``cache`` is given,
    that directory bound writable and the package managers' caches in it. A failing set-up is a
    result that did not pass, with its output's tail; a jail that cannot start is a
    ConfigError, a worktree that is gone a RunError."""
    if not spec.command.strip():
        return None
    if _recorded(marker) == _stamp(worktree, spec):
        return None
    marker.unlink(missing_ok=True)
    env = {"PATH": os.environ.get("PATH", os.defpath), "CI": "true", **UNATTENDED}
    binds = jail.binds
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        env.update(cache_env(cache))
        binds = (*binds, cache) if cache not in binds else binds
    jail = dataclasses.replace(jail, network="host", binds=binds)
    try:
        done = await jail.run(spec.command, timeout=spec.timeout, env=worktree_env(worktree, env))
    except SandboxUnavailable as exc:
        raise ConfigError(str(exc)) from exc
    except OSError as exc:
        raise RunError(f"cannot run the set-up {spec.command!r} in {worktree}: {exc}") from exc
    passed = done.ok and not done.timed_out
    if passed:
        # What the set-up was for, as it left the worktree (``npm install`` may rewrite the lock).
        _record(marker, _stamp(worktree, spec))
    return GateResult(
        name=NAME,
        command=spec.command,
        passed=passed,
        exit_code=done.exit_code,
        duration=done.duration,
        output_tail=tail(done),
        timed_out=done.timed_out,
    )


def tail(done: Completed) -> str:
    """The end of a set-up's output, as a gate keeps it."""
    text = done.tail(TAIL_CHARS)
    if done.timed_out:
        text += f"\n[timed out after {done.duration:.0f}s; the set-up was stopped]"
    return text


def _stamp(worktree: Path, spec: SetupSpec) -> dict[str, str]:
    return {"digest": inputs_digest(worktree, spec)}


def _recorded(marker: Path) -> dict[str, str] | None:
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _record(marker: Path, stamp: dict[str, str]) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    partial = marker.with_name(marker.name + ".partial")
    partial.write_text(json.dumps(stamp), encoding="utf-8")
    os.replace(partial, marker)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvSetup:
    """One project's set-up, ready to run in any of its worktrees: what the attempt and the
    baseline call right after taking a worktree (``App.env_setup`` makes it)."""

    spec: SetupSpec
    policy: Policy
    cache: Path | None = None  # the project's package cache (cache_dir); None: the jail's HOME

    async def ensure(self, worktree: Path, *, marker: Path) -> GateResult | None:
        """:func:`ensure_setup` in ``worktree``'s jail under the project's policy."""
        return await ensure_setup(
            worktree, self.spec, marker=marker, jail=self.policy.jail(worktree), cache=self.cache
        )

    def digest(self, worktree: Path) -> str:
        """:func:`inputs_digest` of ``worktree``: what gate results depend on besides the tree."""
        return inputs_digest(worktree, self.spec)
