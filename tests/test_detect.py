from __future__ import annotations

import json
from pathlib import Path

import pytest

from blitz.detect import Setup, detect_gates, detect_setup
from blitz.domain import Gates
from blitz.envsetup import DEFAULT_INPUTS


def _repo(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _package(scripts: dict[str, str] | None = None, **fields: object) -> str:
    return json.dumps({"name": "app", "version": "1.0.0", "scripts": scripts or {}, **fields})


# -- Python ------------------------------------------------------------------------------------

PYPROJECT = """\
[project]
name = "app"

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.mypy]
strict = true

[tool.ruff]
line-length = 100
"""


def test_python_with_pytest_mypy_and_ruff_configured(tmp_path: Path) -> None:
    gates, notes = detect_gates(_repo(tmp_path, {"pyproject.toml": PYPROJECT}))

    assert gates == Gates(test="python -m pytest -q", typecheck="mypy .", lint="ruff check .")
    text = "\n".join(notes)
    assert "Python project (pyproject.toml)" in text
    assert "[tool.pytest] in pyproject.toml" in text
    assert "[tool.mypy]" in text and "[tool.ruff]" in text


def test_mypy_without_a_target_when_its_configuration_names_files(tmp_path: Path) -> None:
    pyproject = '[project]\nname = "app"\n[tool.mypy]\npackages = ["app"]\n'
    gates, notes = detect_gates(_repo(tmp_path, {"pyproject.toml": pyproject}))
    assert gates.typecheck == "mypy"
    assert any("names its packages" in note for note in notes)


def test_setup_py_with_a_tests_directory(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"setup.py": "from setuptools import setup\nsetup()\n"})
    (repo / "tests").mkdir()
    gates, notes = detect_gates(repo)
    assert gates == Gates(test="python -m pytest -q")
    assert any("tests/ directory" in note for note in notes)


def test_a_nested_test_file_is_found_but_not_in_virtual_environments(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        {
            "setup.cfg": "[metadata]\nname = app\n",
            ".venv/lib/site-packages/x/test_x.py": "",
            "node_modules/y/test_y.py": "",
        },
    )
    gates, notes = detect_gates(repo)
    assert gates.test == ""
    assert any(note.startswith("test: none") for note in notes)

    (repo / "src" / "app").mkdir(parents=True)
    (repo / "src" / "app" / "test_core.py").write_text("def test_x(): pass\n")
    gates, notes = detect_gates(repo)
    assert gates.test == "python -m pytest -q"
    assert any("src/app/test_core.py" in note for note in notes)


def test_setup_cfg_and_mypy_ini_configuration(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        {
            "setup.cfg": "[metadata]\nname = app\n\n[tool:pytest]\naddopts = -q\n",
            "mypy.ini": "[mypy]\nfiles = app\n",
            "ruff.toml": "line-length = 100\n",
        },
    )
    gates, _ = detect_gates(repo)
    assert gates == Gates(test="python -m pytest -q", typecheck="mypy", lint="ruff check .")


def test_pyright_configuration(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"pyproject.toml": "[tool.pyright]\nstrict = ['app']\n"})
    assert detect_gates(repo)[0].typecheck == "pyright"
    (repo / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    (repo / "pyrightconfig.json").write_text("{}")
    assert detect_gates(repo)[0].typecheck == "pyright"


def test_uv_projects_run_their_tools_through_uv(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"pyproject.toml": PYPROJECT, "uv.lock": "version = 1\n"})
    gates, notes = detect_gates(repo)
    assert gates == Gates(
        test="uv run pytest -q", typecheck="uv run mypy .", lint="uv run ruff check ."
    )
    assert any("uv.lock" in note for note in notes)


def test_a_corrupt_pyproject_is_noted_not_fatal(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"pyproject.toml": "[tool.ruff\n", "tests/test_x.py": ""})
    gates, notes = detect_gates(repo)
    assert gates == Gates(test="python -m pytest -q")
    assert any("pyproject.toml could not be read" in note for note in notes)


# -- Node --------------------------------------------------------------------------------------


