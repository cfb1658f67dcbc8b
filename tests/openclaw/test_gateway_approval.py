"""Plan approval as an interactive step through a real OpenClaw gateway: a goal submitted in a
conversation to a project whose plans need approval; the plan is shown to the person (the fleet
plugin's ``before_tool_call`` approval, delivered to the person's connected client), the turn
waits, and the person's answer from the client's approval prompt (as the Control UI's buttons
answer: ``plugin.approval.resolve``) approves the plan (``allow-once``), the turn goes on and the
goal runs to its pull request, or rejects it (``deny``), and the goal ends. A ``/approve ID ...``
sent into the conversation instead is a chat turn of that session processed while the waiting
turn goes on, and OpenClaw then at times fails the waiting turn ("SQLite transcript changed while
preparing rewrite", its own check of concurrent writes to a session's transcript; "The agent run
failed before producing a reply."): CI runs failed so on both tests, the plan approved or rejected
and the goal going on as answered, never on the blitz side."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Daemon
from gateway import Gateway, message_text, said
from goals import GOAL_TIMEOUT, TURN_TIMEOUT, await_state, submitted_goal
from person import Person

from blitz.testing.model_server import ModelServer

REVIEW = "blitz_review_plan"


@pytest.fixture
def person(openclaw_gateway: Gateway) -> Iterator[Person]:
    """The person's client, connected for the test: where OpenClaw shows a plugin's approval."""
    with Person(openclaw_gateway) as client:
        yield client


def submit_for_approval(
    gateway: Gateway, model: ModelServer, *, session: str, project: str, title: str
) -> str:
    """The person asks for a goal on ``project`` (whose plans need approval); the model submits
    it with a one-task plan; fleet's news that the plan waits arrives. The goal's id."""
    plan = {"summary": title, "tasks": [{"id": "multiply", "title": "Add multiply"}]}
    submit = {"project": project, "goal": title, "plan": json.dumps(plan)}
    model.add(
        {
            "match": f"have blitz do: {title}",
            "reply": {"tool_calls": [{"name": "blitz_submit_goal", "input": submit}]},
        },
        {"match_tool_result": f": {title} (state", "reply": {"text": f"Submitted: {title}."}},
        # The turn fleet's news wakes: its words carry the plan (in the prompt as OpenClaw
        # quotes a system event, so matched where no quote is).
        {
            "match": f"on {project} (g-",
            "reply": {"text": f"The plan of {title} waits for your approval."},
        },
    )
    gateway.send(session, f"have blitz do: {title}")
    gateway.wait_for(
        session,
        said("assistant", f"The plan of {title} waits for your approval."),
        timeout=GOAL_TIMEOUT,
        what="fleet's news that the plan waits for approval",
    )
    return submitted_goal(model, title)


def ask_to_review(
    gateway: Gateway, model: ModelServer, person: Person, *, session: str, goal_id: str
) -> dict[str, Any]:
    """The person asks to see the plan; the model calls the review tool; OpenClaw shows the plan
    to the person's client and the turn waits. The approval request."""
    model.add(
        {
            "match": f"show me the plan of {goal_id}",
            "reply": {"tool_calls": [{"name": REVIEW, "input": {"goal": goal_id}}]},
        },
    )
    # From the person's client: the turn's approval request carries the scopes of the client
    # that asked (without operator.approvals: "missing scope", the tool call blocked).
    person.send(session, f"show me the plan of {goal_id}")
    return dict(
        person.event(
            "plugin.approval.requested",
            lambda p: (
                p["request"].get("toolName") == REVIEW
                and str(p["request"].get("sessionKey", "")).endswith(session)
            ),
            timeout=TURN_TIMEOUT,
            what="the plan shown for approval",
            session=session,
        )
    )


def test_the_person_approves_the_plan_in_the_conversation_and_hears_of_the_pull_request(
    openclaw_gateway: Gateway,
    scripted_model: ModelServer,
    blitz_daemon: Daemon,
    person: Person,
) -> None:
    session, title = "blitz-approve", "Add multiply 7e21"
    pulls = "https://github.com/acme/gated-calc/pull/"  # numbered across the fake's repos
    goal_id = submit_for_approval(
        openclaw_gateway, scripted_model, session=session, project="gated-calc", title=title
    )
    assert blitz_daemon.goal(goal_id)["state"] == "awaiting_approval"

    asked = ask_to_review(
        openclaw_gateway, scripted_model, person, session=session, goal_id=goal_id
    )
    request = asked["request"]
    assert request["title"] == "Run this blitz plan?"
    assert f'Plan for "{title}" on gated-calc ({goal_id}), 1 tasks:' in request["description"]
    assert "multiply: Add multiply" in request["description"]
    # The turn waits for the person: the plan is not approved yet.
    assert blitz_daemon.goal(goal_id)["state"] == "awaiting_approval"

    scripted_model.add(
        {
            "match_tool_result": f"The plan of {goal_id} is approved",
            "reply": {"text": f"Approved: {goal_id} runs now."},
        },
        {
            "match": f"Pull request: {pulls}",
            "reply": {"text": "blitz finished: the pull request on gated-calc is open."},
        },
    )
    person.call("plugin.approval.resolve", {"id": asked["id"], "decision": "allow-once"})

    openclaw_gateway.wait_for(
        session,
        said("assistant", f"Approved: {goal_id} runs now."),
        timeout=TURN_TIMEOUT,
        what="the turn going on once approved",
    )
    messages = openclaw_gateway.wait_for(
        session,
        said("assistant", "blitz finished: the pull request on gated-calc is open."),
        timeout=GOAL_TIMEOUT,
        what="the approved goal's pull request",
    )
    goal = blitz_daemon.goal(goal_id)
    assert goal["state"] == "succeeded" and goal["pr_url"].startswith(pulls)
    assert any(f"Pull request: {goal['pr_url']}" in r.text for r in scripted_model.requests)
    assert [p["html_url"] for p in blitz_daemon.github.pulls].count(goal["pr_url"]) == 1
    (result,) = [m for m in messages if m.get("role") == "toolResult" and REVIEW in json.dumps(m)]
    assert f"The plan of {goal_id} is approved" in message_text(result)


def test_the_person_rejects_the_plan_and_the_goal_ends_without_running(
    openclaw_gateway: Gateway,
    scripted_model: ModelServer,
    blitz_daemon: Daemon,
    person: Person,
) -> None:
    session, title = "blitz-reject", "Add multiply 91c4"
    goal_id = submit_for_approval(
        openclaw_gateway, scripted_model, session=session, project="gated", title=title
    )
    asked = ask_to_review(
        openclaw_gateway, scripted_model, person, session=session, goal_id=goal_id
    )
    scripted_model.add(
        {
            "match": f"show me the plan of {goal_id}",
            "match_tool_result": "Denied by user",
            "reply": {"text": f"You rejected the plan: blitz dropped {goal_id}."},
        },
    )
    person.call("plugin.approval.resolve", {"id": asked["id"], "decision": "deny"})

    openclaw_gateway.wait_for(
        session,
        said("assistant", f"You rejected the plan: blitz dropped {goal_id}."),
        timeout=TURN_TIMEOUT,
        what="the conversation saying the plan was rejected",
    )
    goal = await_state(blitz_daemon, goal_id, {"cancelled", "failed", "succeeded"})
    assert goal["state"] == "cancelled", goal
    assert goal["progress"]["done"] == 0
    assert "rejected in OpenClaw" in json.dumps(goal)
