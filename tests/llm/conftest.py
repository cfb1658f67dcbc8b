from __future__ import annotations

from collections.abc import Iterator

import pytest

from blitz.testing.model_server import ModelServer

from . import DONE


@pytest.fixture
def fake() -> Iterator[ModelServer]:
    """The scripted model server, answering :data:`~tests.llm.DONE` to whatever is not scripted."""
    with ModelServer(fallback=DONE) as server:
        yield server
