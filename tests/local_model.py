"""The real local model for tests (a pytest plugin, loaded by tests/conftest.py).

``local_model_server`` is llama.cpp's own server (the ``xllamacpp`` wheel) running
Qwen2.5-Coder-0.5B on 127.0.0.1, started once per session; its GGUF comes from the cache that
``scripts/test`` fills (:func:`blitz.testing.local_model.ensure_model`). Without xllamacpp or the
GGUF a test that asks for it is skipped on a developer's machine and fails a strict run
(:func:`skipcheck.missing`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from blitz.testing.local_model import LocalServer, cached

MODEL = "qwen2.5-coder-0.5b"
HOW = (
    "scripts/test downloads it (uv sync --extra dev; "
    f"python -m blitz.testing.local_model fetch {MODEL})"
)


@pytest.fixture(scope="session")
def local_model_server() -> Iterator[LocalServer]:
    """A started llama.cpp server for the 0.5B model: 8k context, 2 threads, one slot."""
    from skipcheck import missing  # here: pytest_plugins must import it first, to rewrite it

    if importlib.util.find_spec("xllamacpp") is None:
        missing("the local model (xllamacpp)", HOW)
    path = cached(MODEL)
    if path is None:
        missing(f"the local model ({MODEL}'s GGUF)", HOW)
    with LocalServer(path, alias=MODEL, n_ctx=8192, threads=2) as server:
        yield server
