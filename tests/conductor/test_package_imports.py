"""The conductor package loads its parts when they are first asked for: a process that needs
one of its modules (a Ray worker runs only :mod:`blitz.conductor.attempt`, each new worker
process importing it again) does not load the engine, the store and SQLAlchemy with it, while
``from blitz.conductor import Engine`` works as before."""

from __future__ import annotations

import subprocess
import sys

import pytest

import blitz.conductor
from blitz.conductor.engine import Engine
from blitz.conductor.services import Services

HEAVY = ("blitz.conductor.engine", "blitz.store", "sqlalchemy")


def test_a_workers_attempt_modules_load_without_the_engine() -> None:
    code = (
        "import sys\n"
        "import blitz.conductor.attempt, blitz.conductor.landing, blitz.executors.ray.remote\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_package_still_gives_its_names() -> None:
    from blitz.conductor import Engine as Named
    from blitz.conductor import Services as Given

    assert Named is Engine and Given is Services
    assert sorted(blitz.conductor.__all__) == sorted(blitz.conductor._WHERE)
    for name in blitz.conductor.__all__:
        assert getattr(blitz.conductor, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = blitz.conductor.Nothing  # type: ignore[attr-defined]
