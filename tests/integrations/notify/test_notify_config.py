"""[notify] in blitz.toml and BLITZ_NOTIFY: the events and sinks they name, and no secret in
either (a variable's name, never its value)."""

from __future__ import annotations

from pathlib import Path

import pytest

from blitz.config import load_repo_config, render_repo_config
from blitz.errors import ConfigError
from blitz.settings import Settings


def test_a_notify_section_loads_and_renders_back(tmp_path: Path) -> None:
    (tmp_path / "blitz.toml").write_text(
        '[notify]\nevents = ["goal.failed"]\nwebhook_url_env = "HOOK"\n'
        'webhook_secret_env = "HOOK_KEY"\nemail_to = ["ops@example.com"]\n'
    )
    config = load_repo_config(tmp_path)
    assert config is not None
    assert config.notify.events == ["goal.failed"]
    assert config.notify.webhook_url_env == "HOOK"
    (tmp_path / "blitz.toml").write_text(render_repo_config(config))
    assert load_repo_config(tmp_path) == config


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ('webhook_url_env = "https://user:pw@example.com/hook"', "webhook_url_env"),
        ('slack_token = "xoxb-123456789"', "secrets do not belong"),
        ('events = ["task.started"]', "events"),
    ],
)
def test_a_wrong_notify_section_is_refused(tmp_path: Path, line: str, said: str) -> None:
    (tmp_path / "blitz.toml").write_text(f"[notify]\n{line}\n")
    with pytest.raises(ConfigError) as refused:
        load_repo_config(tmp_path)
    assert said in str(refused.value)


def test_the_daemon_reads_its_notify_section_from_blitz_notify(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "BLITZ_NOTIFY", '{"slack_channel": "C1", "max_attempts": 3, "events": ["goal.failed"]}'
    )
    notify = Settings().notify
    assert notify.slack_channel == "C1" and notify.max_attempts == 3
    assert notify.events == ["goal.failed"]


def test_the_section_offers_exactly_the_notifiable_events() -> None:
    from blitz.events import NOTIFIABLE
    from blitz.notify_config import NOTIFY_EVENTS

    assert set(NOTIFY_EVENTS) == {kind.value for kind in NOTIFIABLE}
