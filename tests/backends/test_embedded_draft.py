"""The embedded agent's draft (``[agent] draft = true``): its first answer is asked as code with no
tools offered, the files it shows are put in place, and the agent goes on with its tools from
there. The real SDKs talk to a scripted model server on 127.0.0.1; the tools change a real git
worktree and the gates run for real."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from backend_helpers import Sink, assert_script_done
from embedded_helpers import COMPATIBLE, KEY, MODELS, SHOUT, backend, call, call_text, slugify_task

from blitz.backends.base import GateCommand
from blitz.backends.embedded_draft import FIX_TOKENS, TEST_TOKENS, instructions
from blitz.backends.options import agent_options
from blitz.config import AgentConfig
from blitz.testing.model_server import ModelServer

SLUGIFY_DEF = "def slugify(text):\n    return re.sub(r'[^a-z0-9]+', '-', text.lower()).strip('-')\n"
SLUGIFY = "import re\n\n\n" + SLUGIFY_DEF
WITH_SLUGIFY = "import re\n\n\n" + SHOUT + "\n\n" + SLUGIFY_DEF
"""``textutil.py`` with SLUGIFY appended: its import at the top."""
SLUGIFY_TEST = "def test_slugify():\n    assert slugify(' Hello, World! ') == 'hello-world'\n"
DRAFT = (
    f"```python\n# textutil.py\n{SLUGIFY}```\n\n"
    f"```python\n# test_textutil.py\nfrom textutil import slugify\n\n\n{SLUGIFY_TEST}```\n"
)
ASKED_FOR_CODE = "To add or change code, show it in a ```python block"
"""A phrase of the draft's instructions, and only of them."""
ONE_FILE = partial(slugify_task, files=("textutil.py",))
FINISH = call("finish", summary="Added slugify.")
PYTEST = GateCommand("test", f"{sys.executable} -m pytest -q -p no:cacheprovider")
WRONG_TEST_DRAFT = (
    f"```python\n# textutil.py\n{SLUGIFY}```\n\n```python\n# test_textutil.py\n"
    "from textutil import slugify\n\n\n"
    "def test_slugify():\n    assert slugify('No specials') == 'nospecials'\n```\n"
)
"""A draft whose code is right and whose test expects the wrong result."""
NO_FIX = {"match": "The checks were run on your code", "reply": {"text": "The code is right."}}
"""A draft's fix asked for, and none shown."""


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


@pytest.mark.parametrize("model", MODELS)
async def test_the_draft_is_put_in_place_and_the_agent_checks_it_and_finishes(
    server: ModelServer, textutil: Path, model: str
) -> None:
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": DRAFT, "usage": {"input": 50, "output": 40}}},
        {
            "match": "## Your draft",
            "reply": {"tool_calls": [call("run_command", command=PYTEST.command)]},
        },
        {"match_tool_result": "2 passed", "reply": {"tool_calls": [call("finish", summary="ok")]}},
    )
    sink, usage = Sink(), []
    request = slugify_task(textutil, PYTEST, on_usage=usage.append)

    result = await backend(server, model, draft=True).run(request, sink)

    assert result.ok, result.error
    assert (textutil / "textutil.py").read_text() == WITH_SLUGIFY
    assert "def test_slugify" in (textutil / "test_textutil.py").read_text()
    drafted, agent = server.requests[0], server.requests[1]
    # The draft is asked with no tools; the agent after it with its tools, told of the draft and
    # shown the files as the draft left them.
    assert not drafted.body.get("tools")
    assert ASKED_FOR_CODE in drafted.text and "(`# textutil.py`)" in drafted.text
    assert agent.body.get("tools") and ASKED_FOR_CODE not in agent.text
    assert "put in place for you (`textutil.py`, `test_textutil.py`)" in agent.last_user_text
    assert "def slugify(text):" in agent.last_user_text
    assert agent.last_user_text.endswith(
        f"The checks were run on the draft and pass (`{PYTEST.command}`). If it does all the task"
        " asks, call finish; if not, fix it with edit_file, then call finish."
    )
    assert result.usage.input_tokens >= 50 and len(usage) == 3  # the draft is a turn, charged
    assert any("from the answer's text: append_to_file textutil.py" in m for m in sink.messages)
    assert_script_done(server)


