"""The model judge: a structured choice among tied best-of-N candidates, its usage counted, and
the ranking order kept whenever it cannot choose."""

from __future__ import annotations

from typing import Any

from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from blitz.conductor.selection import UNAVAILABLE, Candidate
from blitz.domain import Usage
from blitz.llm.judge import ModelJudge
from blitz.llm.models import parse_model
from blitz.testing.models import call, scripted_model

SPEC = parse_model("openai:gpt-5")  # priced: $1.25 in, $10 out per million tokens


def cand(attempt_id: str, **fields: Any) -> Candidate:
    return Candidate(attempt_id=attempt_id, label=f"agent {attempt_id}", passed=True, **fields)


PAIRS = [(cand("a"), "+alpha = 1"), (cand("b"), "+beta = 2")]


async def test_the_model_judge_asks_for_a_structured_choice_and_counts_its_usage() -> None:
    seen = scripted_model([call("choose", choice=2, reason="beta is clearer\nmore text")])
    judge = ModelJudge(seen.model, spec=SPEC)
    assert await judge.pick("Add x", "Add x to the module.", PAIRS) == (1, "beta is clearer")
    prompt = str(seen.requests[0])
    assert "Add x to the module." in prompt and "+alpha = 1" in prompt and "+beta = 2" in prompt
    assert "agent a" not in prompt, "labels name models; the judge does not see them"
    assert seen.tools == [["choose"]]
    spent = Usage(input_tokens=100, output_tokens=20, cost_usd=(100 * 1.25 + 20 * 10) / 1e6)
    assert judge.usage == spent
    assert judge.take_usage() == spent and judge.take_usage() == Usage()
    assert judge.usage == spent


async def test_the_model_judge_with_pydantic_ais_test_model() -> None:
    judge = ModelJudge(
        model=TestModel(custom_output_args={"choice": 1, "reason": "smaller"}), spec=SPEC
    )
    assert await judge.pick("t", "i", PAIRS) == (0, "smaller")


async def test_the_model_judge_falls_back_on_an_invalid_choice() -> None:
    seen = scripted_model([call("choose", choice=3, reason="the third")])
    judge = ModelJudge(seen.model, spec=SPEC)
    assert await judge.pick("t", "i", PAIRS) == (0, f"{UNAVAILABLE}: it chose 3, not 1 to 2")
    assert judge.usage.output_tokens == 20


async def test_the_model_judge_falls_back_on_a_provider_error_and_still_counts_usage() -> None:
    def refuse(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise ModelHTTPError(status_code=401, model_name="gpt-5", body={"message": "bad key"})

    judge = ModelJudge(FunctionModel(refuse), spec=SPEC)
    index, reason = await judge.pick("t", "i", PAIRS)
    assert index == 0 and reason.startswith(f"{UNAVAILABLE}: ")
    # An answer that never fits the schema: pydantic-ai re-asks once, then gives up.
    seen = scripted_model([call("choose", pick="a")], repeat_last=True)
    judge = ModelJudge(seen.model, spec=SPEC)
    index, reason = await judge.pick("t", "i", PAIRS)
    assert index == 0 and reason.startswith(f"{UNAVAILABLE}: ")
    assert len(seen.requests) == 2 and judge.usage.input_tokens == 200
