"""A real OpenClaw gateway turn driving blitz: a person's message in a conversation, the model's
answer (blitz's scripted model, over OpenAI's Chat Completions), and through the ``fleet`` plugin
a goal run by the real daemon whose completion, with the pull request's link, arrives in the same
conversation; and with the daemon unreachable, a clear answer and a gateway that carries on."""

from __future__ import annotations

import json

from conftest import Daemon
from gateway import Gateway, message_text, said
from goals import GOAL_TIMEOUT, TURN_TIMEOUT, submitted_goal
from relay import Relay

from blitz.testing.model_server import ModelServer


def test_a_message_in_a_conversation_gets_the_models_answer(
    openclaw_gateway: Gateway,
    scripted_model: ModelServer,
) -> None:
    scripted_model.add({"match": "ping 7f3a", "reply": {"text": "pong from the scripted model"}})

    openclaw_gateway.send("blitz-ping", "ping 7f3a")

    messages = openclaw_gateway.wait_for(
        "blitz-ping",
        said("assistant", "pong from the scripted model"),
        timeout=TURN_TIMEOUT,
        what="the model's answer in the conversation",
    )
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert message_text(messages[0]) == "ping 7f3a"
    (request,) = [r for r in scripted_model.requests if "ping 7f3a" in r.text]
    assert request.path == "/v1/chat/completions" and request.stream
    assert request.api_key_header == "authorization"


def test_have_blitz_add_a_function_and_hear_of_the_pull_request_in_the_conversation(
    openclaw_gateway: Gateway,
    scripted_model: ModelServer,
    blitz_daemon: Daemon,
) -> None:
    # The fake GitHub numbers pull requests across its repositories: which one is the run's.
    pulls = "https://github.com/acme/calc/pull/"
    plan = {"summary": "Add multiply", "tasks": [{"id": "multiply", "title": "Add multiply"}]}
    submit = {"project": "calc", "goal": "Add a multiply function", "plan": json.dumps(plan)}
    scripted_model.add(
        {
            "match": "have blitz add a multiply function to calc",
            "reply": {"tool_calls": [{"name": "blitz_submit_goal", "input": submit}]},
        },
        {
            "match_tool_result": ": Add a multiply function (state",
            "reply": {"text": "blitz is on it."},
        },
        # The turn the plugin's news wakes: answered only if the news carries the link.
        {
            "match": f"Pull request: {pulls}",
            "reply": {"text": "blitz finished: the pull request on calc is open."},
        },
    )

    openclaw_gateway.send("blitz-calc", "have blitz add a multiply function to calc")

    openclaw_gateway.wait_for(
        "blitz-calc",
        said("assistant", "blitz is on it."),
        timeout=TURN_TIMEOUT,
        what="the answer to the submit tool",
    )
    goal_id = submitted_goal(scripted_model, "Add a multiply function")
    messages = openclaw_gateway.wait_for(
        "blitz-calc",
        said("assistant", "blitz finished: the pull request on calc is open."),
        timeout=GOAL_TIMEOUT,
        what="the goal's completion with its pull request",
    )
    goal = blitz_daemon.goal(goal_id)
    pull_request = goal["pr_url"]
    assert goal["state"] == "succeeded" and pull_request.startswith(pulls)
    (pull,) = [p for p in blitz_daemon.github.pulls if p["html_url"] == pull_request]
    assert any(f"Pull request: {pull_request}" in r.text for r in scripted_model.requests)
    assert pull["head"]["ref"] == goal["branch"]
    texts = [message_text(m) for m in messages]
    assert texts[0] == "have blitz add a multiply function to calc"
    assert any("blitz_submit_goal" in t for t in texts)


def test_with_the_daemon_down_the_person_is_told_and_the_gateway_lives_on(
    openclaw_gateway: Gateway,
    scripted_model: ModelServer,
    daemon_relay: Relay,
) -> None:
    scripted_model.add(
        {
            "match": "what is blitz doing 5c1e",
            "reply": {"tool_calls": [{"name": "blitz_goals", "input": {}}]},
        },
        # Answered only if the tool's result says the daemon is down, as the person should hear.
        {
            "match_tool_result": "No blitz daemon answers at",
            "reply": {"text": "I cannot reach blitz: is blitz serve running?"},
        },
        {"match": "are you still there 5c1e", "reply": {"text": "Still here."}},
    )

    with daemon_relay.down():
        openclaw_gateway.send("blitz-down", "what is blitz doing 5c1e")
        messages = openclaw_gateway.wait_for(
            "blitz-down",
            said("assistant", "I cannot reach blitz"),
            timeout=TURN_TIMEOUT,
            what="the answer when the daemon is down",
        )

    (result,) = [m for m in messages if m.get("role") == "toolResult"]
    answer = message_text(result)
    assert f"No blitz daemon answers at {daemon_relay.url}" in answer and "blitz serve" in answer
    assert openclaw_gateway.alive()
    openclaw_gateway.send("blitz-down", "are you still there 5c1e")
    openclaw_gateway.wait_for(
        "blitz-down",
        said("assistant", "Still here."),
        timeout=TURN_TIMEOUT,
        what="the next turn's answer",
    )
