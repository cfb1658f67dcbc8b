"""Tool calls a model wrote as text instead of through the tool-calling interface.

Small local models (Qwen2.5-Coder served by llama.cpp or Ollama, say) often answer a request that
offers tools by writing the call into their message: in ``<tool_call>`` tags as their chat
template asks (several in one message, the last perhaps unclosed, sometimes with the template's
doubled braces ``{{...}}``), in a fenced json block, or as a bare JSON object
``{"name": ..., "arguments": {...}}``. :func:`find_tool_calls` finds those calls and checks their
arguments against the tool's JSON schema; :func:`how_to_call_tools` is what to tell a model that
wrote neither a call nor anything that can be read as one.

Pure functions over text and JSON schemas, no model framework. A ``<tool_call>`` tag is always
meant as a call, so whatever is wrong with one (unreadable JSON, a tool that is not offered) comes
back as a call with an error for the model. JSON elsewhere counts only when it names an offered
tool and carries arguments, so prose, code or a fenced ``package.json`` never becomes a call, nor
does a tool's definition copied out of the prompt (``{"name": ..., "parameters": <a schema>}``). A
call naming something that is no tool (small models write the task's or the file's name) is a call
of the one offered tool whose parameters its arguments fit, when exactly one does; when none
does, it comes back with an error naming the tools (and, for arguments keyed by file paths, how to
write files), not as no call at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema

from blitz.llm.lenient_json import SCAN_BUDGET, Budget, balanced_end, blank, objects, parse

Form = Literal["tag", "fence", "json"]
"""How a call was written: in ``<tool_call>`` tags, in a fenced block, or as bare JSON."""

ARGUMENT_KEYS = ("arguments", "parameters", "args")
"""The keys a call's arguments go by, in the order they are looked for."""

JSON_FENCES = frozenset({"", "json", "jsonc", "json5", "tool_call", "tool_code"})
"""Fence languages whose content may be a call; other fences (```python, ```sh) are code."""

MAX_ERRORS = 3
"""Schema errors reported per call: the first few say enough to fix it."""

_TAG = re.compile(r"<tool_call>(.*?)(?:</tool_call>|(?=<tool_call>)|\Z)", re.S | re.I)
_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_OPENER = re.compile(r"[{\[]")
_NAMED = re.compile(r"""(?<!\w)["']?name["']?\s*:\s*["']([\w.-]+)["']""")
_WITH_ARGUMENTS = re.compile(r"""(?<!\w)["']?(?:arguments|parameters|args)["']?\s*:\s*\{""")


@dataclass(frozen=True, slots=True, kw_only=True)
class TextToolCall:
    """A tool call found in a model's text.

    ``name`` is None when the call could not be read at all; ``error`` is what to tell the model
    when the call cannot be made as written (None when it can); ``span`` is where in the text the
    call was written. ``readable`` says the call names an offered tool and its arguments are a
    JSON object: it can be handed to the tool's own validation even when ``error`` says they
    break its schema.
    """

    name: str | None
    arguments: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    form: Form
    span: tuple[int, int]
    readable: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def find_tool_calls(text: str, offered: Mapping[str, Mapping[str, Any]]) -> list[TextToolCall]:
    """The tool calls written in ``text``, in order; ``offered`` maps each tool the model may call
    to the JSON schema of its parameters. Calls that cannot be made carry an ``error``."""
    calls: list[TextToolCall] = []
    budget = Budget(SCAN_BUDGET)
    rest = text
    for tag in _TAG.finditer(text):
        # A tag holding no JSON at all is prose about tags ("write it in <tool_call> tags").
        calls.extend(_calls_in(text, *tag.span(1), "tag", offered, budget))
        rest = blank(rest, *tag.span())
    for fence in _FENCE.finditer(rest):
        if fence.group(1).lower() in JSON_FENCES:
            calls.extend(_calls_in(rest, *fence.span(2), "fence", offered, budget))
        rest = blank(rest, *fence.span())
    calls.extend(_calls_in(rest, 0, len(rest), "json", offered, budget))
    return sorted(calls, key=lambda call: call.span)


