"""Model names to pydantic-ai model objects.

A model is named ``provider:model`` (``anthropic:claude-sonnet-4-5``, ``openai:gpt-5``,
``ollama:qwen2.5-coder:7b``); any name may end in ``@<base URL>`` to point it at another server
(``vllm:Qwen/Qwen3-Coder@http://gpu-box:8000/v1``). Credentials and default URLs come from a
:class:`ProviderConfig` that the CLI fills from the environment; nothing here reads it.

Every SDK client is built with ``max_retries=0``: blitz retries once, in
:func:`blitz.llm.errors.call_with_retries`, so a provider outage is not retried by the SDK inside
every blitz retry.

Every model streams (:class:`blitz.llm.streaming.StreamingModel` wraps it), so the HTTP read
timeout is an idle timeout: :attr:`ProviderConfig.timeout` seconds with no byte at all, by default
:data:`LOCAL_IDLE_TIMEOUT` for a server of one's own (CPU inference evaluates a long prompt for
minutes; llama.cpp pings every 30 s meanwhile) and :data:`HOSTED_IDLE_TIMEOUT` for Anthropic and
OpenAI. ``call_timeout`` caps a whole call.

``openai:`` names use OpenAI's Responses API, as pydantic-ai's own do, but only against OpenAI:
with another base URL (``OPENAI_BASE_URL`` or ``@url``, say a llama.cpp server) they use chat
completions, which every OpenAI-compatible server speaks; llama.cpp's ``/v1/responses`` cannot
read the assistant turns pydantic-ai replays ("Cannot determine type of 'item'").

Servers of one's own (``openai-compatible:`` and the local shorthands) get their JSON schemas
with every ``$defs`` inlined, so no ``$ref`` reaches a grammar converter that cannot resolve it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2
from pydantic_ai.models import Model, create_async_httpx2_client
from pydantic_ai.profiles import InlineDefsJsonSchemaTransformer, ModelProfile
from pydantic_ai.providers import Provider
from pydantic_ai.settings import ModelSettings

from blitz.errors import ConfigError
from blitz.llm.streaming import DEFAULT_CALL_TIMEOUT, StreamingModel
from blitz.redact import register_secret

ANTHROPIC_URL = "https://api.anthropic.com"
OPENAI_URL = "https://api.openai.com/v1"

LOCAL_SERVERS: dict[str, str] = {
    "ollama": "http://127.0.0.1:11434/v1",
    "llamacpp": "http://127.0.0.1:8080/v1",
    "vllm": "http://127.0.0.1:8000/v1",
    "lmstudio": "http://127.0.0.1:1234/v1",
}
"""Shorthands for OpenAI-compatible servers, with the URL each listens on by default."""

COMPATIBLE = "openai-compatible"
PROVIDERS = ("anthropic", "openai", COMPATIBLE, *LOCAL_SERVERS)

_P = TypeVar("_P", bound=Provider[Any])

CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection, however long a response may take."""

HOSTED_IDLE_TIMEOUT = 120.0
"""Seconds a hosted provider's stream may stay silent (Anthropic, OpenAI)."""

LOCAL_IDLE_TIMEOUT = 300.0
"""Seconds the stream of a server of one's own may stay silent: measured on this project's CI
machine, llama.cpp (one CPU thread, a 0.5B model) evaluated a 3,300-token prompt for 55-70 s before
the first token, sending an SSE ping every 30 s (its ``sse_ping_interval``); a server that does not
ping (or a bigger model, or a longer prompt) gets five minutes of silence."""

