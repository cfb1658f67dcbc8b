"""The ``blitz`` command line as a user meets it: the installed console script, run as a process.

Every test has its own BLITZ_HOME (the ``home`` and ``repo`` fixtures are in this directory's
conftest). Bad input is tried in ``test_bad_input.py``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from blitz_process import (
    TEST_GATE,
    TIMEOUT,
    blitz,
    git,
    goals_in,
    start,
    write_yaml,
)

# -- helpers ---------------------------------------------------------------------------------------


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout


def ok_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(done))


def events(home: Path, goal_id: str = "") -> list[dict[str, Any]]:
    out = ok(blitz(home, "events", *([goal_id] if goal_id else []), "--json", "--last", "0"))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def wait_for_event(home: Path, kind: str, proc: subprocess.Popen[str], limit: float = 60) -> str:
    """Poll the event log until an event of ``kind`` appears; return its goal id."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for ev in events(home):
            if ev["kind"] == kind:
                return str(ev["goal"])
        assert proc.poll() is None, proc.communicate(timeout=5)
        time.sleep(0.1)
    raise AssertionError(f"no {kind} event within {limit}s")


PLAN = {
    "summary": "Greet the world",
    "tasks": [
        {"id": "hello", "title": "Write hello"},
        {"id": "world", "title": "Append world", "depends_on": ["hello"]},
        {
            "id": "review",
            "title": "Review the greeting",
            "depends_on": ["world"],
            "allow_empty": True,
        },
    ],
}

AGENT = {
    "agent": {
        "hello": [[{"write": {"path": "hello.txt", "content": "hello\n"}}]],
        "world": [[{"append": {"path": "hello.txt", "content": "world\n"}}]],
    }
}


# -- help and init ---------------------------------------------------------------------------------


def test_help(home: Path) -> None:
    out = ok(blitz(home, "--help"))
    for command in ("run", "resume", "cancel", "status", "events", "init", "projects", "demo"):
        assert command in out
    assert "Usage" in ok(blitz(home, "run", "--help"))


