"""``blitz serve --executor ray --ray-address ADDR`` on the suite's real cluster
(tests/ray_cluster.py): one executor for the daemon, connected at its start; ``GET
/api/workers`` (real HTTP on 127.0.0.1, with the token) lists the worker nodes with their slots,
backends and labels, the attempts running on each while a goal runs, and when the daemon last saw
them; ``blitz workers --server`` shows the same; SIGTERM stops the daemon cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from blitz_process import BLITZ, blitz, blitz_env, write_yaml
from engine_helpers import make_repo, task, write
from ray_cluster import RayCluster

from blitz import proctree

pytestmark = pytest.mark.timeout(600)

DEADLINE = 120.0


def started(proc: subprocess.Popen[bytes], log: Path) -> tuple[str, str]:
    """The daemon's URL and token, from what it printed at its start."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", text)
        token = re.search(r"^token: (\S+)$", text, re.M)
        if url and token and "executor: " in text:
            return url.group(1), token.group(1)
        assert proc.poll() is None, f"blitz serve exited {proc.returncode}:\n{text}"
        time.sleep(0.1)
    raise AssertionError(f"blitz serve did not start:\n{log.read_text()}")


def until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return found


def test_the_daemon_lists_the_clusters_workers_and_what_runs_on_them(
    ray_cluster: RayCluster, tmp_path: Path, isolated_git: None
) -> None:
    repo = make_repo(tmp_path)
    scenario = write_yaml(
        tmp_path / "scenario.yaml",
        {
            "summary": "one slow task",
            "tasks": [task("slow")],
            "agent": {"slow": [[{"sleep": 6}, write("slow.txt", "slow\n")]]},
        },
    )
    home = tmp_path / "home"
    log = tmp_path / "serve.log"
    address = ray_cluster.address
    command = [BLITZ, "serve", "--port", "0", "--grace", "5"]
    command += ["--executor", "ray", "--ray-address", address]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            env=blitz_env(home, BLITZ_SCENARIO=str(scenario)),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url, token = started(proc, log)
        assert f"executor: ray (attempts run on the Ray cluster at {address})" in log.read_text()
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as http:
            assert httpx.get(f"{url}/api/workers", timeout=60).status_code == 401
            answer = http.get("/api/workers").json()
            assert answer["executor"] == "ray" and answer["address"] == address
            by_id = {w["node_id"]: w for w in answer["workers"]}
            one, two = (ray_cluster.workers[n] for n in ("one", "two"))
            assert set(by_id) == {one.node_id, two.node_id}  # the bare head is no worker
            assert (by_id[one.node_id]["labels"], by_id[one.node_id]["backends"]) == (
                ["big-repo"],
                ["scripted"],
            )
            assert by_id[two.node_id]["backends"] == ["scripted", "scripted-b"]
            for w in by_id.values():
                assert (w["alive"], w["slots"], w["free_slots"], w["attempts"]) == (
                    True,
                    2,
                    2,
                    [],
                )
                assert w["last_seen"] > 0

            http.post("/api/projects", json={"path": str(repo)}).raise_for_status()
            made = http.post("/api/goals", json={"project": "repo", "title": "Be slow"})
            goal = made.raise_for_status().json()

            def running_attempt() -> tuple[str, str] | None:
                for w in http.get("/api/workers").json()["workers"]:
                    if w["attempts"]:
                        return w["node_id"], w["attempts"][0]
                return None

            node, attempt = until(running_attempt, "an attempt on a worker")
            detail = http.get(f"/api/goals/{goal['id']}").json()
            assert attempt in {a["id"] for a in detail["attempts"] if a["task_id"] == "slow"}
            on = next(w for w in http.get("/api/workers").json()["workers"] if w["node_id"] == node)
            assert on["free_slots"] in (1, 2)  # Ray's view lags the placement a little
            shown = blitz(home, "workers", "--server", url, "--token", token)
            assert shown.returncode == 0, shown.stderr
            assert attempt in shown.stdout and "big-repo" in shown.stdout

            until(
                lambda: http.get(f"/api/goals/{goal['id']}").json()["state"] == "succeeded",
                "the goal to succeed",
            )
            until(
                lambda: all(not w["attempts"] for w in http.get("/api/workers").json()["workers"]),
                "no attempt left on the workers",
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=90)
        finally:
            import asyncio

            asyncio.run(proctree.kill_tree(proc.pid, group=True))  # only if it did not stop
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()
