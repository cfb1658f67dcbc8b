"""Bad input on the command line: each case ends with exit code 2 and one message on stderr that
names the problem, never a Python traceback, and nothing is started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from blitz_process import blitz, git, goals_in


def _plan(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD_PLAN = "tasks:\n  - {id: a, title: A, allow_empty: true}\n"


def bad_not_a_repo(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    plain = tmp_path / "plain"
    plain.mkdir()
    return ["run", "g", "--repo", plain, "--plan", _plan(tmp_path, GOOD_PLAN)], [
        "not a git repository"
    ]


def bad_missing_repo(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    return ["run", "g", "--repo", tmp_path / "nowhere", "--plan", _plan(tmp_path, GOOD_PLAN)], [
        "does not exist"
    ]


def bad_no_commits(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "-q", "-b", "main")
    return ["run", "g", "--repo", fresh, "--plan", _plan(tmp_path, GOOD_PLAN)], ["no commits"]


def bad_dirty(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    (repo / "scratch.txt").write_text("work in progress\n")
    return ["run", "g", "--repo", repo, "--plan", _plan(tmp_path, GOOD_PLAN)], [
        "uncommitted changes",
        "scratch.txt",
        "--allow-dirty",
    ]


def bad_missing_plan(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    return ["run", "g", "--repo", repo, "--plan", tmp_path / "nope.yaml"], [
        "nope.yaml",
        "does not exist",
    ]


def bad_yaml(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    return ["run", "g", "--repo", repo, "--plan", _plan(tmp_path, "tasks: [\n  - {id: a\n")], [
        "not valid YAML"
    ]


def bad_json(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    return ["run", "g", "--repo", repo, "--plan", _plan(tmp_path, '{"tasks": [', "plan.json")], [
        "not valid JSON"
    ]


def bad_cycle(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    text = (
        "tasks:\n  - {id: a, title: A, depends_on: [b]}\n  - {id: b, title: B, depends_on: [c]}\n"
        "  - {id: c, title: C, depends_on: [a]}\n"
    )
    return ["run", "g", "--repo", repo, "--plan", _plan(tmp_path, text)], [
        "cycle",
        "a -> b -> c -> a",
    ]


def bad_unknown_dependency(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    text = "tasks:\n  - {id: a, title: A, depends_on: [ghost]}\n"
    return ["run", "g", "--repo", repo, "--plan", _plan(tmp_path, text)], ["unknown task 'ghost'"]


def bad_duplicate_ids(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    text = "tasks:\n  - {id: a, title: A}\n  - {id: a, title: Again}\n"
    return ["run", "g", "--repo", repo, "--plan", _plan(tmp_path, text)], ["duplicate task id 'a'"]


def bad_empty_plan(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    return ["run", "g", "--repo", repo, "--plan", _plan(tmp_path, "tasks: []\n")], ["no tasks"]


def bad_toml(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    (repo / "blitz.toml").write_text("[project\nname = \n")
    return ["run", "g", "--repo", repo, "--plan", _plan(tmp_path, GOOD_PLAN)], [
        "blitz.toml",
        "invalid TOML",
    ]


def bad_toml_key(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    (repo / "blitz.toml").write_text('[project]\nnmae = "x"\n')
    return ["run", "g", "--repo", repo, "--plan", _plan(tmp_path, GOOD_PLAN)], [
        "blitz.toml",
        "nmae",
        "unknown key",
    ]


def bad_init_over_corrupt_toml(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    (repo / "blitz.toml").write_text("[gates\n")
    return ["init", repo], ["blitz.toml", "invalid TOML"]


def bad_backend(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    return [
        "run",
        "g",
        "--repo",
        repo,
        "--plan",
        _plan(tmp_path, GOOD_PLAN),
        "--backend",
        "telepathy",
    ], [
        "unknown backend 'telepathy'",
        "scripted",
    ]


def bad_no_planner(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    return ["run", "g", "--repo", repo], ["no model is configured", "BLITZ_MODEL", "--plan"]


def bad_empty_goal(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    return ["run", "  ", "--repo", repo, "--plan", _plan(tmp_path, GOOD_PLAN)], ["goal is empty"]


def bad_status(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    return ["status", "NOPE"], ["no goal 'NOPE'"]


def bad_events(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    return ["events", "NOPE"], ["no goal 'NOPE'"]


def bad_cancel(repo: Path, tmp_path: Path) -> tuple[list[Any], list[str]]:
    return ["cancel", "NOPE"], ["no goal 'NOPE'"]


BAD_INPUT = [
    bad_not_a_repo,
    bad_missing_repo,
    bad_no_commits,
    bad_dirty,
    bad_missing_plan,
    bad_yaml,
    bad_json,
    bad_cycle,
    bad_unknown_dependency,
    bad_duplicate_ids,
    bad_empty_plan,
    bad_toml,
    bad_toml_key,
    bad_init_over_corrupt_toml,
    bad_backend,
    bad_no_planner,
    bad_empty_goal,
    bad_status,
    bad_events,
    bad_cancel,
]


@pytest.mark.parametrize("case", BAD_INPUT, ids=lambda case: case.__name__.removeprefix("bad_"))
def test_bad_input_exits_2_with_a_message(
    case: Any, repo: Path, home: Path, tmp_path: Path
) -> None:
    args, wanted = case(repo, tmp_path)
    done = blitz(home, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert message.startswith("error:"), done.stderr
    for part in wanted:
        assert part in message, (part, done.stderr)
    assert goals_in(home) == []  # nothing was started