async def test_a_draft_the_gates_fail_on_is_asked_for_its_fix_as_code(
    server: ModelServer, textutil: Path
) -> None:
    """Bench runs T and U: right code, its test wrong in one assert; shown pytest's output with
    its tools, the 1.5B named the wrong file or rewrote what was right. Asked in the draft's
    conversation, it shows the fix as code, put in place like the draft."""
    fixed = "def test_slugify():\n    assert slugify('No specials') == 'no-specials'\n"
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": WRONG_TEST_DRAFT}},
        {
            "match": "The checks were run on your code: the project's test check fails",
            "reply": {"text": f"```python\n# test_textutil.py\n{fixed}```"},
        },
        {"match": "The checks were run on the draft and pass", "reply": {"tool_calls": [FINISH]}},
    )
    sink = Sink()

    result = await backend(server, COMPATIBLE, draft=True).run(slugify_task(textutil, PYTEST), sink)

    assert result.ok, result.error
    asked = server.requests[1]
    assert not asked.body.get("tools") and asked.body["max_completion_tokens"] == FIX_TOKENS
    assert "assert 'no-specials' == 'nospecials'" in asked.last_user_text  # pytest's own words
    assert asked.last_user_text.endswith(
        "Show what must change for them to pass, in ```python blocks whose first line names the"
        " file (`# textutil.py` or `# test_textutil.py`): each definition that changes, whole (the"
        " code; a test only if the test itself is wrong)."
    )
    assert "'nospecials'" in asked.text  # the draft's conversation
    assert (textutil / "test_textutil.py").read_text().endswith(fixed)
    assert "test_shout" in (textutil / "test_textutil.py").read_text()
    said = [m for m in sink.messages if m.startswith("draft: ")]
    assert said[0].startswith("draft: the project's test check fails (")
    assert said[-1].startswith("draft: The checks were run on the draft and pass")
    assert_script_done(server)


async def test_a_fix_that_shows_the_draft_again_is_not_asked_again_nor_stuck(
    server: ModelServer, textutil: Path
) -> None:
    """Bench run Z: asked for its fix, the 1.5B showed the draft's blocks again, twice; put in
    place as appends of what the files held, they went round as a circle and the attempt was
    stopped as stuck before the agent's first turn. An answer that changes nothing ends the
    fixes, and the draft's own calls are never the agent's circle."""
    edit = call(
        "edit_file",
        path="test_textutil.py",
        old="== 'nospecials'",
        new="== 'no-specials'",
    )
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": WRONG_TEST_DRAFT}},
        {"match": "The checks were run on your code", "reply": {"text": WRONG_TEST_DRAFT}},
        {"match": "The checks were run on the draft: ", "reply": {"tool_calls": [edit]}},
        {"match_tool_result": "edited", "reply": {"tool_calls": [FINISH]}},
    )

    result = await backend(server, COMPATIBLE, draft=True, stuck_repeats=2).run(
        slugify_task(textutil, PYTEST)
    )

    assert result.ok, result.error
    fixes = [r for r in server.requests if "The checks were run on your code" in r.last_user_text]
    assert len(fixes) == 1
    assert_script_done(server)


async def test_the_agent_is_shown_what_a_failing_gate_says_of_its_draft(
    server: ModelServer, textutil: Path
) -> None:
    """Bench run T: the 1.5B's draft was right but its test expected "nospecialcharacters"; told
    only to check the draft, it rewrote both files round and round and never ran the tests. The
    gates are run on the draft and a failing one's output (when the draft's own fix shows none)
    opens the agent's first turn."""
    draft = WRONG_TEST_DRAFT
    # As the 1.5B then called it (run U): the module named, not its test, the quotes double.
    edit = call(
        "edit_file",
        path="textutil.py",
        old='assert slugify("No specials") == "nospecials"',
        new='assert slugify("No specials") == "no-specials"',
    )
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": draft}},
        {**NO_FIX, "times": 1},  # asked for the fix as code, it shows none
        {
            "match": "The checks were run on the draft: the project's test check fails",
            "reply": {"tool_calls": [edit]},
        },
        {
            "match_tool_result": "not in textutil.py but in test_textutil.py: edited",
            "reply": {"tool_calls": [FINISH]},
        },
    )
    sink = Sink()

    result = await backend(server, COMPATIBLE, draft=True).run(slugify_task(textutil, PYTEST), sink)

    assert result.ok, result.error
    first = server.requests[2].last_user_text  # after the draft and its fix asked for
    assert f"(`{PYTEST.command}`, exit code 1)" in first
    assert "AssertionError" in first or "assert 'no-specials' == 'nospecials'" in first
    assert first.endswith(
        "Fix what makes it fail with edit_file (the code; a test only if the test itself is"
        " wrong), then call finish."
    )
    assert any(m.startswith("draft: The checks were run on the draft:") for m in sink.messages)
    mended = (textutil / "test_textutil.py").read_text()
    assert 'assert slugify("No specials") == "no-specials"' in mended
    assert_script_done(server)