def test_init_writes_detected_gates_and_keeps_an_existing_file(git_repo: Path, home: Path) -> None:
    (git_repo / "pyproject.toml").write_text('[project]\nname = "pkg"\nversion = "0.1"\n')
    (git_repo / "pkg").mkdir()
    (git_repo / "pkg" / "__init__.py").write_text("def one() -> int:\n    return 1\n")
    (git_repo / "tests").mkdir()
    (git_repo / "tests" / "test_pkg.py").write_text("def test_one():\n    assert True\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "A small Python package")

    out = ok(blitz(home, "init", git_repo))
    target = git_repo / "blitz.toml"
    assert f"wrote {target}" in out
    config = tomllib.loads(target.read_text())
    assert "pytest" in config["gates"]["test"]
    assert config["project"]["base_branch"] == "main"

    target.write_text("# mine\n")
    again = blitz(home, "init", git_repo)
    assert again.returncode == 2
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert "Traceback" not in again.stdout + again.stderr
    assert target.read_text() == "# mine\n"

    ok(blitz(home, "init", git_repo, "--force"))
    assert "pytest" in tomllib.loads(target.read_text())["gates"]["test"]


# -- run, status, events -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)  # many processes; a loaded machine is slow
def test_run_a_plan_file_then_look_at_it(repo: Path, home: Path, tmp_path: Path) -> None:
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    scenario = write_yaml(tmp_path / "agent.yaml", AGENT)
    result = ok_json(
        blitz(
            home,
            "run",
            "Greet the world",
            "--repo",
            repo,
            "--plan",
            plan,
            "--scenario",
            scenario,
            "--json",
        )
    )
    assert result["state"] == "succeeded"
    tasks = {t["id"]: t for t in result["tasks"]}
    assert {tid: t["state"] for tid, t in tasks.items()} == dict.fromkeys(
        ("hello", "world", "review"), "succeeded"
    )
    assert tasks["hello"]["commit"] and tasks["world"]["commit"] and not tasks["review"]["commit"]
    goal_id, branch = result["goal"], result["branch"]
    assert git(repo, "show", f"{branch}:hello.txt") == "hello\nworld\n"
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert not (repo / "hello.txt").exists()

    listed = ok_json(blitz(home, "status", "--json"))
    assert [(g["id"], g["state"], g["tasks"], g["succeeded"]) for g in listed] == [
        (goal_id, "succeeded", 3, 3)
    ]
    table = ok(blitz(home, "status"))
    assert goal_id in table and "succeeded" in table and "Greet the world" in table

    detail = ok_json(blitz(home, "status", goal_id[:6], "--json"))  # a unique prefix works
    assert detail["id"] == goal_id and detail["branch"] == branch
    assert detail["tasks"][0]["id"] and all(a["state"] == "succeeded" for a in detail["attempts"])
    assert {t["id"]: t["depends_on"] for t in detail["tasks"]}["review"] == ["world"]
    assert goal_id in ok(blitz(home, "status", goal_id))

    log = ok(blitz(home, "events", goal_id))
    for kind in (
        "goal.created",
        "plan.created",
        "task.started",
        "checkpoint.committed",
        "goal.succeeded",
    ):
        assert kind in log
    # --last N: the last N lines of the whole log.
    last = ok(blitz(home, "events", goal_id, "--last", "2")).rstrip().splitlines()
    assert last == log.rstrip().splitlines()[-2:] and "goal.succeeded" in last[-1]
    # --follow on a goal that has ended prints its events and stops.
    followed = ok(blitz(home, "events", goal_id, "--follow"))
    assert followed.rstrip().splitlines()[-1] == log.rstrip().splitlines()[-1]

    cancelled = blitz(home, "cancel", goal_id)
    assert cancelled.returncode == 2
    assert "already ended" in cancelled.stderr and "succeeded" in cancelled.stderr
    assert "Traceback" not in cancelled.stdout + cancelled.stderr


def test_run_best_of_n_and_see_every_candidate(repo: Path, home: Path, tmp_path: Path) -> None:
    plan = write_yaml(tmp_path / "plan.yaml", {"tasks": [{"id": "hello", "title": "Write hello"}]})
    scenario = write_yaml(
        tmp_path / "agent.yaml",
        {
            "agent": {
                "hello#1": [[{"write": {"path": "hello.txt", "content": "hello\n" * 20}}]],
                "hello#2": [[{"write": {"path": "hello.txt", "content": "hello\n"}}]],
            }
        },
    )
    args = ("run", "Greet", "--repo", repo, "--plan", plan, "--scenario", scenario)
    refused = blitz(home, *args, "--explore", "2", "--explore-mode", "fastest")
    assert refused.returncode == 2 and '"all" or "first"' in refused.stderr
    result = ok_json(blitz(home, *args, "--explore", "2", "--json"))
    assert result["state"] == "succeeded"
    assert git(repo, "show", f"{result['branch']}:hello.txt").strip() == "hello"

    detail = ok_json(blitz(home, "status", result["goal"], "--json"))
    candidates = sorted(detail["attempts"], key=lambda a: a["candidate"])
    assert [(a["candidate"], a["selected"]) for a in candidates] == [(1, False), (2, True)]
    assert candidates[0]["verdict"].startswith("lost") and candidates[0]["ref"]
    assert candidates[1]["verdict"].startswith("won")
    table = ok(blitz(home, "status", result["goal"]))
    assert "best of 2" in table and "selected" in table


@pytest.mark.slow
@pytest.mark.timeout(300)  # many processes; a loaded machine is slow
def test_a_failing_goal_exits_1(repo: Path, home: Path, tmp_path: Path) -> None:
    with (repo / "blitz.toml").open("a") as f:
        f.write("\n[limits]\nmax_recoveries_per_task = 0\n")
    git(repo, "commit", "-q", "-am", "No recoveries")
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    scenario = write_yaml(
        tmp_path / "agent.yaml", {"agent": {"hello": [[{"fail": "cannot find the greeting"}]]}}
    )
    done = blitz(
        home, "run", "Greet", "--repo", repo, "--plan", plan, "--scenario", scenario, "--json"
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["state"] == "failed"
    tasks = {t["id"]: t for t in result["tasks"]}
    assert tasks["hello"]["state"] == "failed"
    assert "cannot find the greeting" in tasks["hello"]["reason"]
    assert tasks["world"]["state"] == "skipped"


@pytest.mark.slow
@pytest.mark.timeout(300)  # many processes; a loaded machine is slow
def test_events_follow_ends_when_the_goal_ends(
    hold_file: Path, repo: Path, home: Path, tmp_path: Path
) -> None:
    hold = hold_file
    hold.touch()
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    agent = json.loads(json.dumps(AGENT))
    agent["agent"]["hello"][0].insert(
        0, {"run": f"while [ -e {shlex.quote(str(hold))} ]; do sleep 0.05; done"}
    )
    scenario = write_yaml(tmp_path / "agent.yaml", agent)
    run = start(
        home, "run", "Greet", "--repo", repo, "--plan", plan, "--scenario", scenario, "--json"
    )
    follow: subprocess.Popen[str] | None = None
    try:
        goal_id = wait_for_event(home, "task.started", run)
        follow = start(home, "events", goal_id, "--follow")
        assert follow.stdout is not None
        first = follow.stdout.readline()  # the follower is up: it printed the log so far
        assert "goal.created" in first
        assert follow.poll() is None and run.poll() is None  # alpha waits for the hold file
        hold.unlink()
        _, run_err = finish(run)
        assert run.returncode == 0, run_err
        out, err = finish(follow)
    finally:
        hold.unlink(missing_ok=True)
        for proc in (run, follow):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    assert follow.returncode == 0, err
    out = first + out
    assert "task.started" in out
    assert "goal.succeeded" in out.rstrip().splitlines()[-1]


# -- projects --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)  # many processes; a loaded machine is slow
def test_projects_add_list_pause_resume_remove(repo: Path, home: Path, tmp_path: Path) -> None:
    added = ok(blitz(home, "projects", "add", repo, "--name", "greeter"))
    assert "greeter" in added and str(repo) in added
    listed = ok_json(blitz(home, "projects", "list", "--json"))
    assert [(p["name"], p["path"], p["paused"]) for p in listed] == [("greeter", str(repo), False)]
    assert listed[0]["gates"]["test"] == TEST_GATE
    assert "greeter" in ok(blitz(home, "projects", "list"))

    ok(blitz(home, "projects", "pause", "greeter", "--reason", "release freeze"))
    listed = ok_json(blitz(home, "projects", "list", "--json"))
    assert listed[0]["paused"] is True
    plan = write_yaml(
        tmp_path / "plan.yaml", {"tasks": [{"id": "look", "title": "Look", "allow_empty": True}]}
    )
    refused = blitz(home, "run", "Look around", "--repo", repo, "--plan", plan)
    assert refused.returncode == 2
    assert "paused" in refused.stderr and "release freeze" in refused.stderr
    assert "blitz projects resume greeter" in refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    assert goals_in(home) == []

    ok(blitz(home, "projects", "resume", "greeter"))
    assert ok_json(blitz(home, "projects", "list", "--json"))[0]["paused"] is False
    nothing = write_yaml(tmp_path / "nothing.yaml", {})  # the scripted agent, doing nothing
    args = ("--plan", plan, "--scenario", nothing, "--json")
    assert ok_json(blitz(home, "run", "Look around", "--repo", repo, *args))["state"] == (
        "succeeded"
    )

    assert "removed project greeter" in ok(blitz(home, "projects", "remove", "greeter"))
    assert ok_json(blitz(home, "projects", "list", "--json")) == []
    assert (repo / ".git").is_dir()
    unknown = blitz(home, "projects", "pause", "greeter")
    assert unknown.returncode == 2 and "no project 'greeter'" in unknown.stderr
    assert "Traceback" not in unknown.stdout + unknown.stderr


# -- cancel ----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)  # many processes; a loaded machine is slow
def test_cancel_a_running_goal_from_another_process(repo: Path, home: Path, tmp_path: Path) -> None:
    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    agent = json.loads(json.dumps(AGENT))
    agent["agent"]["hello"][0].insert(0, {"sleep": 30})
    scenario = write_yaml(tmp_path / "agent.yaml", agent)
    run = start(
        home, "run", "Greet", "--repo", repo, "--plan", plan, "--scenario", scenario, "--json"
    )
    try:
        goal_id = wait_for_event(home, "task.started", run)
        cancelled = blitz(home, "cancel", goal_id)
        out, err = finish(run)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=10)
    assert ok(cancelled).strip().endswith("cancelled")
    assert run.returncode == 1, err
    assert json.loads(out)["state"] == "cancelled"
    detail = ok_json(blitz(home, "status", goal_id, "--json"))
    assert detail["state"] == "cancelled"
    assert {t["state"] for t in detail["tasks"]} == {"cancelled"}
    # The attempt's worktree went back to the warm pool, free: nothing else is left.
    left = ok_json(blitz(home, "workspaces", "--json"))
    assert left and all(w["kind"] == "pooled" and not w["busy"] for w in left)
    listed = git(repo, "worktree", "list", "--porcelain").count("worktree ")
    assert listed == 1 + len(left)


# -- demo ------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)  # many processes; a loaded machine is slow
def test_demo(home: Path, tmp_path: Path) -> None:
    result = ok_json(blitz(home, "demo", "--json", "--path", tmp_path / "json-demo"))
    assert result["state"] == "succeeded"

    out = ok(blitz(home, "demo", "--path", tmp_path / "demo"))
    sample = tmp_path / "demo" / "calc"
    assert f"sample repository: {sample}" in out
    assert "pull request description" in out
    assert "Add subtract, multiply and divide to calc" in out
    assert (sample / ".git").is_dir()


@pytest.mark.slow
@pytest.mark.timeout(300)  # many processes; a loaded machine is slow
def test_allow_dirty_goes_ahead_without_the_changes(repo: Path, home: Path, tmp_path: Path) -> None:
    (repo / "scratch.txt").write_text("work in progress\n")
    plan = write_yaml(
        tmp_path / "plan.yaml", {"tasks": [{"id": "copy", "title": "Copy the README"}]}
    )
    scenario = write_yaml(
        tmp_path / "agent.yaml", {"agent": {"copy": [[{"run": "cp README.md COPY.md"}]]}}
    )
    done = blitz(
        home,
        "run",
        "Copy",
        "--repo",
        repo,
        "--plan",
        plan,
        "--scenario",
        scenario,
        "--json",
        "--allow-dirty",
    )
    result = ok_json(done)
    assert result["state"] == "succeeded"
    files = git(repo, "ls-tree", "-r", "--name-only", result["branch"]).split()
    assert "COPY.md" in files and "scratch.txt" not in files
    assert (repo / "scratch.txt").read_text() == "work in progress\n"
