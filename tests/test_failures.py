from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blitz.failures import parse_failures

# -- parse_failures: one realistic sample per runner ------------------------------------------

PYTEST = """\
..F.FF.F.F
=================================== FAILURES ===================================
___________________________________ test_bad ___________________________________

    def test_bad(): assert 1 == 2
E   assert 1 == 2

test_a.py:3: AssertionError
------------------------------ Captured log call -------------------------------
ERROR    root:test_a.py:3 something went wrong
=========================== short test summary info ============================
FAILED test_a.py::test_bad - assert 1 == 2
FAILED test_a.py::test_param[a b] - AssertionError: assert 'a b' == 'c'
FAILED test_a.py::T::test_e - RuntimeError: boom
SUBFAILED(i=1) test_a.py::T::test_sub - AssertionError: 1 != 0
FAILED tests/unit/test_b.py::test_no_reason
5 failed, 3 passed, 1 subtests passed in 0.47s
"""

PYTEST_COLLECTION = """\
==================================== ERRORS ====================================
_______________________ ERROR collecting test_broken.py ________________________
ImportError while importing test module '/tmp/pf/test_broken.py'.
E   ModuleNotFoundError: No module named 'nope'
=========================== short test summary info ============================
ERROR test_broken.py
ERROR tests/test_fixture.py::test_uses_db - fixture 'db' not found
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
1 error in 0.44s
"""

PYTEST_VERBOSE = """\
tests/test_x.py::test_one PASSED                                         [ 33%]
tests/test_x.py::test_two FAILED                                         [ 66%]
tests/test_x.py::test_three ERROR                                        [100%]
"""

UNITTEST = """\
.EFF
======================================================================
ERROR: test_e (test_a.T.test_e)
----------------------------------------------------------------------
Traceback (most recent call last):
RuntimeError: boom

======================================================================
FAIL: test_sub (test_a.T.test_sub) (i=1)
----------------------------------------------------------------------
AssertionError: 1 != 0

======================================================================
FAIL: test_old_style (pkg.tests.OldCase)
----------------------------------------------------------------------
Ran 4 tests in 0.001s

FAILED (failures=2, errors=1)
"""

GO_TEST = """\
=== RUN   TestAdd
--- FAIL: TestAdd (0.00s)
    add_test.go:8: got 3, want 4
=== RUN   TestTable
=== RUN   TestTable/negative
    --- FAIL: TestTable/negative (0.00s)
--- FAIL: TestTable (0.00s)
FAIL
FAIL\texample.com/calc\t0.002s
# example.com/broken [example.com/broken.test]
./broken_test.go:5:2: undefined: Foo
FAIL\texample.com/broken [build failed]
ok  \texample.com/fine\t0.001s
FAIL
"""

CARGO = """\
     Running unittests src/lib.rs (target/debug/deps/demo-8348ca7a80742723)

running 3 tests
test tests::ok ... ok
test tests::bad ... FAILED
test parser::rejects_empty - should panic ... FAILED

failures:

---- tests::bad stdout ----
thread 'tests::bad' (8502) panicked at src/lib.rs:5:24:
assertion `left == right` failed

failures:
    tests::bad
    parser::rejects_empty

test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

error: test failed, to rerun pass `--lib`
"""

JEST = """\
PASS src/other.test.js
FAIL src/sum.test.js (5.123 s)
  sum
    \u2713 adds 1 + 2 to equal 3 (2 ms)
    \u2715 adds 2 + 2 to equal 5 (3 ms)

  \u25cf sum \u203a adds 2 + 2 to equal 5

    expect(received).toBe(expected) // Object.is equality

Tests:       1 failed, 1 passed, 2 total
"""

VITEST = """\
 \u276f src/basic.test.ts (2 tests | 1 failed) 4ms
   \u00d7 basic > fails 3ms
     \u2192 expected 1 to be 2 // Object.is equality

 FAIL  src/basic.test.ts > basic > fails
AssertionError: expected 1 to be 2 // Object.is equality
 Test Files  1 failed (1)
      Tests  1 failed | 1 passed (2)
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            PYTEST,
            {
                "test_a.py::test_bad",
                "test_a.py::test_param[a b]",
                "test_a.py::T::test_e",
                "test_a.py::T::test_sub",
                "tests/unit/test_b.py::test_no_reason",
            },
        ),
        (PYTEST_COLLECTION, {"test_broken.py", "tests/test_fixture.py::test_uses_db"}),
        (PYTEST_VERBOSE, {"tests/test_x.py::test_two", "tests/test_x.py::test_three"}),
        (UNITTEST, {"test_a.T.test_e", "test_a.T.test_sub", "pkg.tests.OldCase.test_old_style"}),
        (
            GO_TEST,
            {"TestAdd", "TestTable", "TestTable/negative", "example.com/broken [build failed]"},
        ),
        (CARGO, {"tests::bad", "parser::rejects_empty - should panic"}),
        (JEST, {"src/sum.test.js", "adds 2 + 2 to equal 5"}),
        (VITEST, {"basic > fails", "src/basic.test.ts > basic > fails"}),
    ],
    ids=[
        "pytest",
        "pytest-collection",
        "pytest-verbose",
        "unittest",
        "go",
        "cargo",
        "jest",
        "vitest",
    ],
)
def test_parse_failures_reads_each_runner(output: str, expected: set[str]) -> None:
    assert parse_failures(output) == expected


def test_parse_failures_ignores_colour_codes() -> None:
    coloured = "\x1b[31mFAILED\x1b[0m tests/test_x.py::test_y - \x1b[1massert 0\x1b[0m\n"
    assert parse_failures(coloured) == {"tests/test_x.py::test_y"}


@pytest.mark.parametrize(
    "output",
    [
        "",
        "error: could not compile `demo` due to 2 previous errors\n",
        "ERROR: could not connect to the database\n",
        "ERROR something bad happened\n",
        "FAIL\texample.com/calc\t0.002s\nFAIL\n",
        "test result: FAILED. 1 passed; 1 failed\n",
        "src/app.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.\n",
    ],
)
def test_parse_failures_recognises_nothing_in_other_output(output: str) -> None:
    assert parse_failures(output) == frozenset()


@given(st.text(), st.text())
def test_parse_failures_reads_line_by_line(first: str, second: str) -> None:
    ids = parse_failures(first + "\n" + second)
    assert ids == parse_failures(first) | parse_failures(second)
    assert all(i and "\n" not in i for i in ids)
