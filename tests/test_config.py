from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blitz.config import (
    CONFIG_NAME,
    AgentConfig,
    GatesConfig,
    LimitsConfig,
    ProjectConfig,
    RepoConfig,
    WorkspaceConfig,
    gates_of,
    load_repo_config,
    render_repo_config,
    setup_of,
)
from blitz.detect import detect_gates
from blitz.domain import Gates
from blitz.envsetup import DEFAULT_INPUTS, SetupSpec
from blitz.errors import ConfigError, UserError

EXAMPLE = """\
[project]
name = "myrepo"        # default: repo dir name
base_branch = "main"   # default: the repo's current branch when registered
remote = "origin"      # "" = do not push
backend = "claude-code"
max_parallel = 4
[gates]
build = ""
test = "python -m pytest -q"
typecheck = ""
lint = ""
timeout = 600
[limits]
max_tasks = 200                 # plan size cap
max_recoveries_per_task = 2
max_recoveries_per_goal = 10
max_crash_retries = 3
max_conflict_reruns = 2
attempt_timeout = 1800
[breaker]
threshold = 5
cooldown = 60
[github]
api_url = "https://api.github.com"
"""


def _write(repo: Path, text: str | bytes) -> Path:
    path = repo / CONFIG_NAME
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _error(repo: Path, text: str | bytes) -> str:
    _write(repo, text)
    with pytest.raises(ConfigError) as caught:
        load_repo_config(repo)
    return str(caught.value)


def test_a_repository_without_blitz_toml_has_no_config(tmp_path: Path) -> None:
    assert load_repo_config(tmp_path) is None


def test_the_documented_example_loads(tmp_path: Path) -> None:
    _write(tmp_path, EXAMPLE)
    cfg = load_repo_config(tmp_path)
    assert cfg is not None
    assert cfg.project == ProjectConfig(
        name="myrepo", base_branch="main", remote="origin", backend="claude-code"
    )
    assert cfg.gates.test == "python -m pytest -q" and cfg.gates.timeout == 600.0
    assert cfg.limits == LimitsConfig()
    assert cfg.breaker.threshold == 5 and cfg.breaker.cooldown == 60.0
    assert cfg.github.api_url == "https://api.github.com"
    assert gates_of(cfg) == Gates(test="python -m pytest -q", timeout=600)


def test_everything_may_be_left_out(tmp_path: Path) -> None:
    repo = tmp_path / "my-service"
    repo.mkdir()
    _write(repo, "# nothing set yet\n[gates]\ntest = 'make test'\n")
    cfg = load_repo_config(repo)
    assert cfg is not None
    assert cfg.project.name == "my-service"  # the directory's name
    assert cfg.project.remote == "origin" and cfg.project.max_parallel == 4
    assert cfg.limits.max_tasks == 200 and cfg.limits.attempt_timeout == 1800
    assert gates_of(cfg) == Gates(test="make test")


# -- rendering ---------------------------------------------------------------------------------


def test_render_round_trips_with_comments_and_notes(tmp_path: Path) -> None:
    cfg = RepoConfig(
        project=ProjectConfig(name="app", base_branch="develop", remote="", max_parallel=8),
        gates=GatesConfig(test='pytest -k "not slow"', lint="ruff check .", timeout=90.5),
        limits=LimitsConfig(max_tasks=20, max_recoveries_per_task=0),
    )
    text = render_repo_config(cfg, notes=["Python project (pyproject.toml)", "two\nlines"])

    assert "# Detected:" in text and "#   Python project (pyproject.toml)" in text
    assert "#   lines" in text
    assert "[gates]" in text and "# Runs the tests." in text
    assert "GITHUB_TOKEN" in text  # says where the token comes from instead
    _write(tmp_path, text)
    assert load_repo_config(tmp_path) == cfg


