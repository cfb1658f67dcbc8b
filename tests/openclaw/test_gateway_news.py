"""The fleet plugin's news through a real OpenClaw gateway: a goal that fails, a goal over its
budget, a plan that waits for approval, each told (in fleet's words) to the conversation that
submitted it and to no other; a goal submitted elsewhere (the daemon's API, as the dashboard)
told to none. And ``/blitz`` answered by the plugin without a model turn."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from conftest import Daemon
from gateway import Gateway, message_text, said
from goals import GOAL_TIMEOUT, TURN_TIMEOUT, await_state, submitted_goal
from relay import Relay

from blitz.testing.model_server import ModelServer


@dataclass(frozen=True)
class Asked:
    """A conversation in which the person asked blitz for one goal."""

    session: str
    project: str
    title: str
    task: str

    @property
    def message(self) -> str:
        return f"have blitz do: {self.title}"

    def script(self) -> list[dict[str, Any]]:
        """The model's turns: submit the goal (a one-task plan), then say so."""
        plan = {"summary": self.title, "tasks": [{"id": self.task, "title": self.title}]}
        submit = {"project": self.project, "goal": self.title, "plan": json.dumps(plan)}
        return [
            {
                "match": self.message,
                "reply": {"tool_calls": [{"name": "blitz_submit_goal", "input": submit}]},
            },
            {
                "match_tool_result": f": {self.title} (state",
                "reply": {"text": f"Submitted: {self.title}."},
            },
        ]


def requests_with(model: ModelServer, text: str) -> list[str]:
    """The text of every model request that carries ``text``."""
    return [r.text for r in model.requests if text in r.text]


def news_prompt(model: ModelServer, asked: Asked, text: str) -> str:
    """The first model request of ``asked``'s conversation that carries ``text`` (the turn a
    piece of news woke; later turns there may repeat it), its system events read back."""
    prompts = [p for p in requests_with(model, text) if asked.message in p]
    assert prompts, f"no request of {asked.session} carries {text!r}"
    return unquoted(prompts[0])


def unquoted(prompt: str) -> str:
    """A prompt with its system events read back: OpenClaw puts a plugin's system event into the
    prompt as a JSON string (quotes and newlines escaped), each line after "System: ", the first
    with its time (``get-reply-*.mjs``)."""
    return prompt.replace("\\n", "\n").replace('\\"', '"')


def heard(gateway: Gateway, asked: Asked, reply: str) -> list[dict[str, Any]]:
    """The conversation once the model's answer to a piece of news (``reply``) is in it."""
    return gateway.wait_for(
        asked.session, said("assistant", reply), timeout=GOAL_TIMEOUT, what=f"news: {reply}"
    )


