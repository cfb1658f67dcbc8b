"""What the daemon sends a worker for one attempt: a :class:`~blitz.executors.ray.remote.Job` made
from the attempt's request. Records and data only (the model's name, the project's sandbox mode,
the scripted backend's script), never a key: the worker makes the backend with its own."""

from __future__ import annotations

from typing import Any

from blitz.config import AgentConfig, CodexConfig
from blitz.domain import Attempt
from blitz.executors.base import AttemptRequest
from blitz.executors.ray.remote import Job
from blitz.executors.ray.sync import Upstream


def job_for(
    request: AttemptRequest, attempt: Attempt, base: str, upstream: Upstream | None = None
) -> Job:
    """The job of ``request``'s attempt (as recorded: ``attempt``), starting from ``base``; the
    node fetches ``upstream`` first when given."""
    return Job(
        project=request.project,
        goal=request.goal,
        task=request.task,
        attempt=attempt,
        base=base,
        backend=request.backend.name,
        model=model_of(request),
        labels=request.labels,
        baseline=request.baseline,
        timeout=request.timeout,
        budget_usd=request.budget_usd,
        scenario=_scenario(request.backend),
        setup=getattr(request.setup, "spec", None),
        sandbox=_sandbox(request),
        upstream=upstream,
        candidate=request.selection is not None,
        codex=_codex(request.backend),
        agent=_agent(request.backend),
    )


def _sandbox(request: AttemptRequest) -> tuple[str, bool]:
    """The project's ``[sandbox]`` mode and network setting, for the worker's own policy (its
    paths are the worker's, never the daemon's)."""
    validator = request.validator
    policy = getattr(validator, "sandbox", None) or getattr(request.backend, "policy", None)
    if policy is None:
        return ("required", False)  # confined unless the project says otherwise
    return (policy.mode, policy.network)


def _codex(backend: Any) -> CodexConfig | None:
    """The codex backend's ``[codex]`` settings without its binary (a path on the daemon's
    machine: the worker runs the CLI it has); None for any other backend."""
    while backend is not None:
        config = getattr(backend, "config", None)
        if getattr(backend, "name", "") == "codex" and isinstance(config, CodexConfig):
            return config.model_copy(update={"binary": ""})
        backend = getattr(backend, "inner", None)
    return None


def _agent(backend: Any) -> AgentConfig | None:
    """The embedded agent's ``[agent]`` settings, as the daemon built it; None for any other
    backend."""
    from blitz.backends.embedded import EmbeddedBackend

    while backend is not None:
        if isinstance(backend, EmbeddedBackend):
            limits = backend.limits
            return AgentConfig(
                max_turns=limits.max_turns,
                max_tokens=limits.max_tokens,
                max_cost_usd=limits.max_cost_usd or 0.0,
                stuck_repeats=limits.stuck_repeats,
                max_output_tokens=limits.max_output_tokens,
                gates_on_finish=limits.gates_on_finish,
                draft=limits.draft,
                temperature=backend.temperature,
            )
        backend = getattr(backend, "inner", None)
    return None


def _scenario(backend: Any) -> Any:
    """The scripted backend's scenario (its script is data); None for any other backend."""
    while backend is not None and getattr(backend, "name", "") == "scripted":
        if hasattr(backend, "scenario"):
            from blitz.testing.scripted import Scenario

            found = backend.scenario
            return Scenario(agent=found.agent) if isinstance(found, Scenario) else None
        backend = getattr(backend, "inner", None)
    return None


def model_of(request: AttemptRequest) -> str:
    """The model the attempt runs on: the request's, else the one the daemon's backend was made
    with (its settings' default). The worker makes its backend with it and its own keys: a
    worker's settings may name no model, or another."""
    if request.model:
        return request.model
    seen: Any = request.backend
    while seen is not None:
        spec = getattr(seen, "spec", None)
        if isinstance(getattr(spec, "provider", None), str):
            return str(spec)
        seen = getattr(seen, "inner", None)
    return ""
