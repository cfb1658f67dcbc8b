"""What the embedded agent is told: its instructions (its system prompt), and the first prompt of
a conversation: the task, the repository's files, the task's files as they are now, and how the
conversation started (afresh after a finish sent back; after a draft)."""

from __future__ import annotations

from collections.abc import Sequence

from blitz.backends.base import AgentRequest, task_prompt
from blitz.backends.confine import ToolError
from blitz.backends.embedded_reasks import AFRESH
from blitz.backends.embedded_session import Session
from blitz.backends.tools import AgentTools
from blitz.context import file_tree

INSTRUCTIONS = """\
You are an autonomous coding agent working in a git worktree of a software project. No person is \
watching: work until the task is done.

- Make the change the task asks for, and keep it minimal: change only what the task needs, in the \
style of the surrounding code.
- Use paths relative to the repository root, as the task's file list shows them; nothing outside \
it is reachable.
- Look before you change: list, search and read the relevant code first.
- Keep what a file already has: add new code with append_to_file, change a part with edit_file; \
write_file replaces the whole file.
- Run the project's checks (tests, type checker, linter) with run_command when that helps you \
verify the change.
- Do not commit, push or rewrite git history: your changes are checked and committed for you.
- When the task is done, call `finish` with a short summary of what you changed and why.
- If you cannot do the task, stop and explain why in plain text instead of calling `finish`."""
"""The agent's instructions (its system prompt)."""

FILE_TREE_CHARS = 2_000
"""Room for the repository's file list in the task prompt: a model that sees where the files are
does not guess paths (a small model copies any example path it is given)."""

FILES_SHOWN_CHARS = 8_000
"""Room in the task prompt for the files the task is expected to touch, as they are now: a model
that sees a file does not rewrite it blind (a small model otherwise drops what it never read),
and is spared a turn reading it."""


async def first_prompt(
    request: AgentRequest, session: Session, refused: str = "", drafted: str = ""
) -> str:
    """The run's first prompt: the task, the repository's files, the task's files as they are
    now (and those the run has written); with ``refused``, the prompt of a conversation started
    afresh after a finish was sent back, ending with why (:data:`AFRESH`); with ``drafted``,
    ending with what a draft put in place."""
    tree = await file_tree(request.worktree, FILE_TREE_CHARS)
    files = (*request.files, *session.written)
    shown = await files_shown(session.tools, files, FILES_SHOWN_CHARS)
    where = "\n\n".join(filter(None, (AFRESH.format(refused=refused) if refused else "", drafted)))
    return task_prompt(request, after="\n\n".join(filter(None, (tree, shown, where))))


async def files_shown(tools: AgentTools, files: Sequence[str], room: int) -> str:
    """The task's files that exist, as ``read_file`` shows them, each under its own heading, in
    at most ``room`` characters; one that does not fit is named, to be read. Files the task is
    to create are not there yet; a path that leads out of the worktree reads as none."""
    blocks: list[str] = []
    for path in dict.fromkeys(files):
        try:
            text = await tools.read_file(path)
        except ToolError:
            continue
        block = f"## {path} (as it is now)\n{text}"
        if len(block) > room:
            block = f"## {path}: too long to show here; read it with read_file"
            if len(block) > room:
                break
        blocks.append(block)
        room -= len(block) + 2
    return "\n\n".join(blocks)
