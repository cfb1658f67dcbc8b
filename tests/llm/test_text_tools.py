"""Tool calls written as text: the forms small local models use (Qwen2.5-Coder's tags, fenced and
bare JSON), arguments checked against the tool's schema, and the correction for everything else."""

from __future__ import annotations

import json

import pytest

from blitz.llm.text_tools import (
    find_tool_calls,
    how_to_call_tools,
    signature,
    tool_calling_instructions,
)

from .text_tool_helpers import OFFERED, calls, only_error

# -- what real small models write ---------------------------------------------------------------


def test_qwen_tool_call_tags_several_in_one_message() -> None:
    text = (
        "<tool_call>\n"
        '{"name": "list_dir", "arguments": {"path": "."}}\n'
        "</tool_call>\n"
        "<tool_call>\n"
        '{"name": "read_file", "arguments": {"path": "calc.py"}}\n'
        "</tool_call>"
    )
    assert calls(text) == [("list_dir", {"path": "."}), ("read_file", {"path": "calc.py"})]
    assert [call.form for call in find_tool_calls(text, OFFERED)] == ["tag", "tag"]


def test_doubled_braces_as_the_1_5b_template_shows_them() -> None:
    outer = '<tool_call>\n{{"name": "read_file", "arguments": {"path": "calc.py"}}}\n</tool_call>'
    both = '<tool_call>\n{{"name": "read_file", "arguments": {{"path": "calc.py"}}}}\n</tool_call>'
    assert calls(outer) == calls(both) == [("read_file", {"path": "calc.py"})]


def test_an_unclosed_last_tag_still_counts() -> None:
    text = (
        '<tool_call>\n{"name": "read_file", "arguments": {"path": "a.py"}}\n'
        '<tool_call>\n{"name": "run_command", "arguments": {"command": "pytest -q"}}\n'
    )
    assert calls(text) == [
        ("read_file", {"path": "a.py"}),
        ("run_command", {"command": "pytest -q"}),
    ]


def test_fenced_json_after_prose_as_qwen_coder_writes_it() -> None:
    text = (
        "To add the function, I first need to see the current contents of the file. I'll use the"
        ' `read_file` tool:\n\n```json\n{\n  "name": "read_file",\n  "arguments": {\n'
        '    "path": "calc.py"\n  }\n}\n```\n\nAfter reading it I will add `multiply`.'
    )
    [call] = find_tool_calls(text, OFFERED)
    assert (call.name, call.arguments, call.form, call.ok) == (
        "read_file",
        {"path": "calc.py"},
        "fence",
        True,
    )
    assert text[call.span[0] : call.span[1]].startswith("{")


def test_bare_json_with_a_file_written_with_raw_newlines() -> None:
    text = (
        '{"name": "write_file", "arguments": {"path": "calc.py", "content": "def add(a, b):\n'
        '    return a + b\n"}}'
    )
    assert calls(text) == [
        ("write_file", {"path": "calc.py", "content": "def add(a, b):\n    return a + b\n"})
    ]


def test_arguments_as_a_json_string_and_other_keys() -> None:
    text = (
        '{"name": "run_command", "arguments": "{\\"command\\": \\"pytest -q\\"}"}\n'
        '```\n{"name": "read_file", "parameters": {"path": "a.py"}}\n```\n'
        '{"name": "list_dir", "args": {"depth": 2}}\n'
        '{"type": "function", "function": {"name": "finish", "arguments": {"summary": "done"}}}'
    )
    assert calls(text) == [
        ("run_command", {"command": "pytest -q"}),
        ("read_file", {"path": "a.py"}),
        ("list_dir", {"depth": 2}),
        ("finish", {"summary": "done"}),
    ]


def test_a_json_array_of_calls_and_python_literals_in_a_tag() -> None:
    text = (
        '[{"name": "list_dir", "arguments": {}}, {"name": "read_file", "arguments": {"path": "a"}}]'
        "\n<tool_call>{'name': 'finish', 'arguments': {'summary': 'ok'}}</tool_call>"
    )
    assert calls(text) == [
        ("list_dir", {}),
        ("read_file", {"path": "a"}),
        ("finish", {"summary": "ok"}),
    ]


def test_flat_arguments_in_a_tag() -> None:
    assert calls('<tool_call>{"name": "read_file", "path": "a.py"}</tool_call>') == [
        ("read_file", {"path": "a.py"})
    ]


# -- what is not a call -------------------------------------------------------------------------


