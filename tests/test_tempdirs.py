"""Temporary directories a killed process leaves behind are swept; shared files are one per
content and never taken from another user's (or a too-open) directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from blitz import tempdirs
from blitz.sandbox import git_config_copy


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own temporary directory, as tempfile's (and a child's TMPDIR)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return tmp_path


def _killed_holding(prefix: str) -> Path:
    """The private directory of a process SIGKILLed while it held it."""
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom blitz import tempdirs\n"
            f"print(tempdirs.private({prefix!r}), flush=True)\ntime.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        made = Path(child.stdout.readline().strip())
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    return made


def test_a_killed_process_leaves_a_directory_the_next_one_removes(tmp: Path) -> None:
    left = _killed_holding("blitz-proxy-")
    assert left.is_dir() and left.parent == tmp
    (left / "proxy.sock").write_text("")

    mine = tempdirs.private("blitz-proxy-")

    assert not left.exists()
    namespace = os.stat("/proc/self/ns/pid").st_ino
    assert mine.is_dir() and mine.name.startswith(f"blitz-proxy-{namespace}.{os.getpid()}-")
    assert (mine.stat().st_mode & 0o777) == 0o700


def test_the_directories_of_running_processes_and_other_prefixes_stay(tmp: Path) -> None:
    mine = tempdirs.private("blitz-proxy-")
    other = tmp / "blitz-other-1-x"
    other.mkdir()
    unnumbered = tmp / "blitz-proxy-abc"
    unnumbered.mkdir()
    elsewhere = tmp / "blitz-proxy-1.999999999-x"  # another pid namespace's: not ours to judge
    elsewhere.mkdir()

    assert tempdirs.sweep("blitz-proxy-") == []
    with tempdirs.temporary("blitz-proxy-") as inner:
        assert inner.is_dir()
    assert not inner.exists()
    assert mine.is_dir() and other.is_dir() and unnumbered.is_dir() and elsewhere.is_dir()


def test_a_shared_file_is_one_per_content_across_processes(tmp: Path) -> None:
    here = tempdirs.shared_file("blitz-gitconfig-", "config", b"[core]\n\tbare = false\n")
    there = subprocess.run(
        [
            sys.executable,
            "-c",
            "from blitz import tempdirs\n"
            "print(tempdirs.shared_file('blitz-gitconfig-', 'config', "
            "b'[core]\\n\\tbare = false\\n'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    different = tempdirs.shared_file("blitz-gitconfig-", "config", b"[core]\n")

    assert Path(there) == here
    assert here.read_bytes() == b"[core]\n\tbare = false\n"
    assert different != here and different.read_bytes() == b"[core]\n"
    assert (here.parent.stat().st_mode & 0o777) == 0o700
    made = sorted(p.name for p in tmp.iterdir())
    assert made == sorted([here.parent.name, different.parent.name])


def test_a_changed_shared_file_is_written_again(tmp: Path) -> None:
    path = tempdirs.shared_file("blitz-s-", "config", b"kept\n")
    path.write_bytes(b"tampered\n")

    again = tempdirs.shared_file("blitz-s-", "config", b"kept\n")

    assert again == path and path.read_bytes() == b"kept\n"
    assert [p.name for p in path.parent.iterdir()] == ["config"]  # no staged file left


def test_a_directory_open_to_others_or_a_link_is_never_used(tmp: Path) -> None:
    content = b"[core]\n"
    planted = tempdirs.shared_file("blitz-s-", "config", content).parent
    planted.chmod(0o777)  # as if someone else could write in it
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir(mode=0o700)

    first = tempdirs.shared_file("blitz-s-", "config", content)
    planted.chmod(0o700)
    planted.rename(tmp / "moved")
    planted.symlink_to(elsewhere)  # the name now a link to a directory of ours
    second = tempdirs.shared_file("blitz-s-", "config", content)

    for used in (first, second):
        assert used.parent != planted and used.read_bytes() == content
        assert f".{os.getpid()}-" in used.parent.name  # a private stand-in
    assert list(elsewhere.iterdir()) == []


def test_git_config_copies_are_shared_not_per_process(tmp: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    config = repo / "config"
    config.write_text(
        '[core]\n\tbare = false\n\tsshCommand = evil\n[remote "origin"]\n\turl = https://t@x\n'
    )

    copy = git_config_copy(config)

    assert copy.read_text() == "[core]\n\tbare = false\n"
    assert copy.parent.name.startswith(f"blitz-gitconfig-{os.getuid()}-")
    assert [p for p in tmp.iterdir() if p.name.startswith("blitz-gitconfig-")] == [copy.parent]
