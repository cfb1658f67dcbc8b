"""The trailers that tie a commit to its goal and task: ``Blitz-Goal`` and ``Blitz-Task``.

Every task commit blitz makes ends with one paragraph holding exactly these two trailers, so
git parses only ours (:func:`message`). They are how a task is committed at most once on its
goal branch (:func:`task_commits`, looked up before committing and before integrating), and how
a commit coming back from a worker is checked to be the one asked for (:func:`of_commit`).
"""

from __future__ import annotations

from blitz.errors import GitError
from blitz.git import Git

GOAL_TRAILER = "Blitz-Goal"
TASK_TRAILER = "Blitz-Task"


def require_value(kind: str, value: str) -> None:
    """A trailer's value is one non-empty line without surrounding spaces (ValueError if not)."""
    if not value or value != value.strip() or "\n" in value or "\x00" in value:
        raise ValueError(f"{kind} must be one non-empty line without surrounding spaces: {value!r}")


def message(title: str, body: str, goal_id: str, task_id: str) -> str:
    """The commit message; the trailers are always the last paragraph, so git parses only ours."""
    parts = [" ".join(title.split()) or f"blitz task {task_id}"]
    if body.strip():
        parts.append(body.strip())
    parts.append(f"{GOAL_TRAILER}: {goal_id}\n{TASK_TRAILER}: {task_id}")
    return "\n\n".join(parts) + "\n"


def _format(*keys: str) -> str:
    return "%x00".join(f"%(trailers:key={k},valueonly,separator=%x01)" for k in keys)


async def task_commits(git: Git, revisions: str, goal_id: str) -> dict[str, str]:
    """``{task_id: sha}`` of the goal's commits in ``revisions``, the first of each task."""
    # --grep narrows the walk cheaply; the trailers (last paragraph only) decide.
    fmt = "%H%x00" + _format(GOAL_TRAILER, TASK_TRAILER) + "%x1e"
    found = await git.run(
        "log", "--reverse", f"--format={fmt}", "--fixed-strings",
        f"--grep={GOAL_TRAILER}: {goal_id}", revisions, "--",
    )  # fmt: skip
    tasks: dict[str, str] = {}
    for record in found.out.split("\x1e"):
        fields = record.strip("\n").split("\0")
        if len(fields) != 3 or goal_id not in fields[1].split("\x01"):
            continue
        for task_id in fields[2].split("\x01"):
            if task_id:
                tasks.setdefault(task_id, fields[0])
    return tasks


async def of_commit(git: Git, commit: str) -> tuple[str, str]:
    """The goal and task ``commit`` is for; GitError unless it names exactly one of each."""
    found = await git.run("show", "-s", f"--format={_format(GOAL_TRAILER, TASK_TRAILER)}", commit)
    goals, _, tasks = found.out.strip("\n").partition("\0")
    goal_ids, task_ids = (
        [g for g in goals.split("\x01") if g],
        [t for t in tasks.split("\x01") if t],
    )
    if len(goal_ids) != 1 or len(task_ids) != 1:
        raise GitError(f"commit {commit} lacks exactly one {GOAL_TRAILER} and {TASK_TRAILER}")
    return goal_ids[0], task_ids[0]