def test_prose_that_merely_mentions_a_tool_is_no_call() -> None:
    for text in (
        "I will use read_file to look at calc.py, then run_command to run the tests.",
        "The function returns {x: 1} and the list [1, 2].",
        'The package is {"name": "read_file", "version": "1.0"}.',  # no arguments: data
        'Maybe {"name": "read_file"} helps.',
        '```json\n{"name": "app", "scripts": {"test": "pytest"}}\n```',  # a package.json
        '{"name": "app", "arguments": "none"}',  # arguments that are no object
        "",
    ):
        assert find_tool_calls(text, OFFERED) == [], text


def test_tool_definitions_copied_out_of_the_prompt_are_no_calls() -> None:
    # What Qwen2.5-Coder-1.5B wrote in bench/local_model.py: its chat template's <tools> list.
    definitions = [
        {"type": "function", "function": {"name": name, "description": "...", "parameters": schema}}
        for name, schema in OFFERED.items()
    ]
    text = "<tools>\n" + "\n".join(json.dumps(d) for d in definitions) + "\n</tools>"
    assert find_tool_calls(text, OFFERED) == []
    bare = json.dumps({"name": "write_file", "parameters": OFFERED["write_file"]})
    assert find_tool_calls(f"```json\n{bare}\n```", OFFERED) == []
    # In a tag it was meant as a call: the model is told what it wrote instead.
    call = only_error(f"<tool_call>{bare}</tool_call>")
    assert call.error is not None
    assert call.error.startswith("that is the definition of write_file, not a call of it")


def test_code_fences_are_code_not_calls() -> None:
    text = '```python\ncall = {"name": "read_file", "arguments": {"path": "a.py"}}\n```'
    assert find_tool_calls(text, OFFERED) == []


@pytest.mark.parametrize("form", ["<tool_call>{}</tool_call>", "```json\n{}\n```", "{}"])
def test_a_call_of_a_tool_not_offered_says_which_tools_there_are(form: str) -> None:
    # A name and an object of arguments are a call in any form: the model is told the tools
    # rather than that it called none.
    call = only_error(form.replace("{}", '{"name": "delete_repo", "arguments": {}}', 1))
    assert call.name == "delete_repo"
    assert call.error is not None
    assert "no tool named 'delete_repo'" in call.error
    assert "read_file" in call.error  # it says which tools there are


def test_a_whole_change_written_as_one_call_is_told_how_to_write_files() -> None:
    # What Qwen2.5-Coder-1.5B wrote in bench/local_model.py at temperature 0.2, three times
    # alike: one call named after the task, the files' contents its arguments.
    change = {
        "textutil.py": {"content": "def slugify(text):\n    return text\n"},
        "test_textutil.py": {"content": "from textutil import slugify\n"},
    }
    call = only_error(f"```json\n{json.dumps({'name': 'add-slugify', 'arguments': change})}\n```")
    assert call.error is not None
    assert call.error.startswith("there is no tool named 'add-slugify'; the tools are read_file")
    assert "call write_file once for each file" in call.error
    assert '{"name": "write_file", "arguments": {"path": "textutil.py", "content": "..."}}' in (
        call.error
    )
    # Arguments that are not all paths get no such hint.
    other = only_error('{"name": "look", "arguments": {"path": ".", "x.py": 1}}')
    assert other.error is not None and "write_file once" not in other.error


def test_a_whole_change_written_as_broken_json_is_told_what_is_wrong() -> None:
    # Qwen2.5-Coder-1.5B in bench/local_model.py (session 14, run D), three times alike: the
    # call named after the task, its last string never closed; it was told it called no tool.
    text = (
        '```json\n{\n  "name": "add-slugify",\n  "arguments": {\n    "textutil.py": {\n'
        '      "content": "def slugify(text):\\n    return text.lower()"\n    },\n'
        '    "test_textutil.py": {\n      "content": "from textutil import slugify\\n\\n'
        "def test_slugify():\\n    assert slugify('!@#$%^&*()_+[]{}|;:,.<>?/') == '-'\n"
        "    }\n  }\n}\n```"
    )
    call = only_error(text)
    assert call.error is not None
    assert call.error.startswith("the call to add-slugify is cut off; there is no tool named")
    assert "'add-slugify', the tools are read_file, list_dir" in call.error
    # Broken JSON that only mentions a name is not a call.
    assert find_tool_calls('```json\n{"name": "pkg", "version": [1,}\n```', OFFERED) == []


