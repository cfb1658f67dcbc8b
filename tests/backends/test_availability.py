"""Whether a backend can do a run here (blitz.backends.availability) and which agent ``blitz
init`` picks (blitz.backends.choice): real HTTP to a model server on 127.0.0.1 for the local
servers, a real executable standing in for the codex CLI, the real bundled claude CLI."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from blitz.backends import local_servers
from blitz.backends.availability import check, claude_logged_in, require
from blitz.backends.choice import ANTHROPIC_MODEL, HOW_TO_GET_ONE, OPENAI_MODEL, choose
from blitz.backends.options import BackendOptions, CodexConfig
from blitz.errors import ConfigError
from blitz.llm.models import ProviderConfig
from blitz.testing.model_server import ModelServer
from blitz.testing.scripted import Scenario

LOCAL_MODEL = "qwen2.5-coder:7b"
API_KEY = "sk-ant-api03-test-0123456789"
OAUTH_TOKEN = "sk-ant-oat01-test-0123456789"


@pytest.fixture
def local() -> Iterator[ModelServer]:
    with ModelServer(models=[LOCAL_MODEL]) as server:
        yield server


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback address where nothing answers: a port bound, never listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        sock.close()


@pytest.fixture
def codex(tmp_path: Path) -> Path:
    """An executable that answers ``--version`` as the codex CLI blitz accepts does."""
    path = tmp_path / "bin" / "codex"
    path.parent.mkdir()
    path.write_text(f"#!{sys.executable}\nprint('codex-cli 0.169.0')\n")
    path.chmod(0o755)
    return path


def options(
    *, env: dict[str, str] | None = None, model: str = "", codex: Path | None = None, **keys: str
) -> BackendOptions:
    return BackendOptions(
        env=env or {},
        model=model,
        providers=ProviderConfig(**keys),
        codex=CodexConfig(binary=str(codex)) if codex else CodexConfig(binary="/nonexistent/codex"),
    )


async def test_claude_code_needs_a_key_blitz_passes_in_and_says_a_login_is_not_one() -> None:
    keyless = await check("claude-code", options(), logged_in=True)
    assert not keyless.available
    assert "ANTHROPIC_API_KEY" in keyless.detail and "claude setup-token" in keyless.detail
    assert "logged in to Claude Code" in keyless.detail
    with pytest.raises(ConfigError, match="claude-code backend cannot run here"):
        await require("claude-code", options(), logged_in=False)

    keyed = await check("claude-code", options(env={"ANTHROPIC_API_KEY": API_KEY}))
    assert keyed.available, keyed.detail
    assert "an API key" in keyed.detail and API_KEY not in keyed.detail
    token = await check("claude-code", options(env={"ANTHROPIC_API_KEY": OAUTH_TOKEN}))
    assert token.available and "subscription token" in token.detail
    assert OAUTH_TOKEN not in token.detail


async def test_codex_needs_its_cli_and_a_key(codex: Path) -> None:
    missing = await check("codex", options(env={"OPENAI_API_KEY": "sk-test"}))
    assert not missing.available and "was not found" in missing.detail
    keyless = await check("codex", options(codex=codex))
    assert not keyless.available and "OPENAI_API_KEY" in keyless.detail
    keyed = await check("codex", options(codex=codex, env={"OPENAI_API_KEY": "sk-test"}))
    assert keyed.available and keyed.detail == str(codex)


async def test_the_embedded_agent_needs_a_model_its_key_or_its_server_answering(
    local: ModelServer, silent_url: str
) -> None:
    none = await check("embedded", options())
    assert not none.available and "needs a model" in none.detail
    keyless = await check("embedded", options(model=ANTHROPIC_MODEL))
    assert not keyless.available and "ANTHROPIC_API_KEY" in keyless.detail
    oauth = await check("embedded", options(model=ANTHROPIC_MODEL, anthropic_api_key=OAUTH_TOKEN))
    assert not oauth.available and "only Claude Code takes" in oauth.detail
    hosted = await check("embedded", options(model=OPENAI_MODEL, openai_api_key="sk-test"))
    assert hosted.available

    served = f"ollama:{LOCAL_MODEL}@{local.openai_base_url}"
    answering = await check("embedded", options(model=served))
    assert answering.available and local.openai_base_url in answering.detail
    not_pulled = await check("embedded", options(model=f"ollama:llama3@{local.openai_base_url}"))
    assert not not_pulled.available and "ollama pull llama3" in not_pulled.detail
    down = await check("embedded", options(model=f"llamacpp:coder@{silent_url}"))
    assert not down.available and f"no server answers at {silent_url}" in down.detail
    with pytest.raises(ConfigError, match="no server answers"):
        await require("embedded", options(model=f"llamacpp:coder@{silent_url}"))
    # A hosted OpenAI-compatible server is not asked (it may be slow to answer; it needs a key).
    remote = "openai-compatible:coder@http://models.example.invalid/v1"
    elsewhere = await check("embedded", options(model=remote))
    assert elsewhere.available and "not asked" in elsewhere.detail


async def test_scripted_is_no_agent_without_a_scenario() -> None:
    alone = await check("scripted", options())
    assert not alone.available and "not an agent" in alone.detail
    with pytest.raises(ConfigError, match="scripted backend cannot run here"):
        await require("scripted", options())
    played = BackendOptions(scenario=Scenario.from_data({}))
    assert (await check("scripted", played)).available


async def test_local_servers_are_found_where_they_answer(
    local: ModelServer, silent_url: str
) -> None:
    found = await local_servers.find({"ollama": local.openai_base_url, "vllm": silent_url})
    assert [(s.provider, s.url, s.models) for s in found] == [
        ("ollama", local.openai_base_url, (LOCAL_MODEL,))
    ]
    assert found[0].model_name(local.openai_base_url) == f"ollama:{LOCAL_MODEL}"
    assert found[0].model_name("http://127.0.0.1:11434/v1") == (
        f"ollama:{LOCAL_MODEL}@{local.openai_base_url}"
    )


async def test_init_picks_claude_code_then_codex_then_a_model_and_never_scripted(
    local: ModelServer, codex: Path
) -> None:
    servers = await local_servers.find({"ollama": local.openai_base_url})
    local_model = f"ollama:{LOCAL_MODEL}@{local.openai_base_url}"

    both = options(
        env={"ANTHROPIC_API_KEY": API_KEY, "OPENAI_API_KEY": "sk-test"},
        codex=codex,
        anthropic_api_key=API_KEY,
        openai_api_key="sk-test",
    )
    claude = await choose(both, servers)
    assert claude is not None and claude.backend == "claude-code"
    assert claude.model == ANTHROPIC_MODEL and not claude.local
    assert "ANTHROPIC_API_KEY holds an API key" in claude.reason

    openai = options(env={"OPENAI_API_KEY": "sk-test"}, codex=codex, openai_api_key="sk-test")
    chosen = await choose(openai, servers)
    assert chosen is not None and (chosen.backend, chosen.model) == ("codex", OPENAI_MODEL)

    subscription = options(env={"ANTHROPIC_API_KEY": OAUTH_TOKEN}, anthropic_api_key=OAUTH_TOKEN)
    with_local = await choose(subscription, servers)
    # The token serves Claude Code; the plans come from the local model.
    assert with_local is not None and with_local.backend == "claude-code"
    assert with_local.model == local_model and with_local.local
    alone = await choose(subscription, [])
    assert alone is not None and alone.backend == "claude-code" and alone.model == ""
    assert any("--plan FILE" in note for note in alone.notes)

    only_local = await choose(options(), servers)
    assert only_local is not None and only_local.backend == "embedded"
    assert only_local.model == local_model and only_local.local

    assert await choose(options(), []) is None
    assert len(HOW_TO_GET_ONE) == 3 and any("ollama pull" in line for line in HOW_TO_GET_ONE)


def test_a_claude_code_login_is_seen_in_the_home_directory(tmp_path: Path) -> None:
    assert not claude_logged_in(tmp_path)
    (tmp_path / ".claude.json").write_text('{"oauthAccount": {"emailAddress": "a@b.c"}}')
    assert claude_logged_in(tmp_path)
