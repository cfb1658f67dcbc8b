"""``[explore] judge`` in a project's blitz.toml reaches best-of-N selection: two passing
candidates tie exactly, the judge model named there is the one asked (a scripted model server on
127.0.0.1 sees the request), and the candidate it chooses is the one integrated. Real git, the
real store, the scripted planner and backend, the real model judge over HTTP."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import MakeApp, branch_commits, git, make_repo, write

from blitz.domain import GoalState
from blitz.llm.judge import JUDGE_RULES
from blitz.testing.model_server import ModelServer

pytestmark = pytest.mark.usefixtures("isolated_git")

KEY = "test-key-not-real-judge"
JUDGE = "claude-haiku-4-5"
REASON = "the second one reads better"


@pytest.fixture
def server() -> Iterator[ModelServer]:
    # Always candidate 2 of the prompt: which attempt that is, the prompt says.
    choose = {"name": "choose", "input": {"choice": 2, "reason": REASON}}
    turn = {"match": "Candidate 2", "reply": {"tool_calls": [choose]}}
    with ModelServer([turn], api_key=KEY) as running:
        yield running


async def test_the_judge_set_in_blitz_toml_breaks_an_exact_tie(
    tmp_path: Path, apps: MakeApp, server: ModelServer
) -> None:
    app = apps(
        {
            "tasks": [{"id": "fix", "title": "Fix the value"}],
            # Same size, no spend, no gates: nothing but the judge tells them apart.
            "agent": {
                "fix#1": [[write("value.txt", "one\n")]],
                "fix#2": [[write("value.txt", "two\n")]],
            },
        },
        anthropic_base_url=server.anthropic_base_url,
        anthropic_api_key=KEY,
    )
    repo = make_repo(
        tmp_path,
        files={"value.txt": "start\n"},
        sections={"explore": {"judge": f"anthropic:{JUDGE}"}},
    )
    project = await app.register(repo)
    goal = await app.new_goal(project, "Fix the value", explore=2)
    engine = app.engine()
    engine.start(project, goal)
    finished = (await asyncio.wait_for(engine.run(), 120))[goal.id]
    assert finished.state is GoalState.SUCCEEDED, finished.error

    # The judge named in blitz.toml was asked, once, as the judge.
    assert len(server.requests) == 1, "the judge set in blitz.toml was not asked (once)"
    asked = server.requests[0]
    assert asked.body.get("model") == JUDGE
    assert JUDGE_RULES.splitlines()[0] in asked.text
    assert not server.unmatched and not server.pending
    # The candidate it chose (the prompt's second) is the winner, and the only one integrated.
    chosen = re.search(r"## Candidate 2\W+```diff.*?^\+(one|two)$", asked.text, re.S | re.M)
    assert chosen is not None, asked.text
    attempts = app.store.load_attempts(goal.id, "fix")
    (winner,) = [a for a in attempts if a.selected]
    assert git(repo, "show", f"{winner.ref}:value.txt") == chosen[1]
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("fix",)]
    assert git(repo, "show", f"{goal.branch}:value.txt") == chosen[1]
    assert "chosen by the judge" in winner.verdict and REASON in winner.verdict
    (loser,) = [a for a in attempts if not a.selected]
    assert "tie broken by the judge" in loser.verdict
    # The judge's call is recorded, on the goal as planning is (the scripted agents spent
    # nothing), so its spend outlives this process: a resume or `blitz status` counts it.
    stored = app.store.get_goal(goal.id)
    assert stored is not None
    assert stored.usage.output_tokens == 20 and stored.usage.cost_usd > 0
    assert app.store.usage(goal.id).output_tokens == 0
