"""Every request shape blitz sends a local model is accepted by llama.cpp's own converters.

Each test runs one of blitz's real model calls (the planner's plan and recovery, in tool and in
prompted mode; the judge; the embedded agent; native structured output of blitz's plan types)
against the scripted model server, which records the request bodies, and replays every distinct
shape (its tools, tool_choice and response_format) to the real llama.cpp server of the session
(``local_model_server``). So the check follows blitz's code: nothing here copies a schema.

Why the server and not ``xllamacpp.json_schema_to_grammar``: the xllamacpp wheel is built with
LLGuidance, and there that function only wraps the schema in ``%llguidance`` text; it never
raises, so it validates nothing. The server runs the real conversion: ``POST /apply-template``
builds the chat template's tool-call parser and the grammar for ``response_format`` (no
inference), and a ``/v1/chat/completions`` with ``max_tokens: 1`` compiles the grammar the
sampler would use. Either answers a schema it cannot handle with a 400 (``Unable to generate
parser ...: JSON schema error at ...``); the negative controls below show the check can fail.
"""

from __future__ import annotations

import contextlib
import copy
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import Agent, NativeOutput

from blitz.backends.base import AgentRequest
from blitz.backends.options import BackendOptions
from blitz.backends.registry import create_backend
from blitz.conductor.selection import Candidate
from blitz.domain import Attempt, Task
from blitz.llm.judge import ModelJudge
from blitz.llm.models import ModelSpec, ProviderConfig, build_model, parse_model
from blitz.llm.plan_output import PlanOutput, RecoveryOutput
from blitz.llm.planner import LLMPlanner
from blitz.llm.usage import PriceTable
from blitz.planner import PlanRequest, RecoveryRequest
from blitz.testing.clock import ManualClock
from blitz.testing.local_server import LocalServer
from blitz.testing.model_server import ModelServer, Reply

# The real model on a CPU shared with the rest of the suite: minutes, not the default two.
pytestmark = pytest.mark.timeout(600)

PROVIDERS = ["llamacpp", "openai-compatible", "openai"]
"""The providers that reach llama.cpp (each may shape schemas its own way; `openai:` pointed at
another server speaks chat completions)."""

SHAPE = ("tools", "tool_choice", "response_format")
"""What in a request body llama.cpp turns into parsers and grammars."""

Call = Callable[[ModelSpec, ProviderConfig, Path], Awaitable[object]]


class _Instant(ManualClock):
    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))


def _planner(spec: ModelSpec, config: ProviderConfig, mode: str) -> LLMPlanner:
    return LLMPlanner(
        model=build_model(spec, config),
        spec=spec,
        prices=PriceTable(),
        clock=_Instant(),
        max_reasks=0,
        output_mode=mode,  # type: ignore[arg-type]
    )


def _recovery_request() -> RecoveryRequest:
    task = Task(id="parser", goal_id="g1", title="Parse the config", instructions="Add parse().")
    attempt = Attempt(id="a1", goal_id="g1", task_id="parser", number=1, error="tests failed")
    return RecoveryRequest(
        goal_id="g1",
        goal="Read limits from the config file",
        task=task,
        attempt=attempt,
        error="the test gate failed: KeyError: 'limits'",
        task_ids=("parser",),
    )


def _plan(mode: str) -> Call:
    async def call(spec: ModelSpec, config: ProviderConfig, repo: Path) -> object:
        request = PlanRequest(goal_id="g1", goal="Add a hello() function", repo=repo, max_tasks=3)
        return await _planner(spec, config, mode).plan(request)

    return call


def _recover(mode: str) -> Call:
    async def call(spec: ModelSpec, config: ProviderConfig, repo: Path) -> object:
        return await _planner(spec, config, mode).recover(_recovery_request())

    return call


async def _judge(spec: ModelSpec, config: ProviderConfig, repo: Path) -> object:
    pairs = [(Candidate(attempt_id=name, label=name, passed=True), f"+{name} = 1") for name in "ab"]
    return await ModelJudge(build_model(spec, config), spec=spec).pick("t", "i", pairs)


