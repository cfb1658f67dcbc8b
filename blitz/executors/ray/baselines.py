"""A worker node's own baseline: the project's gates run on the goal's base commit on the node
where the attempt's gates run (its tools, its environment, not the daemon's), so a gate that
fails on this node before any task is not blamed on the task; kept in the node's data directory,
so the next attempt from the same base commit on this node judges against it without running a
gate.

The daemon sends the commit its own baseline was made on (``Job.baseline.sha``). Gate results
are kept as the daemon keeps them (:mod:`blitz.gatecache`: by tree, command, timeout and
environment), here as one JSON file per key under ``<node home>/gates/``: the node has no store,
and the files serve every attempt process on the node. Attempts' own gate results are kept there
too, so a gate never runs twice on the same tree on one node.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blitz.domain import Baseline, GateResult
from blitz.gatecache import GateKey, keepable

if TYPE_CHECKING:
    from blitz.envsetup import EnvSetup
    from blitz.pool import WorktreePool
    from blitz.validation import Validator


class FileGateCache:
    """A :class:`~blitz.gatecache.GateCache` in a directory, one file per key, written whole
    (a temporary file renamed over the old one) so a reader never sees half a result."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: GateKey) -> Path:
        return self.root / f"{key.digest}.json"

    def get(self, key: GateKey) -> GateResult | None:
        try:
            kept = json.loads(self._path(key).read_text())
            if kept["key"] != dataclasses.asdict(key):  # not a digest collision
                return None
            fields: dict[str, Any] = kept["result"]
            return GateResult(**{**fields, "new_failures": tuple(fields["new_failures"])})
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):  # a damaged file: as if nothing was kept
            return None

    def put(self, key: GateKey, result: GateResult) -> None:
        if not keepable(result):
            return
        self.root.mkdir(parents=True, exist_ok=True)
        kept = {"key": dataclasses.asdict(key), "result": dataclasses.asdict(result)}
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as file:
                json.dump(kept, file)
            os.replace(temporary, self._path(key))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


async def own_baseline(
    given: Baseline | None,
    *,
    goal_id: str,
    repo: Path,
    validator: Validator,
    pool: WorktreePool,
    setup: EnvSetup | None,
) -> Baseline | None:
    """This node's baseline of the commit the daemon's ``given`` baseline was made on: made of
    kept results when every gate has one (no worktree), else the gates run on that commit in
    the attempt's warm worktree. ``given`` stands when there is no baseline to make (none given,
    no gate) or the project's set-up fails on the base commit here (the attempt's own set-up
    will fail too, and say why)."""
    if given is None or not validator.gates.configured():
        return given
    sha = given.sha
    if setup is None:
        kept = await validator.kept_baseline(repo, goal_id=goal_id, sha=sha)
        if kept is not None:
            return kept
    async with pool.worktree(sha, purpose=f"baseline of goal {goal_id} on this node") as pooled:
        digest = ""
        if setup is not None:
            result = await setup.ensure(pooled.path, marker=pooled.marker)
            if result is not None and not result.passed:
                return given
            digest = setup.digest(pooled.path)
        return await validator.baseline(pooled.path, goal_id=goal_id, sha=sha, env_digest=digest)
