"""`blitz notify test` as a user runs it: a test message to every sink (the daemon's from
BLITZ_NOTIFY, each project's from its blitz.toml), what each did, and exit 1 when one fails or
none is configured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from blitz_process import blitz
from notify_helpers import KEY, make_repo, signed
from receiver import Receiver

pytestmark = [pytest.mark.slow]


def test_notify_test_sends_a_test_message_to_every_sink(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = make_repo(tmp_path)
    with Receiver() as hook, Receiver() as slack:
        added = blitz(home, "projects", "add", repo)
        assert added.returncode == 0, added.stderr
        env = {
            "HOOK_URL": f"{hook.url}/hook",
            "HOOK_KEY": KEY,
            "SLACK_HOOK": f"{slack.url}/services/T0/B0/x",
            "BLITZ_NOTIFY": json.dumps({"slack_webhook_url_env": "SLACK_HOOK"}),
        }
        done = blitz(home, "notify", "test", **env)
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert done.stdout.splitlines() == [
            "daemon:slack-webhook: sent",
            "project:repo:webhook: sent",
        ]
        [posted] = hook.requests
        assert signed(posted)
        assert posted.json()["test"] is True and posted.json()["event"] == "notify.test"
        assert "project:repo:webhook" in posted.json()["text"]
        [said] = slack.requests
        assert said.json()["text"].startswith("🔔 blitz test notification")


def test_notify_test_says_which_sink_fails_and_exits_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Receiver(failing=True, fail_status=403) as hook:
        env = {
            "HOOK_URL": f"{hook.url}/hook",
            "BLITZ_NOTIFY": json.dumps(
                {"webhook_url_env": "HOOK_URL", "webhook_secret_env": "HOOK_KEY"}
            ),
            "HOOK_KEY": KEY,
        }
        done = blitz(home, "notify", "test", **env)
    assert done.returncode == 1
    assert done.stdout.startswith("daemon:webhook: FAILED: the webhook answered 403")
    assert "Traceback" not in done.stderr


def test_notify_test_without_sinks_says_how_to_configure_them(tmp_path: Path) -> None:
    done = blitz(tmp_path / "home", "notify", "test")
    assert done.returncode == 1
    assert "no notification sinks" in done.stderr and "BLITZ_NOTIFY" in done.stderr
