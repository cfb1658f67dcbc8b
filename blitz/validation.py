"""Validation: running a project's gates and a task's checks in a worktree, and judging the
results against the baseline (the same gates run once on the goal's base commit).

A gate that already failed on the base commit is not blamed on a task unless the task made it
worse: new failing test ids are blamed, the old ones are not. Failing ids are read from the
output of the common test runners (:mod:`blitz.failures`).

Results without a baseline (including the baseline itself) carry every failing id they found in
``new_failures``: judged against nothing, every failure is new. Judging reads the baseline's ids
from there, so they survive even when the output tail was cut.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePath

from blitz import envsetup, live_gates, look_only, process
from blitz.domain import Baseline, Check, GateResult, Gates
from blitz.errors import ConfigError, RunError
from blitz.failures import parse_failures
from blitz.gatecache import GateCache, GateFlights, GateKey, keepable
from blitz.git import Git
from blitz.process import DEFAULT_CAP, Completed
from blitz.sandbox import Policy, SandboxUnavailable

NAME_LIMIT = 60
"""Longest command shown in a check's name (``check:command:<cmd>``)."""

LISTED_FAILURES = 5
"""New failing ids named in a summary line before "and N more"."""

# -- running -----------------------------------------------------------------------------------


class Validator:
    """Runs a project's gates and a task's checks in a worktree.

    Commands get ``env`` (by default the current environment without secrets, plus ``CI=true``
    so test runners do not wait for a terminal) and keep the last ``cap`` bytes of their output;
    results keep the last ``tail_chars`` characters of that.
    """

    def __init__(
        self,
        gates: Gates,
        *,
        env: Mapping[str, str] | None = None,
        cap: int = DEFAULT_CAP,
        tail_chars: int = 4000,
        sandbox: Policy | None = None,
        cache: GateCache | None = None,
        project_id: str = "",
        flights: GateFlights | None = None,
        packages: Path | None = None,
        live: live_gates.LiveGates | None = None,
    ) -> None:
        """``sandbox``: the policy gates run under (a jail per command); None runs them as they
        are (tests of the judging, and benchmarks). ``cache``: where results are kept and
        found, for ``project_id`` (None, or ``gates.reuse`` false: every gate runs);
        ``flights``: the gates running in this process, shared by its validators, so a gate
        already running on the same input is waited for rather than run again. ``packages``:
        the project's package-manager cache (:func:`blitz.envsetup.cache_dir`), bound into each
        gate's jail. ``live``: where gates' output is followed while they run (the dashboard)."""
        self.live = live
        self.packages = packages
        self.gates = gates
        self.cache = cache if gates.reuse else None
        self.project_id = project_id
        self.flights = flights
        self.sandbox = sandbox
        explicit = env
        if env is None:
            env = process.clean_env()
            env.setdefault("CI", "true")
        self._env = dict(env)
        # In a jail: the jail's allowlist plus what the caller chose to pass (else CI=true);
        # blitz's own environment stays outside.
        self._gate_env = dict(explicit) if explicit is not None else {"CI": "true"}
        self._cap = cap
        self._tail_chars = tail_chars

    async def run_gates(
        self, worktree: Path, *, baseline: Baseline | None = None, env_digest: str = ""
    ) -> tuple[GateResult, ...]:
        """Run every configured gate, each to the end even when an earlier one failed (the
        record shows them all) unless ``fail_fast``, judging failures against ``baseline`` when
        given. A gate whose result on this tree, command and environment (``env_digest``, the
        set-up inputs' digest) is kept is not run again: its result is judged again."""
        before = {result.name: result for result in baseline.results} if baseline else {}
        return await self._gates(worktree, before, env_digest, fail_fast=self.gates.fail_fast)

    async def baseline(
        self, worktree: Path, *, goal_id: str, sha: str, env_digest: str = ""
    ) -> Baseline:
        """Run the gates on the goal's base commit (checked out in ``worktree``), unjudged and
        every one of them (a baseline has no fail-fast: each gate's failures matter)."""
        results = await self._gates(worktree, {}, env_digest, fail_fast=False)
        return Baseline(goal_id=goal_id, sha=sha, results=results)

    async def kept_baseline(
        self, repo: Path, *, goal_id: str, sha: str, env_digest: str = ""
    ) -> Baseline | None:
        """The baseline of commit ``sha`` of ``repo`` made of kept results only (no worktree is
        needed), or None when a gate has none (or nothing is kept)."""
        configured = self.gates.configured()
        if self.cache is None or not configured:
            return None
        try:
            found = await Git(repo).run("rev-parse", "--verify", "-q", f"{sha}^{{tree}}")
        except RunError:
            return None
        keys = self._keys(found.out.strip(), configured, env_digest)
        kept = await self._kept(keys)
        if len(kept) < len(keys):
            return None
        results = tuple(replace(kept[name], name=name, reused=True) for name in keys)
        return Baseline(goal_id=goal_id, sha=sha, results=results)

    async def _kept(self, keys: Mapping[str, GateKey]) -> dict[str, GateResult]:
        """The kept results of ``keys`` (looked up in a thread: the store may wait for a lock)."""
        cache = self.cache
        if cache is None or not keys:
            return {}

        def look_up() -> dict[str, GateResult]:
            found = {name: cache.get(key) for name, key in keys.items()}
            return {name: result for name, result in found.items() if result is not None}

        return await asyncio.to_thread(look_up)

    async def _gates(
        self,
        worktree: Path,
        before: Mapping[str, GateResult],
        env_digest: str,
        *,
        fail_fast: bool,
    ) -> tuple[GateResult, ...]:
        configured = self.gates.configured()
        if not configured:
            return ()
        keys = await self._worktree_keys(worktree, configured, env_digest)
        raw = await self._reusable(configured, keys)
        to_run = [name for name in configured if name not in raw]
        run = _Run(self, worktree, configured, keys, raw, before, fail_fast=fail_fast)
        if self.gates.parallel:
            await run.side_by_side(to_run)
        else:
            await run.in_order(to_run)
        return tuple(judge(raw[name], before.get(name)) for name in configured)

    async def _worktree_keys(
        self, worktree: Path, configured: Mapping[str, str], env_digest: str
    ) -> dict[str, GateKey]:
        if self.cache is None:
            return {}
        try:
            tree = await Git(worktree).worktree_tree(worktree)
        except RunError:
            return {}  # not a git worktree (or git failed): the gates run, nothing is kept
        return self._keys(tree, configured, env_digest)

    def _keys(
        self, tree: str, configured: Mapping[str, str], env_digest: str
    ) -> dict[str, GateKey]:
        return {
            name: GateKey(
                project_id=self.project_id,
                tree=tree,
                command=command,
                timeout=self.gates.timeout,
                env_digest=env_digest,
            )
            for name, command in configured.items()
        }

    async def _reusable(
        self, configured: Mapping[str, str], keys: Mapping[str, GateKey]
    ) -> dict[str, GateResult]:
        """The kept results that may stand for a run, by gate name."""
        found = {
            name: replace(kept, name=name, reused=True)
            for name, kept in (await self._kept(keys)).items()
        }
        if not self.gates.parallel:
            # Gates in order may use what an earlier one made (a build's output): a gate runs
            # again when a later one must run, so only those after the last to run are reused.
            names = list(configured)
            last = max((i for i, name in enumerate(names) if name not in found), default=-1)
            found = {name: r for name, r in found.items() if names.index(name) > last}
        return found

    async def _gate(
        self, name: str, command: str, worktree: Path, key: GateKey | None
    ) -> GateResult:
        """Run one gate, or wait for the same gate running on the same input in this process;
        its unjudged result."""
        flights = self.flights
        if key is None or flights is None:
            return await self._fresh(name, command, worktree, key)

        async def once() -> GateResult:
            async with flights.across_processes(key):
                # Another process may have run it while this one waited for the lock.
                kept = (await self._kept({name: key})).get(name)
                if kept is not None:
                    return replace(kept, name=name, reused=True)
                return await self._fresh(name, command, worktree, key)

        result, elsewhere = await flights.run(key, once)
        return replace(result, name=name, reused=True) if elsewhere else result

    async def _fresh(
        self, name: str, command: str, worktree: Path, key: GateKey | None
    ) -> GateResult:
        """Run one gate; its unjudged result, kept when it says something about the tree."""
        done = await self._run(command, worktree, self.gates.timeout, name)
        passed = done.ok and not done.timed_out
        result = GateResult(
            name=name,
            command=command,
            passed=passed,
            exit_code=done.exit_code,
            duration=done.duration,
            output_tail=self._tail(done),
            timed_out=done.timed_out,
            new_failures=() if passed else tuple(sorted(parse_failures(done.output))),
        )
        if key is not None and self.cache is not None and keepable(result):
            await asyncio.to_thread(self.cache.put, key, result)
        return result

    async def run_checks(self, worktree: Path, checks: Sequence[Check]) -> tuple[GateResult, ...]:
        """Run a task's acceptance checks in order; none is judged against the baseline."""
        results = []
        for check in checks:
            if check.kind == "file_exists":
                results.append(_file_exists(worktree, check.path))
            elif check.kind == "command":
                results.append(await self._command_check(worktree, check))
            else:
                results.append(
                    _refused(
                        f"check:{check.kind}", check.kind, f"unknown check kind {check.kind!r}"
                    )
                )
        return tuple(results)

    async def _command_check(self, worktree: Path, check: Check) -> GateResult:
        name = f"check:command:{_shorten(check.command)}"
        if not check.command.strip():
            return _refused(name, check.command, "the check has no command")
        async with look_only.looking(worktree) as changed:
            done = await self._run(check.command, worktree, check.timeout, name)
        tail = self._tail(done)
        if changed:  # it made what it was to judge: failed, whatever it exited with
            tail = f"{tail}\n[{look_only.said(changed)}]".lstrip("\n")
        return GateResult(
            name=name,
            command=check.command,
            passed=done.ok and not changed,
            exit_code=done.exit_code,
            duration=done.duration,
            output_tail=tail,
            timed_out=done.timed_out,
        )

    async def _run(self, command: str, worktree: Path, timeout: float, name: str) -> Completed:
        # The worktree's own environment (its .venv, its node_modules), never blitz's or the
        # user's virtual environment, and the project's cache as the set-up left it.
        caches = envsetup.cache_env(self.packages) if self.packages is not None else {}
        try:
            with live_gates.watching(self.live, name, command) as out:
                if self.sandbox is None:
                    env = envsetup.worktree_env(worktree, {**self._env, **caches})
                    return await process.run(
                        command, cwd=worktree, timeout=timeout, env=env, cap=self._cap,
                        on_output=out,
                    )  # fmt: skip
                jail = self.sandbox.jail(worktree)
                if self.packages is not None:
                    self.packages.mkdir(parents=True, exist_ok=True)
                    jail = replace(jail, binds=(*jail.binds, self.packages))
                path = {"PATH": os.environ.get("PATH", os.defpath)}
                env = envsetup.worktree_env(worktree, {**path, **self._gate_env, **caches})
                return await jail.run(
                    command, timeout=timeout, env=env, cap=self._cap, on_output=out
                )
        except SandboxUnavailable as exc:
            # The user must install bubblewrap or turn the sandbox off: the project pauses.
            raise ConfigError(str(exc)) from exc
        except OSError as exc:
            # The worktree is gone or unusable: the machinery broke, not the task's work.
            raise RunError(f"cannot run {command!r} in {worktree}: {exc}") from exc

    def _tail(self, done: Completed) -> str:
        tail = done.tail(self._tail_chars)
        if done.timed_out:
            tail += f"\n[timed out after {_seconds(done.duration)}; the command was stopped]"
        return tail