async def test_the_agent_making_the_drafts_change_again_is_not_stuck(
    server: ModelServer, textutil: Path
) -> None:
    """Qwen2.5-Coder-1.5B, shown its draft in place, appended the same slugify once more as its
    first call; with the README's stuck_repeats = 2 the draft's own append made that "stuck"."""
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": f"```python\n# textutil.py\n{SLUGIFY}```"}},
        {
            "match": "## Your draft",
            "reply": {"tool_calls": [call("append_to_file", path="textutil.py", text=SLUGIFY)]},
        },
        {"match_tool_result": "already has this text", "reply": {"tool_calls": [FINISH]}},
    )

    request = ONE_FILE(textutil)
    result = await backend(server, COMPATIBLE, draft=True, stuck_repeats=2).run(request)

    assert result.ok, result.error
    assert (textutil / "textutil.py").read_text() == WITH_SLUGIFY
    assert_script_done(server)


async def test_a_draft_with_no_code_to_put_in_place_leaves_the_run_as_it_was(
    server: ModelServer, textutil: Path
) -> None:
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": "I would add a slugify function."}},
        {
            "match": "Task add-slugify",
            "reply": {"tool_calls": [call("append_to_file", path="textutil.py", text=SLUGIFY)]},
        },
        {"match_tool_result": "appended", "reply": {"tool_calls": [call("finish", summary="x")]}},
    )
    sink = Sink()

    result = await backend(server, COMPATIBLE, draft=True).run(ONE_FILE(textutil), sink)

    assert result.ok, result.error
    assert "## Your draft" not in server.requests[1].text
    assert any("draft: nothing put in place" in m for m in sink.messages)
    assert_script_done(server)


async def test_a_draft_that_repeats_itself_is_stopped_and_counted_and_the_run_goes_on(
    server: ModelServer, textutil: Path
) -> None:
    span = "".join(f"value_{i} = compute({i}, 'slug')\n" for i in range(30))  # 900 characters
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": "```python\n" + span * 8}},
        {
            "match": "Task add-slugify",
            "reply": {"tool_calls": [call("append_to_file", path="textutil.py", text=SLUGIFY)]},
        },
        {"match_tool_result": "appended", "reply": {"tool_calls": [call("finish", summary="x")]}},
    )
    sink = Sink()

    result = await backend(server, COMPATIBLE, draft=True).run(ONE_FILE(textutil), sink)

    assert result.ok, result.error
    assert any(m.startswith("draft: none (") for m in sink.messages), sink.messages
    assert "value_0" not in json.dumps(server.requests[1].body)
    assert (textutil / "textutil.py").read_text() == WITH_SLUGIFY
    assert_script_done(server)


async def test_a_draft_stopped_part_way_keeps_the_blocks_it_had_closed(
    server: ModelServer, textutil: Path
) -> None:
    """Bench run S: the 1.5B's draft showed a right slugify, then a test repeating one assert
    until the repetition watch stopped it. The closed block is put in place; the open one is not,
    and the test is asked for in a conversation that holds only what was kept."""
    looping = "    assert slugify('hello world!  ') == 'hello-world'\n" * 40
    stopped = (
        f"```python\n# textutil.py\n{SLUGIFY}```\n\n"
        f"```python\n# test_textutil.py\nfrom textutil import slugify\n\n\ndef test_slugify():\n"
        + looping
    )
    test_file = (
        f"```python\n# test_textutil.py\nfrom textutil import slugify\n\n\n{SLUGIFY_TEST}```"
    )
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": stopped}},
        {"match": "Now the test", "reply": {"text": test_file}},
        {
            "match": "put in place for you (`textutil.py`, `test_textutil.py`)",
            "reply": {"tool_calls": [call("run_command", command=PYTEST.command)]},
        },
        {"match_tool_result": "2 passed", "reply": {"tool_calls": [FINISH]}},
    )
    sink = Sink()

    result = await backend(server, COMPATIBLE, draft=True).run(slugify_task(textutil, PYTEST), sink)

    assert result.ok, result.error
    said = [m for m in sink.messages if m.startswith("draft: stopped part way (")]
    assert said and "repeated itself" in said[0], sink.messages
    assert (textutil / "textutil.py").read_text() == WITH_SLUGIFY
    assert (textutil / "test_textutil.py").read_text().endswith(SLUGIFY_TEST)
    asked = json.dumps(server.requests[1].body)
    assert "def slugify(text):" in asked and "hello world!" not in asked
    assert_script_done(server)