def test_each_goals_news_reaches_the_conversation_that_submitted_it_and_no_other(
    openclaw_gateway: Gateway,
    scripted_model: ModelServer,
    blitz_daemon: Daemon,
) -> None:
    fails = Asked("blitz-news-fails", "api", "Break the greeting 3b9f", "broken")
    costly = Asked("blitz-news-budget", "metered", "Spend a fortune 5a7c", "costly")
    waits = Asked("blitz-news-waits", "gated", "Greet after approval 8d3e", "hello")
    everyone = (fails, costly, waits)
    for asked in everyone:
        scripted_model.add(*asked.script())
    # The turns fleet's news wakes, each answered only if the news is in fleet's words.
    scripted_model.add(
        {"match": "api) failed: ", "reply": {"text": "News: the greeting goal failed."}},
        {"match": "metered) went over its budget: ", "reply": {"text": "News: over budget."}},
        {"match": "metered) failed", "reply": {"text": "News: the costly goal stopped."}},
        {"match": "on gated (g-", "reply": {"text": "News: plan waits."}},
    )
    elsewhere = blitz_daemon.api(
        "POST", "/api/goals",
        {"project": "api", "title": "Break it elsewhere 6f0a",
         "plan": json.dumps({"summary": "x", "tasks": [{"id": "broken", "title": "Break"}]})},
    )  # fmt: skip

    for asked in everyone:  # three conversations at once, their goals run side by side
        openclaw_gateway.send(asked.session, asked.message)
    for asked in everyone:
        openclaw_gateway.wait_for(
            asked.session,
            said("assistant", f"Submitted: {asked.title}."),
            timeout=TURN_TIMEOUT,
            what=f"the submit tool's answer in {asked.session}",
        )
    ids = {asked.session: submitted_goal(scripted_model, asked.title) for asked in everyone}

    heard(openclaw_gateway, fails, "News: the greeting goal failed.")
    failed = blitz_daemon.goal(ids[fails.session])
    assert failed["state"] == "failed" and failed["error"], failed
    told = news_prompt(scripted_model, fails, f"({failed['id']}, api) failed: ")
    assert (
        f'] blitz: the goal "{fails.title}" ({failed["id"]}, api) failed: '
        f"{failed['error']}. Ask for its status to see the tasks." in told
    )

    heard(openclaw_gateway, costly, "News: over budget.")
    told = news_prompt(scripted_model, costly, "metered) went over its budget: ")
    assert (
        f'] blitz: the goal "{costly.title}" ({ids[costly.session]}, metered) went over '
        "its budget: " in told
    )

    heard(openclaw_gateway, waits, "News: plan waits.")
    waiting = blitz_daemon.goal(ids[waits.session])
    assert waiting["state"] == "awaiting_approval"
    told = news_prompt(scripted_model, waits, "on gated (g-")
    assert (
        f'] blitz: the plan of "{waits.title}" ({waiting["id"]}, gated) waits for approval.\n'
        in told
    )
    for line in (
        f'Plan for "{waits.title}" on gated ({waiting["id"]}), 1 tasks:',
        f"hello: {waits.title}",
        "Approve or reject it.",
    ):
        assert f"System: {line}" in told, (line, told)

    # Each conversation heard its own goal's news only; the goal from elsewhere, nobody.
    await_state(blitz_daemon, elsewhere["id"], {"failed"})
    for asked in everyone:
        others = [ids[o.session] for o in everyone if o is not asked] + [elsewhere["id"]]
        seen = "\n".join(message_text(m) for m in openclaw_gateway.history(asked.session))
        prompts = "\n".join(requests_with(scripted_model, asked.message))
        assert ids[asked.session] in prompts
        for other in others:
            assert other not in seen and other not in prompts, (asked.session, other)
    assert not requests_with(scripted_model, elsewhere["id"])
    assert not requests_with(scripted_model, "Break it elsewhere 6f0a")
    blitz_daemon.api("POST", f"/api/goals/{waiting['id']}/cancel", {})


def test_blitz_command_answers_without_a_model_turn(
    openclaw_gateway: Gateway,
    scripted_model: ModelServer,
    blitz_daemon: Daemon,
    daemon_relay: Relay,
) -> None:
    session = "blitz-command"
    waiting = blitz_daemon.api(
        "POST", "/api/goals",
        {"project": "gated", "title": "Wait to be cancelled 2c4d",
         "plan": json.dumps({"summary": "x", "tasks": [{"id": "hello", "title": "Hello"}]})},
    )  # fmt: skip
    await_state(blitz_daemon, waiting["id"], {"awaiting_approval"})

    openclaw_gateway.send(session, "/blitz status")
    openclaw_gateway.wait_for(
        session, said("assistant", "unfinished"), timeout=TURN_TIMEOUT, what="/blitz status"
    )
    openclaw_gateway.send(session, "/blitz goals")
    openclaw_gateway.wait_for(
        session,
        said("assistant", f"{waiting['id']} [awaiting_approval] Wait to be cancelled 2c4d"),
        timeout=TURN_TIMEOUT,
        what="/blitz goals",
    )
    openclaw_gateway.send(session, f"/blitz cancel {waiting['id']}")
    messages = openclaw_gateway.wait_for(
        session,
        said("assistant", f"Cancelling {waiting['id']}."),
        timeout=TURN_TIMEOUT,
        what="/blitz cancel",
    )

    assert await_state(blitz_daemon, waiting["id"], {"cancelled"})["state"] == "cancelled"
    status = next(message_text(m) for m in messages if "unfinished" in message_text(m))
    assert f"at {daemon_relay.url}: ok;" in status
    assert waiting["id"] in status
    # No model turn: the scripted model never saw these messages.
    assert not requests_with(scripted_model, "/blitz")