class _Run:
    """One validation's gates being run: in order or side by side, stopping at the first
    blamed failure when ``fail_fast`` (the gates not run yet are recorded as not run)."""

    def __init__(
        self,
        validator: Validator,
        worktree: Path,
        configured: Mapping[str, str],
        keys: Mapping[str, GateKey],
        raw: dict[str, GateResult],
        before: Mapping[str, GateResult],
        *,
        fail_fast: bool,
    ) -> None:
        self.validator = validator
        self.worktree = worktree
        self.configured = configured
        self.keys = keys
        self.raw = raw  # unjudged results by gate name, filled in as gates end
        self.before = before
        self.fail_fast = fail_fast

    def culprit(self) -> str | None:
        """The first gate, in order, whose result so far is blamed (only with ``fail_fast``)."""
        if not self.fail_fast:
            return None
        for name in self.configured:
            result = self.raw.get(name)
            if result is not None and not _excused(judge(result, self.before.get(name))):
                return name
        return None

    def gate(self, name: str) -> Awaitable[GateResult]:
        command = self.configured[name]
        return self.validator._gate(name, command, self.worktree, self.keys.get(name))

    def skip(self, names: Iterable[str], culprit: str) -> None:
        for name in names:
            self.raw.setdefault(
                name,
                _refused(
                    name, self.configured[name], f"not run: {culprit} failed first (fail_fast)"
                ),
            )

    async def in_order(self, names: Sequence[str]) -> None:
        for i, name in enumerate(names):
            if culprit := self.culprit():
                self.skip(names[i:], culprit)
                return
            self.raw[name] = await self.gate(name)

    async def side_by_side(self, names: Sequence[str]) -> None:
        """Each gate in a task of its own, with its own timeout and process group; a blamed
        failure cancels the rest with ``fail_fast`` (a cancelled gate's process group is
        killed). An error of one (the worktree is gone) cancels the others and is raised."""
        if culprit := self.culprit():
            self.skip(names, culprit)
            return
        tasks = {asyncio.ensure_future(self.gate(name)): name for name in names}
        pending = set(tasks)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    self.raw[tasks[task]] = task.result()
                if culprit := self.culprit():
                    self.skip(names, culprit)
                    return
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


