from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blitz.llm.repetition import (
    BLANK_AFTER_FENCE,
    BLANK_RUN,
    LONG_SPAN,
    MIN_LENGTH,
    MIN_REPEATS,
    RepeatWatch,
    Repetition,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    path
    for folder in ("blitz", "tests", "docs")
    for path in (ROOT / folder).rglob("*")
    if path.suffix in (".py", ".md", ".toml", ".yaml") and path.is_file()
)


def feed(text: str, sizes: list[int] | None = None, seed: int = 0) -> Repetition | None:
    """Feed ``text`` to a fresh watch in pieces (random sizes, as tokens arrive); the first
    repetition it reports."""
    watch = RepeatWatch()
    rng = random.Random(seed)
    at = 0
    while at < len(text):
        size = sizes.pop(0) if sizes else rng.randint(1, 24)
        found = watch.feed(text[at : at + size])
        if found is not None:
            return found
        at += size
    return watch.check()


@pytest.mark.parametrize(
    "span",
    [
        "The plan adds the function and its test. ",
        "    pass\n",
        '{"id": "t3", "title": "Add the add function", "depends_on": ["t2"]},\n',
        "x" * 3,
    ],
)
def test_a_span_repeated_back_to_back_is_noticed(span: str) -> None:
    text = "Here is the plan:\n" + span * (MIN_LENGTH // len(span) + MIN_REPEATS + 2)
    found = feed(text)
    assert found is not None
    assert found.repeats >= MIN_REPEATS
    assert found.span in span * 2
    assert len(found.span) <= len(span)


def test_it_is_noticed_soon_after_it_starts() -> None:
    span = "Then the model writes this sentence again. "
    needed = max(MIN_LENGTH, MIN_REPEATS * len(span))
    watch = RepeatWatch()
    watch.feed("Some preamble that says what comes.\n")
    seen = 0
    while watch.feed(span) is None:
        seen += len(span)
        assert seen < needed + 2 * len(span)


def test_a_long_loop_is_noticed_at_its_second_copy() -> None:
    # Qwen2.5-Coder-1.5B, asked for a recovery, echoed 2,600 characters of its prompt again and
    # again until its 3,000 tokens ran out: six copies never fit.
    paragraph = "".join(f"step {n}: change file {n}.py\n" for n in range(40))  # ~900 chars
    found = feed("The plan:\n" + paragraph * 2)
    assert found is not None and found.repeats == 2 and len(found.span) == len(paragraph)
    assert feed("The plan:\n" + paragraph + paragraph[: LONG_SPAN // 2]) is None
    echo = "Gates and checks:\n" + "E   AssertionError: assert 'hi' == 'HI'\n" * 4 + "x" * 2_500
    assert feed(echo * 2) is not None  # longer than a short span's six copies could find
    # A short span still needs its six copies (fewer, as long as two long ones, are a long one
    # twice).
    short = paragraph[:150]
    assert feed("The plan:\n" + short * (MIN_REPEATS - 1)) is None
    assert feed("The plan:\n" + short * MIN_REPEATS) is not None


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_files_of_this_repository_are_no_repetition(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert feed(text, seed=len(text)) is None


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.text(max_size=200),
    span=st.text(min_size=1, max_size=80),
    extra=st.integers(0, 5),
    seed=st.integers(0, 1000),
)
def test_any_span_repeated_long_enough_is_noticed_however_it_arrives(
    prefix: str, span: str, extra: int, seed: int
) -> None:
    repeats = max(MIN_REPEATS, -(-MIN_LENGTH // len(span))) + extra
    found = feed(prefix + span * repeats, seed=seed)
    assert found is not None
    # A rotation of the span, or of a shorter one it repeats; blank space repeated is one run of
    # blank space, whose span is the whole run (BLANK_RUN).
    blank = span.isspace() and found.span.isspace() and found.repeats == 1
    assert blank or found.span in span * 3


@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=400))
def test_numbered_lines_are_no_repetition(words: list[str]) -> None:
    text = "".join(f"{n}. {word}\n" for n, word in enumerate(words))
    assert feed(text) is None


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        RepeatWatch(min_repeats=1)


@pytest.mark.parametrize("blank", ["\n", " ", "\n    ", "\t\n"])
def test_a_long_run_of_blank_space_is_noticed_soon(blank: str) -> None:
    # A model held by a JSON grammar it cannot satisfy writes blank space for ever.
    found = feed('{"summary": "ok", "tasks": []}' + blank * (BLANK_RUN // len(blank) + 40))
    assert found is not None
    assert "blank space" in found.describe()


def test_blank_space_after_a_closed_fence_is_noticed_sooner() -> None:
    # Qwen2.5-Coder-1.5B on llama.cpp wrote its plan as a fenced call, then newlines (seen here).
    call = '```json\n{"name": "submit_plan", "arguments": {"tasks": []}}\n```'
    found = feed(call + "\n" * (BLANK_AFTER_FENCE + 40))
    assert found is not None and found.span.isspace()
    assert feed(call + "\n" * (BLANK_AFTER_FENCE - 2)) is None
    assert feed(call + "\n\nThat is the plan.\n" + "\n" * (BLANK_AFTER_FENCE - 2)) is None


def test_blank_lines_in_code_are_no_repetition() -> None:
    assert feed("def a():\n    pass\n" + "\n" * 40 + "def b():\n    pass\n" * 3) is None


def test_one_character_written_for_ever_is_noticed_soon() -> None:
    # Qwen2.5-Coder-0.5B on llama.cpp, asked for a required tool call (seen in this project).
    found = feed('{"name": "submit", "arguments": {"summary": "The sky is blue."}}.' + "0" * 260)
    assert found is not None
    assert found.span == "0"
    assert found.repeats >= BLANK_RUN
