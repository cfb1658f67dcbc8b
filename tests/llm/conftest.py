from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from blitz.llm.models import build_model
from blitz.llm.planner import LLMPlanner
from blitz.llm.usage import PriceTable
from blitz.testing.model_server import ModelServer

from . import DONE
from .planner_helpers import CONFIG, InstantClock, Make, spec_for


@pytest.fixture
def fake() -> Iterator[ModelServer]:
    """The scripted model server, answering :data:`~tests.llm.DONE` to whatever is not scripted."""
    with ModelServer(fallback=DONE) as server:
        yield server


@pytest.fixture
def repo(git_repo: Path) -> Path:
    """A committed repository with a small app for a planner to read."""
    (git_repo / "src").mkdir()
    (git_repo / "src" / "app.py").write_text("def handle(request):\n    return 'ok'\n")
    (git_repo / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    for args in (["add", "-A"], ["commit", "-q", "-m", "Add the app"]):
        subprocess.run(["git", *args], cwd=git_repo, check=True, capture_output=True, timeout=30)
    return git_repo


@pytest.fixture
def server() -> Iterator[ModelServer]:
    """The scripted model server, with nothing scripted yet (the planner's tests)."""
    with ModelServer() as running:
        yield running


@pytest.fixture
async def make(server: ModelServer) -> AsyncIterator[Make]:
    """Builds planners on real models pointed at ``server``; closes the models afterwards."""
    async with contextlib.AsyncExitStack() as stack:

        async def build(api: str, *, recovery_api: str | None = None, **options: Any) -> LLMPlanner:
            spec = spec_for(api, server)
            model = await stack.enter_async_context(build_model(spec, CONFIG))
            if recovery_api is not None:
                recovery_spec = spec_for(recovery_api, server)
                options["recovery_spec"] = recovery_spec
                options["recovery_model"] = await stack.enter_async_context(
                    build_model(recovery_spec, CONFIG)
                )
            options.setdefault("clock", InstantClock())
            return LLMPlanner(model=model, spec=spec, prices=PriceTable(), **options)

        yield build
