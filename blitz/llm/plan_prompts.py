"""What the planner tells the model: the rules of a plan and of a recovery, the failure shown
to recovery (gate tails, diff, the agent's last messages), and the re-ask listing problems."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from blitz.domain import GateResult, Recovery, RecoveryAction, RecoveryPlan, Task, TaskSpec
from blitz.errors import PlanError
from blitz.planner import RecoveryRequest, check_plan

GATE_TAIL = 2_000
"""Characters of a failed gate's output shown to recovery (its end, where the error is)."""

DIFF_HEAD = 6_000
"""Characters of the failed attempt's diff shown to recovery."""

LAST_MESSAGES = 4
MESSAGE_TAIL = 1_500
"""The agent's last messages shown to recovery, and the characters kept of each (the end)."""

MAX_IDS_SHOWN = 500
"""Existing task ids listed to recovery; a collision among the rest is still caught and re-asked."""

PLAN_RULES = """\
You plan software work for autonomous coding agents. You get a goal about a git repository and a
view of that repository; answer with a plan: a short summary and a list of tasks.

Each task is done by a separate coding agent in its own git worktree, which starts from the work of
the tasks it depends on. The agent sees the repository and the task's title and instructions,
nothing else: not the goal, not this conversation, not the other tasks.

Rules for a good plan:
- Small, independent, verifiable tasks. Each task makes one coherent change to a few files and
  leaves the project building with its tests passing. Prefer a few solid tasks to many tiny ones.
- ids: unique, 1-64 characters from letters, digits, '.', '_' and '-' (e.g. "add-limiter").
- depends_on: list a task's id only when this task needs that task's changes. Tasks without
  dependencies on each other run in parallel. No cycles.
- Tests of new code go in the task that writes the code. A task that imports, calls or tests
  code another task adds depends on that task: alone, its tests would fail.
- A rename or a changed signature is one task that changes the definition and every file
  that uses it: split in two, each half breaks the project's tests.
- priority: an integer, default 0; higher runs first among ready tasks. Raise it for tasks that
  unblock others.
- instructions: self-contained and specific: which files and functions to change or add, what
  behaviour to implement, which tests to write, how to tell it is done.
- files: the files the task is expected to touch (a hint for the agent and for reviewers).
- checks: optional acceptance checks run after the project's gates:
  {"kind": "file_exists", "path": "relative/path"} or
  {"kind": "command", "command": "shell command run in the worktree", "timeout": seconds}.
- allow_empty: true only for a task that may rightly change no file.
- attempts: leave it out for most tasks. For a risky task (a subtle bug, a tricky algorithm, a
  change with several plausible designs) set 2 or 3, at most {max_attempts}: that many agents try
  it side by side and the best passing result is kept. Each attempt costs a full agent run.
{routing}
- At most {max_tasks} tasks.

Every task is judged by the project's validation gates, run in its worktree; a task whose change
makes them fail has failed:
{gates}

A plan for a small goal ("Add a --quiet flag to the CLI") is one task, its tests included, and
leaves out every field it does not need:
{"summary": "Add a --quiet flag that silences progress output.", "tasks": [{"id": "add-quiet",
"title": "Add a --quiet flag to the CLI", "instructions": "In cli.py add a --quiet option that
skips the progress output. In test_cli.py test that --quiet prints nothing.", "files": ["cli.py",
"test_cli.py"]}]}
"""

RECOVERY_RULES = """\
You diagnose a failed task of an automated coding run and decide what happens next. A coding
agent worked on the task in its own git worktree; the project's validation gates or the task's
checks then failed, or the agent gave up. Find the root cause, not the symptom: read the gate
output, the diff and the agent's last messages.

Choose one action:
- retry: the task is right but the attempt went wrong; give guidance, added to the task's
  instructions for the next attempt (what went wrong and how to do it right).
- insert: something else must be done first; give the new tasks (the failed task will depend on
  them, then run again with the guidance).
- replace: the task is wrong or too big; give the tasks that take its place, together doing all
  of its work (the tasks that depended on it will depend on them).
- skip: the task is unnecessary or its work is already done; the goal can succeed without it.
- abort: the goal cannot succeed (impossible, contradictory, or a human must decide).

New tasks use the plan task format: unique ids of 1-64 letters, digits, '.', '_' or '-' that no
existing task has, a one-line title, self-contained instructions (the agent sees only them and the
repository), depends_on only when needed. New tasks must not depend on the failed task; tests of
new code go in the task that writes the code, and a rename goes in one task with every file
that uses the name. Give tasks only for insert and replace. Do not repeat a recovery that was
already tried for this task.
"""


