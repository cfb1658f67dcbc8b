"""How the suite splits over pytest-xdist's workers (``scripts/test`` runs ``-n 2 --dist
loadgroup``): each test file stays on one worker, so its module fixtures are made once, and the
tests of one expensive session fixture all go to the same worker, so a run still starts one Ray
cluster, one local model server and one speech server."""

from __future__ import annotations

import pytest

SHARED = {
    "_ray_session": "ray-cluster",
    "local_model_server": "local-model",
    "speech_server": "speech-server",
}
"""A session fixture started once per run, and the worker group of the tests that use it."""


def group(item: pytest.Item) -> str:
    """The group an item runs in: that of the first shared fixture it uses, else its file."""
    names = getattr(item, "fixturenames", ())
    for fixture, name in SHARED.items():
        if fixture in names:
            return name
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group(item)))
