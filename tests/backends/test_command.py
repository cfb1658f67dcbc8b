"""The command backend with real subprocesses: small Python scripts stand in for agent CLIs and
work in a real git worktree; the last test runs a whole goal through the engine with one."""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import Sink
from engine_helpers import (
    assert_engine_invariants,
    branch_commits,
    git,
    goal_events,
    make_repo,
    of_kind,
    run_one,
)

from blitz.app import App
from blitz.backends.base import AgentBackend, AgentRequest
from blitz.backends.command import CommandBackend
from blitz.backends.registry import BackendOptions, create_backend
from blitz.conductor import Services
from blitz.config import CommandBackendConfig
from blitz.domain import Goal, GoalState, Project, TaskState
from blitz.planner import Planner
from blitz.settings import Settings
from blitz.testing.scripted import Scenario

PYTHON = sys.executable


def agent(tmp_path: Path, body: str, name: str = "agent.py") -> Path:
    """An "agent CLI": a Python script outside the worktree."""
    script = tmp_path / name
    script.write_text("import json, os, pathlib, subprocess, sys, time\n" + body)
    return script


def backend(*command: str | Path, name: str = "myagent", **config: Any) -> CommandBackend:
    return CommandBackend(
        name, CommandBackendConfig(command=[str(part) for part in command], **config)
    )


def request(worktree: Path, **changes: Any) -> AgentRequest:
    fields: dict[str, Any] = {
        "goal_id": "g1",
        "goal": "Greet the world",
        "task_id": "hello",
        "title": "Write hello.txt",
        "instructions": "Create hello.txt saying hello.",
        "worktree": worktree,
        "timeout": 30.0,
        **changes,
    }
    return AgentRequest(**fields)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


# -- the prompt ------------------------------------------------------------------------------


async def test_prompt_and_worktree_are_substituted_in_the_arguments(
    tmp_path: Path, worktree: Path
) -> None:
    script = agent(
        tmp_path,
        "assert os.getcwd() == sys.argv[2], (os.getcwd(), sys.argv[2])\n"
        "pathlib.Path('prompt.txt').write_text(sys.argv[1])\n"
        "pathlib.Path('stdin.txt').write_text(sys.stdin.read())\n",
    )
    req = request(
        worktree,
        attempt=2,
        previous_failure="the test gate failed: {worktree} is not a file",
        guidance="Write the file at the repository root.",
    )
    result = await backend(PYTHON, script, "{prompt}", "{worktree}").run(req)

    assert result.ok, result.error
    sent = (worktree / "prompt.txt").read_text()
    for part in (
        "Task hello: Write hello.txt",
        "Create hello.txt saying hello.",
        "Greet the world",
        "attempt 2",
        "Write the file at the repository root.",
        # Placeholders in the prompt's own text are left alone.
        "the test gate failed: {worktree} is not a file",
    ):
        assert part in sent
    # A command that takes the prompt as an argument gets nothing on stdin (never waits on it).
    assert (worktree / "stdin.txt").read_text() == ""


async def test_prompt_file_is_outside_the_worktree_and_removed_after(
    tmp_path: Path, worktree: Path
) -> None:
    script = agent(
        tmp_path,
        "path = pathlib.Path(sys.argv[1].removeprefix('--message-file='))\n"
        "pathlib.Path('seen.json').write_text("
        "json.dumps({'path': str(path), 'text': path.read_text()}))\n",
    )
    result = await backend(PYTHON, script, "--message-file={prompt_file}").run(request(worktree))

    assert result.ok, result.error
    seen = json.loads((worktree / "seen.json").read_text())
    path = Path(seen["path"])
    assert "Task hello: Write hello.txt" in seen["text"]
    assert not path.exists()
    assert not path.resolve().is_relative_to(worktree.resolve())


async def test_without_a_placeholder_the_prompt_goes_to_stdin(
    tmp_path: Path, worktree: Path
) -> None:
    script = agent(tmp_path, "pathlib.Path('stdin.txt').write_text(sys.stdin.read())\n")
    result = await backend(PYTHON, script).run(request(worktree))

    assert result.ok, result.error
    assert "Task hello: Write hello.txt" in (worktree / "stdin.txt").read_text()


# -- output ----------------------------------------------------------------------------------


