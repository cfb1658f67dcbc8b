"""Local model servers (Ollama, llama.cpp, vLLM, LM Studio) found answering where they listen.

Each speaks the OpenAI API and lists its models at ``GET <base URL>/models``: what answers there
is a server the embedded agent can use with no key (``ollama:<model>``...). Only loopback
addresses are asked by default (:data:`blitz.llm.models.LOCAL_SERVERS`), each with a short
timeout, all at once, so asking costs at most :data:`PROBE_TIMEOUT` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

PROBE_TIMEOUT = 1.5
"""Seconds a server has to answer ``GET /models``: one on this machine answers in milliseconds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalServer:
    """A server that answered: its shorthand (``ollama``), base URL and the models it lists."""

    provider: str
    url: str
    models: tuple[str, ...]

    def model_name(self, default_url: str) -> str:
        """Its first model as blitz names it (``ollama:qwen2.5-coder:7b``), with ``@url`` when
        it does not listen where ``provider:`` names point by default; "" when it lists none."""
        if not self.models:
            return ""
        name = f"{self.provider}:{self.models[0]}"
        return name if self.url == default_url else f"{name}@{self.url}"


async def listed_models(url: str, *, timeout: float = PROBE_TIMEOUT) -> tuple[str, ...] | None:
    """The models the server at ``url`` lists (empty when it answers with none, or with an error
    page: it is there all the same), or None when nothing answers."""
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            response = await client.get(url.rstrip("/") + "/models")
    except (httpx.HTTPError, OSError):
        return None
    try:
        data = response.json().get("data") if response.is_success else None
    except ValueError:
        data = None
    if not isinstance(data, list):
        return ()
    ids = (item.get("id") if isinstance(item, dict) else None for item in data)
    return tuple(each for each in ids if isinstance(each, str))


async def find(urls: Mapping[str, str], *, timeout: float = PROBE_TIMEOUT) -> list[LocalServer]:
    """The servers of ``urls`` (shorthand -> base URL) that answer, in the order given."""
    found = await asyncio.gather(*(listed_models(url, timeout=timeout) for url in urls.values()))
    return [
        LocalServer(provider=provider, url=url, models=models)
        for (provider, url), models in zip(urls.items(), found, strict=True)
        if models is not None
    ]
