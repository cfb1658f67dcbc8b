"""The first run to a real agent, through the installed console script: ``blitz init`` writes
the best agent usable here (never ``scripted``) and says why, or how to get one; ``blitz backends
list`` checks what a run needs; ``blitz run`` refuses an agent that cannot run, before anything
starts (no goal written, the project not paused)."""

from __future__ import annotations

import json
import signal
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from blitz_process import blitz, git, goals_in, write_yaml

from blitz.testing.model_server import ModelServer

API_KEY = "sk-ant-api03-init-test-0123456789"
LOCAL_MODEL = "qwen2.5-coder:7b"
PLAN = {"tasks": [{"id": "look", "title": "Look", "allow_empty": True}]}

pytestmark = pytest.mark.timeout(300)  # several blitz processes; a loaded machine is slow


@pytest.fixture
def bare(tmp_path: Path, home: Path) -> dict[str, str]:
    """An environment with no key, no login (an empty HOME) and no local server looked for."""
    user = tmp_path / "user"
    user.mkdir()
    return {
        "HOME": str(user),
        "ANTHROPIC_API_KEY": "",
        "ANTHROPIC_BASE_URL": "",
        "OPENAI_API_KEY": "",
        "OPENAI_BASE_URL": "",
        "CLAUDE_CODE_OAUTH_TOKEN": "",
        "BLITZ_LOCAL_SERVERS": "{}",
    }


@pytest.fixture
def local() -> Iterator[ModelServer]:
    with ModelServer(models=[LOCAL_MODEL]) as server:
        yield server


def _init(home: Path, repo: Path, env: dict[str, str], *args: str) -> tuple[str, dict[str, object]]:
    done = blitz(home, "init", repo, *args, **env)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout, tomllib.loads((repo / "blitz.toml").read_text())


def test_init_with_no_agent_writes_the_embedded_one_and_says_how_to_get_a_model(
    git_repo: Path, home: Path, bare: dict[str, str], tmp_path: Path
) -> None:
    said, written = _init(home, git_repo, bare)
    project = written["project"]
    assert isinstance(project, dict) and project["backend"] == "embedded"
    assert "scripted" not in (git_repo / "blitz.toml").read_text().split("[gates]")[0]
    assert "no coding agent is usable here yet" in said
    assert "ANTHROPIC_API_KEY" in said and "ollama pull qwen2.5-coder:7b" in said
    how = said.split("no coding agent is usable here yet:\n")[1].splitlines()
    assert len(how) == 3 and "blitz init --force" in how[2]

    (Path(bare["HOME"]) / ".claude").mkdir()
    (Path(bare["HOME"]) / ".claude" / ".credentials.json").write_text("{}")
    again, _ = _init(home, git_repo, bare, "--force")
    # What came closest, and what it lacks: a login blitz does not use.
    assert "claude-code: set ANTHROPIC_API_KEY" in again and "logged in to Claude Code" in again
    groq, _ = _init(home, git_repo, {**bare, "GROQ_API_KEY": "gsk-secret-0123"}, "--force")
    assert "GROQ_API_KEY is set: export BLITZ_COMPATIBLE_API_KEY=$GROQ_API_KEY" in groq
    assert "gsk-secret-0123" not in groq

    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "blitz.toml")
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    refused = blitz(home, "run", "Look", "--repo", git_repo, "--plan", plan, **bare)
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "no model is configured" in refused.stderr and "Traceback" not in refused.stderr
    assert goals_in(home) == []


def test_init_picks_claude_code_with_a_key_and_never_prints_it(
    git_repo: Path, home: Path, bare: dict[str, str]
) -> None:
    said, written = _init(home, git_repo, {**bare, "ANTHROPIC_API_KEY": API_KEY})
    project, models = written["project"], written["models"]
    assert isinstance(project, dict) and isinstance(models, dict)
    assert (project["backend"], models["default"]) == ("claude-code", "anthropic:claude-sonnet-4-6")
    assert "agent: claude-code" in said and "ANTHROPIC_API_KEY holds an API key" in said
    assert API_KEY not in said and API_KEY not in (git_repo / "blitz.toml").read_text()


