"""The daemon's ``[executor]``: ``local``, ``ray`` (with an address) or ``auto`` (ray when
``RAY_ADDRESS`` is set), from ``BLITZ_EXECUTOR`` and ``RAY_ADDRESS`` or ``blitz serve``'s flags;
one executor per daemon, shared by every project's services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz
from engine_helpers import make_repo

from blitz.app import App
from blitz.errors import ConfigError
from blitz.executors.local import LocalExecutor
from blitz.settings import ExecutorSettings, Settings, executor_choice


def test_auto_is_ray_when_an_address_is_known_else_local() -> None:
    auto = ExecutorSettings(name="auto")
    assert executor_choice(auto, "") == ("local", {})
    assert executor_choice(auto, "10.0.0.1:6380") == ("ray", {"address": "10.0.0.1:6380"})
    given = ExecutorSettings(name="auto", address="head:7000")
    assert executor_choice(given, "10.0.0.1:6380") == ("ray", {"address": "head:7000"})
    assert executor_choice(ExecutorSettings(), "10.0.0.1:6380") == ("local", {})


def test_ray_without_an_address_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as caught:
        executor_choice(ExecutorSettings(name="ray"), "")
    assert "--ray-address" in str(caught.value) and "RAY_ADDRESS" in str(caught.value)


def test_the_settings_read_blitz_executor_and_ray_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLITZ_EXECUTOR", '{"name": "auto"}')
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6390")
    settings = Settings(home=tmp_path)
    assert settings.executor_options() == ("ray", {"address": "127.0.0.1:6390"})
    monkeypatch.setenv("BLITZ_EXECUTOR", '{"name": "cluster"}')
    with pytest.raises(ValueError, match="local"):
        Settings(home=tmp_path)


async def test_every_projects_services_share_the_one_executor(
    tmp_path: Path, isolated_git: None, apps: Any
) -> None:
    app: App = apps({"tasks": [{"id": "a", "title": "A"}]})
    assert isinstance(app.executor, LocalExecutor)
    one = await app.register(make_repo(tmp_path, name="one"))
    two = await app.register(make_repo(tmp_path, name="two"))
    goals = [await app.new_goal(p, "Work") for p in (one, two)]
    made = [app.services(p, g) for p, g in zip((one, two), goals, strict=True)]
    assert made[0].executor is made[1].executor is app.executor


def test_blitz_serve_refuses_ray_without_an_address_before_it_listens(tmp_path: Path) -> None:
    done = blitz(tmp_path / "home", "serve", "--port", "0", "--executor", "ray")
    assert done.returncode == 2
    assert "the ray executor needs the cluster's address" in done.stderr
    assert "listening" not in done.stdout
    bad = blitz(tmp_path / "home", "serve", "--port", "0", "--executor", "cluster")
    assert bad.returncode == 2
    assert '--executor must be "local", "ray" or "auto"' in bad.stderr
