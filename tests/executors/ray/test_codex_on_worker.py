"""A real agent CLI on a worker node: the daemon's machine has neither the codex CLI nor an
OpenAI key; one worker node has both (the CLI installed from npm by blitz.backends.install into
its blitz home's tools directory, its key in its own environment). A goal with the codex backend
runs there: codex (the real CLI) talks to a scripted Responses API server on 127.0.0.1 that
accepts only the worker's key, changes the attempt's worktree on the node, the gates pass there,
and the commit comes back and lands once on the daemon's goal branch."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz
from codex_script import mul_script
from daemon_helpers import committed_tasks, serve
from engine_helpers import (
    CALC,
    MUL,
    MUL_TEST,
    UNITTEST,
    git,
    isolated_git,  # noqa: F401 - the fixture
    make_repo,
)
from ray_cluster import RayCluster

from blitz.backends.install import installed_codex
from blitz.testing.model_server import ModelServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

WORKER_KEY = "sk-codex-worker-key-" + "5e6f7a8b9c0d" * 3  # the codex node's own key
MODEL = "gpt-5.5"  # a model codex 0.169 has metadata for

PLAN: dict[str, Any] = {
    "summary": "Multiply numbers",
    "tasks": [
        {
            "id": "mul",
            "title": "Add mul()",
            "instructions": "Add mul(a, b) in calc/mul.py with a unittest.",
        }
    ],
}


def codex_repo(root: Path) -> Path:
    """A project whose agent is codex (``[codex] model`` set, no binary: each machine runs its
    own CLI) with a unittest gate."""
    repo = make_repo(root, files=CALC, gates={"test": UNITTEST, "timeout": 120})
    toml = (repo / "blitz.toml").read_text().replace('backend = "scripted"', 'backend = "codex"')
    (repo / "blitz.toml").write_text(toml + f'[codex]\nmodel = "{MODEL}"\n')
    git(repo, "commit", "-qam", "Let Codex do the work")
    return repo


def usable(home: Path, **env: str) -> dict[str, bool]:
    """What `blitz backends list` says is usable with this blitz home and environment."""
    listed = blitz(home, "backends", "list", "--json", **env)
    assert listed.returncode == 0, listed.stderr
    return {item["name"]: item["available"] for item in json.loads(listed.stdout)}


@pytest.mark.usefixtures("isolated_git")
def test_a_codex_goal_runs_the_real_cli_on_the_worker_that_has_it(
    ray_cluster: RayCluster, tools_dir: Path, tmp_path: Path
) -> None:
    assert installed_codex(tools_dir) is not None
    # The daemon's machine: no codex in its tools directory nor on its PATH, no OpenAI key.
    daemon_home = tmp_path / "home"
    path = os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "codex").exists()
    )
    daemon_env = {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": "http://127.0.0.1:9", "PATH": path}
    assert shutil.which("codex", path=path) is None
    assert installed_codex(daemon_home / "tools") is None
    assert not usable(daemon_home, **daemon_env)["codex"]
    # The worker's: codex installed in its blitz home's tools directory, its key in its env.
    node_home = tmp_path / "node-blitz-home"
    node_home.mkdir()
    (node_home / "tools").symlink_to(tools_dir)
    repo = codex_repo(tmp_path)

    with ModelServer(mul_script(UNITTEST), api_key=WORKER_KEY) as server:
        node_env = {"OPENAI_API_KEY": WORKER_KEY, "OPENAI_BASE_URL": server.openai_base_url}
        assert usable(node_home, **node_env)["codex"]  # what `blitz worker` would advertise
        worker = ray_cluster.add_worker(
            "codex", slots=1, backends=("codex",), env={"BLITZ_HOME": str(node_home), **node_env}
        )
        daemon = serve(
            daemon_home, "--executor", "ray", "--ray-address", ray_cluster.address,
            RAY_AUTH_MODE="disabled", **daemon_env,
        )  # fmt: skip
        try:
            assert WORKER_KEY not in Path(f"/proc/{daemon.proc.pid}/environ").read_text()
            goal_id = daemon.submit(repo, PLAN, title="Multiply numbers")
            final = daemon.wait_state(goal_id, limit=400)
            events = daemon.api("GET", f"/api/goals/{goal_id}/events").json()
            said = "\n".join(f"{e['kind']}: {e['message'][:400]}" for e in events)
            assert final["state"] == "succeeded", said
            code, err = daemon.stop(signal.SIGTERM)
            assert code == 0, err
        finally:
            daemon.kill()

        # codex, on the worker, used the worker's key: the server answers any other with 401.
        assert len(server.requests) == 3
        assert all(r.path == "/v1/responses" and r.api_key_present for r in server.requests)
        assert not server.unmatched and not server.pending
        assert server.requests[0].body["model"] == MODEL  # the project's [codex] model

    kinds = [e["kind"] for e in events]
    placed = [e["data"]["node"] for e in events if e["kind"] == "attempt.placed"]
    assert placed == [worker.node_id], kinds  # one attempt, on the codex node
    shown = [e["message"] for e in events if e["kind"] == "agent.message"]
    assert "edit: add calc/mul.py, add tests/test_mul.py" in shown  # streamed from the node
    assert f"$ {UNITTEST} 2>&1" in shown
    # The commit came back and landed once, with what codex wrote.
    assert committed_tasks(repo, final["branch"]) == ["mul"]
    assert git(repo, "show", f"{final['branch']}:calc/mul.py") + "\n" == MUL
    assert git(repo, "show", f"{final['branch']}:tests/test_mul.py") + "\n" == MUL_TEST
    assert git(repo, "status", "--porcelain") == ""
    assert WORKER_KEY not in json.dumps(events)
