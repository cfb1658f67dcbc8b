"""The model calls in a ``bench/local_model.py --keep`` run, read back from its relay's log.

``python bench/traffic.py DIR/traffic.jsonl`` (``--chars N`` of each message, ``--since N`` to
start at call N) prints every call in the order it was made: what was new in its request (the
messages after the model's last answer: the prompt, a tool's result, a re-ask), its output limit,
and what the model answered (text, tool calls, why it stopped, its tokens). Each connection's
bytes are kept apart in the log, so calls made at the same time do not mix.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Call:
    start: float
    connection: int
    request: dict[str, Any]
    response: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _messages(stream: bytes) -> list[tuple[dict[str, str], bytes, int]]:
    """The HTTP/1.1 messages in one direction of a connection: headers, body, and the offset
    each starts at (Content-Length or chunked bodies; a cut-off last one kept as it is)."""
    found: list[tuple[dict[str, str], bytes, int]] = []
    at = 0
    while at < len(stream):
        end = stream.find(b"\r\n\r\n", at)
        if end < 0:
            break
        lines = stream[at:end].decode("latin-1").split("\r\n")
        pairs = (line.partition(":") for line in lines[1:])
        headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
        headers[":start"] = lines[0]
        body_at = end + 4
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body, at = _unchunked(stream, body_at)
        else:
            length = int(headers.get("content-length", "0") or 0)
            body, at = stream[body_at : body_at + length], body_at + length
        found.append((headers, body, body_at))
    return found


def _unchunked(stream: bytes, at: int) -> tuple[bytes, int]:
    body = bytearray()
    while True:
        line_end = stream.find(b"\r\n", at)
        if line_end < 0:
            return bytes(body), len(stream)
        size = int(stream[at:line_end].split(b";")[0] or b"0", 16)
        at = line_end + 2
        if size == 0:
            return bytes(body), at + 2
        body += stream[at : at + size]
        at += size + 2


def calls(log: Path) -> list[Call]:
    """Every call in ``log``, by when its request started."""
    sent: dict[int, list[tuple[float, bytes]]] = defaultdict(list)
    received: dict[int, bytearray] = defaultdict(bytearray)
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        data = record["data"].encode("latin-1")
        if record["dir"] == "request":
            sent[record["conn"]].append((record["t"], data))
        else:
            received[record["conn"]] += data
    found: list[Call] = []
    for connection, chunks in sent.items():
        stream = b"".join(data for _, data in chunks)
        starts = []  # when the chunk holding each byte offset arrived
        offset = 0
        for t, data in chunks:
            starts.append((offset, t))
            offset += len(data)
        responses = _messages(bytes(received[connection]))
        for n, (headers, body, body_at) in enumerate(_messages(stream)):
            if not headers[":start"].startswith("POST"):
                continue
            t = max((t for o, t in starts if o <= body_at), default=0.0)
            try:
                request = json.loads(body)
            except ValueError:
                request = {"unreadable": body[:200].decode("latin-1")}
            call = Call(t, connection, request)
            if n < len(responses):
                call.headers, call.response = responses[n][0], responses[n][1]
            found.append(call)
    return sorted(found, key=lambda c: c.start)


def answer(call: Call) -> dict[str, Any]:
    """What the model answered: text, tool calls, finish reason, usage (from a stream or not)."""
    text, tools, reason, usage = "", defaultdict(lambda: {"name": "", "arguments": ""}), "", {}
    body = call.response.decode("utf-8", errors="replace")
    if "text/event-stream" in call.headers.get("content-type", ""):
        chunks = [
            json.loads(line[5:])
            for line in body.splitlines()
            if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]")
        ]
    else:
        try:
            chunks = [json.loads(body)] if body else []
        except ValueError:
            return {"text": body[:500], "status": call.headers.get(":start", "")}
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            part = choice.get("delta") or choice.get("message") or {}
            text += part.get("content") or ""
            for tool in part.get("tool_calls") or []:
                slot = tools[tool.get("index", len(tools))]
                function = tool.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
            reason = choice.get("finish_reason") or reason
        if "error" in chunk:
            text += json.dumps(chunk["error"])
    return {
        "status": call.headers.get(":start", "(no response)"),
        "text": text,
        "tools": list(tools.values()),
        "finish": reason,
        "usage": usage,
    }


def _new_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages after the model's last answer in the conversation (all, on a first call)."""
    messages = request.get("messages") or []
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
    return messages[last + 1 :] if last >= 0 else messages


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _cut(text: str, chars: int) -> str:
    text = text.strip()
    if len(text) <= chars:
        return text
    half = chars // 2
    return f"{text[:half]}\n    [... {len(text) - chars} characters ...]\n{text[-half:]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path)
    parser.add_argument("--chars", type=int, default=1200, help="of each message shown")
    parser.add_argument("--since", type=int, default=1, help="the first call shown")
    args = parser.parse_args()
    found = calls(args.log)
    first = found[0].start if found else 0.0
    for number, call in enumerate(found, 1):
        if number < args.since:
            continue
        request, said = call.request, answer(call)
        limit = request.get("max_tokens") or request.get("max_completion_tokens")
        shape = "tools" if request.get("tools") else ""
        shape = shape or ("json" if request.get("response_format") else "")
        print(
            f"=== call {number} at +{call.start - first:.0f}s (connection {call.connection}) "
            f"{shape} max_tokens={limit} temperature={request.get('temperature')}"
        )
        for message in _new_messages(request):
            print(f"  [{message.get('role')}] {_cut(_content(message), args.chars)}")
        print(f"  -> {said['status']} finish={said.get('finish')} usage={said.get('usage')}")
        if said.get("text"):
            print(f"  -> text: {_cut(said['text'], args.chars)}")
        for tool in said.get("tools") or []:
            print(f"  -> call {tool['name']}: {_cut(tool['arguments'], args.chars)}")
    print(f"{len(found)} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
