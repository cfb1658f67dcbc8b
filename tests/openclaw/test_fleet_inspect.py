"""The fleet plugin installs into a real ``openclaw`` (the pinned version) and OpenClaw loads it
with every tool, its service, its hook and its ``/blitz`` command; the token is never shown."""

from __future__ import annotations

import json

from conftest import Daemon, OpenClawHome

FLEET_TOOLS = [
    "blitz_projects",
    "blitz_goals",
    "blitz_goal_status",
    "blitz_submit_goal",
    "blitz_review_plan",
    "blitz_approve_plan",
    "blitz_reject_plan",
    "blitz_cancel_goal",
    "blitz_retry_task",
    "blitz_skip_task",
]


def test_openclaw_loads_fleet_with_its_tools(
    openclaw_home: OpenClawHome, blitz_daemon: Daemon
) -> None:
    openclaw_home.install(
        "fleet", "blitz-fleet", {"url": blitz_daemon.url, "token": blitz_daemon.token}
    )
    inspected = openclaw_home.inspect("blitz-fleet")
    plugin = inspected["plugin"]
    assert plugin["status"] == "loaded", json.dumps(inspected, indent=1)[:4000]
    assert plugin["enabled"] is True and plugin["activated"] is True
    assert plugin["toolNames"] == FLEET_TOOLS
    assert plugin["contracts"]["tools"] == FLEET_TOOLS
    assert plugin["services"] == ["blitz-fleet-events"]
    assert plugin["commands"] == ["blitz"]
    assert plugin["hookCount"] == 1  # the plan approval (before_tool_call)
    assert plugin["source"].endswith("fleet/dist/index.js")
    assert blitz_daemon.token not in json.dumps(inspected)