_FORMS = f"""\
write a model as provider:model[@base-url], one of:
  anthropic:<model>          e.g. anthropic:claude-sonnet-4-5 (needs ANTHROPIC_API_KEY)
  openai:<model>             e.g. openai:gpt-5 (needs OPENAI_API_KEY)
  {COMPATIBLE}:<model>  any OpenAI-compatible server, e.g. {COMPATIBLE}:qwen3@http://host:8000/v1
  ollama:<model>             e.g. ollama:qwen2.5-coder:7b (default {LOCAL_SERVERS["ollama"]})
  llamacpp:<model>           default {LOCAL_SERVERS["llamacpp"]}
  vllm:<model>               default {LOCAL_SERVERS["vllm"]}
  lmstudio:<model>           default {LOCAL_SERVERS["lmstudio"]}"""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """A parsed model name. ``base_url`` is empty where the provider's configured URL applies."""

    provider: str
    name: str
    base_url: str = ""

    def __str__(self) -> str:
        text = f"{self.provider}:{self.name}"
        if self.base_url and self.base_url != LOCAL_SERVERS.get(self.provider):
            text += f"@{self.base_url}"
        return text


@dataclass
class ProviderConfig:
    """Credentials and endpoints for the providers; empty means unset (the provider's default).

    ``compatible_api_key`` is sent only to OpenAI-compatible servers, so an OpenAI key never
    reaches a server that is not OpenAI. Keys are left out of the repr.
    """

    anthropic_api_key: str = field(default="", repr=False)
    anthropic_base_url: str = ""
    openai_api_key: str = field(default="", repr=False)
    openai_base_url: str = ""
    compatible_base_url: str = ""
    compatible_api_key: str = field(default="", repr=False)
    timeout: float | None = None
    """Idle timeout in seconds (no byte at all); None is the provider's default
    (:func:`idle_timeout`)."""
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    """Seconds a whole model call may take, however steadily it streams."""


_OWN_SERVER = ModelProfile(json_schema_transformer=InlineDefsJsonSchemaTransformer)
"""Merged over the provider's profile for servers of one's own: schemas with ``$defs`` inlined,
which every grammar converter can type (llama.cpp's, Ollama's)."""


def parse_model(text: str) -> ModelSpec:
    """Parse ``provider:model[@base-url]``; a :class:`ConfigError` lists the accepted forms."""
    provider, sep, rest = text.strip().partition(":")
    provider = provider.lower()
    if not sep or provider not in PROVIDERS:
        raise ConfigError(f"unknown model {text!r}: {_FORMS}")
    name, base_url = _split_url(rest)
    if not name or any(c.isspace() for c in name):
        raise ConfigError(f"model {text!r} has no valid model name after {provider!r}: {_FORMS}")
    if base_url:
        _check_url(base_url, f"model {text!r}")
    return ModelSpec(
        provider=provider, name=name, base_url=base_url or LOCAL_SERVERS.get(provider, "")
    )


def _split_url(rest: str) -> tuple[str, str]:
    """Split ``model@http://...`` at the last ``@`` that starts a URL; other ``@`` are the name."""
    name, sep, url = rest.rpartition("@")
    if sep and "://" in url:
        return name, url
    return rest, ""


