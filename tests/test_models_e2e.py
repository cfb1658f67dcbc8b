"""Models end to end: the real ``blitz`` command, the real SDKs, a scripted model server.

Each test starts the installed ``blitz`` console script as a process whose planner, recovery
planner and embedded agent talk over HTTP to a :class:`~blitz.testing.model_server.ModelServer`
running in the test process on 127.0.0.1. The agent's tools change real git worktrees, the
project's unittest gate runs for real, and the results are read back through ``blitz status``,
``blitz events``, the goal branch and the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from blitz_process import goals_in
from model_runs import (
    GREET,
    GREET_AND_SHOUT,
    GUIDANCE,
    KEY,
    MODEL,
    PLAN,
    PLANNING,
    RECOVERING,
    ROOT_CAUSE,
    SONNET_COST,
    USAGE,
    agent_turns,
    anthropic_env,
    assert_script_done,
    blitz,
    gated,
    git,
    greet_turns,
    load_goal,
    of,
    ok,
    plan_turn,
    recovery_turn,
    refused,
    task_trailers,
)

from blitz.llm.planner import PLAN_TOOL
from blitz.store.sql import SqlStore
from blitz.testing.model_server import ModelServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """A committed repository whose blitz.toml runs a quick unittest gate."""
    return gated(git_repo)


@pytest.fixture
def unchecked_repo(git_repo: Path) -> Path:
    """The same, but the agent's finish runs no gate: a wrong attempt goes to recovery."""
    return gated(git_repo, gates_on_finish=False)


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(api_key=KEY) as running:
        yield running


# -- a goal planned, recovered and finished by Claude ---------------------------------------------


def test_run_plans_recovers_and_commits_with_a_model(
    unchecked_repo: Path, home: Path, server: ModelServer
) -> None:
    repo = unchecked_repo
    server.add(plan_turn(), recovery_turn(), *agent_turns())

    done = blitz(
        home, "run", "Add a greet function", "--repo", repo, "--json", **anthropic_env(server)
    )

    result = json.loads(ok(done))
    assert result["state"] == "succeeded", result
    goal_id, branch = result["goal"], result["branch"]
    tasks = {t["id"]: t for t in result["tasks"]}
    assert {tid: (t["state"], t["attempts"]) for tid, t in tasks.items()} == {
        "greet": ("succeeded", 2),
        "shout": ("succeeded", 1),
    }
    assert_script_done(server)
    # Every request carried the key; the planner was offered its output tool, the agent its own.
    assert all(r.api_key_present for r in server.requests)
    planning = of(server, PLANNING)
    assert len(planning) == 1 and "Add a greet function" in planning[0].text
    assert {t["name"] for t in planning[0].body["tools"]} == {PLAN_TOOL}
    agent_tools = {t["name"] for t in of(server, "Task shout:")[0].body["tools"]}
    assert {"write_file", "edit_file", "run_command", "finish"} <= agent_tools
    assert PLAN_TOOL not in agent_tools
    # The recovery planner saw the failing gate's output and the diff of the buggy attempt.
    (recovering,) = of(server, RECOVERING)
    assert "'Hello Ada' != 'Hello, Ada!'" in recovering.text
    assert "return 'Hello ' + name" in recovering.text
    # The second attempt was told what went wrong and what to do.
    retried = of(server, "attempt 2 at this task")[0]
    assert ROOT_CAUSE in retried.text and GUIDANCE in retried.text

    # Each task committed once on the goal branch, in dependency order; the checkout untouched.
    assert task_trailers(repo, branch) == ["greet", "shout"]
    assert git(repo, "show", f"{branch}:greet.py") == GREET_AND_SHOUT
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert not (repo / "greet.py").exists()

    detail = json.loads(ok(blitz(home, "status", goal_id, "--json")))
    assert detail["state"] == "succeeded"
    assert [(r["task"], r["action"], r["root_cause"]) for r in detail["recoveries"]] == [
        ("greet", "retry", ROOT_CAUSE)
    ]
    assert [(a["task"], a["number"], a["state"]) for a in detail["attempts"]] == [
        ("greet", 1, "failed"),
        ("greet", 2, "succeeded"),
        ("shout", 1, "succeeded"),
    ]
    assert detail["attempts"][0]["gates"] == {"test": False}

    # Usage as the server reported it: two replies for greet's first attempt, three for each other.
    replies = {("greet", 1): 2, ("greet", 2): 3, ("shout", 1): 3}
    goal, attempts = load_goal(home, goal_id)
    for attempt in attempts:
        n = replies[(attempt.task_id, attempt.number)]
        usage = attempt.usage
        assert (usage.input_tokens, usage.cached_tokens, usage.output_tokens) == (
            1800 * n,
            800 * n,
            50 * n,
        ), attempt
        assert usage.cost_usd == pytest.approx(SONNET_COST * n)
    # The planning and recovery calls are kept on the goal.
    planning_usage = goal.usage
    assert (
        planning_usage.input_tokens,
        planning_usage.cached_tokens,
        planning_usage.output_tokens,
    ) == (3000 + 2000, 1000 + 500, 300 + 80)
    assert planning_usage.cost_usd == pytest.approx((3500 * 3 + 1500 * 0.3 + 380 * 15) / 1e6)

    description = (home / "goals" / goal_id / "pull-request.md").read_text()
    assert ROOT_CAUSE in description
    log = ok(blitz(home, "events", goal_id, "--json", "--last", "0"))
    kinds = [json.loads(line)["kind"] for line in log.splitlines()]
    assert "recovery.planned" in kinds and kinds[-1] == "goal.succeeded"

    # The key is never written down: not in the events, the database or the description.
    database = b"".join(p.read_bytes() for p in home.glob("blitz.db*"))
    for text in (log.encode(), database, description.encode()):
        assert KEY.encode() not in text


