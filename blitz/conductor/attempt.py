"""One attempt at one task, end to end: a worktree at the goal branch's head (from the
repository's warm pool, reset and verified), the project's environment set-up when its inputs
changed, the agent, the gates and the task's checks, a commit, and integration into the goal
branch.

This is what an executor runs (:mod:`blitz.executors`); the engine never calls it directly. The
attempt never changes the engine's state: it returns an
:class:`~blitz.executors.base.AttemptReport` that the engine applies. It may append
informational events (where it runs, agent messages, validation results). Whatever happens, its
worktree is given back to the pool (or removed, when it has none).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blitz import live_gates, refcheck, secretscan
from blitz.backends.base import AgentRequest, AgentResult
from blitz.conductor import briefing
from blitz.conductor.deadline import within
from blitz.conductor.selection import candidate_of
from blitz.domain import AttemptState, GateResult
from blitz.errors import RunError
from blitz.events import Event, EventKind
from blitz.executors.base import (
    ATTEMPT_REFS,
    AttemptReport,
    AttemptRequest,
    Outcome,
    worktree_name,
)

if TYPE_CHECKING:
    from blitz.workspace import Workspace

MAX_MESSAGE_EVENTS = 200
"""Agent messages stored as events per attempt; later ones are only kept for failure context."""

MAX_REBASES = 5
"""Times an attempt re-validates after rebasing before it gives the slot back."""

STATES = {
    Outcome.SUCCEEDED: AttemptState.SUCCEEDED,
    Outcome.FAILED: AttemptState.FAILED,
    Outcome.CRASHED: AttemptState.CRASHED,
    Outcome.CONFLICT: AttemptState.FAILED,
    Outcome.CONFIG: AttemptState.CRASHED,
    Outcome.UNAVAILABLE: AttemptState.CRASHED,
    Outcome.LOST: AttemptState.FAILED,
}


class SetupFailed(RunError):
    """The project's environment set-up failed in the attempt's worktree: the machinery's fault
    (the attempt crashes), not the agent's."""

    def __init__(self, result: GateResult) -> None:
        what = "timed out" if result.timed_out else f"exit {result.exit_code}"
        super().__init__(
            f"the environment set-up failed ({what}): {result.command}\n"
            f"{result.output_tail[-1500:]}",
            retryable=True,
        )
        self.result = result


