"""``blitz doctor`` and the sandbox line of ``blitz backends list``, as a user runs them: real
processes, this machine's bubblewrap, and a PATH without it."""

from __future__ import annotations

import json
from pathlib import Path

from blitz_process import blitz, path_without_bubblewrap

from blitz import sandbox


def checks(done_stdout: str) -> dict[str, dict[str, str]]:
    return {check["name"]: check for check in json.loads(done_stdout)}


def test_doctor_checks_git_the_sandbox_keys_clis_and_disk(tmp_path: Path) -> None:
    done = blitz(tmp_path / "home", "doctor", "--json", ANTHROPIC_API_KEY="sk-ant-doctor-1234567")
    found = checks(done.stdout)
    assert {"git", "sandbox", "user namespaces", "disk", "ANTHROPIC_API_KEY"} <= set(found)
    assert found["ANTHROPIC_API_KEY"] == {
        "name": "ANTHROPIC_API_KEY",
        "status": "ok",
        "detail": "set",
    }
    assert "sk-ant-doctor" not in done.stdout  # a key is said to be set, never shown
    assert found["OPENAI_API_KEY"]["detail"] == "not set"
    if sandbox.probe().ok:
        assert done.returncode == 0, done.stdout
        assert found["sandbox"]["status"] == "ok"
        assert "bubblewrap works" in found["sandbox"]["detail"]


def test_doctor_fails_and_says_how_to_install_bubblewrap_where_it_is_missing(
    tmp_path: Path,
) -> None:
    done = blitz(tmp_path / "home", "doctor", "--json", PATH=path_without_bubblewrap(tmp_path))
    found = checks(done.stdout)
    assert done.returncode == 1
    assert found["sandbox"]["status"] == "fail"
    assert "apt-get install bubblewrap" in found["sandbox"]["detail"]
    listed = blitz(
        tmp_path / "home", "backends", "list", PATH=path_without_bubblewrap(tmp_path / "b")
    )
    assert "sandbox: required, but agents cannot run here" in listed.stdout


def test_doctor_warns_when_a_project_turns_the_sandbox_off(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "blitz.toml").write_text('[sandbox]\nmode = "off"\n')
    done = blitz(tmp_path / "home", "doctor", "--json", "--repo", str(repo))
    found = checks(done.stdout)
    if sandbox.probe().ok:
        assert found["sandbox mode"]["status"] == "warn"
    assert "unconfined" in json.dumps(found)