def test_init_picks_a_local_model_server_and_lists_it(
    git_repo: Path, home: Path, bare: dict[str, str], local: ModelServer
) -> None:
    env = {**bare, "BLITZ_LOCAL_SERVERS": json.dumps({"ollama": local.openai_base_url})}
    said, written = _init(home, git_repo, env)
    model = f"ollama:{LOCAL_MODEL}@{local.openai_base_url}"
    project, models = written["project"], written["models"]
    assert isinstance(project, dict) and isinstance(models, dict)
    assert (project["backend"], project["max_parallel"], models["default"]) == (
        "embedded",
        1,
        model,
    )
    assert "agent: embedded" in said and "server answering" in said

    listed = blitz(home, "backends", "list", "--repo", git_repo, "--json", **env)
    assert listed.returncode == 0, listed.stderr
    embedded = {item["name"]: item for item in json.loads(listed.stdout)}["embedded"]
    assert embedded["available"] and model in embedded["detail"]


def test_run_refuses_claude_code_without_a_key_before_anything_starts(
    repo: Path, home: Path, bare: dict[str, str], tmp_path: Path
) -> None:
    listed = blitz(home, "backends", "list", "--repo", repo, "--json", **bare)
    assert listed.returncode == 0, listed.stderr
    by_name = {item["name"]: item for item in json.loads(listed.stdout)}
    assert not by_name["claude-code"]["available"]
    assert "ANTHROPIC_API_KEY" in by_name["claude-code"]["detail"]
    assert not by_name["scripted"]["available"]

    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    args = ("run", "Look", "--repo", repo, "--plan", plan, "--backend", "claude-code")
    refused = blitz(home, *args, **bare)
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "claude-code backend cannot run here" in refused.stderr
    assert "ANTHROPIC_API_KEY" in refused.stderr and "Traceback" not in refused.stderr
    assert goals_in(home) == []
    projects = json.loads(blitz(home, "projects", "list", "--json", **bare).stdout)
    assert [p["paused"] for p in projects] == [False]

    keyed = blitz(
        home, "backends", "list", "--repo", repo, "--json", **{**bare, "ANTHROPIC_API_KEY": API_KEY}
    )
    claude = {item["name"]: item for item in json.loads(keyed.stdout)}["claude-code"]
    assert claude["available"], claude


def test_run_refuses_a_portfolio_backend_that_cannot_run_before_anything_starts(
    repo: Path, home: Path, bare: dict[str, str], tmp_path: Path
) -> None:
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    step = {"write": {"path": "look.txt", "content": "looked\n"}}
    agent = write_yaml(tmp_path / "agent.yaml", {"agent": {"look": [[step]]}})
    args = ("run", "Look", "--repo", repo, "--plan", plan, "--scenario", agent)
    refused = blitz(home, *args, "--portfolio", "scripted,claude-code", **bare)
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "claude-code backend cannot run here" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert goals_in(home) == []
    # The same run with only usable backends goes ahead.
    ran = blitz(home, *args, "--portfolio", "scripted", **bare)
    assert ran.returncode == 0, (ran.stdout, ran.stderr)


def test_resume_leaves_a_goal_whose_backend_cannot_run_here_as_it_is(
    repo: Path, home: Path, bare: dict[str, str], tmp_path: Path
) -> None:
    """A goal started with the scripted fake, killed, then resumed without its scenario: the
    fake is no agent, so resume says so and leaves the goal for a resume that can run it."""
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    step = {"write": {"path": "look.txt", "content": "looked\n"}}
    agent = write_yaml(tmp_path / "agent.yaml", {"agent": {"look": [[step]]}})
    args = ("run", "Look", "--repo", repo, "--plan", plan, "--scenario", agent, "--json")
    killed = blitz(home, *args, BLITZ_CRASH_AT="before_store_write", **bare)
    assert killed.returncode == -signal.SIGKILL, (killed.stdout, killed.stderr)
    (goal_id,) = goals_in(home)
    state = json.loads(blitz(home, "status", goal_id, "--json", **bare).stdout)["state"]

    refused = blitz(home, "resume", "--json", **bare)
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert f"not resuming {goal_id}: the scripted backend cannot run here" in " ".join(
        refused.stderr.split()
    )
    assert "--backend" in refused.stderr and "Traceback" not in refused.stderr
    again = json.loads(blitz(home, "status", goal_id, "--json", **bare).stdout)
    assert again["state"] == state and state in ("planning", "running")
    projects = json.loads(blitz(home, "projects", "list", "--json", **bare).stdout)
    assert [p["paused"] for p in projects] == [False]

    resumed = blitz(home, "resume", "--scenario", agent, "--json", **bare)
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    assert json.loads(resumed.stdout)["state"] == "succeeded"
