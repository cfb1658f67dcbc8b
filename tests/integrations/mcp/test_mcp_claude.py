"""The real ``claude`` CLI (bundled with claude-agent-sdk) given blitz as an MCP server in its
``--mcp-config``: driven by the scripted model server on 127.0.0.1, it calls
``mcp__blitz__submit_goal`` and ``mcp__blitz__goal_status`` through a real ``blitz mcp``
process, and the goal runs in a real ``blitz serve``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import claude_agent_sdk
import httpx
import pytest
from blitz_process import BLITZ
from mcp_helpers import ENDED, daemon, make_repo, scenario_file

from blitz.testing.model_server import ModelServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CLAUDE = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
KEY = "sk-ant-mcp-test-key-0123456789"
PROMPT = "Use blitz to greet the world in the repo project (mcp-test-7f3a)."


def test_claude_code_starts_a_goal_through_blitz_mcp(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    user_home = tmp_path / "user-home"  # the CLI's own state, not the machine's
    user_home.mkdir()
    with daemon(tmp_path / "home", scenario_file(tmp_path)) as served:
        registered = httpx.post(
            f"{served.url}/api/projects",
            json={"path": str(repo)},
            headers={"Authorization": f"Bearer {served.token}"},
            timeout=30,
        )
        assert registered.status_code == 201, registered.text
        config = tmp_path / "mcp.json"
        config.write_text(
            json.dumps(
                {
                    "mcpServers": {
                        "blitz": {
                            "command": BLITZ,
                            "args": ["mcp", "--server", served.url],
                            "env": {"BLITZ_SERVER_TOKEN": served.token},
                        }
                    }
                }
            )
        )
        turns = [
            {
                "match": "mcp-test-7f3a",
                "reply": {
                    "text": "I will start the goal.",
                    "tool_calls": [
                        {
                            "name": "mcp__blitz__submit_goal",
                            "input": {"project": "repo", "title": "Greet the world"},
                        }
                    ],
                },
            },
            {
                # The submitted goal's status came back; the goal's id is the only one there is,
                # so its prefix names it.
                "match_tool_result": '"tasks_total"',
                "reply": {
                    "tool_calls": [{"name": "mcp__blitz__goal_status", "input": {"goal": "g-"}}]
                },
            },
            {
                "match_tool_result": '"next"',
                "reply": {"text": "The goal is on its way in blitz."},
            },
        ]
        with ModelServer(turns, api_key=KEY) as model:
            command = [
                str(CLAUDE), "-p", PROMPT,
                "--output-format", "json",
                "--model", "claude-sonnet-4-6",
                "--mcp-config", str(config), "--strict-mcp-config",
                "--allowedTools", "mcp__blitz__submit_goal", "mcp__blitz__goal_status",
                "--max-turns", "5",
            ]  # fmt: skip
            done = subprocess.run(
                command,
                cwd=repo,
                env={
                    "PATH": os.environ["PATH"],
                    "HOME": str(user_home),
                    "ANTHROPIC_BASE_URL": model.anthropic_base_url,
                    "ANTHROPIC_API_KEY": KEY,
                    "CLAUDE_CONFIG_DIR": str(user_home / ".claude"),
                    "CLAUDE_CODE_MAX_RETRIES": "0",
                    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                    "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1",
                    "DISABLE_AUTOUPDATER": "1",
                    "ENABLE_TOOL_SEARCH": "false",  # every tool offered at once, as scripted
                },
                capture_output=True,
                text=True,
                timeout=150,
                check=False,
            )
            assert done.returncode == 0, (done.stdout, done.stderr)
            answer = json.loads(done.stdout)
            assert answer["result"] == "The goal is on its way in blitz.", answer
            assert not model.unmatched, [r.last_user_text for r in model.unmatched]
            assert not model.pending
            asked = [r for r in model.requests if r.path == "/v1/messages"]
            tools = {t["name"] for t in asked[0].body.get("tools", [])}
            assert {"mcp__blitz__submit_goal", "mcp__blitz__goal_status"} <= tools
            # What blitz answered reached the model: the goal it made, and its status.
            submitted, both = asked[-2].tool_results, asked[-1].tool_results
            assert "Greet the world" in submitted and '"tasks_total"' in submitted
            assert len(both) > len(submitted)  # and goal_status's answer after it

        goals = httpx.get(
            f"{served.url}/api/goals",
            headers={"Authorization": f"Bearer {served.token}"},
            timeout=30,
        ).json()
        assert [g["title"] for g in goals] == ["Greet the world"]
        deadline = time.monotonic() + 90
        while True:
            goal = httpx.get(
                f"{served.url}/api/goals/{goals[0]['id']}",
                headers={"Authorization": f"Bearer {served.token}"},
                timeout=30,
            ).json()
            if goal["state"] in ENDED:
                break
            assert time.monotonic() < deadline, goal["state"]
            time.sleep(0.2)
        assert goal["state"] == "succeeded", goal
        assert [t["state"] for t in goal["tasks"]] == ["succeeded"] * 3
        assert both.count(goals[0]["id"]) >= 2  # named in both answers
