"""The Claude Code backend's worktree guard: the tool calls it refuses (a path outside the
worktree, a command leaving it or committing for blitz) and the ones it lets through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from blitz.backends.claude_code import WorktreeGuard


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("Write", {"file_path": "/etc/passwd", "content": ""}),
        ("Read", {"file_path": "../secret.txt"}),
        ("Edit", {"file_path": "~/.bashrc", "old_string": "a", "new_string": "b"}),
        ("Grep", {"pattern": "x", "path": "/"}),
        ("Glob", {"pattern": "*", "path": ".."}),
        ("NotebookEdit", {"notebook_path": "/tmp/n.ipynb", "new_source": ""}),
        ("Write", {"file_path": "link/escape.txt", "content": ""}),  # a symlink out
        ("Bash", {"command": "cd /tmp"}),
        ("Bash", {"command": "cd"}),
        ("Bash", {"command": "ls; cd .. && make"}),
        ("Bash", {"command": "pushd $HOME/src"}),
        ("Bash", {"command": "echo hi > /tmp/x"}),
        ("Bash", {"command": "echo hi >>../x"}),
        ("Bash", {"command": "make 2>&1 | tee /var/log/out"}),
        ("Bash", {"command": "rm -rf ~/project"}),
        ("Bash", {"command": "cp build/app /usr/local/bin/"}),
        ("Bash", {"command": "sudo mv a.txt /opt/a.txt"}),
        ("Bash", {"command": "dd if=/dev/zero of=/tmp/disk bs=1"}),
        ("Bash", {"command": "git commit -m done"}),
        ("Bash", {"command": "git -C /elsewhere status"}),
        ("Bash", {"command": "pytest -q\ngit push origin HEAD"}),
        ("Bash", {"command": "FOO=1 git reset --hard HEAD~1"}),
    ],
)
def test_the_guard_refuses(tmp_path: Path, tool: str, arguments: dict[str, Any]) -> None:
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / "link").symlink_to(tmp_path)
    guard = WorktreeGuard(tmp_path / "wt")

    assert guard.refusal(tool, arguments)


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("Write", {"file_path": "src/new.py", "content": ""}),
        ("Read", {"file_path": "WT/README.md"}),
        ("Edit", {"file_path": "a/../b.py", "old_string": "a", "new_string": "b"}),
        ("Glob", {"pattern": "**/*.py"}),
        ("Grep", {"pattern": "TODO", "path": "."}),
        ("Bash", {"command": "pytest -q 2>&1 | tail -n 20"}),
        ("Bash", {"command": "cd src && python -m build > /dev/null"}),
        ("Bash", {"command": "cat /usr/share/dict/words | head"}),
        ("Bash", {"command": "cp /usr/share/licenses/MIT LICENSE"}),
        ("Bash", {"command": "echo 'a > /tmp/b' > notes.txt"}),
        ("Bash", {"command": "rm -rf build dist"}),
        ("Bash", {"command": "git status && git diff --stat"}),
        ("Bash", {"command": "python - <<'EOF'\nprint(1)\nEOF"}),
        ("Bash", {"command": "echo $TMPDIR/x > out.txt"}),
        ("Bash", {"command": "echo 'unbalanced"}),
    ],
)
def test_the_guard_allows(tmp_path: Path, tool: str, arguments: dict[str, Any]) -> None:
    worktree = tmp_path / "wt"
    worktree.mkdir()
    guard = WorktreeGuard(worktree)
    if arguments.get("file_path", "").startswith("WT/"):
        arguments = {**arguments, "file_path": str(worktree / arguments["file_path"][3:])}

    assert guard.refusal(tool, arguments) == ""
