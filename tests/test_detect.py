from __future__ import annotations

import json
from pathlib import Path

import pytest

from blitz.detect import detect_gates
from blitz.domain import Gates


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