def test_plan_shows_the_model_plan_and_runs_nothing(
    repo: Path, home: Path, server: ModelServer
) -> None:
    server.add(plan_turn(times=2))

    shown = json.loads(
        ok(
            blitz(
                home,
                "plan",
                "Add a greet function",
                "--repo",
                repo,
                "--json",
                **anthropic_env(server),
            )
        )
    )

    assert shown["summary"] == PLAN["summary"]
    assert [(t["id"], t["depends_on"]) for t in shown["tasks"]] == [
        ("greet", []),
        ("shout", ["greet"]),
    ]
    assert shown["tasks"][0]["instructions"] == PLAN["tasks"][0]["instructions"]
    assert len(server.requests) == 1  # the planner only: no agent ran
    assert "Add a greet function" in server.requests[0].text
    assert json.loads(ok(blitz(home, "status", "--json"))) == []
    assert git(repo, "branch", "--list").split() == ["*", "main"]

    table = ok(blitz(home, "plan", "Add a greet function", "--repo", repo, **anthropic_env(server)))
    assert "greet" in table and "shout" in table
    assert_script_done(server)


def test_a_plan_the_model_never_gets_right_fails_the_goal_and_its_cost_is_kept(
    repo: Path, home: Path, server: ModelServer
) -> None:
    server.add(
        {"match": PLANNING, "times": -1, "reply": {"text": "I'd add a function.", "usage": USAGE}}
    )

    done = blitz(
        home, "run", "Add a greet function", "--repo", repo, "--json", **anthropic_env(server)
    )

    result = json.loads(done.stdout)
    assert result["state"] == "failed", result
    assert "could not produce a valid plan after 4 attempts" in result["error"]
    goal, attempts = load_goal(home, result["goal"])
    assert attempts == []
    calls = len(server.requests)
    assert calls > 4  # every answer's calls, the output retries included
    assert goal.usage.input_tokens == 1800 * calls
    assert goal.usage.cost_usd == pytest.approx(SONNET_COST * calls)


# -- provider errors ------------------------------------------------------------------------------


def test_plan_says_when_the_provider_stays_down(
    repo: Path, home: Path, server: ModelServer
) -> None:
    server.add(plan_turn())
    server.fail_next(4, 529)  # every attempt the planner makes

    done = blitz(home, "plan", "Add a greet function", "--repo", repo, **anthropic_env(server))

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert message.startswith("error:") and "overloaded (529)" in message, message
    assert [r.status for r in server.requests] == [529] * 4


def test_an_overloaded_provider_is_retried_within_the_attempt(
    repo: Path, home: Path, server: ModelServer, tmp_path: Path
) -> None:
    # A plan file, so the agent's are the first model calls and the 529s land on them.
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"tasks": [PLAN["tasks"][0]]}))
    server.add(*greet_turns("Task greet:", GREET, run=True))
    server.fail_next(2, 529, api="anthropic")

    done = blitz(
        home,
        "run",
        "Add a greet function",
        "--repo",
        repo,
        "--plan",
        plan,
        "--json",
        **anthropic_env(server),
    )

    result = json.loads(ok(done))
    assert result["state"] == "succeeded", result
    assert [(t["id"], t["state"], t["attempts"]) for t in result["tasks"]] == [
        ("greet", "succeeded", 1)
    ]
    assert_script_done(server)
    calls = [r for r in server.requests if r.path == "/v1/messages"]
    assert [r.status for r in calls] == [529, 529, 200, 200, 200]
    # The same request, asked again: the retries are blitz's, inside the one attempt.
    assert calls[0].body == calls[1].body == calls[2].body
    assert task_trailers(repo, result["branch"]) == ["greet"]
    log = ok(blitz(home, "events", result["goal"], "--json", "--last", "0"))
    kinds = [json.loads(line)["kind"] for line in log.splitlines()]
    assert "task.crashed" not in kinds and "breaker.opened" not in kinds


