"""Follow-up goals: a goal that continues an earlier goal's work (``GoalRequest.follows``).

A follow-up works on the earlier goal's branch, from where that goal left it (its ``base_sha``
is the branch head when it is created, so its baseline, its diff and its resume all start
there), is planned with what the earlier goals of the chain did as context and with the
repository as that branch has it, and its publishing updates the same pull request: the
branch is pushed again and a section saying what the follow-up added is put in the pull
request's description (replaced, not added twice, when publishing is retried).

Invariant kept here: one goal works on a branch at a time. A follow-up is refused while the
earlier goal, or another goal on its branch, is unfinished; reopening an ended goal (retry,
skip) is refused while another goal works on its branch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from blitz.domain import GOAL_DONE, Goal, GoalState, Project, Task, TaskState
from blitz.errors import Conflict, GitError, NotFound
from blitz.store.base import Store

if TYPE_CHECKING:
    from blitz.workspace import Workspace

CHAIN_DESCRIBED = 5
"""Earlier goals of a chain of follow-ups described to the planner (the newest first)."""

TASKS_DESCRIBED = 30
"""Tasks of each earlier goal listed to the planner; the rest are counted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """Where a new goal starts: a goal of its own ("" everywhere), or the earlier goal's branch
    at its head for a follow-up."""

    follows: str = ""
    branch: str = ""  # "": a branch of its own, named after the goal
    base_branch: str = ""  # "": the project's
    base_sha: str = ""  # "": the base branch's head when it is planned


async def start(store: Store, workspace: Workspace, project: Project, follows: str) -> Start:
    """Where a new goal of ``project`` starts; ``follows``: the earlier goal's id, or "".

    Refused (:class:`~blitz.errors.NotFound`, :class:`~blitz.errors.Conflict`) when the earlier
    goal is unknown, in another project, unfinished (or another goal on its branch is), or left
    no branch to continue."""
    key = follows.strip()
    if not key:
        return Start()
    earlier = store.get_goal(key)
    if earlier is None:
        raise NotFound(f"no goal {key!r} to follow up")
    if earlier.project_id != project.id:
        other = store.get_project(earlier.project_id)
        where = f"project {other.name} ({other.path})" if other else "another project"
        raise Conflict(
            f"goal {earlier.id} belongs to {where}, not to {project.name}: a follow-up "
            "continues in the earlier goal's repository"
        )
    check_branch_free(store, earlier, following=True)
    if not earlier.branch:
        raise Conflict(f"goal {earlier.id} has no branch to continue: start a new goal instead")
    try:
        head = await workspace.rev_parse(f"refs/heads/{earlier.branch}")
    except GitError:
        raise Conflict(
            f"goal {earlier.id} left no branch {earlier.branch} in {project.path} to continue "
            "(it ended before making it, or it was deleted): start a new goal instead"
        ) from None
    return Start(
        follows=earlier.id,
        branch=earlier.branch,
        base_branch=earlier.base_branch,
        base_sha=head,
    )


def check_branch_free(store: Store, goal: Goal, *, following: bool = False) -> None:
    """Raise :class:`~blitz.errors.Conflict` if a goal other than ``goal`` works on its branch
    (with ``following``: or ``goal`` itself, which a follow-up would continue)."""
    if not goal.branch:
        return
    unfinished = [state for state in GoalState if state not in GOAL_DONE]
    busy = [
        g
        for g in store.list_goals(project_id=goal.project_id, states=unfinished)
        if g.branch == goal.branch and (following or g.id != goal.id)
    ]
    if not busy:
        return
    other = busy[0]
    if following:
        raise Conflict(
            f"goal {other.id} is still {other.state.value} on branch {goal.branch}: wait for "
            f"it to end (or cancel it) before following up goal {goal.id}"
        )
    raise Conflict(
        f"goal {other.id} is working on branch {goal.branch} (a follow-up): goal {goal.id} "
        "cannot reopen until it ends"
    )


def chain(store: Store, goal: Goal) -> list[Goal]:
    """The earlier goals ``goal`` continues, the one it follows first, at most
    :data:`CHAIN_DESCRIBED`."""
    found: list[Goal] = []
    seen = {goal.id}
    key = goal.follows
    while key and key not in seen and len(found) < CHAIN_DESCRIBED:
        earlier = store.get_goal(key)
        if earlier is None:
            break
        found.append(earlier)
        seen.add(key)
        key = earlier.follows
    return found


