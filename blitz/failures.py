"""Failing test ids read from a test run's output: pytest, unittest, go test, cargo test, jest
and vitest. Judging a gate against the baseline compares these ids (:mod:`blitz.validation`).
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")

# pytest short summary: "FAILED tests/x.py::test_y - AssertionError", "ERROR tests/x.py", and
# pytest 9's subtests: "SUBFAILED(i=1) tests/x.py::T::test_y - ..."
_PYTEST_SUMMARY = re.compile(
    r"^(?:FAILED|ERROR|SUBFAILED(?:\[.*?\])?(?:\(.*?\))?) (?P<id>\S.*?)(?: - .*)?\s*$"
)
# pytest -v: "tests/x.py::test_y FAILED   [ 50%]"
_PYTEST_VERBOSE = re.compile(r"^(?P<id>\S+::\S.*?) (?:FAILED|ERROR)(?:\s+\[\s*\d+%\])?\s*$")
# unittest: "FAIL: test_x (pkg.mod.Class.test_x)" (3.11+) or "ERROR: test_x (pkg.mod.Class)"
_UNITTEST = re.compile(r"^(?:FAIL|ERROR): (?P<name>\S+) \((?P<where>[^()\s]+)\)")
# go test: "--- FAIL: TestX (0.00s)", subtests indented; "FAIL  example.com/pkg [build failed]"
_GO_TEST = re.compile(r"^\s*--- FAIL: (?P<id>\S+)")
_GO_BUILD = re.compile(r"^FAIL\s+(?P<id>\S+ \[(?:build|setup) failed\])")
# cargo test: "test parser::tests::rejects_empty ... FAILED"
_CARGO = re.compile(r"^test (?P<id>.+?) \.\.\. FAILED\s*$")
# jest / vitest: "  ✕ adds numbers (3 ms)", and vitest's multiplication sign: "  \u00d7 adds 3ms"
_JS_CROSS = re.compile(
    r"^\s*[\u2715\u2716\u00d7]\s+(?P<id>.+?)(?:\s+\(\d+(?:\.\d+)?\s*m?s\)|\s+\d+(?:\.\d+)?m?s)?\s*$"
)
# jest "FAIL src/sum.test.js (5.1 s)", vitest " FAIL  src/sum.test.ts > suite > name"
_JS_FAIL = re.compile(r"^\s*FAIL\s+(?P<id>\S.*?)(?:\s+\(\d+(?:\.\d+)?\s*m?s\))?\s*$")
_JS_FILE = re.compile(r"^\S+\.(?:[cm]?[jt]sx?|vue|svelte)\b")


def parse_failures(output: str) -> frozenset[str]:
    """The failing test ids in a test run's output: pytest, unittest, go test, cargo test, jest
    and vitest are recognised. Empty when none is (which does not mean nothing failed)."""
    ids: set[str] = set()
    for raw in output.splitlines():
        line = _ANSI.sub("", raw)
        found = _failure_in(line)
        if found:
            ids.add(found)
    return frozenset(ids)


def _failure_in(line: str) -> str | None:
    if m := _PYTEST_SUMMARY.match(line):
        node = m["id"]
        # A pytest node id is a file (collection error) or file::name; this keeps out log lines
        # such as "ERROR something went wrong".
        path = node.split("::", 1)[0]
        if ("::" in node or path.endswith(".py")) and " " not in path:
            return node
    if m := _PYTEST_VERBOSE.match(line):
        return m["id"]
    if m := _UNITTEST.match(line):
        name, where = m["name"], m["where"]
        return where if where == name or where.endswith("." + name) else f"{where}.{name}"
    if m := _GO_TEST.match(line):
        return m["id"]
    if m := _GO_BUILD.match(line):
        return m["id"]
    if m := _CARGO.match(line):
        return m["id"]
    if m := _JS_CROSS.match(line):
        return m["id"]
    if (m := _JS_FAIL.match(line)) and _JS_FILE.match(m["id"]):
        return m["id"]
    return None


# pytest's explanation lines: "E       assert add(1, 2) == 3"
_PYTEST_EXPLAINED = re.compile(r"^E\s+(?P<what>\S.*?)\s*$")
# Python (unittest, a traceback): "AssertionError: 3 != 4", "ValueError: bad input"
_PYTHON_ERROR = re.compile(r"^\s*(?P<what>(?:[\w.]+Error|[\w.]*Exception)(?:: .*?)?)\s*$")
# go test: "    calc_test.go:12: add(1, 2) = -1, want 3"
_GO_MESSAGE = re.compile(r"^\s+(?P<what>\S+_test\.go:\d+: .*?)\s*$")
# jest / vitest: "    Expected: 3", after "expect(received).toBe(expected)"
_JS_EXPECTED = re.compile(r"^\s*(?P<what>(?:Expected|AssertionError)\b.*?)\s*$")


def first_assertion(output: str) -> str:
    """The first assertion (or error) a test run's output explains a failure with, on one line:
    pytest's ``E`` lines, a Python error, a go test message, jest's expectation; empty when
    none is found."""
    for pattern in (_PYTEST_EXPLAINED, _PYTHON_ERROR, _GO_MESSAGE, _JS_EXPECTED):
        for raw in output.splitlines():
            if m := pattern.match(_ANSI.sub("", raw)):
                return m["what"]
    return ""
