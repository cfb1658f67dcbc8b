"""The skip check (tests/skipcheck.py): a strict run (CI, scripts/test) fails when a test is
skipped that is not skipped by design, and lists it; a developer's run only lists it.

Each test runs a real pytest on a small suite of its own, with the plugin and an allowlist.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from skipcheck import STRICT_VARIABLES

HERE = Path(__file__).parent

SUITE = """
import pytest
from skipcheck import missing

def test_runs():
    pass

def test_by_design():
    pytest.skip("there is nothing to test here on this variant")
"""

NEEDS_A_TOOL = """
def test_needs_a_tool():
    missing("the frobnicator", "apt-get install frobnicator")
"""

PLAIN_SKIP = """
def test_skipped_quietly():
    pytest.skip("not today")
"""

ALLOWLISTED_BUT_RAN = """
def test_listed_but_runs():
    pass
"""

INI = """[pytest]
filterwarnings = error
skipped_by_design =
    test_suite.py::test_by_design
    test_suite.py::test_listed_but_runs
"""

STRICT = [("BLITZ_TEST_STRICT", "1"), ("CI", "true")]


def run_suite(
    root: Path, body: str, *, listed: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """pytest on ``SUITE + body`` in ``root`` with the skip check loaded and ``listed`` added to
    the tests skipped by design, in the environment of this process without its strictness,
    plus ``env``."""
    root.mkdir(exist_ok=True)
    (root / "pytest.ini").write_text(INI + (f"    {listed}\n" if listed else ""))
    (root / "test_suite.py").write_text(SUITE + body)
    environment = {k: v for k, v in os.environ.items() if k not in STRICT_VARIABLES}
    environment["PYTHONPATH"] = str(HERE)
    environment["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only pytest and the skip check
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "skipcheck", "-p", "no:cacheprovider", "-rA"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_developers_run_skips_what_is_missing_and_lists_it(tmp_path: Path) -> None:
    done = run_suite(tmp_path, NEEDS_A_TOOL + PLAIN_SKIP)

    assert done.returncode == 0, done.stdout + done.stderr
    listed = done.stdout.split("skipped for want of something")[1]
    assert (
        "SKIPPED test_suite.py::test_needs_a_tool: the frobnicator is missing: "
        "apt-get install frobnicator"
    ) in listed
    assert "SKIPPED test_suite.py::test_skipped_quietly: not today" in listed
    assert "test_by_design" not in listed


@pytest.mark.parametrize(("variable", "value"), STRICT)
def test_a_strict_run_fails_a_test_that_finds_something_missing(
    tmp_path: Path, variable: str, value: str
) -> None:
    done = run_suite(tmp_path, NEEDS_A_TOOL, **{variable: value})

    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED test_suite.py::test_needs_a_tool" in done.stdout
    assert "the frobnicator is missing in a strict run" in done.stdout


@pytest.mark.parametrize(("variable", "value"), STRICT)
def test_a_strict_run_with_a_skip_not_by_design_fails_and_lists_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    done = run_suite(tmp_path, PLAIN_SKIP, **{variable: value})

    # No test failed: the skip alone fails the run.
    assert "failed" not in done.stdout.splitlines()[-1], done.stdout
    assert done.returncode == 1, done.stdout + done.stderr
    listed = done.stdout.split("skips not by design (strict run: FAILED)")[1]
    assert "SKIPPED test_suite.py::test_skipped_quietly: not today" in listed
    assert "test_by_design" not in listed
    assert "1 skipped test(s) not in skipped_by_design" in listed


def test_a_strict_run_with_a_module_skipped_whole_fails_and_lists_it(tmp_path: Path) -> None:
    (tmp_path / "test_elsewhere.py").write_text(
        "import pytest\npytest.skip('no frobnicator', allow_module_level=True)\n"
    )
    done = run_suite(tmp_path, "", BLITZ_TEST_STRICT="1")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "SKIPPED test_elsewhere.py: no frobnicator" in done.stdout


def test_a_strict_run_fails_when_a_test_listed_as_skipped_by_design_ran(tmp_path: Path) -> None:
    done = run_suite(tmp_path, ALLOWLISTED_BUT_RAN, BLITZ_TEST_STRICT="1")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "RAN test_suite.py::test_listed_but_runs: listed in skipped_by_design" in done.stdout


def test_a_strict_run_fails_when_a_test_listed_as_skipped_by_design_is_gone(
    tmp_path: Path,
) -> None:
    listed = "test_moved_away.py::test_by_design"
    done = run_suite(tmp_path, "", listed=listed, BLITZ_TEST_STRICT="1")

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"GONE {listed}: listed in skipped_by_design" in done.stdout


def test_a_strict_run_may_skip_what_is_skipped_by_design(tmp_path: Path) -> None:
    done = run_suite(tmp_path, "", BLITZ_TEST_STRICT="1")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 skipped" in done.stdout
    assert "not by design" not in done.stdout


def test_strictness_off_is_not_strict(tmp_path: Path) -> None:
    done = run_suite(tmp_path, PLAIN_SKIP, BLITZ_TEST_STRICT="0", CI="false")

    assert done.returncode == 0, done.stdout + done.stderr
