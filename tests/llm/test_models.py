from __future__ import annotations

import pytest
from pydantic_ai import Agent
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.ollama import OllamaModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.profiles import InlineDefsJsonSchemaTransformer
from pydantic_ai.providers.ollama import OllamaProvider
from pydantic_ai.providers.openai_compatible import OpenAICompatibleProvider
from pydantic_ai.providers.vllm import VLLMProvider

from blitz.errors import ConfigError
from blitz.llm.models import (
    ModelSpec,
    ProviderConfig,
    build_model,
    model_settings,
    parse_model,
)
from blitz.llm.streaming import StreamingModel
from blitz.testing.model_server import ModelServer, Reply

from . import ANTHROPIC_KEY, DONE, OPENAI_KEY, anthropic_error, model_for

KEYS = ProviderConfig(anthropic_api_key=ANTHROPIC_KEY, openai_api_key=OPENAI_KEY)


# --- parse_model -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "provider", "name", "base_url"),
    [
        ("anthropic:claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", ""),
        ("openai:gpt-5", "openai", "gpt-5", ""),
        ("openai-compatible:qwen3-coder", "openai-compatible", "qwen3-coder", ""),
        (
            "openai-compatible:qwen3@http://10.0.0.5:8000/v1",
            "openai-compatible",
            "qwen3",
            "http://10.0.0.5:8000/v1",
        ),
        ("ollama:llama3", "ollama", "llama3", "http://127.0.0.1:11434/v1"),
        # Ollama tags carry a colon: only the first one ends the provider.
        ("ollama:qwen2.5-coder:7b", "ollama", "qwen2.5-coder:7b", "http://127.0.0.1:11434/v1"),
        ("llamacpp:any", "llamacpp", "any", "http://127.0.0.1:8080/v1"),
        ("vllm:Qwen/Qwen3-Coder", "vllm", "Qwen/Qwen3-Coder", "http://127.0.0.1:8000/v1"),
        ("lmstudio:gemma", "lmstudio", "gemma", "http://127.0.0.1:1234/v1"),
        ("ollama:llama3@http://gpu-box:11434/v1", "ollama", "llama3", "http://gpu-box:11434/v1"),
        (
            "anthropic:claude@https://proxy.example/",
            "anthropic",
            "claude",
            "https://proxy.example/",
        ),
        # An @ that does not start a URL is part of the name (Vertex-style ids).
        ("anthropic:claude-x@20250101", "anthropic", "claude-x@20250101", ""),
        ("  Anthropic:claude-haiku-4-5 ", "anthropic", "claude-haiku-4-5", ""),
    ],
)
def test_parse_model_accepts_every_form(text: str, provider: str, name: str, base_url: str) -> None:
    assert parse_model(text) == ModelSpec(provider=provider, name=name, base_url=base_url)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "claude-sonnet-4-5",
        "gemini:pro",
        "anthropic:",
        "anthropic:  ",
        "ollama:two words",
        "ollama:llama3@http://",
        "ollama:llama3@http://host:99999/v1",
        "openai-compatible:x@ftp://host/v1",
    ],
)
def test_parse_model_rejects_bad_names_listing_the_forms(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_model(text)
    message = str(info.value)
    assert repr(text) in message
    if "URL" not in message:
        for form in ("anthropic:<model>", "openai-compatible:<model>", "ollama:<model>"):
            assert form in message


def test_spec_prints_as_it_parses() -> None:
    for text in ("anthropic:claude-haiku-4-5", "ollama:qwen3", "vllm:m@http://gpu:8000/v1"):
        assert str(parse_model(text)) == text


# --- build_model -------------------------------------------------------------------------------


def test_anthropic_model_points_at_the_configured_url_without_sdk_retries() -> None:
    config = ProviderConfig(
        anthropic_api_key=ANTHROPIC_KEY, anthropic_base_url="http://127.0.0.1:9", timeout=33
    )
    model = build_model(parse_model("anthropic:claude-sonnet-4-6"), config)
    assert isinstance(model, StreamingModel) and isinstance(model.wrapped, AnthropicModel)
    assert model.model_name == "claude-sonnet-4-6"
    assert model.base_url.rstrip("/") == "http://127.0.0.1:9"
    assert model.client.max_retries == 0
    assert model.client.timeout == 33
    assert model.client.api_key == ANTHROPIC_KEY


def test_anthropic_defaults_to_the_public_api() -> None:
    model = build_model(parse_model("anthropic:claude-sonnet-4-6"), KEYS)
    assert isinstance(model.wrapped, AnthropicModel)
    assert model.base_url.rstrip("/") == "https://api.anthropic.com"


def test_openai_model_uses_the_responses_api_on_openai_only_without_sdk_retries() -> None:
    config = ProviderConfig(openai_api_key=OPENAI_KEY, openai_base_url="http://127.0.0.1:9/v1")
    model = build_model(parse_model("openai:gpt-5"), config)
    assert model.base_url.rstrip("/") == "http://127.0.0.1:9/v1"
    assert model.client.max_retries == 0
    default = build_model(parse_model("openai:gpt-5"), KEYS)
    assert isinstance(default.wrapped, OpenAIResponsesModel)
    assert default.base_url.rstrip("/") == "https://api.openai.com/v1"


@pytest.mark.parametrize(
    "text", ["openai:qwen@http://127.0.0.1:8080/v1", "openai:qwen", "openai:gpt-5@http://gw/v1"]
)
def test_openai_names_on_another_server_use_chat_completions(text: str) -> None:
    # llama.cpp's /v1/responses cannot read the assistant turns pydantic-ai replays.
    config = ProviderConfig(openai_api_key=OPENAI_KEY, openai_base_url="http://127.0.0.1:9/v1")
    model = build_model(parse_model(text), config)
    assert type(model.wrapped) is OpenAIChatModel
    assert model.profile.get("json_schema_transformer") is InlineDefsJsonSchemaTransformer


@pytest.mark.parametrize(
    ("text", "model_class", "provider_class", "base_url"),
    [
        ("ollama:qwen3", OllamaModel, OllamaProvider, "http://127.0.0.1:11434/v1"),
        ("vllm:qwen3", OpenAIChatModel, VLLMProvider, "http://127.0.0.1:8000/v1"),
        ("llamacpp:m", OpenAIChatModel, OpenAICompatibleProvider, "http://127.0.0.1:8080/v1"),
        ("lmstudio:m", OpenAIChatModel, OpenAICompatibleProvider, "http://127.0.0.1:1234/v1"),
        (
            "openai-compatible:m@http://10.1.2.3:7000/v1",
            OpenAIChatModel,
            OpenAICompatibleProvider,
            "http://10.1.2.3:7000/v1",
        ),
    ],
)
def test_compatible_servers_use_chat_completions_without_sdk_retries(
    text: str, model_class: type, provider_class: type, base_url: str
) -> None:
    # No keys at all: local servers need none.
    model = build_model(parse_model(text), ProviderConfig())
    assert type(model.wrapped) is model_class
    assert isinstance(model.provider, provider_class)
    assert model.base_url.rstrip("/") == base_url
    assert model.client.max_retries == 0
    if provider_class is OpenAICompatibleProvider:
        assert model.system == text.split(":")[0]


def test_openai_compatible_takes_the_configured_base_url() -> None:
    config = ProviderConfig(compatible_base_url="http://127.0.0.1:5000/v1")
    model = build_model(parse_model("openai-compatible:m"), config)
    assert model.base_url.rstrip("/") == "http://127.0.0.1:5000/v1"


def test_openai_compatible_without_a_base_url_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match=r"openai-compatible:m@http://host:port/v1"):
        build_model(parse_model("openai-compatible:m"), ProviderConfig())
    with pytest.raises(ConfigError, match=r"malformed|must be"):
        build_model(parse_model("openai-compatible:m"), ProviderConfig(compatible_base_url="nope"))


