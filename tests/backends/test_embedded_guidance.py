"""What the embedded agent gives a model so it does not lose its way, and how it answers a model
that says nothing: the task prompt lists the repository's files (a small model otherwise guesses
paths) and shows the task's files as they are; an empty answer is re-asked with a correction in
the same conversation, then fails the attempt saying so; a run that ends in prose after writing
files is judged by the gates, not thrown away; a ``finish`` with nothing changed (or only blank
space) is sent back once when the task needs a change; and a server of one's own is asked at a
low temperature. The real pydantic-ai/openai client talks to a scripted chat-completions server on
127.0.0.1; the tools change a real git worktree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_helpers import assert_script_done, task
from embedded_helpers import ANTHROPIC, COMPATIBLE, KEY, backend, call, call_text, slugify_task
from engine_helpers import git
from pydantic_ai.messages import ModelRequest, UserPromptPart

from blitz.backends.embedded_reasks import ECHOED, echoes
from blitz.testing.model_server import ModelServer

HELLO = "def hello():\n    return 'hello'\n"


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


def commit(worktree: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (worktree / name).parent.mkdir(parents=True, exist_ok=True)
        (worktree / name).write_text(text)
    git(worktree, "add", ".")
    git(worktree, "commit", "-qm", "files")


async def test_the_task_prompt_lists_the_repositorys_files(
    server: ModelServer, worktree: Path
) -> None:
    commit(worktree, {"textutil.py": "", "test_textutil.py": "", "docs/guide.md": ""})
    server.add({"reply": {"text": call_text("finish", summary="Nothing to do.")}})

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok, result.error
    prompt = server.requests[0].last_user_text
    files = prompt[prompt.index("## Files (4)") :].splitlines()[1:]
    assert files == ["README.md", "docs/guide.md", "test_textutil.py", "textutil.py"]
    # No example path for a small model to copy.
    assert "src/" not in json.dumps(server.requests[0].body["messages"])


async def test_the_task_prompt_shows_the_task_s_files_as_they_are_now(
    server: ModelServer, worktree: Path
) -> None:
    # A small model that never read a file rewrites it without what it held.
    commit(worktree, {"textutil.py": "def shout(text):\n    return text.upper()\n"})
    commit(worktree, {"big.py": "x = 1\n" * 3000})
    (worktree.parent / "outside.py").write_text("SECRET = 1\n")
    server.add({"reply": {"tool_calls": [call("finish", summary="Done.")]}})
    files = ("textutil.py", "test_new.py", "../outside.py", "big.py", "textutil.py")

    result = await backend(server, COMPATIBLE).run(task(worktree, files=files))

    assert result.ok, result.error
    prompt = server.requests[0].last_user_text
    shown = prompt[prompt.index("## textutil.py (as it is now)") :]
    assert shown.splitlines()[1:3] == ["   1| def shout(text):", "   2|     return text.upper()"]
    assert prompt.count("## textutil.py") == 1
    assert "## big.py: too long to show here; read it with read_file" in prompt
    assert "test_new.py (as" not in prompt  # to be created
    assert "SECRET" not in prompt and "outside.py (as" not in prompt


@pytest.mark.parametrize("empty", ["", "```", "```\n\n```"])  # a bare fence says nothing
async def test_an_empty_answer_is_re_asked_and_the_run_goes_on(
    server: ModelServer, worktree: Path, empty: str
) -> None:
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [{"name": "list_dir", "input": {}}]}},
        {"match_tool_result": "README.md", "reply": {"text": empty}},
        {
            "match": "Your last answer was empty",
            "reply": {
                "tool_calls": [
                    {"name": "write_file", "input": {"path": "hello.py", "content": HELLO}}
                ]
            },
        },
        {
            "match_tool_result": "wrote 32 bytes",
            "reply": {"text": call_text("finish", summary="Added hello().")},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok, result.error
    assert (worktree / "hello.py").read_text() == HELLO
    assert any(m.startswith("re-asked: Your last answer was empty.") for m in result.messages)
    # The re-ask follows the tool's result in the same conversation; the empty answer is not
    # kept in it.
    reask = server.requests[2].body["messages"]
    assert [m["role"] for m in reask[-3:]] == ["assistant", "tool", "user"]
    assert not any(m["role"] == "assistant" and not m.get("tool_calls") for m in reask)
    assert_script_done(server)


async def test_empty_answers_that_go_on_fail_the_attempt_saying_so(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [{"name": "list_dir", "input": {}}]}},
        {"reply": {"text": "  \n"}, "times": -1},
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert not result.ok and not result.crashed and not result.config_error
    assert result.error == "the model's output was unusable: its answer was empty"
    assert len(server.requests) == 4  # the task, the empty answer and two re-asks
    # Every answer's tokens are counted, the empty ones' too (100 in, 20 out each, as scripted).
    assert (result.usage.input_tokens, result.usage.output_tokens) == (400, 80)


async def test_re_asks_are_counted_in_a_row_and_a_tool_call_between_them_starts_anew(
    server: ModelServer, worktree: Path
) -> None:
    # Qwen2.5-Coder-1.5B answered empty three times in one run, each time between useful calls
    # (bench/local_model.py, session 17): the run's two re-asks were spent by the third, and a
    # run that was getting on failed.
    server.add(
        {"match": "Task t1", "reply": {"text": ""}},
        {"match": "Your last answer was empty", "reply": {"tool_calls": [call("list_dir")]}},
        {"match_tool_result": "README.md", "reply": {"text": ""}},
        {"match_tool_result": "README.md", "reply": {"text": ""}},
        {
            "match_tool_result": "README.md",
            "reply": {"tool_calls": [call("write_file", path="hello.py", content=HELLO)]},
        },
        {"match_tool_result": "wrote 32 bytes", "reply": {"text": ""}},
        {
            "match_tool_result": "wrote 32 bytes",
            "reply": {"tool_calls": [call("finish", summary="Added hello().")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok and result.summary == "Added hello().", result.error
    reasked = [m for m in result.messages if m.startswith("re-asked: Your last answer was empty")]
    assert len(reasked) == 4  # one, two in a row, one: never more than two in a row
    assert_script_done(server)


async def test_an_empty_answer_to_a_finish_sent_back_is_told_again_what_it_was_sent_back_with(
    server: ModelServer, worktree: Path
) -> None:
    server.add(
        {
            "match": "Task t1",
            "reply": {"tool_calls": [call("write_file", path="hello.py", content=HELLO)]},
        },
        {
            "match_tool_result": "wrote 32 bytes",
            "reply": {"tool_calls": [call("finish", summary="Done.")]},
        },
        {"match_tool_result": "no test uses hello()", "reply": {"text": ""}},
        {
            "match": "Your last answer was empty. You called finish, but no test uses hello()",
            "times": 2,  # sent back twice, then believed
            "reply": {"tool_calls": [call("finish", summary="It needs no test.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(
        task(worktree, files=("hello.py", "test_hello.py"), allow_empty=False)
    )

    assert result.ok and result.summary == "It needs no test.", result.error
    assert_script_done(server)


async def test_a_run_that_ends_in_prose_after_changing_files_is_judged_by_the_gates(
    server: ModelServer, worktree: Path
) -> None:
    # Small models often write the change, then say so instead of calling finish.
    write = {"name": "write_file", "input": {"path": "hello.py", "content": HELLO}}
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [write]}},
        {"match_tool_result": "wrote 32 bytes", "reply": {"text": "I added   hello()."}},
    )

    result = await backend(server, COMPATIBLE).run(task(worktree))

    assert result.ok, result.error
    assert result.summary == "(ended without calling finish) I added hello()."
    assert (worktree / "hello.py").read_text() == HELLO
    assert len(server.requests) == 2  # over: not re-asked


WRITE_HELLO = call("write_file", path="hello.py", content=HELLO)


async def test_a_finish_with_nothing_changed_is_sent_back_once(
    server: ModelServer, worktree: Path
) -> None:
    # Small models call finish having changed nothing; told so, they may yet make the change.
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [call("finish", summary="Done.")]}},
        {"match": "no file in the repository has changed", "reply": {"tool_calls": [WRITE_HELLO]}},
        {
            "match_tool_result": "wrote 32 bytes",
            "reply": {"text": call_text("finish", summary="Added.")},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree, allow_empty=False))

    assert result.ok, result.error
    assert result.summary == "Added."
    assert (worktree / "hello.py").read_text() == HELLO
    assert "re-asked: finish was called with no file changed" in result.messages
    assert_script_done(server)


async def test_a_finish_with_only_blank_space_changed_is_sent_back_once(
    server: ModelServer, worktree: Path
) -> None:
    # Qwen2.5-Coder-1.5B rewrote a file as it was, its docstring's line broken, and finished.
    shout = 'def shout(text):\n    """The text in capitals."""\n    return text.upper()\n'
    commit(worktree, {"textutil.py": shout})
    reflowed = 'def shout(text):\n    """The text in capitals.\n    """\n    return text.upper()'
    added = shout + "\n\ndef slug(text):\n    return text.lower()\n"
    server.add(
        {
            "match": "Task t1",
            "reply": {"tool_calls": [call("write_file", path="textutil.py", content=reflowed)]},
        },
        {"match_tool_result": "wrote", "reply": {"tool_calls": [call("finish", summary="Done.")]}},
        {
            "match": "are only blank space",
            "reply": {"tool_calls": [call("write_file", path="textutil.py", content=added)]},
        },
        {"match_tool_result": "wrote 115", "reply": {"text": call_text("finish", summary="Ok.")}},
    )

    tidy = task(worktree, allow_empty=False, title="Tidy textutil.py", instructions="Tidy it.")
    result = await backend(server, COMPATIBLE).run(tidy)

    assert result.ok, result.error
    assert result.summary == "Ok."
    assert (worktree / "textutil.py").read_text() == added
    assert "re-asked: finish was called with only blank space changed" in result.messages
    assert "your changes to textutil.py are only blank space" in server.requests[2].text
    assert_script_done(server)


async def test_a_model_that_calls_finish_again_with_nothing_changed_is_believed(
    server: ModelServer, worktree: Path
) -> None:
    # Once only: the attempt's own check (a task that must change a file) judges the rest.
    server.add(
        {"match": "Task t1", "reply": {"tool_calls": [call("finish", summary="Done.")]}},
        {
            "match": "no file in the repository has changed",
            "reply": {"tool_calls": [call("finish", summary="It already works.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(task(worktree, allow_empty=False))

    assert result.ok, result.error
    assert result.summary == "It already works."
    assert len(server.requests) == 2
    assert_script_done(server)


async def test_a_finish_counts_changes_made_by_commands_and_tasks_that_may_change_nothing(
    server: ModelServer, worktree: Path
) -> None:
    # A file a command wrote is a change; a task that may change nothing is never sent back.
    server.add(
        {
            "match": "Task t1",
            "reply": {"tool_calls": [call("run_command", command="echo x > made.txt")]},
        },
        {
            "match_tool_result": "exit code 0",
            "reply": {"tool_calls": [call("finish", summary="Made.")]},
        },
        {"match": "Task t2", "reply": {"tool_calls": [call("finish", summary="Checked.")]}},
    )

    make = task(worktree, allow_empty=False, title="Make made.txt", instructions="Make it.")
    made = await backend(server, COMPATIBLE).run(make)
    assert made.ok and made.summary == "Made.", made.error
    (worktree / "made.txt").unlink()
    checked = await backend(server, COMPATIBLE).run(task(worktree, task_id="t2", allow_empty=True))
    assert checked.ok and checked.summary == "Checked.", checked.error
    assert len(server.requests) == 3  # neither sent back
    assert_script_done(server)


@pytest.mark.parametrize(
    ("model", "configured", "sent"),
    [(COMPATIBLE, None, 0.2), (COMPATIBLE, 0.7, 0.7), (ANTHROPIC, None, None)],
)
async def test_the_agents_temperature(
    server: ModelServer, worktree: Path, model: str, configured: float | None, sent: float | None
) -> None:
    # A server of one's own samples hot unless told (llama.cpp: 0.8); a small model at that
    # heat writes broken calls. [agent] temperature wins; hosted models keep their default.
    server.add({"reply": {"tool_calls": [call("finish", summary="Done.")]}})

    result = await backend(server, model, temperature=configured).run(task(worktree))

    assert result.ok, result.error
    assert server.requests[0].body.get("temperature") == sent


async def test_an_answer_that_only_repeats_the_message_it_answers_is_re_asked(
    server: ModelServer, textutil: Path
) -> None:
    """Qwen2.5-Coder-1.5B (bench/local_model.py, session 23), told its finish had no test,
    answered "append_to_file test_textutil.py, with the import it needs, then call finish.":
    words of the message, not an end in prose. It is told so, with what its finish was sent
    back with, and goes on."""
    test = (
        "from textutil import slugify\n\n\ndef test_slugify():\n    assert slugify('A b') == 'a b'"
    )
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"tool_calls": [call("append_to_file", path="textutil.py", text=SLUGIFY)]},
        },
        {"match_tool_result": "appended", "reply": {"tool_calls": [call("finish", summary="x")]}},
        {
            "match_tool_result": "no test uses slugify()",
            "reply": {"text": "Append_to_file test_textutil.py, with the import it needs, then"},
        },
        {
            "match": "only repeated words of mine",
            "reply": {"tool_calls": [call("append_to_file", path="test_textutil.py", text=test)]},
        },
        {
            "match_tool_result": "line(s) to test_textutil.py",
            "reply": {"tool_calls": [call("finish", summary="Tested.")]},
        },
    )

    result = await backend(server, COMPATIBLE).run(slugify_task(textutil))

    assert result.ok, result.error
    told = server.requests[3].last_user_text
    assert told.startswith(ECHOED + "\n\nYou called finish, but no test uses slugify() yet")
    assert "re-asked: Your answer only repeated words of mine" in " ".join(result.messages)
    assert_script_done(server)


SLUGIFY = "def slugify(text):\n    return text.lower()"


def test_a_short_end_in_prose_is_not_read_as_an_echo() -> None:
    asked = [
        ModelRequest(
            parts=[UserPromptPart("Make the next tool call, or call finish if the task is done.")]
        )
    ]
    assert not echoes("The task is done.", asked)  # a plain end, in words the message had
    assert echoes("make the next tool call, or call finish if the task is done", asked)
    assert not echoes("I added slugify and its test; the task is done.", asked)
