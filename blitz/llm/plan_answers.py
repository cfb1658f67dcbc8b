"""The planner's answers read as their model meant them, and what the graph's rules say against
them: placeholder routes, tasks sharing an id, tests planned apart from their code (folded into
it, or ordered after it), a recovery restating the failed task, tasks given to an action that
takes none, dependencies on replaced tasks. Each rule comes from a small model's real answer.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from blitz.asked import asked_functions, tested_functions
from blitz.domain import RecoveryAction, RecoveryPlan, Task, TaskSpec
from blitz.errors import PlanError
from blitz.planner import RecoveryRequest, check_plan

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
    # The goal's only task left (the others replaced): skipped, the goal does nothing.
    alone = not set(request.task_ids) - {request.task.id} - set(request.replaced)
    if action is RecoveryAction.SKIP and broke and (request.dependents or alone):
        needed = (
            f"{', '.join(map(repr, request.dependents))} depend on it"
            if request.dependents
            else "it is the goal's only task, so without it the goal does nothing"
        )
        problems.append(
            f"task {request.task.id!r} cannot be skipped: its attempt failed {', '.join(broke)},"
            f" so its work is not done, and {needed}; use retry (with guidance), insert or"
            " replace"
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
    if action is RecoveryAction.REPLACE and recovery.tasks:
        problems.extend(_not_taken_over(recovery.tasks, request.task))
    if action is RecoveryAction.INSERT and recovery.tasks:
        problems.extend(_tested_too_soon(recovery.tasks, request.task))
    return problems


def _not_taken_over(tasks: Sequence[TaskSpec], failed: Task) -> list[str]:
    """What a replacement leaves out of the failed task's work: each function that task was to
    add (:mod:`blitz.asked`) that none of the new tasks names (the 1.5B replaced "add
    slugify(text) and its test" with "add shout(text)", a function the file had)."""
    named = " ".join(f"{t.title}\n{t.instructions}" for t in tasks)
    return [
        f"the new tasks take the place of {failed.id!r}, which was to add {name}(), and none of"
        f" them names {name}: a replacement does the replaced task's work"
        for name in asked_functions(f"{failed.title}\n{failed.instructions}")
        if not re.search(rf"\b{re.escape(name)}\b", named)
    ]


def _tested_too_soon(tasks: Sequence[TaskSpec], failed: Task) -> list[str]:
    """What an insert asks to test before it exists: each function the failed task was to add
    that a new task (run before that task is tried again) asks to test (:mod:`blitz.asked`; the
    1.5B inserted "Add a test for slugify(text)" ahead of the task adding slugify, bench run V:
    its test could only fail)."""
    adding = asked_functions(f"{failed.title}\n{failed.instructions}")
    return [
        f"task {t.id!r} tests {name}(), but it runs before {failed.id!r}, which is to add"
        f" {name}(), is tried again: a test of {name}() goes in {failed.id!r} (retry, with"
        " guidance) or in a task that depends on it"
        for t in tasks
        for name in tested_functions(f"{t.title}\n{t.instructions}")
        if name in adding
    ]
