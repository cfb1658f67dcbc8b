"""`blitz serve` as a user runs it: a real process, its token, `blitz run --server`, and what
happens when it is stopped with SIGTERM or killed with SIGKILL in the middle of a goal."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_helpers import isolated_git  # noqa: F401 - a fixture
from server_helpers import (
    AGENT,
    PLAN,
    blitz,
    committed_tasks,
    free_port,
    hold_first,
    make_repo,
    serve,
    start,
    wait_state,
    wait_task,
    write_yaml,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),  # several processes; a loaded machine is slow
    pytest.mark.usefixtures("isolated_git"),
]


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text


def api(url: str, token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{url}{path}", headers=headers, timeout=30, **kwargs)


def test_serve_prints_the_token_once_and_runs_goals(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path)
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    scenario = write_yaml(tmp_path / "agent.yaml", AGENT)
    daemon = serve(home, "--scenario", scenario)
    try:
        token = daemon.token
        assert token is not None and token.startswith("blitz_")
        stored = home / "server-token.json"
        assert stored.stat().st_mode & 0o777 == 0o600
        record = json.loads(stored.read_text())
        assert token not in stored.read_text() and record["scheme"] == "scrypt"
        assert record["salt"] and record["hash"]

        health = httpx.get(f"{daemon.url}/api/health", timeout=30)
        assert health.json()["status"] == "ok"
        assert httpx.get(f"{daemon.url}/api/goals", timeout=30).status_code == 401

        done = blitz(
            home, "run", "Greet", "--repo", repo, "--plan", plan,
            "--server", daemon.url, "--token", token, "--json",
        )  # fmt: skip
        assert done.returncode == 0, (done.stdout, done.stderr)
        no_traceback(done.stdout, done.stderr)
        result = json.loads(done.stdout)
        assert result["state"] == "succeeded"
        assert [t["state"] for t in result["tasks"]] == ["succeeded"] * 3
        assert committed_tasks(repo, result["branch"]) == ["hello", "world"]

        # The token from the environment; the live view prints the goal id and its events.
        followed = blitz(
            home, "run", "Again", "--repo", repo, "--plan", plan, "--server", daemon.url,
            BLITZ_SERVER_TOKEN=token,
        )  # fmt: skip
        assert followed.returncode == 0, (followed.stdout, followed.stderr)
        assert "goal g-" in followed.stdout and "goal.succeeded" in followed.stdout

        no_token = blitz(home, "run", "G", "--repo", repo, "--plan", plan, "--server", daemon.url)
        assert no_token.returncode == 2 and "no token" in no_token.stderr
        wrong = blitz(
            home, "run", "G", "--repo", repo, "--plan", plan, "--server", daemon.url,
            "--token", "blitz_wrong",
        )  # fmt: skip
        assert wrong.returncode == 2 and "refused the token" in wrong.stderr
        paused = blitz(home, "projects", "pause", "repo", "--reason", "release freeze")
        assert paused.returncode == 0, paused.stderr
        refused = blitz(
            home, "run", "G", "--repo", repo, "--plan", plan, "--server", daemon.url,
            "--token", token,
        )  # fmt: skip
        assert refused.returncode == 2
        assert "project paused: release freeze" in refused.stderr
        no_traceback(no_token.stderr, wrong.stderr, refused.stderr)

        rotated = blitz(home, "token")
        assert rotated.returncode == 0
        new = rotated.stdout.splitlines()[0].removeprefix("token: ")
        assert new != token and new not in stored.read_text()
        assert api(daemon.url, token, "GET", "/api/goals").status_code == 401
        assert api(daemon.url, new, "GET", "/api/goals").status_code == 200

        code, out, err = daemon.stop(signal.SIGTERM)
        assert code == 0, err
        no_traceback(out, err)
    finally:
        daemon.kill()

    again = serve(home)
    try:
        assert again.token is None and "kept hashed" in again.lines[1]
        assert api(again.url, new, "GET", "/api/goals").status_code == 200
        code, _, err = again.stop(signal.SIGINT)
        assert code == 0, err
    finally:
        again.kill()


def test_sigterm_lets_running_work_finish_and_a_restart_completes_the_goal(
    hold_file: Path,
    tmp_path: Path,
) -> None:
    """SIGTERM while "world" runs: it gets its grace period and finishes, the daemon exits 0,
    and after a restart "review" runs; a `blitz run --server` following the goal rides the
    restart out and exits 0."""
    home = tmp_path / "home"
    repo = make_repo(tmp_path)
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    hold = hold_file
    hold.touch()
    agent = hold_first(AGENT, "world", hold)
    agent["agent"]["world"][0].insert(1, {"sleep": 1.5})
    scenario = write_yaml(tmp_path / "agent.yaml", agent)
    port = free_port()
    daemon = serve(home, "--scenario", scenario, "--grace", "20", port=port)
    follower = None
    try:
        token = daemon.token
        assert token is not None
        follower = start(
            home, "run", "Greet", "--repo", repo, "--plan", plan, "--server", daemon.url,
            "--token", token,
        )  # fmt: skip
        goal_id = _first_goal(daemon.url, token)
        wait_task(daemon.url, token, goal_id, "world", "running")
        hold.unlink()  # world now sleeps 1.5 s, then appends: well within the grace period
        stopped_at = time.monotonic()
        code, out, err = daemon.stop(signal.SIGTERM)
        took = time.monotonic() - stopped_at
        assert code == 0, err
        assert took < 20, took
        no_traceback(out, err)
        assert "stopped" in out
        # world finished and was integrated; review never started.
        assert committed_tasks(repo, f"refs/heads/{_branch(home, goal_id)}") == ["hello", "world"]

        restarted = serve(home, "--scenario", scenario, port=port)
        try:
            assert restarted.readline().startswith("executor: local")
            assert restarted.readline().startswith(f"resuming {goal_id} (running)")
            assert follower.wait(timeout=90) == 0, follower.communicate()
            out, err = follower.communicate()
            assert "goal.succeeded" in out
            no_traceback(out, err)
            final = wait_state(restarted.url, token, goal_id)
            assert final["state"] == "succeeded"
            assert [t["attempts"] for t in final["tasks"]] == [1, 1, 1]
            assert committed_tasks(repo, final["branch"]) == ["hello", "world"]
            code, _, err = restarted.stop(signal.SIGTERM)
            assert code == 0, err
        finally:
            restarted.kill()
    finally:
        hold.unlink(missing_ok=True)
        daemon.kill()
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.communicate(timeout=10)


def test_sigterm_past_the_grace_period_requeues_the_attempt(
    hold_file: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path)
    hold = hold_file
    hold.touch()
    scenario = write_yaml(tmp_path / "agent.yaml", hold_first(AGENT, "world", hold))
    daemon = serve(home, "--scenario", scenario, "--grace", "1")
    try:
        token = daemon.token
        assert token is not None
        goal_id = _submit(daemon.url, token, repo)
        wait_task(daemon.url, token, goal_id, "world", "running")
        stopped_at = time.monotonic()
        code, out, err = daemon.stop(signal.SIGTERM)
        assert code == 0, err
        assert time.monotonic() - stopped_at < 15
        no_traceback(out, err)
    finally:
        daemon.kill()
    hold.unlink()
    restarted = serve(home, "--scenario", scenario)
    try:
        assert restarted.readline().startswith("executor: local")
        assert restarted.readline().startswith(f"resuming {goal_id}")
        final = wait_state(restarted.url, token, goal_id)
        assert final["state"] == "succeeded"
        attempts = {t["id"]: t["attempts"] for t in final["tasks"]}
        assert attempts == {"hello": 1, "world": 2, "review": 1}  # world was interrupted once
        assert committed_tasks(repo, final["branch"]) == ["hello", "world"]
        restarted.stop(signal.SIGTERM)
    finally:
        restarted.kill()


def test_kill_9_mid_goal_then_a_restart_finishes_it(hold_file: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path)
    hold = hold_file
    hold.touch()
    scenario = write_yaml(tmp_path / "agent.yaml", hold_first(AGENT, "world", hold))
    daemon = serve(home, "--scenario", scenario)
    try:
        token = daemon.token
        assert token is not None
        goal_id = _submit(daemon.url, token, repo)
        wait_task(daemon.url, token, goal_id, "world", "running")
        code, _, _ = daemon.stop(signal.SIGKILL)
        assert code == -signal.SIGKILL
    finally:
        daemon.kill()
    hold.unlink()
    restarted = serve(home, "--scenario", scenario)
    try:
        assert restarted.readline().startswith("executor: local")
        assert restarted.readline().startswith(f"resuming {goal_id} (running)")
        final = wait_state(restarted.url, token, goal_id)
        assert final["state"] == "succeeded", final
        assert committed_tasks(repo, final["branch"]) == ["hello", "world"]
        assert {t["id"]: t["state"] for t in final["tasks"]} == dict.fromkeys(
            ("hello", "world", "review"), "succeeded"
        )
        code, _, err = restarted.stop(signal.SIGTERM)
        assert code == 0, err
    finally:
        restarted.kill()


def test_approve_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path, toml="require_plan_approval = true\n")
    scenario = write_yaml(tmp_path / "agent.yaml", AGENT)
    daemon = serve(home, "--scenario", scenario)
    try:
        token = daemon.token
        assert token is not None
        # Through the store: the daemon picks the command up.
        first = _submit(daemon.url, token, repo)
        wait_state(daemon.url, token, first, ("awaiting_approval",))
        done = blitz(home, "approve", first)
        assert done.returncode == 0, done.stderr
        assert wait_state(daemon.url, token, first)["state"] == "succeeded"
        not_waiting = blitz(home, "approve", first)
        assert not_waiting.returncode == 2 and "not awaiting approval" in not_waiting.stderr
        assert blitz(home, "approve", "g-nope").returncode == 2

        # Through the API, with an edited plan.
        second = _submit(daemon.url, token, repo, title="Second")
        wait_state(daemon.url, token, second, ("awaiting_approval",))
        edited = write_yaml(
            tmp_path / "edited.yaml",
            {"tasks": [{"id": "hello", "title": "Only hello"}]},
        )
        done = blitz(
            home, "approve", second, "--plan", edited, "--server", daemon.url, "--token", token
        )
        assert done.returncode == 0, done.stderr
        assert f"goal {second} approved" in done.stdout
        final = wait_state(daemon.url, token, second)
        assert final["state"] == "succeeded" and [t["id"] for t in final["tasks"]] == ["hello"]
        no_traceback(done.stdout, done.stderr, not_waiting.stderr)
        code, _, err = daemon.stop(signal.SIGTERM)
        assert code == 0, err
    finally:
        daemon.kill()


# -- helpers ---------------------------------------------------------------------------------------


def _submit(url: str, token: str, repo: Path, *, title: str = "Greet") -> str:
    project = api(url, token, "POST", "/api/projects", json={"path": str(repo)}).json()
    goal = api(url, token, "POST", "/api/goals", json={"project": project["id"], "title": title,
               "plan": PLAN})  # fmt: skip
    assert goal.status_code == 201, goal.text
    return str(goal.json()["id"])


def _first_goal(url: str, token: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        goals = api(url, token, "GET", "/api/goals").json()
        if goals:
            return str(goals[0]["id"])
        time.sleep(0.1)
    raise AssertionError("no goal was submitted")


def _branch(home: Path, goal_id: str) -> str:
    from blitz.store.sql import SqlStore

    store = SqlStore(f"sqlite:///{home / 'blitz.db'}")
    try:
        goal = store.get_goal(goal_id)
        assert goal is not None
        return goal.branch
    finally:
        store.close()


def test_sigusr1_prints_every_threads_stack_and_the_daemon_goes_on(tmp_path: Path) -> None:
    # What a daemon that will not stop is waiting for (a Ray daemon once did not exit within
    # 120 s of SIGTERM, on a loaded machine, and said nothing).
    daemon = serve(tmp_path / "home")
    try:
        daemon.proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        assert daemon.proc.poll() is None  # still running (SIGUSR1 would otherwise end it)
        code, _, err = daemon.stop(signal.SIGTERM)
        assert code == 0, err
        assert "(most recent call first)" in err and "asyncio/base_events.py" in err, err
    finally:
        daemon.kill()