async def test_without_the_setting_there_is_no_draft(server: ModelServer, textutil: Path) -> None:
    server.add(
        {
            "match": "Task add-slugify",
            "reply": {"tool_calls": [call("append_to_file", path="textutil.py", text=SLUGIFY)]},
        },
        {"match_tool_result": "appended", "reply": {"tool_calls": [call("finish", summary="x")]}},
    )

    result = await backend(server, COMPATIBLE).run(ONE_FILE(textutil))

    assert result.ok, result.error
    assert all(ASKED_FOR_CODE not in seen.text for seen in server.requests)
    assert_script_done(server)


def test_the_drafts_example_names_the_tasks_file_in_its_language() -> None:
    said = instructions("Agent.", ["web/app.ts", "web/app.test.ts"])
    assert said.startswith("Agent.\n- To add or change code, show it in a ```typescript block")
    assert "(`// web/app.ts`)" in said
    default = instructions("Agent.", [])
    assert "```python block" in default and "(`# path/to/file.py`)" in default


def test_the_setting_is_read_from_the_agent_section() -> None:
    assert agent_options(AgentConfig.model_validate({"draft": True}))["draft"] is True
    assert agent_options(None)["draft"] is False


async def test_a_conversation_started_afresh_after_a_finish_sent_back_starts_with_a_draft(
    server: ModelServer, textutil: Path
) -> None:
    """A model that writes its calls as text, its finish sent back (no test uses the new code):
    the new conversation starts with a draft asked with what was missing, and the test the draft
    shows is put in place."""
    # The second draft changes the file the first wrote, too: it is a draft all the same.
    changed = SLUGIFY_DEF.replace(".strip('-')", ".strip('-_')")
    second = (
        f"```python\n# textutil.py\n{changed}```\n\n"
        f"```python\n# test_textutil.py\nfrom textutil import slugify\n\n\n{SLUGIFY_TEST}```"
    )
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": f"```python\n# textutil.py\n{SLUGIFY}```"}},
        {"match": "Now the test", "reply": {"text": "No test is needed."}},
        {"match": "## Your draft", "reply": {"text": call_text("finish", summary="Done.")}},
        {"match": ASKED_FOR_CODE, "reply": {"text": second}},
        {
            "match": "put in place for you (`textutil.py`, `test_textutil.py`)",
            "reply": {"text": call_text("finish", summary="Added slugify and its test.")},
        },
    )
    sink = Sink()

    result = await backend(server, COMPATIBLE, draft=True).run(slugify_task(textutil), sink)

    assert result.ok, result.error
    second = server.requests[3]
    assert "You called finish, and it was sent back" in second.last_user_text
    assert "no test uses slugify()" in second.last_user_text
    assert not second.body.get("tools")
    assert "def test_slugify" in (textutil / "test_textutil.py").read_text()
    assert "started afresh: the files as they are, what is missing" in sink.messages
    assert_script_done(server)


@pytest.mark.parametrize("passes", [True, False], ids=["checks-pass", "checks-fail"])
async def test_calls_that_cannot_be_made_after_a_change_leave_it_to_the_checks(
    server: ModelServer, textutil: Path, passes: bool
) -> None:
    """The 1.5B's draft fixed the bug; its edit after that was unreadable JSON, three times. A
    change that passes the finish's checks is the attempt's; one that does not, its failure."""
    cut_off = '```json\n{"name": "edit_file", "arguments": {"path": "textutil.py", "old": "de\n```'
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": DRAFT}},
        {"match": "## Your draft", "reply": {"text": cut_off}, "times": 3},
    )
    if not passes:
        server.add(NO_FIX)
    gate = PYTEST if passes else GateCommand("test", "false")

    result = await backend(server, COMPATIBLE, draft=True).run(slugify_task(textutil, gate))

    assert result.ok is passes, result.error
    if passes:
        assert result.summary.startswith("(its last tool calls could not be made; its change")
    else:
        assert result.error.startswith("the model's tool calls could not be made")
    assert_script_done(server)