def routing_text(backends: Sequence[str]) -> str:
    """The rule on ``backend`` and ``model``: the choices are the request's backend specs, each
    ``backend`` or ``backend:model`` (the model after the first colon, as in a portfolio)."""
    if not backends:
        return "- backend, model: leave them empty (no other agents are configured)."
    choices = []
    for spec in backends:
        backend, _, model = spec.partition(":")
        choices.append(
            f'  - backend "{backend}", ' + (f'model "{model}"' if model else "model empty")
        )
    return (
        "- backend, model: leave them empty for most tasks. For a task another agent or model\n"
        "  does better (a cheaper model for a routine, mechanical change, a stronger one for a\n"
        "  hard one) set both to one of these pairs:\n" + "\n".join(choices)
    )


def gates_text(gates: dict[str, str]) -> str:
    lines = [f"- {name}: `{command}`" for name, command in gates.items() if command]
    return "\n".join(lines) if lines else "(no gates configured: the task checks judge the work)"


def _tail(text: str, chars: int) -> str:
    text = text.rstrip()
    return text if len(text) <= chars else "[... earlier output cut ...]\n" + text[-chars:]


def _head(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars] + "\n[... rest cut ...]"


def _fenced(text: str) -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}\n{text}\n{fence}"


def _gate_lines(gate: GateResult) -> list[str]:
    verdict = "passed" if gate.passed else "FAILED"
    if gate.timed_out:
        verdict += " (timed out)"
    elif gate.exit_code is not None and not gate.passed:
        verdict += f" (exit {gate.exit_code})"
    if gate.preexisting:
        verdict += ", as it already did on the base branch"
    lines = [f"- {gate.name} `{gate.command}`: {verdict}"]
    if gate.new_failures:
        lines.append("  new failures: " + ", ".join(gate.new_failures))
    if not gate.passed and gate.output_tail.strip():
        lines.append(_fenced(_tail(gate.output_tail, GATE_TAIL)))
    return lines


def _earlier_line(recovery: Recovery) -> str:
    line = f"- {recovery.action.value}: {recovery.root_cause}"
    if recovery.guidance:
        line += f" (guidance: {_head(recovery.guidance, 300)})"
    if recovery.new_tasks:
        line += f" (new tasks: {', '.join(recovery.new_tasks)})"
    return line


def _ids_text(ids: Sequence[str]) -> str:
    if not ids:
        return "(none)"
    shown = ", ".join(ids[:MAX_IDS_SHOWN])
    more = len(ids) - MAX_IDS_SHOWN
    return shown + (f", ... and {more} more" if more > 0 else "")


def recovery_prompt(request: RecoveryRequest) -> str:
    task, attempt = request.task, request.attempt
    parts = [
        f"Goal: {request.goal}",
        f"Failed task: {task.id}: {task.title}",
        "Instructions:\n" + _fenced(task.instructions or task.title),
    ]
    if task.guidance:
        parts.append(f"Guidance it was given:\n{task.guidance}")
    if task.depends_on:
        parts.append(f"It depends on: {', '.join(task.depends_on)}")
    parts.append(f"Attempt {attempt.number} failed: {request.error or attempt.error or '?'}")
    if attempt.summary:
        parts.append(f"The agent's summary: {_head(attempt.summary, MESSAGE_TAIL)}")
    if request.gates:
        lines = [line for gate in request.gates for line in _gate_lines(gate)]
        parts.append("Gates and checks:\n" + "\n".join(lines))
    if request.diff.strip():
        parts.append("The attempt's diff:\n" + _fenced(_head(request.diff.rstrip(), DIFF_HEAD)))
    elif attempt.diff_stat:
        parts.append(f"The attempt's diff stat:\n{attempt.diff_stat}")
    else:
        parts.append("The attempt changed no files.")
    if request.messages:
        last = request.messages[-LAST_MESSAGES:]
        parts.append(
            "The agent's last messages:\n"
            + "\n".join(_fenced(_tail(m, MESSAGE_TAIL)) for m in last)
        )
    earlier = [r for r in request.earlier if r.task_id == task.id]
    if earlier:
        parts.append(
            "Recoveries already tried for this task:\n" + "\n".join(map(_earlier_line, earlier))
        )
    parts.append(f"Existing task ids (new tasks may not reuse them): {_ids_text(request.task_ids)}")
    return "\n\n".join(parts)