def judge(raw: GateResult, before: GateResult | None) -> GateResult:
    """``raw`` (a gate's unjudged result, fresh or kept) judged against the baseline's result
    of the same gate: failures the base commit had too are not blamed."""
    if raw.passed or (raw.exit_code is None and not raw.timed_out):
        return raw  # passed, or not run
    # A baseline of another command (the gates were reconfigured) says nothing.
    if before is None or before.passed or before.command != raw.command:
        return raw
    now = frozenset(raw.new_failures)
    old = frozenset(before.new_failures) | parse_failures(before.output_tail)
    return replace(
        raw,
        new_failures=tuple(sorted(now - old)),
        preexisting=_preexisting(now, old, raw.timed_out, before.timed_out),
    )


def _excused(result: GateResult) -> bool:
    return result.passed or result.preexisting


def _preexisting(
    now: frozenset[str], old: frozenset[str], timed_out: bool, timed_out_before: bool
) -> bool:
    """Whether a gate failing now, which also failed on the baseline, fails the same way."""
    if timed_out and not timed_out_before:
        return False  # a hang the base commit did not have
    if now - old:
        return False  # new failing tests
    if now or not old:
        return True  # the same (or fewer) failing tests, or nothing recognisable in either
    # Failing ids were recognised on the baseline but none now: it broke in another way
    # (unless both runs hung, and the output simply stopped before any id).
    return timed_out and timed_out_before