async def test_output_lines_become_messages_while_the_agent_runs(
    tmp_path: Path, worktree: Path
) -> None:
    # The agent waits for a file that only the message sink creates: lines shown only at exit
    # would leave it waiting until the attempt's timeout, a failure (no shorter deadline to race).
    go = tmp_path / "go"
    script = agent(
        tmp_path,
        "print('reading the code', flush=True)\n"
        f"while not pathlib.Path({str(go)!r}).exists():\n"
        "    time.sleep(0.01)\n"
        "print()\n"
        "print('wrote hello.txt')\n",
    )
    shown: list[str] = []

    async def on_message(text: str) -> None:
        shown.append(text)
        go.touch()

    result = await backend(PYTHON, script, "{prompt}").run(request(worktree), on_message)

    assert result.ok, result.error
    assert shown == ["reading the code", "wrote hello.txt"]  # blank lines are not messages
    assert result.messages == ("reading the code", "wrote hello.txt")
    assert result.summary == "wrote hello.txt"


async def test_a_nonzero_exit_is_failed_work_with_the_output_tail(
    tmp_path: Path, worktree: Path
) -> None:
    script = agent(
        tmp_path,
        "print('trying', flush=True)\nprint('error: the model refused', file=sys.stderr)\n"
        "sys.exit(3)\n",
    )
    result = await backend(PYTHON, script, "{prompt}").run(request(worktree))

    assert not result.ok
    assert not result.crashed and not result.config_error
    assert "exited with code 3" in result.error
    assert "error: the model refused" in result.error and "trying" in result.error


async def test_death_by_a_signal_is_a_crash(tmp_path: Path, worktree: Path) -> None:
    script = agent(tmp_path, "import signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    result = await backend(PYTHON, script, "{prompt}").run(request(worktree))

    assert not result.ok and result.crashed
    assert "killed by signal 9" in result.error


# -- configuration errors --------------------------------------------------------------------


async def test_a_missing_program_is_a_configuration_error(worktree: Path) -> None:
    result = await backend("no-such-agent-cli", "{prompt}", name="aider").run(request(worktree))

    assert not result.ok and not result.crashed
    assert "no-such-agent-cli" in result.config_error
    assert "[backends.aider]" in result.config_error


async def test_a_program_that_is_not_executable_is_a_configuration_error(
    tmp_path: Path, worktree: Path
) -> None:
    script = agent(tmp_path, "print('hi')\n")
    script.chmod(0o644)
    result = await backend(script, "{prompt}", name="gemini").run(request(worktree))

    assert str(script) in result.config_error
    assert "[backends.gemini]" in result.config_error


async def test_a_prompt_too_long_for_an_argument_says_to_use_the_prompt_file(
    tmp_path: Path, worktree: Path
) -> None:
    script = agent(tmp_path, "print('hi')\n")
    long = request(worktree, instructions="x" * 300_000)  # one argument may hold 128 KiB
    result = await backend(PYTHON, script, "{prompt}").run(long)

    assert "{prompt_file}" in result.config_error and "[backends.myagent]" in result.config_error

    result = await backend(PYTHON, script, "{prompt_file}").run(long)
    assert result.ok, result.error


def test_the_command_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="command"):
        CommandBackendConfig(command=[])


# -- environment -----------------------------------------------------------------------------


