"""The embedded agent's draft (``[agent] draft = true``): before its first turn with tools, the
model is asked for the change as code, with no tools offered, and the code it shows for each file
(in a fenced block named after the file) is put in place, and when that adds code no test uses
and the task names a test file, the test is asked for next; the project's gates are run on the
draft, and while one fails it is asked for the fix, shown the failing gate's output
(:data:`DRAFT_FIXES` times at most); the agent, told what the gates said last, goes on with its
tools from there: fixes the draft, finishes.

Why: a small model writes better code in a code block than inside a tool call's JSON.
Qwen2.5-Coder-1.5B, given the bench's first agent request (``bench/README.md``), wrote a correct
``slugify`` in 0 of 20 answers when the code had to go inside a ``write_file`` or
``append_to_file`` call, and in 13 of 18 when asked, with no tools, for the code in fenced blocks
named after their files. aider found the same of models asked for code inside JSON.

The draft is one model answer, bounded like every other (its output cap, the repetition watch)
and counted as a turn with its tokens. An answer stopped because it degenerated keeps the blocks
it had closed before (the 1.5B wrote a right ``slugify`` and then a test that repeated one assert
until stopped: bench run S); an answer with no block that can be put in place, or refused, is no
draft: the run goes on as it would have without one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic_ai import Agent
from pydantic_ai.exceptions import UnexpectedModelBehavior
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    UserPromptPart,
)
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RequestUsage, UsageLimits

from blitz.backends.embedded_reasks import DEGENERATE
from blitz.backends.embedded_session import Session
from blitz.backends.file_blocks import closed_blocks, put_in_place
from blitz.backends.finish_gates import Checked
from blitz.backends.tools import ToolError
from blitz.llm.errors import ModelOutputError, stopped_answer

BLOCKS_RULE = (
    "- To add or change code, show it in a ```{fence} block whose first line is a comment naming"
    " its file (`{comment} {path}`): the whole new file, or the new definitions to add at its end"
    " (with the imports they need); it is put in place for you."
)
"""The rule added to the agent's instructions for its draft. Measured on Qwen2.5-Coder-1.5B with
the bench's draft request (8 answers each, ``bench/README.md``): the agent's own instructions
with this rule, 7 correct; instructions of the draft's own, asking for code blocks only and
saying nothing of tools, 3; the same asking for the tests too, 0."""

_FENCES = {"py": "python", "js": "javascript", "jsx": "jsx", "ts": "typescript", "tsx": "tsx"}
_SLASHES = frozenset({"js", "jsx", "ts", "tsx", "go", "rs", "java", "c", "cc", "cpp", "h", "cs"})

DRAFTED = (
    "## Your draft\nA first draft of this change was put in place for you ({paths}): the files"
    " above show it. {checked}"
)
"""The end of the agent's first prompt when a draft was put in place."""

UNCHECKED = (
    "It may be wrong or incomplete. Check it against the task (run the checks with run_command),"
    " fix what is wrong with edit_file, then call finish."
)
"""What :data:`DRAFTED` says when the task has no gates to run on the draft (or one timed out)."""

FAILS = (
    "The checks were run on the draft: {failure}\n\nFix what makes it fail with edit_file (the"
    " code; a test only if the test itself is wrong), then call finish."
)
"""What :data:`DRAFTED` says when a gate fails on the draft, after its fixes (bench run T: the
1.5B, told only to check a draft whose test expected ``"nospecialcharacters"``, rewrote both
files round and round and never ran the tests)."""

PASSES = (
    "The checks were run on the draft and pass ({commands}). If it does all the task asks, call"
    " finish; if not, fix it with edit_file, then call finish."
)
"""What :data:`DRAFTED` says when every gate passes on the draft."""

FIX_ASKED = (
    "The checks were run on your code: {failure}\n\nShow what must change for them to pass, in"
    " ```{fence} blocks whose first line names the file ({named}): each definition that changes,"
    " whole (the code; a test only if the test itself is wrong)."
)
"""What a draft the gates fail on is asked next, in its conversation (bench runs T and U: right
code, its test wrong in one assert; the 1.5B, shown pytest's output with its tools, named the
wrong file, or rewrote what was right; it mends code better shown as code). Every file the
draft wrote is named (``# textutil.py`` or ``# test_textutil.py``): a small model copies an
example path, and named alone, the module was shown back unchanged (run W)."""