@pytest.mark.parametrize(
    ("text", "env"),
    [("anthropic:claude-sonnet-4-6", "ANTHROPIC_API_KEY"), ("openai:gpt-5", "OPENAI_API_KEY")],
)
def test_a_missing_key_names_the_variable_even_when_the_environment_has_it(
    text: str, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Components never read the environment: only the config counts.
    monkeypatch.setenv(env, "sk-from-the-environment-000000")
    with pytest.raises(ConfigError) as info:
        build_model(parse_model(text), ProviderConfig())
    assert f"set {env}" in str(info.value)
    assert "blitz demo" in str(info.value)


def test_the_environment_does_not_move_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    anthropic = build_model(parse_model("anthropic:claude-sonnet-4-6"), KEYS)
    openai = build_model(parse_model("openai:gpt-5"), KEYS)
    assert anthropic.base_url.rstrip("/") == "https://api.anthropic.com"
    assert openai.base_url.rstrip("/") == "https://api.openai.com/v1"


def test_a_bad_timeout_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="timeout"):
        build_model(parse_model("ollama:m"), ProviderConfig(timeout=0))


def test_model_settings_turn_on_prompt_caching_for_anthropic_only() -> None:
    assert model_settings(parse_model("anthropic:claude-sonnet-4-6")).get("cache") is True
    for text in ("openai:gpt-5", "ollama:m", "openai-compatible:m"):
        assert "cache" not in model_settings(parse_model(text))
    model = build_model(parse_model("anthropic:claude-sonnet-4-6"), KEYS)
    assert model.settings is not None and model.settings.get("cache") is True


