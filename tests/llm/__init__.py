"""Tests of blitz.llm, and the helpers they share for runs against the scripted model server.

The ``fake`` fixture (``conftest.py``) is a :class:`~blitz.testing.model_server.ModelServer`
whose requests no turn matches get :data:`DONE`, so a test scripts only what goes wrong: an error
status with headers and a body, a reply too slow for the client's timeout, or a body broken off
mid-way. It records every request, so tests can count what really went over the wire.
"""

from __future__ import annotations

from typing import Any

from blitz.testing.model_server import ErrorReply, ModelServer, Reply, Usage

USAGE = Usage(input=30, cached=60, cache_write=10, output=20)
"""The usage every successful reply reports: 100 input tokens in all, of which 60 were read from
the cache and 10 written to it (Anthropic reports the three parts separately), and 20 output."""

DONE = Reply(text="done", usage=USAGE)
"""The reply to every request the test did not script."""


def anthropic_error(status: int, kind: str, message: str, **error: Any) -> Reply:
    """An Anthropic error body of type ``kind``; ``error`` as for :class:`ErrorReply`."""
    return Reply(error=ErrorReply(status=status, type=kind, message=message, **error))


def openai_error(status: int, code: str | None, message: str, kind: str = "") -> Reply:
    """An OpenAI error body with ``code`` (or none) and type ``kind``."""
    error = ErrorReply(
        status=status, type=kind or "invalid_request_error", code=code, message=message
    )
    return Reply(error=error)


ANTHROPIC_KEY = "sk-ant-test-key-0000000000"
OPENAI_KEY = "sk-test-openai-key-000000000000"

MODELS = {
    "anthropic": "claude-sonnet-4-6",
    "openai": "gpt-5",
    "openai-compatible": "qwen3-coder",
    "ollama": "qwen2.5-coder:7b",
    "vllm": "Qwen/Qwen3-Coder",
    "llamacpp": "local",
    "lmstudio": "local",
}
"""A model per provider for runs against the fake (not deprecated, so the SDKs do not warn)."""


def model_for(fake: ModelServer, provider: str, *, timeout: float = 10.0, **config: Any) -> Any:
    """A blitz-built pydantic-ai model of ``provider`` that talks to ``fake``."""
    from blitz.llm.models import ProviderConfig, build_model, parse_model

    base = fake.anthropic_base_url if provider == "anthropic" else fake.openai_base_url
    spec = parse_model(f"{provider}:{MODELS[provider]}@{base}")
    settings = ProviderConfig(
        anthropic_api_key=ANTHROPIC_KEY, openai_api_key=OPENAI_KEY, timeout=timeout, **config
    )
    return build_model(spec, settings)
