"""Reading a model response's usage as it passes through the proxy, and pricing it.

A :class:`Meter` is fed the response body chunk by chunk, exactly as the client gets it, and never
holds up a chunk. A JSON body is kept (up to :data:`MAX_BUFFER`) and read at the end; a stream of
server-sent events is read line by line as it arrives (a partial line waits for its end, and a
line longer than :data:`MAX_BUFFER` is skipped), so a stream's usage is known the moment the event
that carries it passes:

* Anthropic Messages: ``message_start`` (input and cache counts), then ``message_delta`` (the
  final output count);
* OpenAI Chat Completions: the chunk with a non-null ``usage`` (sent when the request asks for
  ``stream_options.include_usage``);
* OpenAI Responses: ``response.completed`` (or ``response.incomplete`` / ``response.failed``).

A stream cut before its final event still yields what it said so far (Anthropic's input counts),
so a cancelled attempt's spend is counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic_ai.usage import RequestUsage

from blitz.domain import Usage
from blitz.llm.models import ModelSpec
from blitz.llm.usage import PriceTable, usage_of

Endpoint = Literal["messages", "chat", "responses"]
"""The model endpoints whose responses carry usage."""

MAX_BUFFER = 8 * 1024 * 1024
"""Bytes of one JSON body or one SSE line the meter keeps; longer ones are not metered."""

_DATA = b"data:"
# Substrings an SSE data line must hold for the meter to parse it, per endpoint.
_WANTED: Mapping[Endpoint, tuple[bytes, ...]] = {
    "messages": (b'"message_start"', b'"message_delta"', b'"error"'),
    "chat": (b'"usage"',),
    "responses": (b'"response.completed"', b'"response.incomplete"', b'"response.failed"'),
}
_RESPONSES_DONE = ("response.completed", "response.incomplete", "response.failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class Tokens:
    """Token counts of one response. ``input`` counts every input token, cache reads and writes
    included (what blitz's :class:`~blitz.domain.Usage` calls ``input_tokens``)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def price(self, provider: str, model: str, prices: PriceTable) -> Usage:
        """blitz's usage for these tokens of ``provider:model``, costed by ``prices``."""
        request = RequestUsage(
            input_tokens=self.input,
            output_tokens=self.output,
            cache_read_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
        )
        return usage_of(request, ModelSpec(provider=provider, name=model), prices)


def endpoint_of(wire: str, path: str) -> Endpoint | None:
    """The metered endpoint a request path (after the upstream's base URL) names, if any."""
    path = path.rstrip("/")
    if wire == "anthropic":
        return "messages" if path.endswith("/messages") else None
    if path.endswith("/chat/completions"):
        return "chat"
    if path.endswith("/responses"):
        return "responses"
    return None


class Meter:
    """Finds the usage of one response of ``endpoint`` whose content type is ``content_type``.

    :meth:`feed` returns the tokens once the final usage has passed (once); :meth:`finish`, at
    the end of the body, returns them if :meth:`feed` has not, or what a cut stream said so far.
    :attr:`model` is the model the response names; :attr:`failed` is True when a stream ended
    with the provider's own failure event (an overload mid-stream).
    """

    def __init__(self, endpoint: Endpoint, content_type: str) -> None:
        self.endpoint = endpoint
        self.stream = content_type.lower().startswith("text/event-stream")
        self.model = ""
        self.failed = False
        self._buffer = b""
        self._skipping = False  # inside an SSE line too long to keep
        self._usage: dict[str, Any] = {}
        self._done = False
        self._reported = False

    def feed(self, chunk: bytes) -> Tokens | None:
        if self._reported or not chunk:
            return None
        if not self.stream:
            if len(self._buffer) + len(chunk) <= MAX_BUFFER:
                self._buffer += chunk
            else:
                self._buffer, self._reported = b"", True  # too big to read: not metered
            return None
        lines = (self._buffer + chunk).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            if self._skipping:
                self._skipping = False
                continue
            self._line(line)
        if len(self._buffer) > MAX_BUFFER:
            self._buffer, self._skipping = b"", True
        if self._done:
            return self._report()
        return None

    def finish(self) -> Tokens | None:
        """The tokens not yet returned, at the end of the body (whole or cut)."""
        if self._reported:
            return None
        self._reported = True  # whatever is found now, nothing more will be
        if not self.stream:
            try:
                body = json.loads(self._buffer)
            except ValueError:
                return None
            if isinstance(body, dict):
                self._read_body(body)
            return tokens_of(self.endpoint, self._usage) if self._done else None
        if self._buffer and not self._skipping:
            self._line(self._buffer)
        return tokens_of(self.endpoint, self._usage) if self._usage else None

    # -- reading ----------------------------------------------------------------------------------

    def _line(self, line: bytes) -> None:
        if not line.startswith(_DATA) or not any(w in line for w in _WANTED[self.endpoint]):
            return
        try:
            data = json.loads(line[len(_DATA) :])
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        kind = data.get("type")
        if self.endpoint == "messages":
            if kind == "message_start":
                message = _mapping(data.get("message"))
                self._model(message.get("model"))
                self._merge(message.get("usage"))
            elif kind == "message_delta":
                self._merge(data.get("usage"))
                self._done = True
            elif kind == "error":
                self.failed = True
        elif self.endpoint == "chat":
            self._model(data.get("model"))
            if isinstance(data.get("usage"), dict):
                self._merge(data["usage"])
                self._done = True
        elif kind in _RESPONSES_DONE:
            self._read_body(_mapping(data.get("response")))
            self.failed = kind == "response.failed"
            self._done = True

    def _read_body(self, body: Mapping[str, Any]) -> None:
        self._model(body.get("model"))
        if isinstance(body.get("usage"), dict):
            self._merge(body["usage"])
            self._done = True

    def _model(self, model: Any) -> None:
        if isinstance(model, str) and model:
            self.model = model

    def _merge(self, usage: Any) -> None:
        """Later counts replace earlier ones: Anthropic's message_delta counts are cumulative."""
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _report(self) -> Tokens:
        self._reported = True
        return tokens_of(self.endpoint, self._usage)


def tokens_of(endpoint: Endpoint, usage: Mapping[str, Any]) -> Tokens:
    """The tokens an API's usage object reports."""
    if endpoint == "messages":
        write = _count(usage, "cache_creation_input_tokens")
        read = _count(usage, "cache_read_input_tokens")
        return Tokens(
            input=_count(usage, "input_tokens") + write + read,
            output=_count(usage, "output_tokens"),
            cache_read=read,
            cache_write=write,
        )
    if endpoint == "chat":
        details = _mapping(usage.get("prompt_tokens_details"))
        return Tokens(
            input=_count(usage, "prompt_tokens"),
            output=_count(usage, "completion_tokens"),
            cache_read=_count(details, "cached_tokens"),
        )
    details = _mapping(usage.get("input_tokens_details"))
    return Tokens(
        input=_count(usage, "input_tokens"),
        output=_count(usage, "output_tokens"),
        cache_read=_count(details, "cached_tokens"),
        cache_write=_count(details, "cache_write_tokens"),
    )


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
