"""Text that is not markup reaches the terminal as it is written: square brackets in a goal's
title, a project's name, a task's title, a failure, a root cause, a pause reason or an error
message are printed, not read as Rich style tags and dropped (``set [models] in blitz.toml``
printed as ``set  in blitz.toml``).

Every command a person reads is run for real (the installed console script, a scripted goal on
a real repository) with bracketed words in every field it shows, and every word is looked for
in what it printed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from blitz_process import blitz, git, goals_in, write_yaml

TITLE = "Fix [tool.pytest] in pyproject.toml"
PROJECT = "[lib]"
FAILURE = "set [models] in blitz.toml"
ROOT_CAUSE = "[root] the greeting is missing"
REASON = "[maintenance] window"

PLAN = {
    "summary": "Greet [summary]",
    "tasks": [
        {"id": "hello", "title": "Write [hello]"},
        {"id": "world", "title": "Append [world]", "depends_on": ["hello"]},
    ],
}
SCENARIO = {
    "agent": {"hello": [[{"fail": FAILURE}]]},
    "recovery": {"hello": [{"root_cause": ROOT_CAUSE, "action": "retry", "guidance": "[again]"}]},
}


def printed(done: subprocess.CompletedProcess[str], *, code: int = 0) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout + done.stderr


def shows(text: str, *words: str) -> None:
    missing = [word for word in words if word not in text]
    assert not missing, f"{missing} not printed in:\n{text}"


@pytest.mark.slow
@pytest.mark.timeout(300)  # many processes; a loaded machine is slow
def test_brackets_in_what_every_command_shows_are_printed(
    repo: Path, home: Path, tmp_path: Path
) -> None:
    with (repo / "blitz.toml").open("a") as f:
        f.write("\n[limits]\nmax_recoveries_per_task = 1\n")
    git(repo, "commit", "-q", "-am", "One recovery per task")
    shows(printed(blitz(home, "projects", "add", repo, "--name", PROJECT)), f"project {PROJECT}")

    plan = write_yaml(tmp_path / "plan.yaml", PLAN)
    scenario = write_yaml(tmp_path / "scenario.yaml", SCENARIO)
    run = printed(
        blitz(home, "run", TITLE, "--repo", repo, "--plan", plan, "--scenario", scenario), code=1
    )
    (goal_id,) = goals_in(home)
    shows(run, f"on {PROJECT} ", f"hello: failed - {FAILURE}")

    shows(printed(blitz(home, "status")), TITLE, PROJECT)
    shows(
        printed(blitz(home, "status", goal_id)),
        TITLE,
        "Write [hello]",
        f"Write [hello] - {FAILURE}",
        "Append [world]",
        f"recovery of hello: retry - {ROOT_CAUSE}",
    )
    shows(printed(blitz(home, "events", goal_id)), FAILURE)
    shows(printed(blitz(home, "projects", "list")), PROJECT)
    shows(printed(blitz(home, "workspaces")), PROJECT)
    shows(
        printed(blitz(home, "projects", "pause", PROJECT, "--reason", REASON)),
        f"project {PROJECT} paused",
    )
    shows(printed(blitz(home, "projects", "list")), f"paused: {REASON}")

    # Errors: the message of a user error, and of a run the engine could not start.
    shows(printed(blitz(home, "status", "[nope]"), code=2), "no goal '[nope]'")
    refused = blitz(home, "run", TITLE, "--repo", repo, "--plan", plan, "--scenario", scenario)
    shows(printed(refused, code=2), f"project {PROJECT} is paused ({REASON})")
    shows(
        printed(
            blitz(home, "run", TITLE, "--server", "http://127.0.0.1:9", "--scenario", scenario),
            code=2,
        ),
        "[models] in blitz.toml",
    )


def test_brackets_in_a_planned_goal_are_printed(repo: Path, home: Path, tmp_path: Path) -> None:
    scenario = write_yaml(tmp_path / "scenario.yaml", PLAN)
    shown = printed(blitz(home, "plan", TITLE, "--repo", repo, "--scenario", scenario))
    shows(shown, TITLE, "Greet [summary]", "Write [hello]", "Append [world]")


def test_brackets_in_what_init_detected_are_printed(home: Path, git_repo: Path) -> None:
    (git_repo / "pyproject.toml").write_text(
        '[project]\nname = "lib"\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n\n'
        "[tool.ruff]\nline-length = 100\n"
    )
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "pyproject")

    shows(
        printed(blitz(home, "init", git_repo)),
        "([tool.pytest] in pyproject.toml)",
        "([tool.ruff] in pyproject.toml)",
    )