# --- real requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "path"),
    [
        ("anthropic", "/v1/messages"),
        ("openai", "/v1/chat/completions"),  # not OpenAI's URL: chat completions
        ("openai-compatible", "/v1/chat/completions"),
        ("ollama", "/v1/chat/completions"),
        ("vllm", "/v1/chat/completions"),
        ("llamacpp", "/v1/chat/completions"),
        ("lmstudio", "/v1/chat/completions"),
    ],
)
async def test_every_provider_runs_an_agent_against_its_base_url(
    fake: ModelServer, provider: str, path: str
) -> None:
    fake.add(Reply(text="hello from the fake"))
    model = model_for(fake, provider)
    async with model:
        result = await Agent(model).run("hi")
    assert result.output == "hello from the fake"
    assert [r.path.split("?")[0] for r in fake.requests] == [path]
    # Leaving the model closes the HTTP client it owns.
    assert model.client._client.is_closed


@pytest.mark.parametrize(
    ("provider", "config", "key", "headers"),
    [
        # This SDK sends the Anthropic key as a bearer token; older ones used x-api-key.
        ("anthropic", {}, ANTHROPIC_KEY, ("x-api-key", "authorization")),
        ("openai", {}, OPENAI_KEY, ("authorization",)),
        ("openai-compatible", {}, "not-needed", ("authorization",)),
        (
            "vllm",
            {"compatible_api_key": "vllm-secret-key-123"},
            "vllm-secret-key-123",
            ("authorization",),
        ),
    ],
)
async def test_keys_go_only_where_they_belong(
    provider: str, config: dict[str, str], key: str, headers: tuple[str, ...]
) -> None:
    # The server takes only this key (as x-api-key or "authorization: Bearer <key>"): any other
    # key is a 401, which fails the run.
    with ModelServer(api_key=key, fallback=DONE) as server:
        model = model_for(server, provider, **config)
        async with model:
            await Agent(model).run("hi")
        [sent] = server.requests
    assert sent.status == 200 and sent.api_key_header in headers


async def test_anthropic_requests_ask_for_prompt_caching(fake: ModelServer) -> None:
    model = model_for(fake, "anthropic")
    async with model:
        await Agent(model, instructions="You are terse.").run("hi")
    body = fake.requests[0].body
    assert "cache_control" in str(body)


async def test_the_sdk_does_not_retry_a_failed_request(fake: ModelServer) -> None:
    fake.add(anthropic_error(529, "overloaded_error", "Overloaded"), DONE)
    model = model_for(fake, "anthropic")
    async with model:
        with pytest.raises(Exception, match="529"):
            await Agent(model).run("hi")
    assert len(fake.requests) == 1


async def test_a_model_outside_a_context_manager_still_works(fake: ModelServer) -> None:
    model = model_for(fake, "openai-compatible")
    result = await Agent(model).run("hi")
    assert result.output == "done"
    await model.client.close()


async def test_a_closed_model_gets_a_fresh_client_with_the_same_settings(
    fake: ModelServer,
) -> None:
    model = model_for(fake, "anthropic", timeout=7)
    async with model:
        await Agent(model).run("hi")
    first = model.client._client
    assert first.is_closed
    async with model:
        assert (await Agent(model).run("again")).output == "done"
        second = model.client._client
        assert second is not first and second.timeout.read == 7
        assert model.client.max_retries == 0
    assert second.is_closed


def test_the_config_repr_hides_the_keys() -> None:
    text = repr(ProviderConfig(anthropic_api_key="a-secret-1", openai_api_key="o-secret-2"))
    assert "secret" not in text
    assert "timeout=None" in text
