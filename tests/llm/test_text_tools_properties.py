"""Properties of reading tool calls written as text: a valid call in any form is found back,
calls come back in order, and no text (prose, arbitrary JSON, deep or unclosed brackets) makes
the reader raise or hang, or names a tool that was not offered."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from blitz.llm.text_tools import find_tool_calls

from .text_tool_helpers import OFFERED, calls

PROSE = st.text(
    alphabet=st.characters(blacklist_characters="{}[]`<>", blacklist_categories=("Cs",)),
    max_size=80,
)
STRINGS = st.text(max_size=40)


@st.composite
def valid_calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(sorted(OFFERED)))
    arguments: dict[str, Any] = {}
    for key, spec in OFFERED[name]["properties"].items():
        if key not in OFFERED[name].get("required", ()) and draw(st.booleans()):
            continue
        kind = spec.get("type") or "integer"
        arguments[key] = draw(STRINGS if kind == "string" else st.integers(0, 10**6))
    return name, arguments


def written(form: str, name: str, arguments: dict[str, Any], key: str) -> str:
    call = json.dumps({"name": name, key: arguments})
    if form == "tag":
        return f"<tool_call>\n{call}\n</tool_call>"
    if form == "doubled":
        return "<tool_call>\n{" + call + "}\n</tool_call>"
    if form == "fence":
        return f"```json\n{json.dumps({'name': name, key: arguments}, indent=2)}\n```"
    if form == "bare-doubled":
        return "{" + call + "}"
    if form == "string":
        return json.dumps({"name": name, "arguments": json.dumps(arguments)})
    return call


@given(
    valid_calls(),
    st.sampled_from(["tag", "doubled", "fence", "string", "json", "bare-doubled"]),
    st.sampled_from(["arguments", "parameters", "args"]),
    PROSE,
    PROSE,
)
def test_a_call_written_in_any_form_is_found_back(
    call: tuple[str, dict[str, Any]], form: str, key: str, before: str, after: str
) -> None:
    name, arguments = call
    text = f"{before}\n{written(form, name, arguments, key)}\n{after}"
    assert calls(text) == [(name, arguments)]


@given(st.lists(valid_calls(), min_size=1, max_size=4), PROSE)
def test_several_tagged_calls_come_back_in_order(
    many: list[tuple[str, dict[str, Any]]], between: str
) -> None:
    text = between.join(written("tag", name, arguments, "arguments") for name, arguments in many)
    assert calls(text) == many


@given(st.text(alphabet=st.characters(blacklist_characters="{}[]<")))
def test_text_without_json_yields_nothing(text: str) -> None:
    assert find_tool_calls(text, OFFERED) == []


# Two levels of nesting, spelt out: st.recursive's check that ``extend`` uses its argument warns
# (an error here) now and then on a strategy like this one.
_LEAF = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
_NESTED = _LEAF | st.lists(_LEAF, max_size=4) | st.dictionaries(st.text(max_size=8), _LEAF)
JSON = _NESTED | st.lists(_NESTED, max_size=4) | st.dictionaries(st.text(max_size=8), _NESTED)


@given(JSON, PROSE)
def test_json_naming_no_offered_tool_outside_tags_yields_nothing(value: Any, prose: str) -> None:
    assert find_tool_calls(f"{prose} {json.dumps(value)} {prose}", OFFERED) == []


@given(
    st.lists(
        st.sampled_from(['{"name": "read_file"', "<tool_call>", "</tool_call>", "```json\n", "}"])
        | st.text(max_size=20),
        max_size=12,
    )
)
def test_any_text_is_read_without_raising_and_valid_calls_name_offered_tools(
    pieces: list[str],
) -> None:
    text = "".join(pieces)
    for call in find_tool_calls(text, OFFERED):
        assert 0 <= call.span[0] <= call.span[1] <= len(text)
        if call.ok:
            assert call.name in OFFERED
        else:
            assert call.error


def test_deeply_nested_or_unclosed_brackets_neither_raise_nor_hang() -> None:
    call = '{"name": "read_file", "arguments": {"path": "a.py"}}'
    for noise in ("[" * 5_000, "{" * 5_000, '{"a": ' * 5_000, "{'" * 5_000, "]" * 5_000):
        assert [c.name for c in find_tool_calls(f"{call}\n{noise}", OFFERED)] == ["read_file"]