def _check_url(url: str, what: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ConfigError(f"{what}: base URL {url!r} is malformed ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what}: base URL {url!r} must be http(s)://host[:port][/path]")


STRUCTURED_TEMPERATURE = 0.2
"""Sampling temperature for a structured answer (a plan, a recovery plan, a verdict, the embedded
agent's tool calls) from a server of one's own: llama.cpp samples at 0.8 unless told, and a small
model at that heat strays from a schema it could follow. Hosted models keep their provider's
default."""


def own_server(spec: ModelSpec) -> bool:
    """Whether ``spec`` names a server of one's own (a local shorthand or ``openai-compatible``)."""
    return spec.provider == COMPATIBLE or spec.provider in LOCAL_SERVERS


REASK_HEAT = 0.3
"""Added to :data:`STRUCTURED_TEMPERATURE` at each re-ask of a server of one's own, up to
:data:`REASK_TEMPERATURE_CAP`: a small model asked again at 0.2 gives the same wrong answer
again (Qwen2.5-Coder-1.5B gave one recovery four times alike), with the problems listed or not."""

REASK_TEMPERATURE_CAP = 0.8
"""The highest temperature a re-ask goes to (llama.cpp's own default)."""


def model_settings(spec: ModelSpec, *, structured: bool = False, reasks: int = 0) -> ModelSettings:
    """Default request settings for a model: prompt caching on for Anthropic, whose caching must
    be asked for (an agent re-sends the same instructions and tools on every turn); a low
    temperature for a ``structured`` answer (one that must take a form: a plan, a verdict, a
    tool call) from a server of one's own, a little warmer at each of its ``reasks``."""
    if spec.provider == "anthropic":
        # The unified setting places breakpoints on the tools, the instructions and the growing
        # conversation (`anthropic_cache_tool_definitions`, `_instructions`, `anthropic_cache`).
        return ModelSettings(cache=True)
    if structured and own_server(spec):
        warmer = STRUCTURED_TEMPERATURE + REASK_HEAT * max(0, reasks)
        return ModelSettings(temperature=round(min(warmer, REASK_TEMPERATURE_CAP), 2))
    return ModelSettings()


def idle_timeout(spec: ModelSpec, config: ProviderConfig) -> float:
    """Seconds a call to ``spec`` may stay silent: the configured timeout, else the default for
    its kind of server (an ``openai:`` model pointed at another server counts as one's own)."""
    if config.timeout is not None:
        return config.timeout
    if spec.provider == "anthropic" or (spec.provider == "openai" and not _elsewhere(spec, config)):
        return HOSTED_IDLE_TIMEOUT
    return LOCAL_IDLE_TIMEOUT


def build_model(spec: ModelSpec, config: ProviderConfig) -> StreamingModel:
    """A pydantic-ai model for ``spec``, with SDK retries off, whose every request streams.

    The model owns its HTTP client like one pydantic-ai builds itself: ``async with model`` (or
    ``async with agent``) closes it, and a run on a new event loop gets a fresh one.
    """
    if config.timeout is not None and not config.timeout > 0:
        raise ConfigError(f"the model timeout must be positive, not {config.timeout}")
    if not config.call_timeout > 0:
        raise ConfigError(f"the model call timeout must be positive, not {config.call_timeout}")
    timeout = idle_timeout(spec, config)
    model: Model
    if spec.provider == "anthropic":
        model = _anthropic(spec, config, timeout)
    elif spec.provider == "openai":
        model = _openai(spec, config, timeout)
    elif own_server(spec):
        model = _compatible(spec, config, timeout)
    else:
        raise ConfigError(f"unknown model provider {spec.provider!r}: {_FORMS}")
    return StreamingModel(model, call_timeout=config.call_timeout)


def _elsewhere(spec: ModelSpec, config: ProviderConfig) -> bool:
    """Whether an ``openai:`` model points at a server that is not OpenAI's."""
    url = spec.base_url or config.openai_base_url or OPENAI_URL
    return urlsplit(url).hostname != urlsplit(OPENAI_URL).hostname


def _anthropic(spec: ModelSpec, config: ProviderConfig, timeout: float) -> Model:
    from anthropic import AsyncAnthropic
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    key = _required_key(spec, config.anthropic_api_key, "ANTHROPIC_API_KEY")
    base_url = _base_url(spec, config.anthropic_base_url, "ANTHROPIC_BASE_URL") or ANTHROPIC_URL
    factory = _http_client_factory(timeout)
    http_client = factory()
    client = AsyncAnthropic(
        api_key=key,
        base_url=base_url,
        http_client=http_client,
        timeout=timeout,
        max_retries=0,
    )
    provider = _owning(AnthropicProvider(anthropic_client=client), http_client, factory)
    return AnthropicModel(spec.name, provider=provider, settings=model_settings(spec))


def _openai(spec: ModelSpec, config: ProviderConfig, timeout: float) -> Model:
    from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    key = _required_key(spec, config.openai_api_key, "OPENAI_API_KEY")
    base_url = _base_url(spec, config.openai_base_url, "OPENAI_BASE_URL") or OPENAI_URL
    elsewhere = _elsewhere(spec, config)
    client, http_client, factory = _openai_client(key, base_url, timeout, keepalive=not elsewhere)
    provider = _owning(OpenAIProvider(openai_client=client), http_client, factory)
    if elsewhere:
        # Another server behind an OpenAI name: chat completions, which it surely speaks.
        return OpenAIChatModel(
            spec.name, provider=provider, settings=model_settings(spec), profile=_OWN_SERVER
        )
    # `openai:` names use the Responses API, as pydantic-ai's own `openai:` names do.
    return OpenAIResponsesModel(spec.name, provider=provider, settings=model_settings(spec))


def _compatible(spec: ModelSpec, config: ProviderConfig, timeout: float) -> Model:
    from pydantic_ai.models.ollama import OllamaModel
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.ollama import OllamaProvider
    from pydantic_ai.providers.openai_compatible import OpenAICompatibleProvider
    from pydantic_ai.providers.vllm import VLLMProvider

    base_url = spec.base_url
    if not base_url:
        base_url = config.compatible_base_url
        if not base_url:
            raise ConfigError(
                f"model {str(spec)!r} needs the server's base URL: write it as "
                f"{COMPATIBLE}:{spec.name}@http://host:port/v1, or set the compatible base URL "
                "in the settings"
            )
        _check_url(base_url, "the compatible base URL")
    if config.compatible_api_key:
        register_secret(config.compatible_api_key)
    # The OpenAI SDK insists on a key; servers that need none ignore this one.
    key = config.compatible_api_key or "not-needed"
    client, http_client, factory = _openai_client(key, base_url, timeout, keepalive=False)
    settings = model_settings(spec)
    # The dedicated providers know their servers' quirks (model profiles, thinking fields).
    if spec.provider == "ollama":
        ollama = _owning(OllamaProvider(openai_client=client), http_client, factory)
        return OllamaModel(spec.name, provider=ollama, settings=settings, profile=_OWN_SERVER)
    provider: Provider[Any]
    if spec.provider == "vllm":
        provider = VLLMProvider(openai_client=client)
    else:
        provider = OpenAICompatibleProvider(spec.provider, openai_client=client)
    provider = _owning(provider, http_client, factory)
    return OpenAIChatModel(spec.name, provider=provider, settings=settings, profile=_OWN_SERVER)


def _openai_client(
    key: str, base_url: str, timeout: float, *, keepalive: bool
) -> tuple[Any, httpx2.AsyncClient, Any]:
    from openai import AsyncOpenAI

    factory = _http_client_factory(timeout, keepalive=keepalive)
    http_client = factory()
    client = AsyncOpenAI(
        api_key=key,
        base_url=base_url,
        http_client=http_client,
        timeout=timeout,
        max_retries=0,
    )
    return client, http_client, factory


def _required_key(spec: ModelSpec, key: str, env: str) -> str:
    if not key:
        raise ConfigError(
            f"model {str(spec)!r} needs an API key: set {env}. "
            "(`blitz demo` needs no key; local models such as ollama:<model> need none either.)"
        )
    register_secret(key)
    return key


def _base_url(spec: ModelSpec, configured: str, env: str) -> str:
    if spec.base_url:
        return spec.base_url
    if configured:
        _check_url(configured, env)
    return configured


def _http_client_factory(
    timeout: float, *, keepalive: bool = True
) -> functools.partial[httpx2.AsyncClient]:
    """Clients with pydantic-ai's defaults (limits, user agent), our timeout and a short connect.

    Without ``keepalive`` every request opens its own connection: llama.cpp's server drops a
    kept-alive connection reused right after a streamed answer ("Server disconnected without
    sending a response", measured: one request in four sent back to back), and an agent's next
    turn follows at once.
    """
    limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=100 if keepalive else 0)
    return functools.partial(
        create_async_httpx2_client,
        timeout=httpx2.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
        limits=limits,
    )


def _owning(
    provider: _P, http_client: httpx2.AsyncClient, factory: functools.partial[httpx2.AsyncClient]
) -> _P:
    """Hand ``provider`` the HTTP client of the SDK client it was given, as if it had made it.

    A provider given an SDK client leaves that client's HTTP client open forever; one that made its
    own closes it on exit and replaces it on a new event loop. These are the two attributes
    :class:`pydantic_ai.providers.Provider` declares for that; its own providers set them the
    same way.
    """
    provider._own_http_client = http_client
    provider._http_client_factory = factory
    return provider
