"""How the suite splits over pytest-xdist's workers (``scripts/test`` runs ``-n 2 --dist
loadgroup``): each test file stays on one worker, so its module fixtures are made once, and the
tests of one expensive session fixture all go to the same worker, so a run still starts one Ray
cluster, one local model server, one speech server and one OpenClaw workspace install. Tests that
use two of them (the voice-chat plugin's: the speech server and the OpenClaw workspace) join
their groups into one."""

from __future__ import annotations

import pytest

SHARED = {
    "_ray_session": "ray-cluster",
    # A test's own Ray cluster never runs beside the session's: on two cores Ray's heartbeats
    # then lag and a node is declared dead (tests/executors/ray/test_executor_down_ray.py).
    "own_cluster": "ray-cluster",
    "local_model_server": "local-model",
    "speech_server": "speech-server",
    "openclaw_workspace": "openclaw",  # the npm workspace installed and built, and the daemon
    "blitz_daemon": "openclaw",  # the OpenClaw plugins' tests drive
}
"""A session fixture started once per run, and the worker group of the tests that use it."""


def shared(item: pytest.Item) -> set[str]:
    """The groups of the shared fixtures ``item`` uses."""
    names = set(getattr(item, "fixturenames", ()))
    return {group for fixture, group in SHARED.items() if fixture in names}


def groups(items: list[pytest.Item]) -> dict[str, str]:
    """Each item's group (by node id): its shared fixtures' group, joined with every other
    group an item shares with it; else its file."""
    joined = {group: group for group in SHARED.values()}

    def root(group: str) -> str:
        while joined[group] != group:
            group = joined[group]
        return group

    used = {item.nodeid: shared(item) for item in items}
    for found in used.values():
        first, *others = sorted(found) or [""]
        for other in others:
            joined[root(other)] = root(first)
    named = {g: "+".join(sorted(h for h in joined if root(h) == root(g))) for g in joined}
    return {
        nodeid: named[min(found)] if found else nodeid.split("::", 1)[0]
        for nodeid, found in used.items()
    }


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    chosen = groups(items)
    for item in items:
        item.add_marker(pytest.mark.xdist_group(chosen[item.nodeid]))