def test_a_key_left_unset_renders_commented_out_and_a_set_one_round_trips(tmp_path: Path) -> None:
    # TOML has no null: an unset optional key is shown, commented, and loads back unset.
    unset = render_repo_config(RepoConfig())
    assert "\n# temperature =" in unset
    _write(tmp_path, unset)
    loaded = load_repo_config(tmp_path)
    assert loaded is not None and loaded.agent.temperature is None
    cfg = RepoConfig(project=ProjectConfig(name="app"), agent=AgentConfig(temperature=0.3))
    _write(tmp_path, render_repo_config(cfg))
    assert load_repo_config(tmp_path) == cfg


def test_detected_gates_render_into_a_loadable_file(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/app\n")
    gates, notes = detect_gates(tmp_path)
    cfg = RepoConfig(project=ProjectConfig(name="app"), gates=GatesConfig.from_gates(gates))
    _write(tmp_path, render_repo_config(cfg, notes))
    loaded = load_repo_config(tmp_path)
    assert loaded is not None and gates_of(loaded) == gates


@settings(
    suppress_health_check=[
        *settings.default.suppress_health_check,
        HealthCheck.function_scoped_fixture,
    ],
    max_examples=50,
)
@given(
    name=st.text(st.characters(codec="utf-8"), min_size=1),
    test=st.text(st.characters(codec="utf-8")),
    timeout=st.floats(min_value=0.001, max_value=1e9, allow_nan=False, allow_infinity=False),
)
def test_render_round_trips_any_text(tmp_path: Path, name: str, test: str, timeout: float) -> None:
    cfg = RepoConfig(
        project=ProjectConfig(name=name), gates=GatesConfig(test=test, timeout=timeout)
    )
    _write(tmp_path, render_repo_config(cfg, notes=[test]))
    assert load_repo_config(tmp_path) == cfg


# -- errors ------------------------------------------------------------------------------------


def test_corrupt_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    message = _error(tmp_path, '[project]\nname = "app"\nremote = origin\n')
    assert str(tmp_path / CONFIG_NAME) in message
    assert "invalid TOML" in message and "line 3" in message


def test_an_unknown_key_is_an_error_that_suggests_the_right_one(tmp_path: Path) -> None:
    message = _error(tmp_path, "[limits]\nmax_tasks = 10\nmax_recoveries_per_tsk = 1\n")
    assert message.startswith(f"{tmp_path / CONFIG_NAME}:3: [limits] max_recoveries_per_tsk:")
    assert "unknown key" in message and "did you mean 'max_recoveries_per_task'?" in message


def test_an_unknown_section_or_a_key_outside_its_section(tmp_path: Path) -> None:
    message = _error(tmp_path, "[projet]\nname = 'x'\n")
    assert ":1: [projet]: unknown section" in message and "did you mean 'project'?" in message

    message = _error(tmp_path, "# top\nbase_branch = 'main'\n")
    assert ":2: base_branch: unknown top-level key" in message and "[project]" in message


def test_a_wrong_type_names_the_field_and_the_value(tmp_path: Path) -> None:
    message = _error(tmp_path, '[project]\nname = "app"\n\n[gates]\ntimeout = "10"\n')
    assert f"{tmp_path / CONFIG_NAME}:5: [gates] timeout:" in message
    assert "valid number" in message and '(got "10")' in message

    message = _error(tmp_path, "project = 'app'\n")
    assert "[project]: should be a table" in message


@pytest.mark.parametrize(
    "text",
    [
        "[limits]\nmax_tasks = -1\n",
        "[limits]\nmax_crash_retries = -3\n",
        "[project]\nmax_parallel = 0\n",
        "[breaker]\ncooldown = -5.0\n",
        "[gates]\ntimeout = 0\n",
        "[gates]\ntimeout = inf\n",
        "[agent]\ntemperature = 2.5\n",
    ],
)
def test_out_of_range_numbers_are_errors(tmp_path: Path, text: str) -> None:
    message = _error(tmp_path, text)
    section, key = text.split("\n")[0].strip("[]"), text.split("\n")[1].split(" =")[0]
    assert f":2: [{section}] {key}:" in message


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    message = _error(tmp_path, "[project]\nmax_parallel = 'four'\nbakend = 'x'\n")
    lines = message.splitlines()
    assert len(lines) == 2
    assert any(":2: [project] max_parallel:" in line for line in lines)
    assert any(":3: [project] bakend: unknown key" in line for line in lines)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[github]\napi_url = "https://api.github.com"\ntoken = "ghp_abc"\n', ":3: [github] token"),
        ('[project]\ngithub_token = "ghp_abc"\n', ":2: [project] github_token"),
        ('token = "ghp_abc"\n', ":1: [token]"),
    ],
)
def test_a_token_is_refused_anywhere(tmp_path: Path, text: str, where: str) -> None:
    message = _error(tmp_path, text)
    assert where in message
    assert "GITHUB_TOKEN" in message and "environment" in message
    assert "ghp_abc" not in message  # the secret itself is never repeated


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    assert "not UTF-8" in _error(tmp_path, b"[project]\nname = '\xff'\n")
    (tmp_path / CONFIG_NAME).unlink()
    (tmp_path / CONFIG_NAME).mkdir()
    with pytest.raises(ConfigError, match="cannot be read"):
        load_repo_config(tmp_path)


