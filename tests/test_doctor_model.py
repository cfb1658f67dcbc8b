"""``blitz doctor``'s model probe (:mod:`blitz.llm.probe`): against the real llama.cpp server with
the 0.5B model (the protocol, not the model's skill), and against the scripted model server for
models that behave in ways the real one does not here (native tool calls, calls written as text,
a refused JSON schema, no answer at all)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz

from blitz.llm.models import ProviderConfig, parse_model
from blitz.llm.probe import MAX_TOKENS, ModelProbe, probe_model
from blitz.testing.local_server import LocalServer
from blitz.testing.model_server import ModelServer

# The real model on a CPU shared with the rest of the suite: minutes, not the default two.
pytestmark = pytest.mark.timeout(600)

LLAMA_REFUSAL = (
    "Unable to generate parser for this template. Automatic parser generation failed: JSON "
    "schema error at #/properties/a: cannot resolve $ref #/$defs/Missing, $defs not found"
)
TEXT_CALL = '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```'


def scripted(weather: dict[str, Any], schema: dict[str, Any] | None = None) -> ModelServer:
    """A model that counts, answers the weather question with ``weather`` and the schema
    question with ``schema`` (a plain JSON answer when None)."""
    answer = {"json": {"answer": "Paris", "sure": True}}
    return ModelServer(
        [
            {"match": "Count from 1 to 30", "reply": {"text": "1 2 3 4 5"}, "times": -1},
            {"match": "weather in Paris", "reply": weather, "times": -1},
            {"match": "capital of France", "reply": schema or answer, "times": -1},
        ]
    )


async def probe(server: ModelServer | LocalServer, **options: Any) -> ModelProbe:
    url = server.openai_base_url if isinstance(server, ModelServer) else server.base_url
    spec = parse_model(f"llamacpp:qwen2.5-coder-0.5b@{url}")
    return await probe_model(spec, ProviderConfig(), **options)


async def test_the_real_local_model_answers_within_its_bounds(
    local_model_server: LocalServer,
) -> None:
    found = await probe(local_model_server)
    assert found.answers, found.error
    assert 0 < found.output_tokens <= MAX_TOKENS
    assert found.first_token_seconds is not None
    assert found.tokens_per_second is not None or found.output_tokens == 1  # a rate needs two
    assert found.tool_calls is not None, found.tool_detail  # native, text or none: its skill
    assert found.json_schema is True, "llama.cpp takes response_format json_schema"
    statuses = {f.name.removeprefix(f"model {found.model}"): f.status for f in found.findings()}
    assert statuses[""] == "ok" and statuses[" json schema"] == "ok"


async def test_a_model_calling_the_tool_natively() -> None:
    native = {"tool_calls": [{"name": "get_weather", "input": {"city": "Paris"}}]}
    with scripted(native) as server:
        found = await probe(server)
        bodies = [request.body for request in server.requests]
    assert found.answers and found.tool_calls == "native" and found.json_schema is True
    assert found.output_tokens == 20  # the scripted usage
    assert all(body["max_completion_tokens"] == MAX_TOKENS for body in bodies)
    tools = next(body for body in bodies if body.get("tools"))
    assert tools["tool_choice"] == "auto"
    native_output = next(body for body in bodies if body.get("response_format"))
    assert native_output["response_format"]["type"] == "json_schema"
    assert [f.status for f in found.findings()] == ["ok", "ok", "ok"]


async def test_a_model_writing_its_tool_call_as_text_and_refusing_json_schemas() -> None:
    refusal = {"error": {"status": 400, "message": LLAMA_REFUSAL}}
    with scripted({"text": f"Here you go:\n{TEXT_CALL}"}, refusal) as server:
        found = await probe(server)
    assert found.answers and found.tool_calls == "text" and found.json_schema is False
    assert "get_weather" in found.tool_detail
    assert "Unable to generate parser" in found.json_schema_detail
    tools, schema = found.findings()[1:]
    assert tools.status == "warn" and "as text" in tools.detail
    assert schema.status == "warn" and "refuses response_format json_schema" in schema.detail


async def test_a_model_that_answers_without_calling_the_tool() -> None:
    with scripted({"text": "It is sunny in Paris."}) as server:
        found = await probe(server)
    assert found.tool_calls == "none" and "sunny" in found.tool_detail


async def test_a_server_that_does_not_answer_in_time_fails_the_probe() -> None:
    slow = ModelServer(fallback={"text": "late", "delay": 5})
    with slow as server:
        found = await probe(server, timeout=0.5)
    assert not found.answers and found.error == "no answer within 0.5 s"
    assert [(f.status, f.detail) for f in found.findings()] == [
        ("fail", "does not answer: no answer within 0.5 s")
    ]


async def test_a_server_that_is_not_there_fails_the_probe() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = parse_model(f"llamacpp:qwen@http://127.0.0.1:{port}/v1")
    found = await probe_model(spec, ProviderConfig(), timeout=10)
    assert not found.answers and found.error


def checks(stdout: str) -> dict[str, dict[str, str]]:
    return {check["name"]: check for check in json.loads(stdout)}


def test_doctor_tries_the_configured_local_model(tmp_path: Path) -> None:
    with scripted({"text": TEXT_CALL}) as server:
        model = f"llamacpp:qwen2.5-coder-0.5b@{server.openai_base_url}"
        done = blitz(tmp_path / "home", "doctor", "--json", BLITZ_AGENT_MODEL=model)
    found = checks(done.stdout)
    assert found[f"model {model}"]["status"] == "ok"
    assert found[f"model {model}"]["detail"].startswith("answers; time to first token")
    assert found[f"model {model} tools"]["status"] == "warn"
    assert found[f"model {model} json schema"]["status"] == "ok"


def test_doctor_tries_a_named_model_and_fails_when_it_does_not_answer(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = f"openai-compatible:coder@http://127.0.0.1:{port}/v1"
    done = blitz(tmp_path / "home", "doctor", "--json", "--model", model)
    assert done.returncode == 1
    assert checks(done.stdout)[f"model {model}"]["detail"].startswith("does not answer: ")


def test_doctor_leaves_hosted_models_alone_unless_named(tmp_path: Path) -> None:
    done = blitz(tmp_path / "home", "doctor", "--json", BLITZ_MODEL="anthropic:claude-sonnet-4-6")
    assert not [name for name in checks(done.stdout) if name.startswith("model ")]
    local = "ollama:qwen2.5-coder:7b@http://127.0.0.1:9/v1"
    skipped = blitz(tmp_path / "home", "doctor", "--json", "--no-probe", BLITZ_MODEL=local)
    assert not [name for name in checks(skipped.stdout) if name.startswith("model ")]