def planning_context(store: Store, goal: Goal) -> str:
    """What the planner of a follow-up is told about the work it continues: each earlier goal,
    its summary, its tasks and how they ended, its pull request. "" for a goal of its own."""
    earlier = chain(store, goal)
    if not earlier:
        return ""
    first = earlier[0]
    lines = [
        f"This goal continues goal {first.id} on its branch {goal.branch}. The repository you "
        "see is that branch as the earlier work left it; plan only what this goal adds. Its "
        "commits go on the same branch and into the same pull request.",
    ]
    for before in earlier:
        lines += ["", *describe(before, store.load_tasks(before.id))]
    return "\n".join(lines)


def describe(goal: Goal, tasks: list[Task]) -> list[str]:
    """An earlier goal in a few lines: its title, how it ended, its summary and tasks."""
    lines = [f"Earlier goal {goal.id} ({goal.state.value}): {_one_line(goal.title)}"]
    if goal.summary.strip():
        lines.append(f"Its plan: {_one_line(goal.summary)}")
    if goal.error.strip():
        lines.append(f"How it ended: {_one_line(goal.error)}")
    for task in tasks[:TASKS_DESCRIBED]:
        line = f"- {task.id} ({task.state.value}): {_one_line(task.title)}"
        if task.state is not TaskState.SUCCEEDED and task.reason:
            line += f" ({_one_line(task.reason)[:200]})"
        lines.append(line)
    if len(tasks) > TASKS_DESCRIBED:
        lines.append(f"- and {len(tasks) - TASKS_DESCRIBED} more tasks")
    if goal.pr_url:
        lines.append(f"Pull request: {goal.pr_url}")
    return lines


# -- the pull request ---------------------------------------------------------------------------

BODY_LIMIT = 65_000
"""GitHub refuses a pull request description over 65,536 characters."""

_CUT = "\n\n*(the description before this was cut: too long for GitHub)*\n\n"
_HEADING = re.compile(r"^(#{1,5}) ")
_FENCE = re.compile(r"^\s*(`{3,})")


def pr_section(goal: Goal, description: str) -> str:
    """The part of the pull request description a follow-up adds: its own description (made
    by :func:`blitz.pr.describe`) under a heading of its own, one level down, between markers
    that let publishing again replace it."""
    body = description.strip().splitlines()
    if body and body[0].startswith("# "):
        body = body[1:]  # the follow-up's own "# blitz: <title>": said by our heading
    text = "\n".join(_demoted(body)).strip()
    return (
        f"{_start(goal.id)}\n## Follow-up: {_one_line(goal.title)}\n\n"
        f"Added by follow-up goal `{goal.id}` on the same branch.\n\n{text}\n{_end(goal.id)}"
    )


def updated_body(body: str, goal: Goal, description: str) -> str:
    """The pull request description ``body`` with the follow-up ``goal``'s section put in:
    replacing the one an earlier try at publishing put there, else added at the end."""
    section = pr_section(goal, description)
    start, end = _start(goal.id), _end(goal.id)
    before, found, rest = body.partition(start)
    if found:
        _, closed, after = rest.partition(end)
        if closed:
            return _fit(before, section, after)
    return _fit(f"{body.rstrip()}\n\n", section, "\n")


def _fit(before: str, section: str, after: str) -> str:
    """``before + section + after`` within what GitHub takes; the start of what was there
    before is what gives way (the follow-up's own section says what it added)."""
    room = BODY_LIMIT - len(section) - len(after) - len(_CUT)
    if len(before) + len(section) + len(after) <= BODY_LIMIT:
        return before + section + after
    return before[: max(0, room)].rstrip() + _CUT + section[:BODY_LIMIT] + after


def _start(goal_id: str) -> str:
    return f"<!-- blitz:follow-up {goal_id} -->"


def _end(goal_id: str) -> str:
    return f"<!-- /blitz:follow-up {goal_id} -->"


def _demoted(lines: list[str]) -> list[str]:
    """Markdown headings one level down (``##`` becomes ``###``), outside fenced blocks."""
    out, fence = [], ""
    for line in lines:
        opened = _FENCE.match(line)
        if fence:
            if opened and opened.group(1).startswith(fence) and not line.strip().strip("`"):
                fence = ""
        elif opened:
            fence = opened.group(1)
        elif _HEADING.match(line):
            line = "#" + line
        out.append(line)
    return out


def _one_line(text: str) -> str:
    return " ".join(text.split())
