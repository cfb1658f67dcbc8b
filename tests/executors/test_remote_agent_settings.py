"""A worker node builds the embedded agent with the project's ``[agent]`` settings, as the daemon
does (before, a node built it with the defaults: a small model's ``max_turns = 30`` and
``stuck_repeats = 2`` held on the daemon's machine and not on the cluster's). The daemon's own
backend and job, and the worker's own code that makes the node's backend, in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blitz.backends.embedded import EmbeddedBackend
from blitz.backends.options import BackendOptions, agent_options
from blitz.backends.registry import create_backend
from blitz.config import AgentConfig
from blitz.domain import Attempt, Goal, Project, Task
from blitz.executors.ray import job as jobs
from blitz.executors.ray import remote
from blitz.executors.ray.resources import WORKER_HOME_ENV
from blitz.sandbox import UNCONFINED

MODEL = "llamacpp:qwen2.5-coder-1.5b@http://127.0.0.1:9/v1"
SMALL = AgentConfig(
    max_turns=30,
    max_tokens=500_000,
    max_cost_usd=0.5,
    stuck_repeats=2,
    max_output_tokens=2048,
    gates_on_finish=False,
    temperature=0.4,
)


def embedded(backend: Any) -> EmbeddedBackend:
    while not isinstance(backend, EmbeddedBackend):
        backend = backend.inner
    return backend


def node_job(agent: AgentConfig | None) -> remote.Job:
    project = Project(id="p-1", name="p", path="/nowhere")
    goal = Goal(id="g-1", project_id=project.id, title="goal", branch="blitz/g-1")
    task = Task(id="t1", goal_id=goal.id, title="add slugify")
    attempt = Attempt(id="a-1", goal_id=goal.id, task_id=task.id, number=1)
    return remote.Job(
        project=project,
        goal=goal,
        task=task,
        attempt=attempt,
        base="0" * 40,
        backend="embedded",
        model=MODEL,
        agent=agent,
    )


def test_a_worker_builds_the_embedded_agent_with_the_projects_agent_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WORKER_HOME_ENV, str(tmp_path / "node"))
    daemons = create_backend("embedded", BackendOptions(model=MODEL, **agent_options(SMALL)))

    sent = jobs._agent(daemons)
    built = embedded(remote._backend(node_job(sent), UNCONFINED, None))

    assert sent == SMALL
    limits = built.limits
    assert (limits.max_turns, limits.max_tokens, limits.max_cost_usd) == (30, 500_000, 0.5)
    assert (limits.stuck_repeats, limits.max_output_tokens) == (2, 2048)
    assert limits.gates_on_finish is False and built.temperature == 0.4
    assert limits == embedded(daemons).limits


def test_a_job_for_another_backend_carries_no_agent_settings_and_a_node_uses_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WORKER_HOME_ENV, str(tmp_path / "node"))
    assert jobs._agent(create_backend("scripted", BackendOptions())) is None

    built = embedded(remote._backend(node_job(None), UNCONFINED, None))

    defaults = AgentConfig()
    assert built.limits.max_turns == defaults.max_turns
    assert built.limits.gates_on_finish is True