@pytest.mark.parametrize("passes", [True, False], ids=["checks-pass", "checks-fail"])
async def test_a_run_stopped_as_stuck_after_a_change_leaves_it_to_the_checks(
    server: ModelServer, textutil: Path, passes: bool
) -> None:
    """The 1.5B's draft fixed the bug; it then made the same edit twice and was stopped as stuck.
    A change that passes the finish's checks is the attempt's; one that does not, its failure."""
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": DRAFT}},
        {"match": "## Your draft", "reply": {"tool_calls": [call("list_dir")]}, "times": 2},
    )
    if not passes:
        server.add(NO_FIX)
    gate = PYTEST if passes else GateCommand("test", "false")

    result = await backend(server, COMPATIBLE, draft=True, stuck_repeats=2).run(
        slugify_task(textutil, gate)
    )

    assert result.ok is passes, result.error
    if passes:
        assert result.summary.startswith("(stopped, stuck: the same list_dir call")
        assert result.summary.endswith("its change passes the checks")
    else:
        assert result.error.startswith("stuck: the same list_dir call")
    assert_script_done(server)


async def test_no_draft_is_asked_once_the_runs_turns_are_spent(
    server: ModelServer, textutil: Path
) -> None:
    """A finish sent back on the last turn: the conversation started afresh asks no draft (it
    would be a turn past the limit); the run stops at its limit."""
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": DRAFT}},
        NO_FIX,
        {"match": "## Your draft", "reply": {"text": call_text("finish", summary="Done.")}},
    )
    failing = GateCommand("test", "false")

    result = await backend(server, COMPATIBLE, draft=True, max_turns=3).run(
        slugify_task(textutil, failing)
    )

    assert not result.ok and result.error == "turn limit of 3 reached"
    assert len(server.requests) == 3
    assert_script_done(server)


async def test_a_draft_without_the_test_the_task_names_is_asked_for_it(
    server: ModelServer, textutil: Path
) -> None:
    """The 1.5B's drafts wrote the test in none of 24 answers: a draft whose new code no test
    uses is asked, in its conversation, for the test file the task names; a task that names none
    is not (nor a draft that wrote its test: the first test above)."""
    test_file = (
        f"```python\n# test_textutil.py\nfrom textutil import slugify\n\n\n{SLUGIFY_TEST}```"
    )
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": f"```python\n# textutil.py\n{SLUGIFY}```"}},
        {"match": "Now the test", "reply": {"text": test_file}},
        {
            "match": "put in place for you (`textutil.py`, `test_textutil.py`)",
            "reply": {"tool_calls": [call("run_command", command=PYTEST.command)]},
        },
        {"match_tool_result": "2 passed", "reply": {"tool_calls": [FINISH]}},
    )

    result = await backend(server, COMPATIBLE, draft=True).run(slugify_task(textutil, PYTEST))

    assert result.ok, result.error
    asked = server.requests[1]
    assert asked.last_user_text == (
        "Your code is in place. Now the test: show test_textutil.py with a short test of"
        " slugify() (three to five asserts) that checks the results the task asks for, in a"
        " ```python block whose first line is `# test_textutil.py`."
    )
    assert not asked.body.get("tools") and SLUGIFY in asked.text  # the draft's conversation
    # Its answer is capped lower than the run's (the 1.5B wrote asserts for five minutes).
    assert server.requests[0].body["max_completion_tokens"] == 8192
    assert asked.body["max_completion_tokens"] == TEST_TOKENS
    assert (textutil / "test_textutil.py").read_text().endswith(SLUGIFY_TEST)
    assert_script_done(server)


async def test_a_task_that_names_no_test_file_is_not_asked_for_a_test(
    server: ModelServer, textutil: Path
) -> None:
    server.add(
        {"match": ASKED_FOR_CODE, "reply": {"text": f"```python\n# textutil.py\n{SLUGIFY}```"}},
        {"match": "## Your draft", "reply": {"tool_calls": [FINISH]}},
    )

    result = await backend(server, COMPATIBLE, draft=True).run(ONE_FILE(textutil))

    assert result.ok, result.error
    assert len(server.requests) == 2
    assert_script_done(server)