def test_node_scripts_run_through_npm(tmp_path: Path) -> None:
    scripts = {"build": "tsc", "test": "jest", "lint": "eslint .", "typecheck": "tsc --noEmit"}
    gates, notes = detect_gates(_repo(tmp_path, {"package.json": _package(scripts)}))
    assert gates == Gates(
        build="npm run build", test="npm test", lint="npm run lint", typecheck="npm run typecheck"
    )
    assert any("Node project" in note and "npm" in note for note in notes)


@pytest.mark.parametrize(
    ("lock", "manager"), [("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"), ("", "npm")]
)
def test_the_lock_file_chooses_the_package_manager(tmp_path: Path, lock: str, manager: str) -> None:
    files = {"package.json": _package({"build": "vite build", "test": "vitest run"})}
    if lock:
        files[lock] = ""
    gates, _ = detect_gates(_repo(tmp_path, files))
    assert gates == Gates(build=f"{manager} run build", test=f"{manager} test")


def test_npms_placeholder_test_script_is_ignored(tmp_path: Path) -> None:
    placeholder = 'echo "Error: no test specified" && exit 1'
    gates, notes = detect_gates(_repo(tmp_path, {"package.json": _package({"test": placeholder})}))
    assert gates == Gates()
    assert any("placeholder" in note for note in notes)


def test_typescript_without_a_typecheck_script_runs_tsc(tmp_path: Path) -> None:
    package = _package({"build": "tsc"}, devDependencies={"typescript": "^5.4.0"})
    repo = _repo(tmp_path, {"package.json": package, "tsconfig.json": "{}"})
    assert detect_gates(repo)[0].typecheck == "npx --no tsc --noEmit"
    (repo / "pnpm-lock.yaml").write_text("")
    assert detect_gates(repo)[0].typecheck == "pnpm exec tsc --noEmit"

    (repo / "package.json").write_text(_package({"build": "tsc"}))  # typescript not installed
    assert detect_gates(repo)[0].typecheck == ""


def test_a_corrupt_package_json_is_noted_not_fatal(tmp_path: Path) -> None:
    gates, notes = detect_gates(_repo(tmp_path, {"package.json": "{not json"}))
    assert gates == Gates()
    assert any("package.json could not be read" in note for note in notes)


# -- Rust, Go, mixed and unknown ---------------------------------------------------------------


def test_rust(tmp_path: Path) -> None:
    gates, notes = detect_gates(_repo(tmp_path, {"Cargo.toml": '[package]\nname = "demo"\n'}))
    assert gates == Gates(
        build="cargo build", test="cargo test", lint="cargo clippy -- -D warnings"
    )
    assert any("Rust" in note for note in notes)


def test_go(tmp_path: Path) -> None:
    gates, notes = detect_gates(_repo(tmp_path, {"go.mod": "module example.com/app\n\ngo 1.22\n"}))
    assert gates == Gates(build="go build ./...", test="go test ./...", lint="go vet ./...")
    assert any("Go" in note for note in notes)


def test_a_mixed_repository_joins_each_gate(tmp_path: Path) -> None:
    files = {
        "pyproject.toml": PYPROJECT,
        "package.json": _package({"build": "vite build", "test": "vitest run"}),
        "go.mod": "module example.com/app\n",
    }
    gates, _ = detect_gates(_repo(tmp_path, files))
    assert gates.build == "npm run build && go build ./..."
    assert gates.test == "python -m pytest -q && npm test && go test ./..."
    assert gates.typecheck == "mypy ."
    assert gates.lint == "ruff check . && go vet ./..."


def test_an_unknown_project_has_no_gates(tmp_path: Path) -> None:
    gates, notes = detect_gates(_repo(tmp_path, {"README.md": "# hello\n", "main.c": ""}))
    assert gates == Gates()
    assert gates.configured() == {}
    assert len(notes) == 1 and "no Python, Node, Rust or Go project" in notes[0]


# -- the environment set-up --------------------------------------------------------------------