def test_a_call_naming_the_task_is_the_one_tool_its_arguments_fit() -> None:
    # What Qwen2.5-Coder-1.5B wrote in bench/local_model.py: the task's id for the tool's name.
    text = (
        '```json\n{"name": "add_slugify", "arguments": '
        '{"path": "textutil.py", "content": "def slugify(text):\\n    return text\\n"}}\n```'
    )
    assert calls(text) == [
        ("write_file", {"path": "textutil.py", "content": "def slugify(text):\n    return text\n"})
    ]
    tagged = '<tool_call>{"name": "tests", "arguments": {"command": "pytest -q"}}</tool_call>'
    assert calls(tagged) == [("run_command", {"command": "pytest -q"})]


def test_a_call_naming_the_task_with_the_tool_among_its_arguments_is_that_tool() -> None:
    # Bench run T: the 1.5B named every call after its task, and its finish put the tool's name
    # in "path"; told there is no tool 'add-slugify', it wrote the same, round after round.
    text = (
        '```json\n{"name": "add-slugify", "arguments": '
        '{"path": "finish", "summary": "Added slugify."}}\n```'
    )
    assert calls(text) == [("finish", {"summary": "Added slugify."})]
    # The rest must fit that tool; and a tool's name as a value is no call of it otherwise.
    unfit = '{"name": "add-slugify", "arguments": {"path": "finish", "text": "x"}}'
    assert "no tool named 'add-slugify'" in (only_error(unfit).error or "")
    data = '{"name": "add-slugify", "arguments": {"path": "finish", "command": "pytest"}}'
    assert "no tool named 'add-slugify'" in (only_error(data).error or "")


def test_arguments_that_fit_several_tools_or_none_name_no_tool() -> None:
    # {"path": "."} fits read_file and list_dir alike; {"url": ...} fits none.
    for text in (
        '{"name": "look", "arguments": {"path": "."}}',
        '<tool_call>{"name": "look", "arguments": {"path": "."}}</tool_call>',
    ):
        call = only_error(text)
        assert call.error is not None and "no tool named 'look'" in call.error
    fetch = only_error('{"name": "fetch", "arguments": {"url": "x"}}')
    assert fetch.error is not None and "no tool named 'fetch'" in fetch.error


# -- calls that cannot be made ------------------------------------------------------------------


def test_malformed_json_in_a_tag_says_so() -> None:
    call = only_error(
        '<tool_call>\n{"name": "read_file", "arguments": {"path": a.py}}\n</tool_call>'
    )
    assert call.name == "read_file"
    assert call.error is not None
    assert "not valid JSON" in call.error


def test_bare_quotes_in_the_last_argument_are_the_code_s() -> None:
    # What Qwen2.5-Coder-1.5B wrote in bench/local_model.py: code with its docstring's quotes
    # unescaped, three times alike after being told to escape them.
    code = 'def slugify(text):\n    """Lowercase it."""\n    return text.lower().strip("-")\n'
    raw = code.replace("\n", "\\n")
    arguments = f'{{"path": "t.py", "content": "{raw}"}}'
    text = f'```json\n{{"name": "write_file", "arguments": {arguments}}}\n```'
    assert calls(text) == [("write_file", {"path": "t.py", "content": code})]
    edit = '{"name": "edit_file", "arguments": {"path": "a.py", "old": "x", "new": "f("hi")"}}'
    assert calls(edit) == [("edit_file", {"path": "a.py", "old": "x", "new": 'f("hi")'})]


def test_bare_quotes_in_every_argument_are_the_code_s() -> None:
    # Qwen2.5-Coder-1.5B (bench/local_model.py, the bugfix goal) wrote edit_file with the whole
    # function, its docstring's quotes raw, in both "old" and "new", three times after being told
    # to escape them. Each value runs from its key to the last quote before the next key.
    code = 'def mean(values):\n    """The mean."""\n    return sum(values) / len(values)\n'
    fixed = code.replace("len(values)", "max(len(values), 1)")
    old, new = (c.replace("\n", "\\n") for c in (code, fixed))
    text = (
        '```json\n{"name": "edit_file", "arguments": '
        f'{{"path": "stats.py", "old": "{old}", "new": "{new}"}}}}\n```'
    )
    assert calls(text) == [("edit_file", {"path": "stats.py", "old": code, "new": fixed})]
    assert calls(
        '{"name": "edit_file", "arguments": {"path": "a.py", "old": "x = "1"", "new": "y"}}'
    ) == [("edit_file", {"path": "a.py", "old": 'x = "1"', "new": "y"})]