DRAFT_FIXES = 2
"""Times a draft the gates fail on is asked for its fix."""

FIX_TOKENS = 1024
"""The most output tokens of a fix's answer: a definition or two, not the whole project."""


UNRUN = Checked(None, "")
"""No gate said anything of a draft."""


@dataclass(frozen=True, slots=True)
class Draft:
    """What a draft did: the files it wrote (none: no draft), and what the gates said of it."""

    written: tuple[str, ...]
    checked: Checked = UNRUN

    @property
    def told(self) -> str:
        """The end of the agent's first prompt ("" when nothing was put in place)."""
        if not self.written:
            return ""
        paths = ", ".join(f"`{path}`" for path in self.written)
        return DRAFTED.format(paths=paths, checked=_checked(self.checked))


def _checked(checked: Checked) -> str:
    if checked.passed is None:
        return UNCHECKED
    if checked.passed:
        return PASSES.format(commands=checked.said)
    return FAILS.format(failure=checked.said)


def instructions(agent: str, files: Sequence[str]) -> str:
    """The draft's system prompt: the ``agent``'s instructions and :data:`BLOCKS_RULE`, its
    example naming the first of ``files`` (a small model copies an example path)."""
    path = files[0] if files else "path/to/file.py"
    suffix = path.rsplit(".", 1)[-1] if "." in path else ""
    comment = "//" if suffix in _SLASHES else "#"
    fence = _FENCES.get(suffix, suffix)
    return agent + "\n" + BLOCKS_RULE.format(fence=fence, comment=comment, path=path)


TEST_ASKED = (
    "Your code is in place. Now the test: show {test} with a short test of {names} (three to"
    " five asserts) that checks the results the task asks for, in a ```{fence} block whose"
    " first line is `{comment} {test}`."
)
"""What a draft that adds code no test uses is asked next, when the task names a test file (the
1.5B's drafts wrote the test in none of 24 answers: its attempt then wrote one only after a
finish sent back for it, a round more)."""

TEST_TOKENS = 400
"""The most output tokens of the test's answer (below the run's own cap): a test of a function
with five asserts is about 150. The 1.5B, asked for one under the run's 8,192, wrote 300 s of
asserts, each one longer than the last, until the repetition watch stopped it (bench run N); at
1,024 it still ran on, for 140 s under load (run P). An answer cut off is no test: the finish
review asks for one then."""


async def draft(
    model: Model,
    settings: ModelSettings,
    prompt: str,
    session: Session,
    system: str,
    charge: Callable[[RequestUsage], None],
    more: Callable[[], bool] = lambda: True,
) -> Draft:
    """Ask ``model`` (with ``settings`` and the ``system`` prompt of :func:`instructions`) for
    the task of ``prompt`` as code, no tools offered, and put the files its answer shows in
    place through the session's tools; when that adds code no test uses and the task names a
    test file, ask for the test in the same conversation (:data:`TEST_ASKED`); then run the
    gates on it and, while one fails, ask for the fix (:data:`FIX_ASKED`). Each request only if
    ``more()`` says the run may make another. ``charge`` is given each answer's usage (a stopped
    answer's too). Provider failures propagate, as they would from any turn of the run."""
    drafter: Agent[None, str] = Agent(
        model,
        output_type=str,
        instructions=system,
        model_settings=settings,
        retries={"output": 0},
        name="blitz-draft",
    )
    before = len(session.changes)
    result = await _answer(drafter, prompt, session, charge)
    if result is None:
        return Draft(())
    await put_in_place(result.text, session)
    history = result.history
    names, test = await session.review.untested()
    if names and more():
        asked = TEST_ASKED.format(
            test=test, names=", ".join(f"{name}()" for name in names[:3]), **_fenced(test)
        )
        tested = await _answer(
            drafter, asked, session, charge, history, _capped(settings, TEST_TOKENS),
            "the draft's test",
        )  # fmt: skip
        if tested is not None:
            history = tested.history
            await put_in_place(tested.text, session)
    if not session.changes[before:]:
        await session.say(
            "draft: nothing put in place; the agent starts from the files as they were"
        )
        return Draft(())
    checked = await session.gates.on_draft()
    for _ in range(DRAFT_FIXES):
        if checked.passed is not False or not more():
            break
        await session.say(f"draft: {checked.said.splitlines()[0]}")
        paths = list(dict.fromkeys(session.changes[before:]))
        fenced = _fenced(paths[0])
        named = " or ".join(f"`{fenced['comment']} {path}`" for path in paths)
        asked = FIX_ASKED.format(failure=checked.said, named=named, fence=fenced["fence"])
        fixed = await _answer(
            drafter, asked, session, charge, history, _capped(settings, FIX_TOKENS),
            "the draft's fix",
        )  # fmt: skip
        if fixed is None:
            break
        history = fixed.history
        was = _contents(session, paths)
        await put_in_place(fixed.text, session)
        if _contents(session, paths) == was:  # no fix shown: asking again would get none either
            break
        checked = await session.gates.on_draft()
    # The draft's calls are blitz's, from its answer: the agent that makes the same change once
    # more (a small model does, shown the draft) has repeated nothing of its own yet; nor has
    # it gone round when a fix showed the draft again (bench run Z: stopped as stuck unasked).
    session.stuck.reset()
    session.stuck_reason = None
    if checked.passed is not None:
        await session.say(f"draft: {_checked(checked).splitlines()[0]}")
    return Draft(tuple(dict.fromkeys(session.changes[before:])), checked)