async def _embedded(spec: ModelSpec, config: ProviderConfig, repo: Path) -> object:
    backend = create_backend("embedded", BackendOptions(model=str(spec), providers=config))
    request = AgentRequest(
        goal_id="g1",
        goal="Add hello()",
        task_id="t1",
        title="Add hello()",
        instructions="Add hello() to hello.py.",
        worktree=repo,
        timeout=60,
    )
    return await backend.run(request)  # type: ignore[attr-defined]


def _native(output: type[Any]) -> Call:
    async def call(spec: ModelSpec, config: ProviderConfig, repo: Path) -> object:
        model = build_model(spec, config)
        async with model:  # closes its HTTP client, as blitz's own calls do
            return await Agent(model, output_type=NativeOutput(output)).run("hi")

    return call


CALLS: dict[str, Call] = {
    "plan-tool": _plan("tool"),
    "plan-prompted": _plan("prompted"),
    "recovery-tool": _recover("tool"),
    "recovery-prompted": _recover("prompted"),
    "judge": _judge,
    "embedded-agent": _embedded,
    "native-plan": _native(PlanOutput),
    "native-recovery": _native(RecoveryOutput),
}
"""blitz's model calls, each made for real against the scripted server."""


async def _sent(call: Call, provider: str, repo: Path) -> list[dict[str, Any]]:
    """The distinct request shapes ``call`` sends (whole bodies, first of each shape)."""
    with ModelServer(fallback=Reply(text="done")) as server:
        spec = parse_model(f"{provider}:qwen2.5-coder-0.5b@{server.openai_base_url}")
        with contextlib.suppress(Exception):  # the scripted "done" satisfies no one
            await call(spec, ProviderConfig(openai_api_key="sk-test"), repo)
        bodies = [dict(r.body) for r in server.requests if r.path == "/v1/chat/completions"]
    shapes: dict[str, dict[str, Any]] = {}
    for body in bodies:
        shapes.setdefault(json.dumps([body.get(key) for key in SHAPE], sort_keys=True), body)
    assert shapes, "the call sent nothing"
    return list(shapes.values())


def _post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _applied(server: LocalServer, body: dict[str, Any]) -> tuple[int, str]:
    """llama.cpp's answer to the request's template and parsers, without inference."""
    return _post(f"{server.url}/apply-template", {**body, "stream": False})


def _sampled(server: LocalServer, body: dict[str, Any]) -> tuple[int, str]:
    """llama.cpp's answer to the request's shape with a one-word prompt and one output token:
    the grammar is compiled for the sampler. (The conversation itself went to
    :func:`_applied`; here it would only cost prompt evaluation.)"""
    small = {key: body[key] for key in SHAPE if key in body}
    small.update(messages=[{"role": "user", "content": "hi"}], max_tokens=1, stream=False)
    return _post(f"{server.base_url}/chat/completions", small)


def _what(body: dict[str, Any]) -> str:
    tools = [tool.get("function", {}).get("name") for tool in body.get("tools") or ()]
    return f"tools {tools}, tool_choice {body.get('tool_choice')!r}, " + (
        f"response_format {json.dumps(body.get('response_format'))[:200]}"
    )


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("name", list(CALLS))
async def test_llama_cpp_accepts_what_blitz_sends(
    name: str, provider: str, git_repo: Path, local_model_server: LocalServer
) -> None:
    for body in await _sent(CALLS[name], provider, git_repo):
        for check in (_applied, _sampled):
            status, answer = check(local_model_server, body)
            assert status == 200, f"{name} via {provider}: {_what(body)} -> {status} {answer}"


# -- negative controls: the check fails where llama.cpp refuses --------------------------------

BROKEN = {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}}
"""A schema llama.cpp cannot convert: a reference to nothing."""


async def test_a_tool_schema_llama_cpp_cannot_convert_is_refused(
    git_repo: Path, local_model_server: LocalServer
) -> None:
    body = copy.deepcopy((await _sent(_embedded, "llamacpp", git_repo))[0])
    body["tools"][0]["function"]["parameters"] = BROKEN
    for check in (_applied, _sampled):
        status, answer = check(local_model_server, body)
        assert status == 400 and "Missing" in answer, (check.__name__, status, answer)


async def test_a_response_format_llama_cpp_cannot_convert_is_refused(
    local_model_server: LocalServer,
) -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": BROKEN}},
    }
    for check in (_applied, _sampled):
        status, answer = check(local_model_server, body)
        assert status == 400 and "Missing" in answer, (check.__name__, status, answer)
