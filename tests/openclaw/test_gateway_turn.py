"""A real OpenClaw gateway turn driving blitz: a person's message in a conversation, the model's
answer (blitz's scripted model, over OpenAI's Chat Completions), and through the ``fleet`` plugin
a goal run by the real daemon whose completion, with the pull request's link, arrives in the same
conversation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from gateway import (  # noqa: F401 - the fixtures
    Gateway,
    message_text,
    openclaw_gateway,
    scripted_model,
)

from blitz.testing.model_server import ModelServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TURN_TIMEOUT = 120.0
"""Seconds a scripted model turn may take through the gateway on a loaded machine."""


def _said(role: str, text: str) -> Callable[[list[dict[str, Any]]], bool]:
    """Whether a conversation has a ``role`` message containing ``text``."""

    def found(messages: list[dict[str, Any]]) -> bool:
        return any(m.get("role") == role and text in message_text(m) for m in messages)

    return found


def test_a_message_in_a_conversation_gets_the_models_answer(
    openclaw_gateway: Gateway,  # noqa: F811
    scripted_model: ModelServer,  # noqa: F811
) -> None:
    scripted_model.add({"match": "ping 7f3a", "reply": {"text": "pong from the scripted model"}})

    openclaw_gateway.send("blitz-ping", "ping 7f3a")

    messages = openclaw_gateway.wait_for(
        "blitz-ping",
        _said("assistant", "pong from the scripted model"),
        timeout=TURN_TIMEOUT,
        what="the model's answer in the conversation",
    )
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert message_text(messages[0]) == "ping 7f3a"
    (request,) = [r for r in scripted_model.requests if "ping 7f3a" in r.text]
    assert request.path == "/v1/chat/completions" and request.stream
    assert request.api_key_header == "authorization"
