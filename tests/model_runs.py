"""What the model end-to-end tests share: a real ``blitz`` process with only the model settings
a test gives it, the scripted conversations of planner, recovery and agent, and readers of what a
run left (the store, the goal branch, the model server's requests)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from blitz.domain import Attempt, Goal
from blitz.llm.planner import PLAN_TOOL, RECOVERY_TOOL
from blitz.store.sql import SqlStore
from blitz.testing.model_server import ModelServer, SeenRequest

BLITZ = str(Path(sys.executable).with_name("blitz"))
TIMEOUT = 120  # seconds any one blitz command may take before the test fails
KEY = "test-key-not-real-1234"
MODEL = "anthropic:claude-sonnet-4-6"
TEST_GATE = f"{shlex.quote(sys.executable)} -m unittest discover -s tests -t . -q"

# Markers of the three kinds of conversation; each occurs in its own system prompt only.
PLANNING = "You plan software work"
RECOVERING = "Find the root cause"

USAGE = {"input": 1000, "output": 50, "cached": 800}
"""What every scripted agent reply reports: 1800 input tokens, 800 of them read from the cache."""

SONNET_COST = (1000 * 3 + 800 * 0.3 + 50 * 15) / 1e6
"""USD of one such reply at claude-sonnet-4-6's list price."""

GREET_TEST = (
    "import unittest\n\nfrom greet import greet\n\n\nclass GreetTest(unittest.TestCase):\n"
    "    def test_greet(self) -> None:\n"
    "        self.assertEqual(greet('Ada'), 'Hello, Ada!')\n"
)
SHOUT_TEST = (
    "import unittest\n\nfrom greet import shout\n\n\nclass ShoutTest(unittest.TestCase):\n"
    "    def test_shout(self) -> None:\n"
    "        self.assertEqual(shout('Ada'), 'HELLO, ADA!')\n"
)
BUGGY_GREET = "def greet(name):\n    return 'Hello ' + name\n"
GREET = "def greet(name):\n    return f'Hello, {name}!'\n"
SHOUT = "\n\n\ndef shout(name):\n    return greet(name).upper()"
GREET_AND_SHOUT = GREET.removesuffix("\n") + SHOUT + "\n"

PLAN: dict[str, Any] = {
    "summary": "Add greet() and shout() with tests.",
    "tasks": [
        {
            "id": "greet",
            "title": "Add greet()",
            "instructions": "Add greet(name) returning 'Hello, NAME!' in greet.py, with a test.",
            "files": ["greet.py", "tests/test_greet.py"],
        },
        {
            "id": "shout",
            "title": "Add shout()",
            "instructions": "Add shout(name), greet(name) in capitals, to greet.py, with a test.",
            "depends_on": ["greet"],
        },
    ],
}
ROOT_CAUSE = "greet() leaves out the comma and the exclamation mark: it returns 'Hello Ada'"
GUIDANCE = "Return f'Hello, {name}!' and run the tests before you finish."


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "input": args}


def reply(*calls: dict[str, Any], **condition: Any) -> dict[str, Any]:
    return {**condition, "reply": {"tool_calls": list(calls), "usage": USAGE}}


def run_tests() -> dict[str, Any]:
    return call("run_command", command=TEST_GATE, timeout=60)


def finish(summary: str) -> dict[str, Any]:
    return call("finish", summary=summary)


def greet_turns(match: str, content: str, *, run: bool) -> list[dict[str, Any]]:
    """One attempt at greet: write greet.py (with ``content``) and its test, maybe run the
    tests, finish."""
    turns = [
        reply(
            call("write_file", path="greet.py", content=content),
            call("write_file", path="tests/test_greet.py", content=GREET_TEST),
            match=match,
        )
    ]
    if run:
        turns.append(reply(run_tests(), match=match, match_tool_result="wrote"))
        turns.append(reply(finish("Added greet()."), match=match, match_tool_result="exit code 0"))
    else:
        turns.append(reply(finish("Added greet()."), match=match, match_tool_result="wrote"))
    return turns


def shout_turns() -> list[dict[str, Any]]:
    line = GREET.splitlines()[1]
    return [
        reply(
            call("edit_file", path="greet.py", old=line, new=line + SHOUT),
            call("write_file", path="tests/test_shout.py", content=SHOUT_TEST),
            match="Task shout:",
        ),
        reply(run_tests(), match="Task shout:", match_tool_result="edited greet.py"),
        reply(finish("Added shout()."), match="Task shout:", match_tool_result="exit code 0"),
    ]