def test_a_rate_limit_storm_longer_than_the_retries_makes_the_task_wait_not_fail(
    repo: Path, home: Path, server: ModelServer, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"tasks": [PLAN["tasks"][0]]}))
    server.add(*greet_turns("Task greet:", GREET, run=True))
    # Four 429s use up the attempt's tries; the fifth opens the provider's breaker for the 2 s
    # the provider asks. Before, the task crashed and the goal failed within seconds.
    server.fail_next(5, 429, retry_after=2, api="anthropic", message="Rate limited")

    done = blitz(
        home, "run", "Add a greet function", "--repo", repo, "--plan", plan, "--json",
        **anthropic_env(server),
    )  # fmt: skip

    result = json.loads(ok(done))
    assert result["state"] == "succeeded", result
    assert [(t["id"], t["state"], t["attempts"]) for t in result["tasks"]] == [
        ("greet", "succeeded", 2)
    ]
    assert_script_done(server)
    calls = [r for r in server.requests if r.path == "/v1/messages"]
    assert [r.status for r in calls][:6] == [429] * 5 + [200]
    log = ok(blitz(home, "events", result["goal"], "--json", "--last", "0"))
    events = [json.loads(line) for line in log.splitlines()]
    kinds = [e["kind"] for e in events]
    assert "task.crashed" not in kinds and "task.failed" not in kinds
    (waiting,) = [e for e in events if e["kind"] == "task.waiting"]
    assert waiting["data"]["seconds"] == 2 and "rate limited (429)" in waiting["data"]["reason"]
    # The provider's breaker opened and closed again, announced and persisted.
    store = SqlStore(f"sqlite:///{home / 'blitz.db'}")
    try:
        breaker_events = [e for e in store.events(limit=10_000) if e.kind.startswith("breaker.")]
        (record,) = [b for b in store.load_breakers() if b.key == "provider:anthropic"]
        (task,) = store.load_tasks(result["goal"])
    finally:
        store.close()
    assert [(e.data["key"], e.data["to"]) for e in breaker_events] == [
        ("provider:anthropic", "open"),
        ("provider:anthropic", "half_open"),
        ("provider:anthropic", "closed"),
    ]
    assert record.state == "closed" and task.crashes == 0
    assert task_trailers(repo, result["branch"]) == ["greet"]


def test_a_rejected_key_stops_the_run_and_names_the_setting(
    repo: Path, home: Path, server: ModelServer
) -> None:
    server.add(plan_turn())
    wrong = "sk-ant-wrong-key-5678"

    done = blitz(
        home,
        "run",
        "Add a greet function",
        "--repo",
        repo,
        "--json",
        **anthropic_env(server, wrong),
    )

    message = refused(done)
    assert "ANTHROPIC_API_KEY" in message and "401" in message, message
    assert wrong not in done.stdout + done.stderr
    assert [r.status for r in server.requests] == [401]  # not retried
    assert server.pending  # the plan was never asked for with a good key

    # The project is paused with what to fix, so no other goal fails the same way meanwhile.
    projects = json.loads(ok(blitz(home, "projects", "list", "--json")))
    [project] = projects
    assert project["paused"]
    again = refused(
        blitz(home, "run", "Add a greet function", "--repo", repo, **anthropic_env(server))
    )
    assert "paused" in again and "401" in again, again


# -- a local OpenAI-compatible model ---------------------------------------------------------------


def test_a_local_model_that_answers_in_plain_json_is_planned_for_by_prompt(
    repo: Path, home: Path
) -> None:
    one_task = {"summary": PLAN["summary"], "tasks": [PLAN["tasks"][0]]}
    with ModelServer() as local:
        # No tool call: plain JSON text, as small local models often answer.
        local.add(
            {"match": PLANNING, "times": 3, "reply": {"json": one_task}},
            *greet_turns("Task greet:", GREET, run=True),
        )
        model = f"openai-compatible:qwen2.5-coder@{local.openai_base_url}"

        done = blitz(
            home, "run", "Add a greet function", "--repo", repo, "--json", BLITZ_MODEL=model
        )

        result = json.loads(ok(done))
        assert result["state"] == "succeeded", result
        assert_script_done(local)
        assert {r.api for r in local.requests} == {"openai"}
        planning = of(local, PLANNING)
        # Tool output first (asked once more after the text answer), then JSON in the text.
        assert [bool(r.body.get("tools")) for r in planning] == [True, True, False]
        log = ok(blitz(home, "events", result["goal"], "--json", "--last", "0"))
        reasked = [e for e in map(json.loads, log.splitlines()) if e["kind"] == "plan.reasked"]
        assert [e["message"] for e in reasked] == [
            "the model did not answer with the plan tool; asking for JSON"
        ]
        assert task_trailers(repo, result["branch"]) == ["greet"]
        assert git(repo, "show", f"{result['branch']}:greet.py") == GREET
        _, (attempt,) = load_goal(home, result["goal"])
        assert attempt.usage.input_tokens == 1800 * 3 and attempt.usage.cached_tokens == 800 * 3
        assert attempt.usage.cost_usd == 0  # a self-hosted model costs nothing per token


