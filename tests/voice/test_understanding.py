"""Understanding with the planner model: one structured tool call (``understood``) asked of a
scripted Anthropic or OpenAI server on 127.0.0.1 through the model blitz builds from its
settings, the names it gives matched against what exists; a failing model leaves the grammar
to understand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blitz.app import App
from blitz.settings import Settings
from blitz.testing.model_server import ModelServer
from blitz.voice import understanding
from blitz.voice.intent import Act, GoalName, Intent, Known

KNOWN = Known(
    projects=("calc",), goals=(GoalName(id="g-1a2b3c4d", title="Add a multiply function"),)
)
HEARD = "Sorry to go on the CalP project, add a multiply function."
MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-5"}


def app_with(tmp_path: Path, server: ModelServer, provider: str) -> App:
    base = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
    settings: dict[str, Any] = {
        "home": tmp_path / "home",
        "planner_model": f"{provider}:{MODELS[provider]}@{base}",
        f"{provider}_api_key": "key",
    }
    return App(Settings(**settings))


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_the_planner_model_understands_with_a_tool_call(
    tmp_path: Path, provider: str
) -> None:
    call = {
        "name": "understood",
        "input": {"act": "start", "project": "Calp", "title": "Add a multiply function"},
    }
    with ModelServer([{"match": "CalP", "reply": {"tool_calls": [call]}}]) as server:
        app = app_with(tmp_path, server, provider)
        try:
            understand = understanding.for_app(app)
            assert isinstance(understand, understanding.ModelUnderstanding)
            intent = await understand(HEARD, KNOWN)
        finally:
            await app.aclose()
        [request] = server.requests
        assert not server.unmatched
    assert intent == Intent(act=Act.START, project="calc", title="Add a multiply function")
    sent = str(request.body)
    assert "Projects: calc" in sent and "g-1a2b3c4d: Add a multiply function" in sent


async def test_a_model_that_fails_leaves_the_grammar_to_understand(tmp_path: Path) -> None:
    failing = {"error": {"status": 400, "message": "no such model"}}
    with ModelServer(fallback=failing) as server:
        app = app_with(tmp_path, server, "anthropic")
        try:
            intent = await understanding.for_app(app)(HEARD, KNOWN)
        finally:
            await app.aclose()
        assert server.requests, "the model was asked"
    assert intent == Intent(act=Act.START, project="calc", title="Add a multiply function")


def test_without_a_planner_model_the_grammar_understands(tmp_path: Path) -> None:
    app = App(Settings(home=tmp_path / "home"))
    assert isinstance(understanding.for_app(app), understanding.Grammar)