async def test_secrets_reach_the_agent_only_through_pass_env(
    tmp_path: Path, worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "token-secret")
    monkeypatch.setenv("PLAIN_SETTING", "visible")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    script = agent(
        tmp_path,
        "pathlib.Path('env.json').write_text(json.dumps(dict(os.environ)))\n",
    )
    provided = {"ANTHROPIC_API_KEY": "sk-ant-provided", "ANTHROPIC_BASE_URL": "http://127.0.0.1:1"}

    async def env_of(**config: Any) -> dict[str, str]:
        command = CommandBackendConfig(command=[PYTHON, str(script), "{prompt}"], **config)
        result = await CommandBackend("myagent", command, env=provided).run(request(worktree))
        assert result.ok, result.error
        env: dict[str, str] = json.loads((worktree / "env.json").read_text())
        return env

    env = await env_of(env={"AIDER_DARK_MODE": "1"})
    assert env["PLAIN_SETTING"] == "visible"
    assert env["AIDER_DARK_MODE"] == "1"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:1"
    assert "GIT_DIR" not in env
    for secret in ("OPENAI_API_KEY", "SOME_SERVICE_TOKEN", "ANTHROPIC_API_KEY"):
        assert secret not in env
    leaked = {"sk-openai-secret", "token-secret", "sk-ant-provided"} & set(env.values())
    assert not leaked

    env = await env_of(pass_env=["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "NOT_SET_ANYWHERE"])
    assert env["OPENAI_API_KEY"] == "sk-openai-secret"
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-provided"
    assert "SOME_SERVICE_TOKEN" not in env and "NOT_SET_ANYWHERE" not in env


# -- commits ---------------------------------------------------------------------------------


async def test_commits_the_agent_makes_are_undone_keeping_the_changes(
    tmp_path: Path, worktree: Path
) -> None:
    head = git(worktree, "rev-parse", "HEAD")
    script = agent(
        tmp_path,
        "pathlib.Path('hello.txt').write_text('hello\\n')\n"
        "subprocess.run(['git', 'add', 'hello.txt'], check=True)\n"
        "subprocess.run(['git', 'commit', '-q', '-m', 'aider: add hello'], check=True)\n",
    )
    sink = Sink()
    result = await backend(PYTHON, script, "{prompt}").run(request(worktree), sink)

    assert result.ok, result.error
    assert git(worktree, "rev-parse", "HEAD") == head
    assert (worktree / "hello.txt").read_text() == "hello\n"
    assert "hello.txt" in git(worktree, "status", "--porcelain")
    assert sink.messages[-1].startswith("the agent made 1 commit; undone")


# -- the engine ------------------------------------------------------------------------------


class CommandApp(App):
    """An app whose goals are worked on by one command backend, built through the registry."""

    def __init__(self, settings: Settings, command: list[str], **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.commands = {"myagent": CommandBackendConfig(command=command)}

    def services(self, project: Project, goal: Goal, *, planner: Planner | None = None) -> Services:
        services = super().services(project, goal, planner=planner)
        built: AgentBackend = create_backend("myagent", BackendOptions(commands=self.commands))
        return dataclasses.replace(services, backend=built, scripted=False)


@pytest.fixture
async def command_app(tmp_path: Path) -> AsyncIterator[CommandApp]:
    script = agent(
        tmp_path,
        "text = pathlib.Path(sys.argv[1]).read_text()\n"
        "assert 'Write hello.txt' in text, text\n"
        "print('writing hello.txt', flush=True)\n"
        "pathlib.Path('hello.txt').write_text('hello\\n')\n"
        "print('done')\n",
    )
    plan = {
        "tasks": [
            {
                "id": "hello",
                "title": "Write hello.txt",
                "checks": [{"kind": "file_exists", "path": "hello.txt"}],
            }
        ]
    }
    app = CommandApp(
        Settings(home=tmp_path / "home"),
        [PYTHON, str(script), "{prompt_file}"],
        scenario=Scenario.from_data(plan),
    )
    yield app
    await app.aclose()


@pytest.mark.usefixtures("git_repo")  # isolates git from the machine's configuration
async def test_a_goal_runs_through_a_command_backend(
    tmp_path: Path, command_app: CommandApp
) -> None:
    # Passes on the base commit (no hello.txt yet) and after the task only if the file is right.
    gate = f"{shlex.quote(PYTHON)} -c \"import pathlib, sys; p = pathlib.Path('hello.txt'); "
    gate += "sys.exit(p.exists() and p.read_text() != 'hello\\n')\""
    repo = make_repo(tmp_path / "projects", gates={"test": gate, "timeout": 60})

    _, goal = await run_one(command_app, repo, "Greet the world")

    assert goal.state is GoalState.SUCCEEDED, goal.error
    (task,) = command_app.store.load_tasks(goal.id)
    assert task.state is TaskState.SUCCEEDED
    (commit,) = branch_commits(repo, goal.branch)
    assert commit.tasks == ("hello",)
    assert git(repo, "show", f"{goal.branch}:hello.txt") == "hello"
    assert not (repo / "hello.txt").exists()
    messages = [e.message for e in of_kind(goal_events(command_app, goal.id), "agent.message")]
    assert messages == ["writing hello.txt", "done"]
    (attempt,) = command_app.store.load_attempts(goal.id)
    assert "test" in [g.name for g in attempt.gates]
    assert all(g.passed for g in attempt.gates), attempt.gates
    assert_engine_invariants(command_app, repo, goal)