def test_an_openai_name_on_a_llamacpp_server_plans_through_a_refused_schema(
    repo: Path, home: Path
) -> None:
    # The set-up: `openai:` with OPENAI_BASE_URL at llama.cpp, whose grammar converter
    # refuses the plan's schema. Chat completions, streamed and capped; then prompted JSON.
    one_task = {"summary": PLAN["summary"], "tasks": [PLAN["tasks"][0]]}
    refusal = {
        "error": {
            "code": 400,
            "message": "Unable to generate parser for this template. Automatic parser generation "
            "failed: JSON schema error at #/properties/tasks: unrecognized type foo",
            "type": "invalid_request_error",
        }
    }
    with ModelServer() as local:
        local.add(
            {
                "match": PLANNING,
                "reply": {
                    "error": {
                        "status": 400,
                        "body": json.dumps(refusal),
                        "headers": {"Content-Type": "application/json"},
                    }
                },
            },
            {"match": PLANNING, "reply": {"json": one_task}},
        )
        env = {
            "OPENAI_BASE_URL": local.openai_base_url,
            "OPENAI_API_KEY": "sk-local-not-checked-0000",
            "BLITZ_MODEL": "openai:qwen2.5-coder-1.5b",
            "BLITZ_MODEL_CALL_TIMEOUT": "600",
        }

        shown = json.loads(
            ok(blitz(home, "plan", "Add a greet function", "--repo", repo, "--json", **env))
        )

        assert [t["id"] for t in shown["tasks"]] == ["greet"]
        assert_script_done(local)
        assert [(r.path, r.status, r.stream) for r in local.requests] == [
            ("/v1/chat/completions", 400, True),
            ("/v1/chat/completions", 200, True),
        ]
        assert [bool(r.body.get("tools")) for r in local.requests] == [True, False]
        assert all(r.body.get("max_completion_tokens") for r in local.requests)
        assert "$defs" not in json.dumps(local.requests[0].body)


def test_a_slow_but_steady_local_model_is_never_cut_and_retried(repo: Path, home: Path) -> None:
    # Every pause is under BLITZ_MODEL_TIMEOUT, the whole answer well over it.
    one_task = {"summary": PLAN["summary"], "tasks": [PLAN["tasks"][0]]}
    with ModelServer() as local:
        call = {"name": PLAN_TOOL, "input": one_task}
        local.add({"match": PLANNING, "reply": {"tool_calls": [call], "chunk_delay": 0.25}})
        model = f"llamacpp:qwen2.5-coder@{local.openai_base_url}"
        env = {"BLITZ_MODEL": model, "BLITZ_MODEL_TIMEOUT": "2"}

        shown = json.loads(
            ok(blitz(home, "plan", "Add a greet function", "--repo", repo, "--json", **env))
        )

        assert [t["id"] for t in shown["tasks"]] == ["greet"]
        [sent] = local.requests  # one request, never cut and sent again
        assert sent.stream and len(json.dumps(one_task)) // 16 * 0.25 > 2


# -- no model at all -------------------------------------------------------------------------------


def test_without_a_model_run_says_how_to_configure_one(repo: Path, home: Path) -> None:
    message = refused(blitz(home, "run", "Add a greet function", "--repo", repo))
    for part in ("no model is configured", "BLITZ_MODEL", "ANTHROPIC_API_KEY", "blitz demo"):
        assert part in message, message

    keyless = refused(blitz(home, "run", "Add a greet function", "--repo", repo, BLITZ_MODEL=MODEL))
    assert "needs an API key" in keyless and "ANTHROPIC_API_KEY" in keyless, keyless
    assert goals_in(home) == []


def test_demo_needs_no_model(home: Path, tmp_path: Path) -> None:
    result = json.loads(ok(blitz(home, "demo", "--json", "--path", tmp_path / "demo")))
    assert result["state"] == "succeeded"