async def run_attempt(
    ctx: AttemptRequest, *, base: str | None = None, integrate: bool = True, candidate: bool = False
) -> AttemptReport:
    """Run one attempt; never raises except on cancellation (the worktree is removed either way).
    The procedure behind every executor: the local one calls it in this process.

    The work part (worktree, set-up, agent, guard, gates, commit) and the integrate part (onto
    the goal branch, or best-of-N selection) may run in different places: with ``integrate``
    false the attempt stops at its commit and reports it as SUCCEEDED with ``commit`` set (not
    yet on the goal branch); :func:`blitz.conductor.landing.land` then integrates that commit
    where the goal branch lives. ``base``: the commit to start from (default: the goal branch's
    head in the workspace). ``candidate`` (with ``integrate`` false): a best-of-N candidate whose
    selection is elsewhere, committed whatever its gates said (FAILED with ``commit`` set when
    they failed), so its work can be kept as a ref there as a local candidate's is."""
    ws = ctx.workspace
    judged_elsewhere = candidate and not integrate
    attempt = ctx.attempt
    found: dict[str, object] = {}  # fields of the final attempt record, filled in as we go
    worktree: Path | None = None
    marker = Path()
    held = contextlib.AsyncExitStack()  # the worktree, given back when the attempt ends
    messages: list[str] = []
    emitted = 0

    async def on_message(text: str) -> None:
        nonlocal emitted
        messages.append(text)
        del messages[:-20]
        if emitted < MAX_MESSAGE_EVENTS:
            emitted += 1
            _tell(ctx, EventKind.AGENT_MESSAGE, text[:2000])

    def report(
        outcome: Outcome, error: str = "", retry_after: float | None = None, **changes: object
    ) -> AttemptReport:
        final = attempt.evolve(
            state=STATES[outcome], error=error, finished_at=ctx.now(), **found, **changes
        )
        return AttemptReport(
            outcome=outcome,
            attempt=final,
            error=error,
            messages=tuple(messages),
            retry_after=retry_after,
        )

    def withdrawn(result: AttemptReport) -> AttemptReport:
        """A candidate that ended before it could be judged tells its selection so."""
        if ctx.selection is not None:
            ctx.selection.withdraw(attempt.id, result.error)
        return result

    try:
        if ws is not None:
            base = await ws.rev_parse(base or f"refs/heads/{ctx.goal.branch}")
            worktree, marker = await _take(ctx, ws, held, base)
        else:
            base = ""
            worktree = _path(ctx.project.path)
        found["worktree"], found["base_sha"] = str(worktree), base
        await _set_up(ctx, worktree, marker)
        refs = await refcheck.snapshot(ws) if ws is not None else None

        request = AgentRequest(
            goal_id=ctx.goal.id,
            goal=ctx.goal.title,
            task_id=ctx.task.id,
            title=ctx.task.title,
            instructions=briefing.instructions(ctx.task),
            worktree=worktree,
            attempt=attempt.number,
            candidate=attempt.candidate,
            guidance=ctx.task.guidance,
            allow_empty=ctx.task.allow_empty or ws is None,
            files=tuple(ctx.task.files),
            previous_failure=ctx.task.root_cause,
            timeout=ctx.timeout,
            model=ctx.model,
            budget_usd=ctx.budget_usd,
            gates=briefing.gates(ctx.validator, ctx.baseline, ctx.task),
            gate_timeout=ctx.validator.gates.timeout if ctx.validator is not None else 600.0,
            on_usage=ctx.meter.add if ctx.meter is not None else None,
        )
        try:
            deadline = asyncio.get_running_loop().time() + ctx.timeout
            result = await within(ctx.backend.run(request, on_message), deadline)
        except TimeoutError:
            result = AgentResult(
                ok=False, error=f"the agent did not finish within {ctx.timeout:.0f}s"
            )
        except Exception as exc:  # a backend bug must not take the engine down
            result = AgentResult(ok=False, crashed=True, error=f"backend error: {exc!r}")
        found["summary"], found["usage"] = result.summary, result.usage
        ctx.fault("after_agent")
        if ws is not None and refs is not None:
            error = await _guard(ctx, refs, worktree, base, result)
            if error:
                return withdrawn(report(Outcome.FAILED, error))
        if not result.ok and result.config_error:
            return withdrawn(report(Outcome.CONFIG, result.config_error))
        if not result.ok and result.unavailable:
            error = result.error or "the model provider is unavailable"
            return withdrawn(report(Outcome.UNAVAILABLE, error, result.retry_after))
        changed: list[str] = []
        if ws is not None:  # a failed attempt's too: its recovery reads what it changed
            try:
                changed = await ws.changed_files(worktree)
                found.update(
                    diff=await ws.diff(worktree, base),
                    diff_stat=await ws.diff_stat(worktree, base),
                )
            except (RunError, OSError):
                if result.ok:
                    raise
                # The agent's own failure is what is reported, its change unknown.
        if not result.ok:
            outcome = Outcome.CRASHED if result.crashed else Outcome.FAILED
            error = result.error or "the agent gave up without saying why"
            return withdrawn(report(outcome, error))
        if ws is not None and not changed and not ctx.task.allow_empty:
            error = "the agent changed no files (a task that needs no change must say allow_empty)"
            return withdrawn(report(Outcome.FAILED, error))

        gates: tuple[GateResult, ...] = ()
        if ctx.validator is not None:
            gates = await _validate(ctx, worktree, marker)
            found.update(gates=gates)
        passed = _passed(gates)
        if not passed and ctx.selection is None and not judged_elsewhere:
            return report(Outcome.FAILED, _gate_error(gates))

        sha: str | None = None
        if ws is not None and changed:
            sha = await ws.commit(
                worktree,
                branch=ctx.goal.branch,
                base_sha=base,
                goal_id=ctx.goal.id,
                task_id=ctx.task.id,
                title=f"{ctx.task.title} [{ctx.task.id}]",
                body=result.summary,
            )
            if sha is None and ctx.selection is None:
                return report(Outcome.FAILED, "nothing to commit after validation")
        if not integrate:  # made here, landed elsewhere (land)
            if not passed:  # a candidate's: kept, judged and never integrated there
                return report(Outcome.FAILED, _gate_error(gates), commit=sha or "")
            return report(Outcome.SUCCEEDED, commit=sha or "")
        if ctx.selection is not None:
            return await compete(ctx, worktree, sha, base, passed, gates, report, found, marker)
        if sha is None:
            ctx.fault("before_store_write")
            return report(Outcome.SUCCEEDED)
        return await integrate_commit(ctx, worktree, sha, base, report, found, marker)
    except SetupFailed as exc:
        return withdrawn(report(Outcome.CRASHED, str(exc), gates=(exc.result,)))
    except (RunError, OSError) as exc:
        return withdrawn(report(Outcome.CRASHED, f"{type(exc).__name__}: {exc}"))
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(held.aclose())