def how_to_call_tools(offered: Mapping[str, Mapping[str, Any]]) -> str:
    """The correction for a model that answered with neither a tool call nor a recognisable one:
    how to write a call, with an example, and every offered tool's parameters."""
    if not offered:
        return "No tools are available in this conversation; answer in plain text."
    return (
        "Your message called no tool, or none in a form that could be read. To act, call a tool:"
        " through the tool-calling interface if you can, or else by writing the call in your"
        f" message {_how_to_write(offered, {})}"
    )


def tool_calling_instructions(
    offered: Mapping[str, Mapping[str, Any]], descriptions: Mapping[str, str] | None = None
) -> str:
    """Instructions for a model given no tool definitions (a server that refuses them): how to
    call the tools by writing the calls as text, and what each tool does (``descriptions``)."""
    if not offered:
        return ""
    return (
        "Tools cannot be called through a tool-calling interface in this conversation. Call a"
        f" tool by writing the call in your message {_how_to_write(offered, descriptions or {})}"
    )


def _how_to_write(offered: Mapping[str, Mapping[str, Any]], descriptions: Mapping[str, str]) -> str:
    name, arguments = _example_call(offered)
    example = json.dumps({"name": name, "arguments": arguments})
    tools = "\n".join(
        f"- {signature(n, s)}"
        + (f": {' '.join(descriptions[n].split())}" if descriptions.get(n) else "")
        for n, s in offered.items()
    )
    return (
        "as one JSON object with the tool's name and its arguments inside <tool_call>"
        f" tags, like this:\n\n<tool_call>\n{example}\n</tool_call>\n\n"
        "Write one <tool_call> block per call. The arguments are a JSON object (not a string)"
        " with the parameters below (? marks an optional one):\n"
        f"{tools}"
    )