# -- judging answers ---------------------------------------------------------------------------


PLACEHOLDERS = frozenset({"default", "none", "null", "auto", "n/a", "-", "empty"})
"""What small models write in ``backend`` or ``model`` for "the usual one"."""


def offered_routes(tasks: Sequence[TaskSpec], backends: Sequence[str]) -> tuple[TaskSpec, ...]:
    """``tasks`` with their backend and model as the planner was offered them: a placeholder
    (``"default"``), or any name when no other agent was offered, reads as empty (the goal's
    own); a pair that is not one of the ``backends`` offered (nor a model of theirs alone, for
    the goal's backend) is a PlanError to send back, not a goal that fails on an unknown model
    after planning."""
    offered = {tuple(spec.partition(":")[::2]) for spec in backends}
    kept: list[TaskSpec] = []
    problems: list[str] = []
    for task in tasks:
        route = tuple("" if v.lower() in PLACEHOLDERS else v for v in (task.backend, task.model))
        if not offered:
            route = ("", "")
        if route != ("", "") and route not in offered and not _model_offered(route, offered):
            listed = ", ".join(repr(spec) for spec in backends)
            problems.append(
                f"task {task.id!r}: backend {route[0]!r} with model {route[1]!r} is not one of"
                f" the choices ({listed}); leave both empty for the goal's own agent"
            )
        kept.append(replace(task, backend=route[0], model=route[1]))
    if problems:
        raise PlanError(problems)
    return tuple(kept)


def _model_offered(route: tuple[str, ...], offered: Collection[tuple[str, ...]]) -> bool:
    """A model alone, one of those offered: the goal's own backend with that model."""
    return not route[0] and any(route[1] == model for _, model in offered)


def distinct_ids(answer: dict[str, Any]) -> dict[str, Any]:
    """A plan answer (``PlanOutput.model_dump()``) whose tasks share an id, as its model meant
    it: two tasks, the later ones under the first free ``<id>-2``, ``<id>-3``... (a dependency
    on the id stays on the first). Qwen2.5-Coder-1.5B planned a rename as two tasks named
    alike, and was sent back for it until the plan failed."""
    tasks = [dict(t) for t in answer.get("tasks") or []]
    taken = {str(t.get("id")) for t in tasks}
    seen: set[str] = set()
    for task in tasks:
        given = str(task.get("id"))
        if given in seen:
            n = 2
            while f"{given}-{n}" in taken:
                n += 1
            task["id"] = f"{given}-{n}"
            taken.add(task["id"])
        seen.add(str(task["id"]))
    return {**answer, "tasks": tasks}


def fold_tests_into_code(tasks: Sequence[TaskSpec]) -> tuple[TaskSpec, ...]:
    """A model's plan as meant: the tests of new code go in the task that writes the code (the
    rules say so; small models plan them as a task of their own, which then writes junk into a
    test file while the code's task lands untested). A task touching only test files, of modules
    that one other task of the plan changes, is folded into that task: its title and
    instructions added to that task's, its files, checks and dependencies joined, and tasks that
    needed it needing that task; unless that would make a cycle. What is not folded is ordered
    after the code it tests (:func:`code_before_tests`)."""
    listed = list(tasks)
    while (fold := _foldable(listed)) is not None:
        listed = _folded(listed, *fold)
    return code_before_tests(listed)


def _foldable(tasks: Sequence[TaskSpec]) -> tuple[str, str] | None:
    """The first (tests' task, code's task) that can be folded into one."""
    changed: dict[str, set[str]] = {}  # a module's stem -> the tasks that change its code
    for spec in tasks:
        for path in spec.files:
            if _tested_stem(path) is None:
                changed.setdefault(_stem(path), set()).add(spec.id)
    after = {spec.id: set(spec.depends_on) for spec in tasks}
    for spec in tasks:
        stems = [_tested_stem(path) for path in spec.files]
        owners = [changed.get(stem, set()) for stem in stems if stem is not None]
        if not stems or len(owners) < len(stems) or any(len(o) != 1 for o in owners):
            continue
        codes = set.union(*owners)
        code = codes.pop()
        if codes or code == spec.id or spec.id in _reaching(code, after):
            continue  # the modules of several tasks, or the code's task needs the tests'

        if all(code not in _reaching(d, after) for d in after[spec.id] - {code}):
            return spec.id, code
    return None