async def _take(
    ctx: AttemptRequest, ws: Workspace, held: contextlib.AsyncExitStack, base: str
) -> tuple[Path, Path]:
    """The attempt's worktree at ``base`` (a pooled one when there is a pool) and where its
    set-up marker lives; says which it is and whether it was reused."""
    started = ctx.now()
    if ctx.pool is not None:
        purpose = f"attempt {ctx.attempt.id} of task {ctx.task.id}, goal {ctx.goal.id}"
        pooled = await held.enter_async_context(ctx.pool.worktree(base, purpose=purpose))
        path, name, marker, reused = pooled.path, pooled.name, pooled.marker, pooled.reused
    else:
        path = await ws.add_worktree(worktree_name(ctx.goal.id, ctx.attempt.id), base)
        held.push_async_callback(ws.remove_worktree, path)
        marker = Path(held.enter_context(tempfile.TemporaryDirectory())) / "setup"
        name, reused = path.name, False
    seconds = ctx.now() - started
    how = "reused" if reused else "new"
    _tell(
        ctx,
        EventKind.WORKSPACE_READY,
        f"worktree {name} ({how}, {seconds:.2f}s)",
        {"worktree": str(path), "name": name, "reused": reused, "seconds": round(seconds, 3)},
    )
    return path, marker


async def _set_up(ctx: AttemptRequest, worktree: Path, marker: Path) -> None:
    """Run the project's environment set-up if its inputs changed; SetupFailed if it fails."""
    if ctx.setup is None or ctx.workspace is None:
        return
    result = await ctx.setup.ensure(worktree, marker=marker)
    if result is None:
        return
    if not (result.passed or result.preexisting):
        raise SetupFailed(result)
    _tell(ctx, EventKind.WORKSPACE_READY, f"set-up ran ({result.duration:.1f}s): {result.command}")


_Report = Callable[..., AttemptReport]


async def _guard(
    ctx: AttemptRequest, refs: refcheck.Snapshot, worktree: Path, base: str, result: AgentResult
) -> str:
    """What the agent did that it must never do, whatever it says of its work: refs changed
    (undone where possible), and for work it calls done, a secret written into the change.
    The attempt's error, "" when there is none."""
    assert ctx.workspace is not None
    checked = await refcheck.verify(ctx.workspace, refs, worktree=worktree, base=base)
    if checked.head:
        _tell(ctx, EventKind.AGENT_MESSAGE, checked.head)
    if checked.error:
        also = f"\n\n(the agent itself reported: {result.error})" if result.error else ""
        return checked.error + also
    return await secretscan.check(worktree, base) if result.ok else ""


