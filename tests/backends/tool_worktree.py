"""The worktree the embedded agent's file tools are tested on: some files, a ``.git``
directory, and symbolic links leading out of it to a directory the agent must never touch."""

from __future__ import annotations

from pathlib import Path

SECRET = "SECRET-OUTSIDE-CONTENT"
GIT_SECRET = "SECRET-GIT-CONTENT"


def make_outside(tmp_path: Path) -> Path:
    """A directory next to the worktree holding a file the agent must never see or change."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_text(SECRET + "\n")
    return directory


def make_worktree(tmp_path: Path, outside: Path) -> Path:
    """A worktree with some files, a .git directory and symbolic links leading out of it."""
    root = tmp_path / "wt"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def main():\n    return 'hello'\n")
    (root / "src" / "pkg" / "util.py").write_text("import os\n\nVALUE = 42\n")
    (root / "README.md").write_text("# demo\nhello world\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text(f"[core]\n\tsecret = {GIT_SECRET}\n")
    (root / "out").symlink_to(outside, target_is_directory=True)  # a directory outside
    (root / "leak.txt").symlink_to(outside / "secret.txt")  # a file outside
    (root / "dangling.txt").symlink_to(outside / "new.txt")  # a file outside, not there yet
    (root / "shortcut").symlink_to("src/pkg", target_is_directory=True)  # stays inside
    return root
