"""What the tests of tool calls written as text share: the embedded agent's tools, as offered to
the model, and readers of what was found."""

from __future__ import annotations

from typing import Any

from blitz.llm.text_tools import TextToolCall, find_tool_calls

# The parameter schemas pydantic-ai builds for the embedded agent's tools (captured from it).
OFFERED: dict[str, dict[str, Any]] = {
    "read_file": {
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string"},
            "offset": {"default": 0, "type": "integer"},
            "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
        },
        "required": ["path"],
        "type": "object",
    },
    "list_dir": {
        "additionalProperties": False,
        "properties": {
            "path": {"default": ".", "type": "string"},
            "depth": {"default": 1, "type": "integer"},
        },
        "type": "object",
    },
    "write_file": {
        "additionalProperties": False,
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"],
        "type": "object",
    },
    "edit_file": {
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string"},
            "old": {"type": "string"},
            "new": {"type": "string"},
        },
        "required": ["path", "old", "new"],
        "type": "object",
    },
    "run_command": {
        "additionalProperties": False,
        "properties": {
            "command": {"type": "string"},
            "timeout": {"anyOf": [{"type": "number"}, {"type": "null"}], "default": None},
        },
        "required": ["command"],
        "type": "object",
    },
    "finish": {
        "additionalProperties": False,
        "properties": {"summary": {"type": "string"}},
        "required": ["summary"],
        "type": "object",
    },
}


def calls(text: str) -> list[tuple[str | None, dict[str, Any]]]:
    """The valid calls found, as (name, arguments); fails on any call with an error."""
    found = find_tool_calls(text, OFFERED)
    assert all(call.ok for call in found), [call.error for call in found]
    return [(call.name, call.arguments) for call in found]


def only_error(text: str) -> TextToolCall:
    [call] = find_tool_calls(text, OFFERED)
    assert not call.ok
    assert call.error
    return call
