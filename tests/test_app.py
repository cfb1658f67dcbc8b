"""The app's wiring: models chosen per role, and the price table from settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import make_app, make_repo

from blitz.app import App
from blitz.domain import Project
from blitz.errors import ConfigError
from blitz.llm.models import parse_model
from blitz.settings import Settings


def test_a_price_file_overrides_the_built_in_table(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('["anthropic:claude-sonnet-4-6"]\ninput = 1.5\noutput = 7.5\n')
    app = App(Settings(home=tmp_path / "home", prices_file=prices))
    try:
        price = app.prices().price(parse_model("anthropic:claude-sonnet-4-6"))
        assert (price.input, price.output, price.known) == (1.5, 7.5, True)
    finally:
        app.store.close()


def test_a_broken_price_file_is_a_clear_error(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("[not toml\n")
    app = App(Settings(home=tmp_path / "home", prices_file=prices))
    try:
        with pytest.raises(ConfigError, match="price table"):
            app.prices()
    finally:
        app.store.close()


def test_models_by_role_follow_the_command_line_then_blitz_toml_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "blitz.toml").write_text('[models]\nplanner = "openai:gpt-5"\n')
    project = Project(id="p-1", name="repo", path=str(repo))
    settings = Settings(home=tmp_path / "home", model="ollama:qwen2.5-coder:7b")
    plain = App(settings)
    cli = App(settings, models={"default": "anthropic:claude-sonnet-4-6"})
    try:
        assert plain.model_name("planner", project) == "openai:gpt-5"  # blitz.toml
        assert plain.model_name("agent", project) == "ollama:qwen2.5-coder:7b"  # BLITZ_MODEL
        assert cli.model_name("planner", project) == "anthropic:claude-sonnet-4-6"  # --model
        assert plain.default_backend(project) == "embedded"
    finally:
        plain.store.close()
        cli.store.close()


def test_an_empty_variable_is_unset_and_hides_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ANTHROPIC_API_KEY=""`` (a shell that blanks it) leaves the Claude subscription token
    of ``CLAUDE_CODE_OAUTH_TOKEN`` to be found, as if it were not set at all."""
    for name in ("BLITZ_ANTHROPIC_API_KEY", "BLITZ_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "")
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-from-setup-token")
    monkeypatch.setenv("BLITZ_MODEL", "")
    settings = Settings()
    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "sk-ant-oat01-from-setup-token"
    assert settings.model == ""


async def test_a_planner_is_offered_routes_only_when_there_is_a_choice(tmp_path: Path) -> None:
    """The goal's own backend alone is no choice: nothing is offered (a small model offered it
    wrote the goal's whole model spec as each task's model and was sent back for it)."""
    alone = make_repo(tmp_path, name="alone")
    more = make_repo(tmp_path, name="more", project={"fallback_backend": "embedded"})
    app = make_app(tmp_path / "home", {"tasks": [{"id": "t", "title": "T"}]})
    try:
        routes = []
        for repo in (alone, more):
            project = await app.register(repo)
            goal = await app.new_goal(project, "a goal")
            routes.append(app.services(project, goal).routes)
        assert routes == [(), ("scripted", "embedded")]
    finally:
        await app.aclose()
