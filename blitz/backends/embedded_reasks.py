"""How a run of the embedded agent that stopped short of a result goes on: what the model is
told when it is re-asked in the same conversation (an empty answer, output that degenerated,
calls that could not be made, no call at all), whether a run that ended in prose did its work,
and the result of one that is not re-asked again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    RetryPromptPart,
    ToolReturnPart,
    UserPromptPart,
)

from blitz.backends.base import AgentResult, excerpt
from blitz.backends.embedded_session import Session
from blitz.llm.errors import ModelOutputError
from blitz.llm.text_calls import TextCallingModel
from blitz.llm.text_tools import how_to_call_tools

CODE_IN_TEXT = (
    "Your answer shows code, but code in a message changes no file, and no one else will put it"
    " in place: make the change yourself with a tool call (append_to_file to add the code to a"
    " file, edit_file to change a part of one, write_file for a new file), then call finish."
)
"""What a model is told that answered with code in its text (Qwen2.5-Coder-1.5B wrote a good
test in a fenced block, "Add this code to `test_textutil.py`", twice, and the run ended)."""

ECHOED = (
    "Your answer only repeated words of mine: it made no change and called no tool. Make the"
    " next tool call now (tool calls are the only way to change a file), or call finish with a"
    " summary of what you did."
)
"""What a model is told whose whole answer was words of the message it answered
(Qwen2.5-Coder-1.5B, re-asked "make the next tool call, or call finish if the task is done",
answered just that, twice; as prose after a change it was taken for the run's end)."""

ECHO_WORDS = 6
"""The fewest words of an answer read as an echo: a short end in prose ("The task is done.")
may well be words of a message that said "call finish if the task is done" (the 1.5B's echoes
were 9 and 12 words)."""

AFRESH = (
    "## Where you are\nYou have worked on this task already: the files above are as you left"
    " them. You called finish, and it was sent back:\n{refused}"
)
"""The end of the prompt of a conversation started afresh after a finish was sent back, for a
model that writes its calls as text. Qwen2.5-Coder-1.5B, sent back in the same conversation,
repeated its earlier calls in their order (append a test, then write the test file as it was,
which dropped the test) and finished again: a long history of its own calls is a pattern it
copies. Started afresh it sees the files as they are now and what is missing, once."""

DEGENERATE = frozenset({"repeating", "too_long", "empty"})
"""Reasons of a :class:`ModelOutputError` that a re-ask with a correction may get past (and that
make a draft no draft, not the run's failure)."""

AFRESH_SAID = "started afresh: the files as they are, what is missing"
"""The run's message when it starts a conversation afresh."""

_CODE_BLOCK = re.compile(r"```\S*\s+(?!```)\S")
"""A fenced block with something in it (in the answer's words, its blank space collapsed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stopped:
    """A run that ended short of a result: the model answered ``text`` (its blank space collapsed;
    ``said`` as it wrote it) and called no tool, or
    its output degenerated (``degenerate``: repeating itself, or too long), or its finish was
    sent back (``refused``, saying why) to be told in a conversation started afresh;
    ``messages`` is the conversation so far."""

    messages: list[ModelMessage]
    text: str = ""
    said: str = ""
    degenerate: ModelOutputError | None = None
    refused: str = ""


def correction_for(stopped: Stopped, model: TextCallingModel, session: Session) -> str | None:
    """What to tell the model when re-asking it (None: the run ends as it stopped)."""
    if stopped.degenerate is not None:
        reason = stopped.degenerate.failure.reason
        if reason == "empty" and session.refused:  # said again, where it is read last
            return f"Your last answer was empty. {session.refused}"
        if reason == "empty":
            return (
                "Your last answer was empty. The task is not done until you call finish: make"
                " the next tool call now, or call finish if the task is done."
            )
        what = "repeated itself" if reason == "repeating" else "went on too long"
        return (
            f"Your last answer {what} and was stopped. Answer again,"
            " shorter: make the next tool call, or call finish if the task is done."
        )
    if model.failed:
        errors = "\n".join(f"- {error}" for error in model.failed)
        return (
            f"Your message tried to call a tool, but the call could not be made:\n{errors}\n"
            "Write the call again, correctly."
        )
    if session.calls == 0:
        return how_to_call_tools(model.offered)
    if _CODE_BLOCK.search(stopped.text):  # code shown, for someone else to put in place
        return CODE_IN_TEXT + (f"\n\n{session.refused}" if session.refused else "")
    if echoes(stopped.text, stopped.messages):
        return ECHOED + (f"\n\n{session.refused}" if session.refused else "")
    return None  # prose: its last words (a model that insists in prose is believed)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def echoes(text: str, messages: Sequence[ModelMessage]) -> bool:
    """Whether the answer ``text`` is nothing but words of the last message it answered (the
    text of its request's parts), its case, punctuation and spacing aside."""
    said = _plain(text)
    if len(said.split()) < ECHO_WORDS:
        return False
    asked = next((m for m in reversed(messages) if isinstance(m, ModelRequest)), None)
    if asked is None:
        return False
    words = " ".join(
        part.content
        for part in asked.parts
        if isinstance(part, UserPromptPart | ToolReturnPart | RetryPromptPart)
        and isinstance(part.content, str)
    )
    return said in _plain(words)


def stopped_with_changes(stopped: Stopped, model: TextCallingModel, session: Session) -> bool:
    """Whether a run that ended in plain text had written or edited files: then it is over as
    if the model had called finish (its last words the summary), and the gates judge the change.
    A model that writes the change and then says so in prose rather than calling finish (small
    models often do) has still done its work."""
    return stopped.degenerate is None and not model.failed and session.wrote


def summary_of(stopped: Stopped) -> str:
    said = excerpt(stopped.text, 600) if stopped.text else "(no text)"
    return f"(ended without calling finish) {said}"


def gave_up(stopped: Stopped, model: TextCallingModel, session: Session) -> AgentResult:
    """The result of a run that stopped short and is not (or no longer) re-asked; degenerate
    output ends it with its error (bad output: another attempt may do better)."""
    if stopped.degenerate is not None:
        raise stopped.degenerate
    text = excerpt(stopped.text, 600) if stopped.text else "(no text)"
    if session.calls == 0:
        return AgentResult(ok=False, error=f"the model never called a tool: {text}")
    if model.failed:
        errors = "; ".join(model.failed)
        return AgentResult(ok=False, error=f"the model's tool calls could not be made: {errors}")
    if not stopped.text:
        return AgentResult(ok=False, error="the agent stopped without calling finish")
    return AgentResult(ok=False, error=f"the agent stopped without calling finish: {text}")


def continued(
    messages: list[ModelMessage], correction: str
) -> tuple[list[ModelMessage], str | None]:
    """The history and the prompt that carry on ``messages`` with ``correction``: a history
    ending in a request (the one whose answer failed) gets the correction in that request."""
    if messages and isinstance(last := messages[-1], ModelRequest):
        asked = replace(last, parts=[*last.parts, UserPromptPart(correction)])
        return [*messages[:-1], asked], None
    return list(messages), correction