def _folded(tasks: Sequence[TaskSpec], tests: str, code: str) -> list[TaskSpec]:
    by_id = {spec.id: spec for spec in tasks}
    t, c = by_id[tests], by_id[code]
    said = t.title.strip() + (f": {t.instructions.strip()}" if t.instructions.strip() else "")
    merged = replace(
        c,
        instructions="\n\n".join(x for x in (c.instructions.strip(), said) if x),
        files=tuple(dict.fromkeys((*c.files, *t.files))),
        checks=tuple(dict.fromkeys((*c.checks, *t.checks))),  # each once (both had `pytest`)
        depends_on=_joined(c.depends_on, t.depends_on, leave=(tests, code)),
        priority=max(c.priority, t.priority),
        labels=tuple(dict.fromkeys((*c.labels, *t.labels))),
    )
    out = []
    for spec in tasks:
        if spec.id == code:
            out.append(merged)
        elif spec.id != tests:
            needs = tuple(code if d == tests else d for d in spec.depends_on)
            out.append(replace(spec, depends_on=_joined(needs, leave=(spec.id,))))
    return out


def _joined(*lists: Sequence[str], leave: Collection[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(d for ids in lists for d in ids if d not in leave))


def code_before_tests(tasks: Sequence[TaskSpec]) -> tuple[TaskSpec, ...]:
    """A model's plan as meant: a task that touches the tests of a module another task of the
    plan changes depends on that task (``test_textutil.py`` on ``textutil.py``), unless that
    would make a cycle. Small models plan the tests of new code as a task of their own, run
    beside the code's: alone, its tests fail importing what is not there yet."""
    changed: dict[str, list[str]] = {}  # a module's stem -> the tasks that change its code
    for spec in tasks:
        for path in spec.files:
            if _tested_stem(path) is None:
                changed.setdefault(_stem(path), []).append(spec.id)
    after = {spec.id: set(spec.depends_on) for spec in tasks}
    for spec in tasks:
        for path in spec.files:
            stem = _tested_stem(path)
            for code in changed.get(stem or "", []):
                if code != spec.id and spec.id not in _reaching(code, after):
                    after[spec.id].add(code)
    return tuple(
        replace(spec, depends_on=(*spec.depends_on, *sorted(after[spec.id] - set(spec.depends_on))))
        for spec in tasks
    )


def _stem(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(".", 1)[0]


def _tested_stem(path: str) -> str | None:
    """The module a test file tests (``test_x.py``, ``x_test.go``, ``x.test.ts``, ``x.spec.js``:
    ``x``), or None for a file that is no test."""
    name = path.rsplit("/", 1)[-1]
    stem, _, rest = name.partition(".")
    if stem.startswith("test_") and len(stem) > 5:
        return stem[5:]
    if stem.endswith("_test") and len(stem) > 5:
        return stem[:-5]
    if rest.split(".", 1)[0] in ("test", "spec") and "." in rest:
        return stem
    return None


def _reaching(task: str, after: Mapping[str, Collection[str]]) -> set[str]:
    """Every task ``task`` depends on, directly or not."""
    seen: set[str] = set()
    todo = [task]
    while todo:
        for needed in after.get(todo.pop(), ()):
            if needed not in seen:
                seen.add(needed)
                todo.append(needed)
    return seen


def meant(
    recovery: RecoveryPlan,
    existing: Collection[str] = (),
    failed: Task | None = None,
    replaced: Mapping[str, tuple[str, ...]] | None = None,
) -> RecoveryPlan:
    """``recovery`` as its model meant it: the ``failed`` task itself given again (its id or its
    title) to a retry or an insert is the task running again, not a task to do before it (a
    small model's retry restated the task; inserted, its copy ran first without the task's
    checks, and the task again after it); a retry given tasks to do first is an insert (what
    small models write for "do these, then try again"), and tasks given to a skip or an abort,
    which take none, are dropped. A new task given the id of one the goal has (``existing``:
    small models name the task to do again) gets the first free ``<id>-2``, ``<id>-3``..., and
    the recovery's own tasks that depend on it follow it. A dependency on a task that was
    ``replaced`` is one on the tasks in its place."""
    if replaced:
        recovery = replace(recovery, tasks=_through(recovery.tasks, replaced))
    if failed is not None and recovery.action in (RecoveryAction.RETRY, RecoveryAction.INSERT):
        again = {failed.id, failed.title.strip().casefold()}
        tasks = tuple(t for t in recovery.tasks if not again & {t.id, t.title.strip().casefold()})
        if len(tasks) < len(recovery.tasks):
            action = recovery.action if tasks else RecoveryAction.RETRY
            recovery = replace(recovery, action=action, tasks=_without(tasks, failed.id))
    if not recovery.tasks:
        return recovery
    if recovery.action is RecoveryAction.RETRY:
        recovery = replace(recovery, action=RecoveryAction.INSERT)
    if recovery.action in (RecoveryAction.SKIP, RecoveryAction.ABORT):
        return replace(recovery, tasks=())
    return _fresh_ids(recovery, set(existing))


def _through(
    tasks: tuple[TaskSpec, ...], replaced: Mapping[str, tuple[str, ...]]
) -> tuple[TaskSpec, ...]:
    """``tasks`` depending on what replaced the tasks they name that were replaced."""
    return tuple(
        replace(
            t,
            depends_on=tuple(dict.fromkeys(n for d in t.depends_on for n in replaced.get(d, (d,)))),
        )
        if any(d in replaced for d in t.depends_on)
        else t
        for t in tasks
    )


def _without(tasks: tuple[TaskSpec, ...], gone: str) -> tuple[TaskSpec, ...]:
    """``tasks`` with no dependency on the task ``gone`` (dropped from them)."""
    return tuple(replace(t, depends_on=tuple(d for d in t.depends_on if d != gone)) for t in tasks)


def _fresh_ids(recovery: RecoveryPlan, existing: set[str]) -> RecoveryPlan:
    taken = existing | {t.id for t in recovery.tasks}
    renamed: dict[str, str] = {}
    for spec in recovery.tasks:
        if spec.id in existing and spec.id not in renamed:
            n = 2
            while f"{spec.id}-{n}" in taken:
                n += 1
            renamed[spec.id] = f"{spec.id}-{n}"
            taken.add(renamed[spec.id])
    if not renamed:
        return recovery
    tasks = tuple(
        replace(
            spec,
            id=renamed.get(spec.id, spec.id),
            depends_on=tuple(renamed.get(d, d) for d in spec.depends_on),
        )
        for spec in recovery.tasks
    )
    return replace(recovery, tasks=tasks)


def recovery_problems(recovery: RecoveryPlan, request: RecoveryRequest) -> list[str]:
    """What the graph rules and the action say against ``recovery`` (empty when it is fine)."""
    problems: list[str] = []
    action = recovery.action
    broke = [g.name for g in request.gates if not g.passed and not g.preexisting]
    if action is RecoveryAction.SKIP and request.dependents and broke:
        problems.append(
            f"task {request.task.id!r} cannot be skipped: its attempt failed {', '.join(broke)},"
            f" so its work is not done, and {', '.join(map(repr, request.dependents))} depend"
            " on it; use retry (with guidance), insert or replace"
        )
    if recovery.tasks and action not in (RecoveryAction.INSERT, RecoveryAction.REPLACE):
        problems.append(
            f"action {action.value!r} takes no tasks; use 'insert' to add tasks before a retry"
        )
    if recovery.tasks:
        try:
            check_plan(recovery.tasks, existing=request.task_ids)
        except PlanError as exc:
            problems.extend(exc.problems)
        problems.extend(
            f"task {t.id!r} depends on the failed task {request.task.id!r}, which "
            + ("is being replaced" if action is RecoveryAction.REPLACE else "will depend on it")
            for t in recovery.tasks
            if request.task.id in t.depends_on
        )
    return problems


def reask(problems: Sequence[str], what: str, mode: str) -> str:
    how = "with the output tool" if mode == "tool" else "as one JSON object matching the schema"
    listed = "\n".join(f"- {p}" for p in problems)
    return (
        f"Your {what} was rejected:\n{listed}\n\n"
        f"Fix every problem and answer again, {how}, with the complete corrected {what}."
    )