async def integrate_commit(
    ctx: AttemptRequest,
    worktree: Path | Callable[[str], Awaitable[Path]],
    sha: str,
    base: str,
    report: _Report,
    found: dict[str, object],
    marker: Path,
) -> AttemptReport:
    """Put the attempt's commit on the goal branch, rebasing and re-validating while other
    tasks' work lands meanwhile: in ``worktree``, or, given a maker of one at a commit, without
    one where a replay in the object store does (:mod:`blitz.replay`), making one only to judge
    the combination or for a rebase a replay cannot do.

    When a rebased combination has nothing to judge (:func:`_nothing_to_judge`), the repository
    lock is held from the first try to the landing: the rebased commit lands right after its
    rebase. Otherwise every attempt of a wave finishing together would rebase again each time
    another one landed first, up to :data:`MAX_REBASES`, and then run again."""
    ws = ctx.workspace
    assert ws is not None
    _tell(ctx, EventKind.CHECKPOINT_COMMITTED, f"committed {sha[:10]}", {"commit": sha})
    ctx.fault("after_commit")
    held = ws.lock() if _nothing_to_judge(ctx) else contextlib.nullcontext()
    async with held:
        return await _integrate(ctx, worktree, sha, base, report, found, marker)


def _nothing_to_judge(ctx: AttemptRequest) -> bool:
    """Whether a rebased combination lands without running anything first: no gate and no check
    of the task to judge it by, and no environment set-up to run again."""
    if ctx.setup is not None:
        return False
    return ctx.validator is None or not (ctx.validator.gates.configured() or ctx.task.checks)


async def _integrate(
    ctx: AttemptRequest,
    worktree: Path | Callable[[str], Awaitable[Path]],
    sha: str,
    base: str,
    report: _Report,
    found: dict[str, object],
    marker: Path,
) -> AttemptReport:
    ws = ctx.workspace
    assert ws is not None
    commit = ""
    tree = worktree if isinstance(worktree, Path) else None
    for _ in range(MAX_REBASES + (tree is None)):
        integration = await ws.integrate(
            tree, branch=ctx.goal.branch, commit_sha=sha, base_sha=base
        )
        if integration.status == "behind" and not isinstance(worktree, Path):
            tree = await worktree(sha)  # a rebase is due: the worktree it needs, at the commit
            continue
        if integration.status in ("integrated", "already"):
            commit = sha
            if integration.status == "already":
                committed = await ws.committed_tasks(
                    ctx.goal.branch, ctx.goal.base_sha, ctx.goal.id
                )
                commit = committed.get(ctx.task.id, integration.head)
            break
        if integration.status == "conflict":
            files = integration.conflict_files
            message = "conflicts with the goal branch: " + ", ".join(files)
            _tell(ctx, EventKind.CHECKPOINT_CONFLICT, message, {"files": list(files)})
            return report(
                Outcome.CONFLICT,
                "the change conflicts with work integrated meanwhile in: "
                + ", ".join(integration.conflict_files),
            )
        # Rebased onto work other tasks integrated meanwhile: judge the combination (replayed
        # without a worktree, it gets one only when there is something to judge it by).
        sha, base = integration.head, integration.detail
        if tree is None and _nothing_to_judge(ctx):
            found.update(gates=(), base_sha=base)
            continue
        if tree is None:
            assert not isinstance(worktree, Path)
            tree = await worktree(sha)
        gates = await _validate(ctx, tree, marker)
        found.update(gates=gates, base_sha=base)
        if not _passed(gates):
            return report(
                Outcome.FAILED,
                "the change passes alone but fails combined with work integrated "
                "meanwhile:\n" + _gate_error(gates),
            )
    else:
        return report(Outcome.CONFLICT, "the goal branch kept moving; will try again")
    ctx.fault("before_store_write")
    return report(Outcome.SUCCEEDED, commit=commit)