def _file_exists(worktree: Path, path: str) -> GateResult:
    name = f"check:file_exists:{path}"
    command = f"file_exists {path}"
    if not path:
        return _refused(name, command, "the check has no path")
    if PurePath(path).is_absolute():
        return _refused(
            name, command, f"refused: {path} is absolute; give it relative to the worktree"
        )
    root = worktree.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        return _refused(name, command, f"refused: {path} resolves outside the worktree")
    exists = target.exists()
    return GateResult(
        name=name,
        command=command,
        passed=exists,
        exit_code=0 if exists else 1,
        duration=0.0,
        output_tail=f"{path} exists" if exists else f"{path} does not exist",
    )


def _refused(name: str, command: str, why: str) -> GateResult:
    return GateResult(
        name=name, command=command, passed=False, exit_code=None, duration=0.0, output_tail=why
    )


# -- reporting ---------------------------------------------------------------------------------


def verdict(results: Iterable[GateResult]) -> bool:
    """True when every result passed or failed on the base branch too."""
    return all(result.passed or result.preexisting for result in results)


def summarize(results: Iterable[GateResult]) -> str:
    """One line per gate or check, e.g. ``test: FAILED (exit 1, 2 new failures: a, b)``."""
    lines = [_line(result) for result in results]
    return "\n".join(lines) if lines else "no gates ran"


def _line(result: GateResult) -> str:
    if result.passed:
        return f"{result.name}: passed{_reused(result)}"
    if result.preexisting:
        if result.timed_out:
            return f"{result.name}: timed out on base branch too (not blamed)"
        return f"{result.name}: failed on base branch too (not blamed){_reused(result)}"
    if result.timed_out:
        return f"{result.name}: TIMED OUT after {_seconds(result.duration)}"
    detail = "not run" if result.exit_code is None else f"exit {result.exit_code}"
    if result.exit_code is None and result.output_tail:
        detail = result.output_tail.splitlines()[0]
    if result.new_failures:
        count = len(result.new_failures)
        named = ", ".join(result.new_failures[:LISTED_FAILURES])
        if count > LISTED_FAILURES:
            named += f" and {count - LISTED_FAILURES} more"
        detail += f", {count} new failure{'s' if count > 1 else ''}: {named}"
    return f"{result.name}: FAILED ({detail}){_reused(result)}"


def _reused(result: GateResult) -> str:
    return " (reused)" if result.reused else ""


def _seconds(duration: float) -> str:
    return f"{duration:.0f}s" if duration >= 10 else f"{duration:.1f}s".replace(".0s", "s")


def _shorten(text: str, limit: int = NAME_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
