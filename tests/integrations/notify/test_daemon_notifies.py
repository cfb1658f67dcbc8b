"""A real `blitz serve` notifies: a goal that succeeds is posted to the project's webhook
([notify] in its blitz.toml); a daemon killed (SIGKILL) while the webhook refuses it delivers
it once after its restart, signed, with the same idempotency key; `blitz notify status` says
so."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from blitz_process import blitz, write_yaml
from notify_helpers import AGENT, KEY, PLAN, make_repo, serve, signed
from receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def wait_for(what: str, done: Callable[[], bool], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not done():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_a_notification_pending_when_the_daemon_is_killed_is_delivered_after_restart(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path)
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    agent = write_yaml(tmp_path / "agent.yaml", AGENT)
    with Receiver(failing=True) as hook:
        env = {
            "HOOK_URL": f"{hook.url}/hook",
            "HOOK_KEY": KEY,
            "BLITZ_NOTIFY": json.dumps(
                {"events": [], "backoff": 0.2, "backoff_max": 1.0, "max_attempts": 1000}
            ),
        }
        daemon = serve(home, "--scenario", agent, **env)
        try:
            done = blitz(
                home, "run", "Greet", "--repo", repo, "--plan", plan,
                "--server", daemon.url, "--token", daemon.token, "--json",
            )  # fmt: skip
            assert done.returncode == 0, (done.stdout, done.stderr)
            goal = json.loads(done.stdout)
            assert goal["state"] == "succeeded"
            wait_for("two refused deliveries", lambda: len(hook.requests) >= 2)
        finally:
            daemon.kill()
        refused = list(hook.requests)
        assert not hook.accepted

        pending = blitz(home, "notify", "status", "--json", **env)
        assert pending.returncode == 0, pending.stderr
        [sink] = json.loads(pending.stdout)["sinks"]
        assert sink["sink"] == "project:repo:webhook"
        assert sink["pending"] == 1 and sink["delivered"] == 0
        assert "500" in sink["last_error"]

        hook.failing = False
        again = serve(home, "--scenario", agent, **env)
        try:
            wait_for("the delivery after the restart", lambda: bool(hook.accepted))
            api = f"{again.url}/api/notifications"
            bearer = {"Authorization": f"Bearer {daemon.token}"}
            assert httpx.get(api, timeout=30).status_code == 401

            def recorded() -> bool:
                [sink] = httpx.get(api, headers=bearer, timeout=30).json()["sinks"]
                return bool(sink["delivered"] == 1)

            wait_for("the delivery recorded", recorded)
        finally:
            code, err = again.stop()
        assert code == 0, err
        assert "Traceback" not in err

    [delivered] = hook.accepted  # once
    body = delivered.json()
    assert signed(delivered)
    assert {r.json()["idempotency_key"] for r in refused} == {body["idempotency_key"]}
    assert delivered.headers["Idempotency-Key"] == body["idempotency_key"]
    assert body["event"] == "goal.succeeded" and body["test"] is False
    assert body["goal"]["id"] == goal["goal"] and body["goal"]["state"] == "succeeded"
    assert body["goal"]["tasks"]["done"] == body["goal"]["tasks"]["total"] == 2
    assert body["project"]["name"] == "repo"
    assert "Greet" in body["text"]

    status = blitz(home, "notify", "status", "--json")
    [sink] = json.loads(status.stdout)["sinks"]
    assert (sink["delivered"], sink["pending"], sink["failed"]) == (1, 0, 0)