def test_config_errors_are_user_errors(tmp_path: Path) -> None:
    _write(tmp_path, "[gates]\ntest = 1\n")
    with pytest.raises(UserError):
        load_repo_config(tmp_path)


def test_render_output_is_valid_toml_for_the_defaults() -> None:
    data = tomllib.loads(render_repo_config(RepoConfig()))
    assert set(data) == {
        "project",
        "gates",
        "limits",
        "breaker",
        "github",
        "models",
        "budget",
        "agent",
        "claude_code",
        "codex",
        "explore",
        "sandbox",
        "workspace",
        "notify",
        "executor",
    }
    assert data["limits"]["max_tasks"] == 200
    assert data["executor"] == {"labels": [], "sync": "bundle", "remote": "origin"}
    assert data["sandbox"] == {"mode": "required", "network": False, "readable": []}


# -- [workspace] -------------------------------------------------------------------------------


def test_the_workspace_section_sets_the_setup(tmp_path: Path) -> None:
    _write(
        tmp_path,
        '[workspace]\nkeep = ["node_modules", "web/node_modules"]\nsetup = "npm ci"\n'
        'setup_inputs = ["package-lock.json", "web/*.lock"]\nsetup_timeout = 300\n',
    )
    cfg = load_repo_config(tmp_path)
    assert cfg is not None
    assert setup_of(cfg) == SetupSpec(
        command="npm ci",
        inputs=("package-lock.json", "web/*.lock"),
        keep=("node_modules", "web/node_modules"),
        timeout=300.0,
    )
    assert setup_of(RepoConfig()) == SetupSpec(inputs=DEFAULT_INPUTS)

    cfg = RepoConfig(
        project=ProjectConfig(name="app"),
        workspace=WorkspaceConfig(keep=[".venv"], setup="uv sync --frozen"),
    )
    _write(tmp_path, render_repo_config(cfg))
    assert load_repo_config(tmp_path) == cfg


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('keep = ["../elsewhere"]', "inside the repository"),
        ('keep = ["/var/cache"]', "inside the repository"),
        ('keep = [""]', "inside the repository"),
        ('keep = [".git/objects"]', "not be in .git"),
        ('setup_inputs = ["../secrets.lock"]', "inside the repository"),
        ("setup_timeout = 0", "greater than 0"),
        ('setup = ["npm", "ci"]', "valid string"),
    ],
)
def test_workspace_paths_stay_inside_the_repository(
    tmp_path: Path, text: str, problem: str
) -> None:
    message = _error(tmp_path, f"[workspace]\n{text}\n")
    assert ":2: [workspace]" in message and problem in message


def test_a_bad_list_item_is_named_by_its_place(tmp_path: Path) -> None:
    message = _error(tmp_path, '[workspace]\nkeep = [".venv", "../x"]\n')
    assert ":2: [workspace] keep (item 2): value error, must be a path inside" in message