def _contents(session: Session, paths: Sequence[str]) -> list[bytes | None]:
    """What the files at ``paths`` hold now (None: none there, or not readable)."""
    held: list[bytes | None] = []
    for path in paths:
        try:
            held.append(session.tools.resolve(path).read_bytes())
        except (OSError, ToolError):
            held.append(None)
    return held


def _fenced(path: str) -> dict[str, str]:
    """The fence and the comment of a block named after ``path``."""
    suffix = path.rsplit(".", 1)[-1] if "." in path else ""
    return {"fence": _FENCES.get(suffix, suffix), "comment": "//" if suffix in _SLASHES else "#"}


def _capped(settings: ModelSettings, tokens: int) -> ModelSettings:
    """Settings capping an answer at ``tokens`` (or the run's own cap, if lower)."""
    return ModelSettings(max_tokens=min(settings.get("max_tokens", tokens), tokens))


@dataclass(frozen=True, slots=True)
class _Answer:
    """An answer of the draft's conversation: its ``text``, and the conversation up to it."""

    text: str
    history: list[ModelMessage]


async def _answer(
    drafter: Agent[None, str],
    prompt: str,
    session: Session,
    charge: Callable[[RequestUsage], None],
    history: Sequence[ModelMessage] = (),
    settings: ModelSettings | None = None,
    what: str = "draft",
) -> _Answer | None:
    """One answer of the draft's conversation (``settings`` over the drafter's), counted and
    charged. An answer that degenerated or was cut off at its output cap gives the blocks it
    closed before (:func:`closed_blocks`), if any; None when it gave none, or was empty (said, as
    ``what``: none)."""
    try:
        one = UsageLimits(request_limit=session.usage.requests + 1)  # the run's usage goes on
        result = await drafter.run(
            prompt,
            message_history=list(history),
            usage=session.usage,
            usage_limits=one,
            model_settings=settings,
        )
    except ModelOutputError as exc:
        if exc.failure.reason not in DEGENERATE:
            raise
        session.usage.requests += 1  # the stopped answer was a turn too
        partial = stopped_answer(exc)
        if partial is not None:
            session.usage.incr(partial.usage)
            charge(partial.usage)
        text = (
            "".join(p.content for p in partial.parts if isinstance(p, TextPart)) if partial else ""
        )
        kept = closed_blocks(text)
        if not kept:
            await session.say(f"{what}: none ({exc.failure.message})")
            return None
        await session.say(
            f"{what}: stopped part way ({exc.failure.message}); the blocks it had closed are"
            " put in place"
        )
        asked = ModelRequest(parts=[UserPromptPart(prompt)])
        return _Answer(kept, [*history, asked, ModelResponse(parts=[TextPart(kept)])])
    except UnexpectedModelBehavior as exc:  # an empty answer, refused as output
        await session.say(f"{what}: none ({exc.message})")
        return None
    session.usage = result.usage
    charge(result.response.usage)
    await session.narrate(result.response)
    return _Answer(result.output, result.all_messages())
