"""The demo: a small sample repository with tests and a scripted scenario for it.

The scenario exercises the whole engine with no model: three tasks run in parallel, one of them
writes a bug that the test gate catches, the scripted planner diagnoses it and replaces the task
with a fix, a documentation task waits for all of them, and the goal ends with one commit per
task and a pull request description.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from blitz import sandbox
from blitz.git import run_git

GOAL = "Add subtract, multiply and divide to calc, with tests, and document them"

_CORE = '''"""A tiny calculator."""


def add(a: float, b: float) -> float:
    return a + b
'''

_TEST_CORE = """import unittest

from calc.core import add


class AddTest(unittest.TestCase):
    def test_add(self) -> None:
        self.assertEqual(add(2, 3), 5)


if __name__ == "__main__":
    unittest.main()
"""


SCENARIO = Path(__file__).with_name("demo_scenario.yaml")


def scenario() -> dict[str, Any]:
    """The demo's scenario (plan, agent actions, recovery answers) as data."""
    data = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


async def _git(repo: Path, *args: str) -> None:
    await run_git(repo, *args, timeout=60)


UNCONFINED_DEMO = (
    "\n# bubblewrap cannot start here, and the demo's agent is scripted: run it unconfined.\n"
    '[sandbox]\nmode = "off"\n'
)
"""Where the sandbox cannot start, the demo (whose agent is canned, not a model) runs without
it rather than refusing; a real project with ``mode = "required"`` would be paused."""


async def make_repo(root: Path) -> Path:
    """Create the sample repository (with a bare 'origin' remote beside it) under ``root``."""
    repo = root / "calc"
    (repo / "calc").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "calc" / "__init__.py").write_text('"""calc: the blitz demo project."""\n')
    (repo / "calc" / "core.py").write_text(_CORE)
    (repo / "tests" / "__init__.py").write_text("")
    (repo / "tests" / "test_core.py").write_text(_TEST_CORE)
    (repo / "README.md").write_text("# calc\n\nA tiny calculator, grown by blitz.\n")
    python = shlex.quote(sys.executable)
    (repo / "blitz.toml").write_text(
        "# The demo project's blitz settings.\n"
        '[project]\nname = "calc-demo"\nbase_branch = "main"\nremote = "origin"\n'
        'backend = "scripted"\nmax_parallel = 3\n\n'
        f'[gates]\ntest = "{python} -m unittest discover -s tests -t . -q"\ntimeout = 120\n'
        + ("" if sandbox.probe().ok else UNCONFINED_DEMO)
    )
    await _git(repo, "init", "-q", "-b", "main")
    await _git(repo, "add", "-A")
    await _git(
        repo,
        "-c",
        "user.name=blitz demo",
        "-c",
        "user.email=demo@blitz.invalid",
        "commit",
        "-q",
        "-m",
        "calc: add()",
    )
    remote = root / "origin.git"
    await _git(root, "init", "-q", "--bare", str(remote))
    await _git(repo, "remote", "add", "origin", str(remote))
    return repo
