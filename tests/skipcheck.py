"""Skips that cannot hide a hole in CI (a pytest plugin, loaded by tests/conftest.py).

On a developer's machine a test that needs something the machine lacks (PostgreSQL, Chromium,
bubblewrap, the codex CLI, ...) is skipped, and the run ends with the list of what was skipped and
why. In strict mode (``BLITZ_TEST_STRICT`` or ``CI`` set; ``scripts/test`` and ``.ci/run`` set
it) :func:`missing` fails the test instead, and the run fails if any test was skipped that is not
listed under ``skipped_by_design`` in ``[tool.pytest.ini_options]`` (pyproject.toml), listing the
offenders. A by-design entry that ran after all, or names a file that is gone, fails a strict
run too, so the list stays true.

A test that needs a new tool calls ``missing("Ray", "how to get it")`` when it is not there, and
``scripts/test`` gets one line that installs or starts it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

STRICT_VARIABLES = ("BLITZ_TEST_STRICT", "CI")
"""Either of these set (to anything but "", "0" or "false") makes the run strict."""

BY_DESIGN = "skipped_by_design"
"""The ini option listing the node ids of the tests skipped by design."""


def strict() -> bool:
    """Whether this run must not skip for want of anything (CI, ``scripts/test``)."""
    return any(
        os.environ.get(name, "").strip().lower() not in ("", "0", "false")
        for name in STRICT_VARIABLES
    )


def missing(what: str, how: str) -> NoReturn:
    """End the calling test because ``what`` is missing here: a skip on a developer's machine, a
    failure in strict mode. ``how`` says how to get it."""
    if strict():
        pytest.fail(f"{what} is missing in a strict run: {how} (scripts/test sets it up)")
    pytest.skip(f"{what} is missing: {how}")


@dataclass(frozen=True, kw_only=True)
class Skip:
    nodeid: str
    reason: str


class SkipCheck:
    """Collects the run's skips and, in strict mode, fails the run on one not by design."""

    def __init__(self, by_design: list[str], root: Path) -> None:
        self.by_design = {line.strip() for line in by_design if line.strip()}
        self.root = root
        self.skipped: dict[str, Skip] = {}
        self.ran: set[str] = set()

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        nodeid = plain(report.nodeid)
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skipped.setdefault(nodeid, Skip(nodeid=nodeid, reason=_why(report)))
        elif report.when == "call":
            self.ran.add(nodeid)

    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A whole module skipped while it is collected (``allow_module_level``)."""
        if report.skipped:
            self.skipped.setdefault(report.nodeid, Skip(nodeid=report.nodeid, reason=_why(report)))

    def offenders(self) -> list[Skip]:
        return [skip for id, skip in sorted(self.skipped.items()) if id not in self.by_design]

    def stale(self) -> list[str]:
        """By-design entries that ran this time: no longer skipped, so no longer by design."""
        return sorted(self.by_design & self.ran)

    def gone(self) -> list[str]:
        """By-design entries whose test file does not exist (moved or renamed)."""
        return sorted(i for i in self.by_design if not (self.root / i.split("::")[0]).is_file())

    def wrong(self) -> bool:
        return bool(self.offenders() or self.stale() or self.gone())

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if strict() and self.wrong() and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.wrong():
            return
        offenders, stale, gone = self.offenders(), self.stale(), self.gone()
        write = terminalreporter.write_line
        if strict():
            terminalreporter.section("skips not by design (strict run: FAILED)", red=True)
        else:
            terminalreporter.section("skipped for want of something (scripts/test sets it up)")
        for skip in offenders:
            write(f"SKIPPED {skip.nodeid}: {skip.reason}")
        for nodeid in stale:
            write(f"RAN {nodeid}: listed in {BY_DESIGN} (pyproject.toml) but not skipped")
        for nodeid in gone:
            write(f"GONE {nodeid}: listed in {BY_DESIGN} (pyproject.toml), no such test file")
        if strict():
            write(
                f"{len(offenders)} skipped test(s) not in {BY_DESIGN}, {len(stale) + len(gone)} "
                "listed there that ran or are gone: strict mode (BLITZ_TEST_STRICT or CI) allows "
                "only the skips by design"
            )


def plain(nodeid: str) -> str:
    """``nodeid`` without the ``@group`` that xdist's ``--dist loadgroup`` appends to it
    (tests/workers.py): the node id as it is written in ``skipped_by_design``."""
    at = nodeid.rfind("@")
    return nodeid[:at] if at > nodeid.rfind("]") else nodeid


def _why(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        BY_DESIGN,
        "node ids of tests skipped by design: a strict run fails on any other skip",
        type="linelist",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    by_design = config.getini(BY_DESIGN)
    check = SkipCheck(list(by_design), config.rootpath)
    config.pluginmanager.register(check, "blitz-skipcheck")
