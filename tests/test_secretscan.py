"""The secret scan against real worktrees: a known secret on an added line fails, shown redacted;
one already in the base, or shorter than 8 characters, does not."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from engine_helpers import git

from blitz import secretscan
from blitz.redact import REDACTED, redact, register_secret


def fresh() -> str:
    """A secret no other test registered (registration is for the whole process)."""
    return "s3cr3t-" + secrets.token_hex(12)


@pytest.fixture
def base(git_repo: Path) -> str:
    return git(git_repo, "rev-parse", "HEAD")


async def test_a_registered_secret_added_to_a_file_fails_the_scan(
    git_repo: Path, base: str
) -> None:
    secret = fresh()
    register_secret(secret)
    (git_repo / "README.md").write_text(f"# demo\nkey = {secret}\n")
    error = await secretscan.check(git_repo, base)
    assert "README.md" in error
    assert f"key = {REDACTED}" in error
    assert secret not in error


async def test_untracked_staged_and_binary_files_are_scanned(git_repo: Path, base: str) -> None:
    secret = fresh()
    register_secret(secret)
    (git_repo / "new.txt").write_text(f"token: {secret}\n")  # untracked
    (git_repo / "staged.py").write_text(f"KEY = '{secret}'\n")
    git(git_repo, "add", "staged.py")
    (git_repo / "blob.bin").write_bytes(b"\x00\x01" + secret.encode() + b"\xff\x00")
    error = await secretscan.check(git_repo, base)
    assert "blob.bin, new.txt, staged.py" in error
    assert secret not in error


async def test_a_secret_already_in_the_base_is_not_the_agents(git_repo: Path) -> None:
    secret = fresh()
    register_secret(secret)
    (git_repo / "old.txt").write_text(f"{secret}\n")
    git(git_repo, "add", "old.txt")
    git(git_repo, "commit", "-q", "-m", "a secret committed by the user")
    base = git(git_repo, "rev-parse", "HEAD")
    (git_repo / "old.txt").write_text(f"{secret}\nmore\n")  # an edit beside it
    (git_repo / "gone.txt").write_text("x\n")
    assert await secretscan.check(git_repo, base) == ""
    (git_repo / "old.txt").unlink()  # removing it is not adding it
    assert await secretscan.check(git_repo, base) == ""


async def test_secret_named_environment_variables_are_secrets(
    git_repo: Path, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = fresh()
    monkeypatch.setenv("ACME_SERVICE_TOKEN", value)
    monkeypatch.setenv("ACME_SHORT_PASSWORD", "short")  # under 8 characters: ignored
    monkeypatch.setenv("ACME_PLAIN_SETTING", "not-a-secret-value")
    assert value in secretscan.known_secrets()
    assert "short" not in secretscan.known_secrets()
    (git_repo / "config.txt").write_text("short\nnot-a-secret-value\n")
    assert await secretscan.check(git_repo, base) == ""
    (git_repo / "config.txt").write_text(f"value={value}\n")
    error = await secretscan.check(git_repo, base)
    assert "config.txt" in error and value not in error
    # Found once, it is redacted wherever blitz stores text from now on.
    assert redact(f"echo {value}") == f"echo {REDACTED}"


def test_scan_reads_only_added_lines_and_names_each_file() -> None:
    secret = fresh()
    patch = (
        "diff --git a/a.txt b/a.txt\n"
        "--- a/a.txt\n"
        "+++ b/a.txt\n"
        "@@ -1 +1 @@\n"
        f"-{secret}\n"
        "+clean\n"
        "diff --git a/b c.txt b/b c.txt\n"
        "--- /dev/null\n"
        "+++ b/b c.txt\n"
        "@@ -0,0 +1,2 @@\n"
        f"+x {secret} y {secret}\n"
        f"+{secret}"
    )
    leaks = secretscan.scan(patch, [secret, "unrelated-value"])
    assert leaks == [secretscan.Leak(path="b c.txt", line=f"x {REDACTED} y {REDACTED}")]


def test_a_large_patch_is_scanned_in_one_quick_pass() -> None:
    secret = fresh()
    known = [fresh() for _ in range(20)] + [secret]
    line = "+" + "lorem ipsum dolor sit amet " * 4 + "\n"
    body = line * (8_000_000 // len(line))
    patch = f"diff --git a/big b/big\n--- /dev/null\n+++ b/big\n@@ -0,0 +1 @@\n{body}+{secret}\n"
    started = time.perf_counter()
    leaks = secretscan.scan(patch, known)
    elapsed = time.perf_counter() - started
    assert [leak.path for leak in leaks] == ["big"]
    assert elapsed < 2.0, f"scanning 8 MB took {elapsed:.2f}s"