def agent_turns() -> list[dict[str, Any]]:
    """The agent's side of the greet goal: greet's first attempt is wrong (and skips the tests),
    its second is right, then shout builds on it. Turns are tried in order, so attempt 2's,
    whose requests also name the task, come before attempt 1's."""
    return [
        *greet_turns("attempt 2 at this task", GREET, run=True),
        *greet_turns("Task greet:", BUGGY_GREET, run=False),
        *shout_turns(),
    ]


def plan_turn(times: int = 1) -> dict[str, Any]:
    return {
        "match": PLANNING,
        "times": times,
        "reply": {
            "tool_calls": [call(PLAN_TOOL, **PLAN)],
            "usage": {"input": 2000, "output": 300, "cached": 1000},
        },
    }


def recovery_turn() -> dict[str, Any]:
    answer = {"root_cause": ROOT_CAUSE, "action": "retry", "guidance": GUIDANCE}
    return {
        "match": RECOVERING,
        "reply": {
            "tool_calls": [call(RECOVERY_TOOL, **answer)],
            "usage": {"input": 1500, "output": 80, "cached": 500},
        },
    }


# -- helpers ---------------------------------------------------------------------------------------


def gated(repo: Path, *, gates_on_finish: bool = True) -> Path:
    """``repo`` (a committed git repository) with a passing unittest test and a blitz.toml
    whose gate runs it, committed; ``gates_on_finish`` false: the agent's finish runs no gate
    (a wrong attempt fails at the gates and goes to recovery)."""
    (repo / "tests").mkdir()
    (repo / "tests" / "__init__.py").write_text("")
    (repo / "tests" / "test_base.py").write_text(
        "import unittest\n\n\nclass BaseTest(unittest.TestCase):\n"
        "    def test_base(self) -> None:\n        self.assertTrue(True)\n"
    )
    (repo / "blitz.toml").write_text(
        '[project]\nbase_branch = "main"\n\n'
        f"[gates]\ntest = {json.dumps(TEST_GATE)}\ntimeout = 60\n"
        + ("" if gates_on_finish else "\n[agent]\ngates_on_finish = false\n")
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Add tests and blitz.toml")
    return repo


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def blitz(home: Path, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``blitz`` with this test's home and only the model settings given in ``env``."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BLITZ_", "ANTHROPIC_", "OPENAI_", "GITHUB_TOKEN"))
    }
    return subprocess.run(
        [BLITZ, *map(str, args)],
        env={**clean, "BLITZ_HOME": str(home), "COLUMNS": "300", **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def anthropic_env(server: ModelServer, key: str = KEY) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": server.anthropic_base_url,
        "ANTHROPIC_API_KEY": key,
        "BLITZ_MODEL": MODEL,
    }


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.stdout, done.stderr)
    # Only stderr: a result may rightly quote a failed gate's output, Python tracebacks and all.
    assert "Traceback" not in done.stderr
    return done.stdout


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one-line error of a command that must exit 2, whitespace folded."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.startswith("error:"), done.stderr
    return " ".join(done.stderr.split())


def load_goal(home: Path, goal_id: str) -> tuple[Goal, list[Attempt]]:
    """The goal and its attempts, read from the store directly."""
    store = SqlStore(f"sqlite:///{home / 'blitz.db'}")
    try:
        goal = store.get_goal(goal_id)
        assert goal is not None
        return goal, store.load_attempts(goal_id)
    finally:
        store.close()


def task_trailers(repo: Path, branch: str, base: str = "main") -> list[str]:
    """The ``Blitz-Task`` trailers of the commits on ``branch`` since ``base``, oldest first."""
    out = git(
        repo,
        "log",
        "--reverse",
        "--format=%(trailers:key=Blitz-Task,valueonly)",
        f"{base}..{branch}",
    )
    return [line.strip() for line in out.splitlines() if line.strip()]


def assert_script_done(server: ModelServer) -> None:
    assert not server.unmatched, [r.last_user_text[:300] for r in server.unmatched]
    assert not server.pending, server.pending


def of(server: ModelServer, marker: str) -> list[SeenRequest]:
    """The model requests whose conversation contains ``marker``."""
    return [
        r
        for r in server.requests
        if r.path.endswith(("/messages", "/completions")) and marker in r.text
    ]