async def compete(
    ctx: AttemptRequest,
    worktree: Path,
    sha: str | None,
    base: str,
    passed: bool,
    gates: tuple[GateResult, ...],
    report: _Report,
    found: dict[str, object],
    marker: Path,
) -> AttemptReport:
    """A best-of-N candidate: keep its work as a ref, offer it to the selection, and integrate
    it only if it wins. A winner that cannot integrate hands the win to the runner-up."""
    selection, ws, attempt = ctx.selection, ctx.workspace, ctx.attempt
    assert selection is not None
    error = "" if passed else _gate_error(gates)
    if sha is not None and ws is not None:
        ref = f"{ATTEMPT_REFS}/{ctx.goal.id}/{ctx.task.id}/{attempt.id}"
        await ws.keep_ref(ref, sha)
        found["ref"] = ref
    if ws is not None and sha is None and not ctx.task.allow_empty:
        passed, error = False, error or "nothing to commit after validation"
    scored = attempt.evolve(**{k: v for k, v in found.items() if k != "worktree"})
    candidate = candidate_of(scored, label=ctx.label, passed=passed, error=error)
    won = await selection.offer(candidate, str(found.get("diff", "")))
    if not won:
        return report(Outcome.LOST, selection.verdicts.get(attempt.id, "lost"))
    if sha is None:
        selection.integrated(attempt.id)
        ctx.fault("before_store_write")
        return report(Outcome.SUCCEEDED, selected=True)
    result = await integrate_commit(ctx, worktree, sha, base, report, found, marker)
    if result.outcome is Outcome.SUCCEEDED:
        selection.integrated(attempt.id)
        return AttemptReport(
            outcome=result.outcome,
            attempt=result.attempt.evolve(selected=True),
            error=result.error,
            messages=result.messages,
        )
    selection.integration_failed(attempt.id, result.error)
    return result


@functools.lru_cache(maxsize=256)
def _path(text: str) -> Path:
    """The project directory as a Path, parsed once per project (git-free runs only)."""
    return Path(text)


async def _validate(ctx: AttemptRequest, worktree: Path, marker: Path) -> tuple[GateResult, ...]:
    if ctx.validator is None:
        return ()
    await _set_up(ctx, worktree, marker)  # again if the change touched a set-up input
    digest = ctx.setup.digest(worktree) if ctx.setup is not None else ""
    with live_gates.for_attempt(ctx.attempt.id):  # the dashboard follows their output
        gates = await ctx.validator.run_gates(worktree, baseline=ctx.baseline, env_digest=digest)
        checks = await ctx.validator.run_checks(worktree, ctx.task.checks)
    results = tuple(gates) + tuple(checks)
    if results:
        from blitz.validation import summarize

        passed = _passed(results)
        _tell(
            ctx,
            EventKind.VALIDATION_PASSED if passed else EventKind.VALIDATION_FAILED,
            summarize(results),
            {"gates": {r.name: r.passed or r.preexisting for r in results}},
        )
    return results


def _tell(
    ctx: AttemptRequest, kind: EventKind, message: str, data: dict[str, Any] | None = None
) -> None:
    """Emit an informational event of this attempt."""
    event = Event(
        kind=kind,
        goal_id=ctx.goal.id,
        task_id=ctx.task.id,
        attempt_id=ctx.attempt.id,
        message=message,
        data=data or {},
    )
    ctx.emit(event)


def _passed(results: tuple[GateResult, ...]) -> bool:
    return all(r.passed or r.preexisting for r in results)


def _gate_error(results: tuple[GateResult, ...]) -> str:
    failing = [r for r in results if not (r.passed or r.preexisting)]
    parts = []
    for r in failing:
        what = "timed out" if r.timed_out else f"exit {r.exit_code}"
        parts.append(f"gate {r.name} failed ({what}): {r.command}\n{r.output_tail[-1500:]}")
    return "\n\n".join(parts)