def test_quotes_that_cannot_be_told_apart_from_the_calls_own_are_reported() -> None:
    # Code holding a key and a value of its own ("a": "): read so, the call has an argument
    # the tool does not take, and the model is told what is wrong.
    call = only_error(
        '{"name": "edit_file", "arguments": {"path": "a.py", "old": "d = {"a": "b"}", "new": "y"}}'
    )
    assert call.name == "edit_file"
    assert call.error is not None


def test_a_call_cut_off_mid_way() -> None:
    call = only_error(
        '```json\n{"name": "write_file", "arguments": {"path": "a.py", "content": "de'
    )
    assert call.error is not None
    assert "cut off" in call.error


def test_a_tag_without_json_is_prose_and_a_call_without_a_name_an_error() -> None:
    assert find_tool_calls("<tool_call>\n</tool_call>", OFFERED) == []
    assert find_tool_calls("I should write <tool_call> tags, sorry.", OFFERED) == []
    assert '"name"' in (only_error('<tool_call>{"arguments": {}}</tool_call>').error or "")


def test_arguments_that_do_not_match_the_schema() -> None:
    missing = only_error(
        '<tool_call>{"name": "write_file", "arguments": {"path": "a"}}</tool_call>'
    )
    assert "'content' is a required property" in (missing.error or "")
    assert "write_file(path: string, content: string)" in (missing.error or "")
    wrong = only_error('{"name": "read_file", "arguments": {"path": "a", "limit": "ten"}}')
    assert "limit" in (wrong.error or "")
    extra = only_error('{"name": "list_dir", "arguments": {"dir": "src"}}')
    assert "'dir' was unexpected" in (extra.error or "")
    listed = only_error('{"name": "list_dir", "arguments": ["src"]}')
    assert "must be a JSON object, not an array" in (listed.error or "")
    string = only_error('{"name": "list_dir", "arguments": "src"}')
    assert "not a JSON object" in (string.error or "")


def test_a_schema_error_quoting_a_whole_file_is_clipped() -> None:
    text = json.dumps({"name": "run_command", "arguments": {"command": ["x" * 10_000]}})
    assert len(only_error(text).error or "") < 600


# -- the correction -----------------------------------------------------------------------------


def test_how_to_call_tools_names_every_tool_and_its_example_is_a_valid_call() -> None:
    message = how_to_call_tools(OFFERED)
    for name, schema in OFFERED.items():
        assert signature(name, schema) in message
    [call] = find_tool_calls(message, OFFERED)
    assert call.ok
    assert call.form == "tag"
    # One a small model may copy as it is: a tool needing nothing, with a real default.
    assert (call.name, call.arguments) == ("list_dir", {"path": "."})
    required = {n: s for n, s in OFFERED.items() if s.get("required")}
    [placeholder] = find_tool_calls(how_to_call_tools(required), required)
    assert (placeholder.name, placeholder.arguments) == ("read_file", {"path": "..."})
    assert "read_file(path: string, offset?: integer, limit?: integer | null)" in message


def test_how_to_call_tools_without_tools() -> None:
    assert "No tools" in how_to_call_tools({})


def test_instructions_for_text_tool_mode_describe_each_tool_and_show_a_valid_call() -> None:
    described = {"read_file": "Read a text\n  file.", "finish": "Call this when done."}
    message = tool_calling_instructions(OFFERED, described)
    assert "cannot be called through a tool-calling interface" in message
    assert (
        "- read_file(path: string, offset?: integer, limit?: integer | null): Read a text file."
        in message
    )
    assert "- finish(summary: string): Call this when done." in message
    assert "- list_dir(path?: string, depth?: integer)\n" in message
    [call] = find_tool_calls(message, OFFERED)
    assert call.ok
    assert tool_calling_instructions({}) == ""


def test_only_calls_whose_arguments_are_an_object_can_go_to_the_tool_s_own_validation() -> None:
    [schema_broken] = find_tool_calls('{"name": "write_file", "arguments": {"path": "a"}}', OFFERED)
    assert schema_broken.readable and not schema_broken.ok
    [as_list] = find_tool_calls('{"name": "list_dir", "arguments": ["src"]}', OFFERED)
    assert not as_list.readable
    [unknown] = find_tool_calls('<tool_call>{"name": "rm", "arguments": {}}</tool_call>', OFFERED)
    assert not unknown.readable
    [cut] = find_tool_calls('<tool_call>{"name": "list_dir", "arguments": {', OFFERED)
    assert not cut.readable
    [fine] = find_tool_calls('{"name": "list_dir", "arguments": {}}', OFFERED)
    assert fine.readable and fine.ok