SAMPLES = [
    pytest.param(
        {"package.json": _package({"test": "jest"}), "package-lock.json": "{}"},
        "npm ci",
        ("node_modules",),
        (),
        id="npm",
    ),
    pytest.param(
        {"package.json": _package(), "pnpm-lock.yaml": "lockfileVersion: 9\n"},
        "pnpm install --frozen-lockfile",
        ("node_modules",),
        (),
        id="pnpm",
    ),
    pytest.param(
        {"package.json": _package(), "yarn.lock": "# yarn lockfile v1\n"},
        "yarn install --frozen-lockfile",
        ("node_modules",),
        (),
        id="yarn-1",
    ),
    pytest.param(
        {"package.json": _package(), "yarn.lock": "__metadata:\n", ".yarnrc.yml": "\n"},
        "yarn install --immutable",
        ("node_modules",),
        (),
        id="yarn-berry",
    ),
    pytest.param(
        {"package.json": _package()},
        "npm install",
        ("node_modules",),
        ("package.json",),
        id="npm-without-a-lockfile",
    ),
    pytest.param(
        {
            "pyproject.toml": '[project]\nname = "app"\n'
            '[project.optional-dependencies]\ndev = ["pytest"]\n',
            "uv.lock": "version = 1\n",
        },
        "uv sync --frozen --extra dev",
        (".venv",),
        (),
        id="uv",
    ),
    pytest.param(
        {"pyproject.toml": '[tool.poetry]\nname = "app"\n', "poetry.lock": "# poetry\n"},
        "poetry install --no-interaction",
        (".venv",),
        (),
        id="poetry",
    ),
    pytest.param(
        {"requirements.txt": "requests\n", "requirements-dev.txt": "pytest\n"},
        "python3 -m venv .venv && .venv/bin/python -m pip install "
        "-r requirements-dev.txt -r requirements.txt",
        (".venv",),
        (),
        id="pip-requirements",
    ),
    pytest.param(
        {"pyproject.toml": '[project]\nname = "app"\n[project.optional-dependencies]\ntest = []\n'},
        "python3 -m venv .venv && .venv/bin/python -m pip install -e '.[test]'",
        (".venv",),
        ("pyproject.toml",),
        id="pip-editable-without-a-lockfile",
    ),
    pytest.param(
        {"Cargo.toml": '[package]\nname = "app"\n', "Cargo.lock": "version = 3\n"},
        "cargo fetch --locked",
        ("target",),
        (),
        id="cargo",
    ),
    pytest.param(
        {"go.mod": "module example.com/app\n", "go.sum": ""},
        "go mod download",
        (),
        ("go.mod",),
        id="go",
    ),
]


@pytest.mark.parametrize(("files", "command", "keep", "inputs"), SAMPLES)
def test_the_setup_follows_the_lockfile(
    tmp_path: Path,
    files: dict[str, str],
    command: str,
    keep: tuple[str, ...],
    inputs: tuple[str, ...],
) -> None:
    setup, notes = detect_setup(_repo(tmp_path, files))
    assert setup.command == command
    assert setup.keep == keep
    assert setup.inputs == (*DEFAULT_INPUTS, *inputs)
    assert any(note.startswith("set-up: ") for note in notes)


def test_a_repository_of_several_ecosystems_gets_each_setup(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        {
            "pyproject.toml": '[project]\nname = "app"\n',
            "uv.lock": "version = 1\n",
            "package.json": _package(),
            "package-lock.json": "{}",
            ".gitignore": "/.venv/\nnode_modules\n",
        },
    )
    setup, notes = detect_setup(repo)
    assert setup.command == "uv sync --frozen && npm ci"
    assert setup.keep == (".venv", "node_modules")
    assert not any("gitignore" in note for note in notes)


def test_a_kept_directory_that_git_does_not_ignore_is_pointed_out(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"package.json": _package(), ".gitignore": "dist/\n"})
    _, notes = detect_setup(repo)
    assert any("node_modules is not in .gitignore" in note for note in notes)


def test_no_manifest_means_no_setup(tmp_path: Path) -> None:
    setup, notes = detect_setup(_repo(tmp_path, {"README.md": "# docs only\n"}))
    assert setup == Setup()
    assert notes == ["set-up: none (no lockfile or package manifest found)"]