def signature(name: str, schema: Mapping[str, Any]) -> str:
    """A tool's parameters in one line for the model: ``read_file(path: string, n?: integer)``."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    params = [
        f"{key}{'' if key in required else '?'}: {_type_name(spec)}"
        for key, spec in properties.items()
        if isinstance(spec, Mapping)
    ]
    return f"{name}({', '.join(params)})"


# -- finding calls ------------------------------------------------------------------------------


def _calls_in(
    text: str,
    start: int,
    end: int,
    form: Form,
    offered: Mapping[str, Mapping[str, Any]],
    budget: Budget,
) -> Iterator[TextToolCall]:
    """The calls in the JSON values between ``start`` and ``end``. In a tag every value is meant
    as a call; elsewhere only those naming an offered tool with arguments are."""
    meant = form == "tag"
    position = start
    while (opener := _OPENER.search(text, position, end)) is not None:
        begin = opener.start()
        close, closed = balanced_end(text, begin, end, budget)
        if not budget.spend(close - begin):  # reading it costs its length again
            return  # hostile or huge text: what was found so far is all there is
        span = (begin, close)
        try:
            value = parse(text[begin:close])
        except ValueError as exc:
            named = _NAMED.search(text, begin, close)
            call = named.group(1) if named is not None else None
            # Call-shaped JSON naming no tool (a small model's whole change, named after the
            # task, its code unescaped) is meant as a call too: the model hears what is wrong.
            shaped = call is not None and _WITH_ARGUMENTS.search(text, begin, close) is not None
            if meant or call in offered or shaped:
                what = f"the call to {call}" if call else "the call"
                problem = "is cut off" if not closed else f"is not valid JSON ({exc})"
                if call is not None and call not in offered:
                    problem += f"; there is no tool named {call!r}, the tools are"
                    problem += f" {', '.join(offered)}"
                yield _unreadable(form, span, f"{what} {problem}", name=call)
                position = close
            else:
                position = begin + 1  # not a call; look inside it
            continue
        found = objects(value)
        if found is None:
            if meant:
                yield _unreadable(form, span, "the <tool_call> block is not a JSON object")
            position = close
            continue
        for obj in found:
            call = _call(obj, form, span, offered)
            if call is not None:
                yield call
        position = close


def _call(
    obj: Mapping[str, Any], form: Form, span: tuple[int, int], offered: Mapping[str, Any]
) -> TextToolCall | None:
    """The call ``obj`` stands for, or None when it is data that merely looks like JSON."""
    meant = form == "tag"
    if isinstance(obj.get("function"), Mapping):  # {"type": "function", "function": {...}}
        obj = obj["function"]
    name = obj.get("name")
    key = next((k for k in ARGUMENT_KEYS if k in obj), None)
    if key is not None and _schema_like(obj[key]):
        # A tool's definition written back (Qwen's template lists them in <tools> tags, and a
        # small model may copy that list out): not a call, whatever its name.
        if not meant:
            return None
        what = f"the definition of {name}" if isinstance(name, str) and name else "a definition"
        return _unreadable(form, span, f"that is {what}, not a call of it", name=None)
    raw: Any = obj[key] if key is not None else None
    if key is not None and name not in offered:
        name, raw = _tool_for(raw, offered) or (name, raw)
    # {"name": <no tool>, "arguments": {...}} fitting no tool is still meant as a call: the
    # model is told the tools, not that it called none.
    if not meant and (key is None or (name not in offered and not _call_shaped(name, obj[key]))):
        return None
    if not isinstance(name, str) or not name:
        return _unreadable(form, span, 'the call has no "name" (the name of the tool to call)')
    if name not in offered:
        error = f"there is no tool named {name!r}; the tools are {', '.join(offered)}"
        return TextToolCall(
            name=name, error=error + _files_hint(obj.get(key or ""), offered), form=form, span=span
        )
    if key is None:  # {"name": "read_file", "path": "a.py"}: the rest are the arguments
        raw = {k: v for k, v in obj.items() if k != "name"}
    arguments, problem = _arguments(raw)
    readable = problem is None
    if problem is None:
        problem = _check(arguments, offered[name])
    if problem is not None:
        problem = f"invalid arguments for {name}: {problem}; its parameters: "
        problem += signature(name, offered[name])
    return TextToolCall(
        name=name, arguments=arguments, error=problem, form=form, span=span, readable=readable
    )


def _call_shaped(name: Any, raw: Any) -> bool:
    """Whether a name and an object of arguments make the shape of a call."""
    return isinstance(name, str) and bool(name) and isinstance(raw, Mapping)


_PATH = re.compile(r"[\w./-]*\w\.\w+|[\w.-]+/[\w./-]+")


def _files_hint(raw: Any, offered: Mapping[str, Any]) -> str:
    """How to write files, for arguments keyed by file paths (small models write a whole
    change as one call named after the task, ``{"a.py": {"content": ...}, "b.py": ...}``)."""
    if "write_file" not in offered or not isinstance(raw, Mapping) or not raw:
        return ""
    paths = [key for key in raw if isinstance(key, str) and _PATH.fullmatch(key)]
    if len(paths) != len(raw):
        return ""
    example = json.dumps({"name": "write_file", "arguments": {"path": paths[0], "content": "..."}})
    return (
        "; to write files, call write_file once for each file, its content the file's whole"
        f" new text (what it holds now with your change): {example}"
    )


def _schema_like(raw: Any) -> bool:
    """Whether ``raw`` is a JSON schema of an object (``{"type": "object", "properties": {...}}``)
    rather than arguments: no tool of blitz's takes parameters named ``type`` and ``properties``."""
    return (
        isinstance(raw, Mapping)
        and raw.get("type") == "object"
        and isinstance(raw.get("properties"), Mapping)
    )


def _tool_for(raw: Any, offered: Mapping[str, Mapping[str, Any]]) -> tuple[str, Any] | None:
    """The one offered tool whose parameters ``raw`` fits (every required one given, none
    unknown), and its arguments, for a call that names something else: small models name the
    task or the file instead of the tool, or put the tool's name among the arguments (the 1.5B,
    bench run T: ``{"name": "add-slugify", "arguments": {"path": "finish", "summary": ...}}``:
    then that argument is dropped). None when no tool or more than one fits."""
    arguments, problem = _arguments(raw)
    if problem is not None or not arguments:
        return None
    fits = _fitting(set(arguments), offered)
    if len(fits) == 1:
        return fits[0], raw
    if fits:
        return None
    named = [(k, v) for k, v in arguments.items() if isinstance(v, str) and v in offered]
    if len(named) != 1:
        return None
    key, tool = named[0]
    rest = {k: v for k, v in arguments.items() if k != key}
    return (tool, rest) if tool in _fitting(set(rest), offered) else None


