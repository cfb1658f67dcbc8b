"""The functions a task's words ask for by name: "add a function slugify(text)", "Add
`slugify(text)` to textutil.py"; and those they ask to test: "Test that slugify(text) works", "add
a test for slugify(text)"; and those they ask to rename: "Rename the function compute_total to
sum_prices". Read by the embedded agent's finish review (one asked for must be defined, one asked
to be tested must be used by a test, one renamed must be defined by its new name alone) and by
recovery (a task that takes a failed one's place must name what that one was to add)."""

from __future__ import annotations

import re

ASKED_FOR = re.compile(
    r"\b(?:add|write|create|implement|define)\s+(?:(?:a|an|the|new|public)\s+)*"
    r"(?:(?:function|method|class|helper)\s+)?`?([A-Za-z_]\w*)`?\(",
    re.IGNORECASE,
)
"""Words asking for a new function, and its name."""


def asked_functions(text: str) -> list[str]:
    """The names of the functions ``text`` asks to add, once each, in order."""
    return list(dict.fromkeys(ASKED_FOR.findall(text)))


TEST_ASKED_FOR = re.compile(
    r"\btest(?:s|ing)?\s+(?:(?:that|for|of|whether|if|the|a|an|function|method)\s+)*"
    r"`?([A-Za-z_]\w*)`?\(",
    re.IGNORECASE,
)
"""Words asking for a test of a function, and its name ("test_x.py" and "pytest x" are not)."""


def tested_functions(text: str) -> list[str]:
    """The names of the functions ``text`` asks to test, once each, in order."""
    return list(dict.fromkeys(TEST_ASKED_FOR.findall(text)))


RENAME_ASKED = re.compile(
    r"\brenam(?:e|es|ing)\s+(?:(?:the|a|an|function|method|class|helper)\s+)*`?([A-Za-z_]\w*)`?"
    r"(?:\(\))?`?\s+(?:to|as|into)\s+`?([A-Za-z_]\w*)`?",
    re.IGNORECASE,
)
"""Words asking to rename a name, and the old and the new one."""


def renamed_functions(text: str) -> list[tuple[str, str]]:
    """The (old, new) names ``text`` asks to rename, once each, in order."""
    return list(dict.fromkeys(RENAME_ASKED.findall(text)))
