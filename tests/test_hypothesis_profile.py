"""The suite's Hypothesis profile (tests/conftest.py): no property test depends on a per-example
deadline or on how fast examples are made, so a loaded machine cannot fail one for being slow."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def test_the_profile_has_no_deadline_and_no_too_slow_check() -> None:
    assert settings.default.deadline is None
    assert settings(max_examples=5).deadline is None  # a test's own settings inherit it
    assert HealthCheck.too_slow in settings.default.suppress_health_check


@settings(max_examples=1)
@given(st.just("slow"))
def test_an_example_may_take_longer_than_hypothesis_default_deadline(_: str) -> None:
    time.sleep(0.3)  # Hypothesis's default deadline is 200 ms