def _fitting(keys: set[str], offered: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The offered tools whose parameters ``keys`` fit: every required one, none unknown."""
    return [
        name
        for name, schema in offered.items()
        if set(schema.get("required", ())) <= keys <= set(schema.get("properties", {}))
    ]


def _arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """The arguments as an object, or what is wrong with them."""
    if raw is None or raw == "":
        return {}, None
    if isinstance(raw, str):
        try:
            raw = parse(raw)
        except ValueError:
            return {}, "the arguments are a string that is not a JSON object"
    if not isinstance(raw, Mapping):
        return {}, f"the arguments must be a JSON object, not {_json_type(raw)}"
    return dict(raw), None


def _check(arguments: dict[str, Any], schema: Mapping[str, Any]) -> str | None:
    """What is wrong with ``arguments`` under the tool's parameter ``schema`` (None: nothing)."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(arguments), key=jsonschema.exceptions.relevance)
    if not errors:
        return None
    shown = []
    for error in errors[:MAX_ERRORS]:
        where = "/".join(str(part) for part in error.absolute_path)
        message = _clip(error.message)
        shown.append(f"{where}: {message}" if where else message)
    more = len(errors) - MAX_ERRORS
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def _unreadable(
    form: Form, span: tuple[int, int], problem: str, *, name: str | None = None
) -> TextToolCall:
    how = ' write {"name": "<tool>", "arguments": {...}} as valid JSON'
    hint = "; escape quotes and newlines inside strings" if "valid JSON" in problem else ""
    return TextToolCall(name=name, error=f"{problem};{how}{hint}", form=form, span=span)


# -- schemas ------------------------------------------------------------------------------------


def _type_name(spec: Mapping[str, Any]) -> str:
    if "enum" in spec:
        return " | ".join(json.dumps(value) for value in spec["enum"])
    if "const" in spec:
        return json.dumps(spec["const"])
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if key in spec:
            return " | ".join(_type_name(s) for s in spec[key] if isinstance(s, Mapping))
    kind = spec.get("type")
    if isinstance(kind, list):
        return " | ".join(map(str, kind))
    if kind == "array" and isinstance(spec.get("items"), Mapping):
        return f"array of {_type_name(spec['items'])}"
    return str(kind) if kind else "any"


_PLACEHOLDERS: dict[str, Any] = {
    "string": "...",
    "integer": 1,
    "number": 1,
    "boolean": True,
    "array": [],
    "object": {},
    "null": None,
}


def _example_call(offered: Mapping[str, Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The call shown as the example: one a model may copy as it is (small models do), so a tool
    with no required parameters and its first default (``list_dir`` with ``{"path": "."}``) when
    there is one, else the first tool with placeholders for its required parameters."""
    for name, schema in offered.items():
        if schema.get("required"):
            continue
        for key, spec in (schema.get("properties") or {}).items():
            if isinstance(spec, Mapping) and spec.get("default") is not None:
                return name, {key: spec["default"]}
    name, schema = next(iter(offered.items()))
    return name, _example_arguments(schema)


def _example_arguments(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments for the example call: a placeholder for each required parameter."""
    properties = schema.get("properties") or {}
    example: dict[str, Any] = {}
    for key in schema.get("required") or ():
        spec = properties.get(key) or {}
        if spec.get("examples"):
            example[key] = spec["examples"][0]
        elif "enum" in spec:
            example[key] = spec["enum"][0]
        else:
            kinds = spec.get("type") or [s.get("type") for s in spec.get("anyOf", ())]
            kind = kinds if isinstance(kinds, str) else next(iter(kinds or ()), "string")
            example[key] = _PLACEHOLDERS.get(kind, "...")
    return example


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else type(value).__name__


def _clip(message: str, limit: int = 200) -> str:
    """A message no longer than ``limit`` (a schema error quotes the value, maybe a whole file)."""
    if len(message) <= limit:
        return message
    half = (limit - 5) // 2
    return f"{message[:half]} ... {message[-half:]}"
