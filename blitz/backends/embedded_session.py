"""One run of the embedded agent as its tools see it: the :class:`Session` handed to them as
pydantic-ai's ``deps`` (the worktree's tools, the stuck detector, the messages shown so far), and
the tool functions the model calls, each a thin shim over :class:`~blitz.backends.tools.AgentTools`
that records its call for the stuck detector and shows its result.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_ai import RunContext
from pydantic_ai.exceptions import ModelRetry, ToolFailed
from pydantic_ai.messages import (
    ModelRequest,
    ModelResponse,
    RetryFeedbackPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.usage import RunUsage

from blitz.backends.base import AgentRequest, GateCommand, MessageSink, trim
from blitz.backends.block_scope import words
from blitz.backends.edit_where import edit_where_meant
from blitz.backends.finish_gates import FinishGates
from blitz.backends.finish_review import FinishReview
from blitz.backends.stuck import StuckDetector
from blitz.backends.tools import AgentTools, ToolError
from blitz.redact import redact

MESSAGES_KEPT = 20
"""Messages of the run kept in :attr:`AgentResult.messages`, the newest ones."""

SHOWN_CHARS = 800
"""Characters of one streamed message (a tool result, say); longer ones lose their middle."""


def joined_lines(value: object, *, whole_file: bool = False) -> object:
    """Text a model gave as a list of lines (small models do, for a file's content) as one
    string: lines that end in a newline are joined as they are, others with one, and a whole
    file's last line gets its newline. Anything else is left to the string check."""
    if not (isinstance(value, list) and value and all(isinstance(line, str) for line in value)):
        return value
    if all(line.endswith("\n") for line in value):
        return "".join(value)
    text = "\n".join(line.removesuffix("\n") for line in value)
    return text + "\n" if whole_file else text


Content = Annotated[str, BeforeValidator(partial(joined_lines, whole_file=True))]
"""A file's whole content, which may also come as a list of lines; its schema is a string."""

Fragment = Annotated[str, BeforeValidator(joined_lines)]
"""A piece of a file, which may also come as a list of lines; its schema is a string."""


@dataclass(frozen=True, slots=True)
class Finished:
    """What the ``finish`` tool returns: the run's output when the agent is done, or when its
    finish was sent back (``refused``, saying why) and the run starts afresh."""

    summary: str
    refused: str = ""


async def finish(ctx: RunContext[Session], summary: str) -> Finished:
    """Call this when the task is done; it ends your work, so call it once, after your last change.

    Args:
        summary: what you changed and why, in a few sentences
    """
    refused = await ctx.deps.refuses_finish()
    if refused and ctx.deps.afresh_when_refused():
        return Finished(summary.strip(), refused=refused)
    if refused:
        raise ModelRetry(refused)
    return Finished(summary.strip())


WRITING = frozenset({"write_file", "append_to_file", "edit_file"})
"""The tools that change files (``run_command`` may too, unseen)."""


class Session:
    """The state of one run, handed to the tools as pydantic-ai's ``deps``: the worktree's tools,
    the stuck detector, the messages shown so far, and how many tool calls the model made."""

    def __init__(
        self,
        tools: AgentTools,
        stuck: StuckDetector,
        sink: MessageSink | None,
        *,
        needs_change: bool = False,
        files: Sequence[str] = (),
        gates: Sequence[GateCommand] = (),
        gate_timeout: float = 600.0,
        task: str = "",
        asks: str = "",
    ) -> None:
        """``needs_change``: the task must change a file (it is not allow_empty); ``files``:
        the files the task is expected to touch; ``gates``: the project's gates, run on a
        finish the review lets through (each for ``gate_timeout`` at most); ``task``: what the
        task says (its words decide what an answer's code may change: :meth:`scope`); ``asks``:
        its title and instructions (the functions they ask for are looked for on a finish)."""
        self.tools = tools
        self.task_words = words(task)
        self.stuck = stuck
        self.stuck_reason: str | None = None  # why its calls go round, once they do
        self.transcript: deque[str] = deque(maxlen=MESSAGES_KEPT)
        self.usage = RunUsage()
        self.calls = 0  # tool calls the model made, finish included, in every form
        self.wrote = False  # whether a call of a WRITING tool succeeded
        self.refused = ""  # what the last finish was sent back with, until the next tool call
        self.written: dict[str, None] = {}  # the paths the writing tools changed, in order
        self.changes: list[str] = []  # the path of each writing call that succeeded, in order
        self.afresh_when_refused: Callable[[], bool] = lambda: False
        """Whether a finish sent back ends the conversation, for one started afresh."""
        self.review = FinishReview(tools.root, files, needs_change=needs_change, asks=asks)
        self.gates = FinishGates(tools, gates, gate_timeout)
        self._sink = sink

    @classmethod
    def of(
        cls,
        request: AgentRequest,
        tools: AgentTools,
        stuck: StuckDetector,
        sink: MessageSink | None,
        gates: Sequence[GateCommand],
    ) -> Session:
        """The session of a run of ``request``, whose finish runs ``gates``."""
        return cls(
            tools,
            stuck,
            sink,
            needs_change=not request.allow_empty,
            files=request.files,
            gates=gates,
            gate_timeout=request.gate_timeout,
            task="\n".join((request.title, request.instructions, request.guidance, request.goal)),
            asks=f"{request.title}\n{request.instructions}",
        )

    def scope(self) -> frozenset[str]:
        """The words the definitions an answer's code may change must be about
        (:mod:`blitz.backends.block_scope`): the task's, and what its last finish was sent back
        with (a test the gates say fails may be mended)."""
        return self.task_words | words(self.refused)

    async def say(self, text: str) -> None:
        """Show one message (redacted and trimmed) and keep it for the result."""
        shown = trim(redact(text), SHOWN_CHARS)
        self.transcript.append(shown)
        if self._sink is not None:
            await self._sink(shown)

    async def call(self, name: str, args: Mapping[str, Any], work: Awaitable[str]) -> str:
        """Run one tool call: its result, or its ToolError as a failed result the model sees."""
        self.refused = ""
        try:
            result = await work
        except ToolError as exc:
            message = str(exc)
            self._record(name, args, f"error: {message}")
            await self.say(f"error: {message}")
            raise ToolFailed(message) from None
        self._record(name, args, result)
        if name in WRITING:
            self.wrote = True
            self.written[str(args.get("path", ""))] = None
            self.changes.append(str(args.get("path", "")))
        await self.say(result)
        return result

    async def refuses_finish(self) -> str:
        """What to send a ``finish`` call back with ("": nothing, it ends the run): see
        :class:`~blitz.backends.finish_review.FinishReview`, then
        :class:`~blitz.backends.finish_gates.FinishGates`."""
        text, line = await self.review.problem()
        if not text and await self.review.changed():
            text, line = await self.gates.failure()
        self.refused = text
        if text:
            await self.say(line)
        return text

    async def change_passes(self) -> bool:
        """Whether the run changed files, the finish's review has nothing against the change and
        the gates (there must be some) all pass on it now."""
        if not self.wrote:
            return False
        text, _ = await self.review.problem()
        return not text and await self.gates.pass_now()

    async def edit_where_meant(self, path: str, old: str, new: str) -> str:
        """``edit_file``, made where its old text is when that is not in ``path`` but in one of
        the task's other files (:mod:`blitz.backends.edit_where`); that file counts as written."""
        files = (*self.review.files, *self.written)
        result, edited = await edit_where_meant(self.tools, path, old, new, files)
        if edited != path:
            self.written[edited] = None
            self.changes.append(edited)
        return result

    def _record(self, name: str, args: Mapping[str, Any], result: str) -> None:
        if self.stuck.record(name, args, result) and self.stuck_reason is None:
            self.stuck_reason = self.stuck.reason()

    async def narrate(self, response: ModelResponse) -> None:
        """Show what the model said and which tools it called."""
        for part in response.parts:
            if isinstance(part, TextPart) and part.content.strip():
                await self.say(part.content.strip())
            elif isinstance(part, ToolCallPart):
                self.calls += 1
                await self.say(describe_call(part.tool_name, part.args_as_dict()))

    async def report_retries(self, request: ModelRequest) -> None:
        """Show the retry prompts pydantic-ai sends back (unknown tools, invalid arguments)."""
        for part in request.parts:
            if isinstance(part, ToolReturnPart) and part.outcome == "retried":
                text = part.model_response_str(wrap_if_error=False)
                await self.say(f"retry {part.tool_name}: {text}")
            elif isinstance(part, RetryFeedbackPart):
                await self.say(f"retry: {part.model_response()}")


# -- the tools, as the model sees them ----------------------------------------------------------

TOOL_DESCRIPTIONS: dict[str, str] = {
    "read_file": (
        "Read a text file (path relative to the repository root) as numbered lines"
        " '  12| text'; for a long file pass offset (lines to skip) and limit (lines to show)"
        " to read it in parts."
    ),
    "list_dir": (
        "List a directory of the repository, sorted, directories ending in '/'; depth 2 or more"
        " also lists what the subdirectories contain."
    ),
    "search": (
        "Find lines containing pattern (literal text, or a Python regular expression with"
        " regex=true) as 'path:line: text' in the files under path whose names match glob"
        " ('*.py' at any depth, 'src/**/*.ts' by path), or list those files when pattern is empty."
    ),
    "write_file": (
        "Create a file, or replace all of an existing file's content, with the given content,"
        " creating missing directories; to add code to an existing file use append_to_file, to"
        " change part of it use edit_file."
    ),
    "append_to_file": (
        "Add text at the end of a file, keeping everything already in it (a new function, class"
        " or test added to an existing file); creates the file if it does not exist."
    ),
    "edit_file": (
        "Replace the exact text old with new in a file, where old must occur exactly once:"
        " copy it from read_file without the line numbers, with enough surrounding lines to be"
        " unique."
    ),
    "run_command": (
        "Run a shell command in the repository root (for builds, tests, linters and git) and get"
        " its exit code and the end of its output; it is stopped after the timeout in seconds."
    ),
}
"""One sentence per tool, for the model."""


async def read_file(
    ctx: RunContext[Session], path: str, offset: int = 0, limit: int | None = None
) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        path: the file, relative to the repository root
        offset: lines to skip from the start
        limit: the most lines to show (omit for as many as fit)
    """
    args = {"path": path, "offset": offset, "limit": limit}
    return await ctx.deps.call("read_file", args, ctx.deps.tools.read_file(path, offset, limit))


async def list_dir(ctx: RunContext[Session], path: str = ".", depth: int = 1) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        path: the directory, relative to the repository root
        depth: how many levels to list (1 = only its entries)
    """
    args = {"path": path, "depth": depth}
    return await ctx.deps.call("list_dir", args, ctx.deps.tools.list_dir(path, depth))


async def search(
    ctx: RunContext[Session],
    pattern: str,
    glob: str = "",
    regex: bool = False,
    path: str = ".",
) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        pattern: the text to find; empty to list the files matching glob
        glob: which files to search, e.g. '*.py' or 'src/**/*.ts' (default: all)
        regex: whether pattern is a Python regular expression
        path: the directory to search under, relative to the repository root
    """
    args = {"pattern": pattern, "glob": glob, "regex": regex, "path": path}
    options: dict[str, Any] = {"regex": regex, "path": path}
    if glob:
        options["glob"] = glob
    return await ctx.deps.call("search", args, ctx.deps.tools.search(pattern, **options))


async def write_file(ctx: RunContext[Session], path: str, content: Content) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        path: the file, relative to the repository root
        content: the whole new content of the file
    """
    args = {"path": path, "content": content}
    return await ctx.deps.call("write_file", args, ctx.deps.tools.write_file(path, content))


async def append_to_file(ctx: RunContext[Session], path: str, text: Fragment) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        path: the file, relative to the repository root
        text: the code to add at the end of the file
    """
    args = {"path": path, "text": text}
    work = ctx.deps.tools.append_to_file(path, text, ctx.deps.scope())
    return await ctx.deps.call("append_to_file", args, work)


async def edit_file(ctx: RunContext[Session], path: str, old: Fragment, new: Fragment) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        path: the file, relative to the repository root
        old: the exact text to replace, occurring once in the file
        new: the text to put in its place
    """
    args = {"path": path, "old": old, "new": new}
    return await ctx.deps.call("edit_file", args, ctx.deps.edit_where_meant(path, old, new))


async def run_command(ctx: RunContext[Session], command: str, timeout: float | None = None) -> str:
    """The tool the model calls; see TOOL_DESCRIPTIONS.

    Args:
        command: the shell command, run with /bin/sh in the repository root
        timeout: seconds before the command is stopped (omit for the default)
    """
    args = {"command": command, "timeout": timeout}
    return await ctx.deps.call("run_command", args, ctx.deps.tools.run_command(command, timeout))


TOOLS = (read_file, list_dir, search, write_file, append_to_file, edit_file, run_command)


# -- text ---------------------------------------------------------------------------------------


def describe_call(name: str, args: Mapping[str, Any]) -> str:
    """One line for a tool call: ``$ pytest -q``, ``write_file src/x.py``."""
    if name == "run_command":
        return f"$ {args.get('command', '')}"
    if name == "finish":
        return f"finish: {args.get('summary', '')}"
    if name in ("read_file", "list_dir", "write_file", "append_to_file", "edit_file"):
        path = args.get("path", "")
        extra = {
            k: v for k, v in args.items() if k not in ("path", "content", "text", "old", "new")
        }
        shown = " ".join(f"{k}={v}" for k, v in extra.items() if v not in (None, 0, 1))
        return f"{name} {path} {shown}".rstrip()
    if name == "search":
        where = args.get("path") or "."
        glob = f" ({args['glob']})" if args.get("glob") else ""
        return f"search {args.get('pattern', '')!r} in {where}{glob}"
    return f"{name} {json.dumps(dict(args), default=str)}"
