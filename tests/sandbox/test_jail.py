"""The bubblewrap jail, tried as an attacker would: real bwrap, real git, real processes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shlex
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from attacks import NEEDS_BUBBLEWRAP
from engine_helpers import wait_until
from timeouts import long_enough

from blitz import process, sandbox
from blitz.sandbox import Policy

pytestmark = NEEDS_BUBBLEWRAP


NAP = 300 + os.getpid() % 9000
"""Sleeps of this test process are ``sleep {NAP}0`` to ``{NAP}5``: its own, whatever else runs."""


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def worktree(git_repo: Path, tmp_path: Path) -> Path:
    """A linked worktree of ``git_repo`` (as blitz makes for every attempt), in a directory of
    blitz's own (``tmp_path / "blitz"``)."""
    path = tmp_path / "blitz" / "worktrees" / "w1"
    git("worktree", "add", "-q", "--detach", str(path), "main", cwd=git_repo)
    return path


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    return Policy(hidden=(tmp_path / "blitz",))


def run(policy: Policy, worktree: Path, command: str, **kw: object) -> tuple[int | None, str]:
    jail = policy.jail(worktree, **kw)  # type: ignore[arg-type]
    done = asyncio.run(jail.run(command, timeout=30))
    return done.exit_code, done.output


def test_the_worktree_is_writable_and_nothing_outside_it(
    policy: Policy, worktree: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("before\n")
    _, out = run(
        policy,
        worktree,
        "echo work > mine.txt && echo x > ../escape.txt; echo x > "
        + str(outside)
        + "; ln -s "
        + str(outside)
        + " link && echo y > link; ln "
        + str(outside)
        + " hard; python3 -c \"open('../py.txt','w')\"; echo done",
    )
    assert "done" in out
    assert (worktree / "mine.txt").read_text() == "work\n"
    assert outside.read_text() == "before\n"
    assert not (worktree.parent / "escape.txt").exists()
    assert not (worktree.parent / "py.txt").exists()
    assert not (worktree / "hard").exists()  # the file to link to is not visible at all


def test_git_history_is_readable_and_no_ref_or_object_can_be_written(
    policy: Policy, worktree: Path, git_repo: Path
) -> None:
    main = git("rev-parse", "main", cwd=git_repo)
    objects = sorted(p.name for p in (git_repo / ".git" / "objects").iterdir())
    _, out = run(
        policy,
        worktree,
        "git log --oneline | wc -l; echo new > f.txt; git add f.txt && git diff --cached --stat;"
        " git update-ref refs/heads/main HEAD~0 2>&1; git -c k=v commit -qm x 2>&1;"
        " git tag t1 2>&1; git config alias.p push 2>&1; echo end",
    )
    assert "f.txt | 1 +" in out  # git add and git diff work
    assert "Read-only file system" in out
    assert git("rev-parse", "main", cwd=git_repo) == main
    assert git("tag", cwd=git_repo) == ""
    assert "alias" not in (git_repo / ".git" / "config").read_text()
    assert sorted(p.name for p in (git_repo / ".git" / "objects").iterdir()) == objects
    # The index blitz finds names only objects the repository has: staging is redone by blitz.
    assert git("status", "--porcelain", cwd=worktree) == "?? f.txt"
    assert git("fsck", "--no-progress", cwd=git_repo) == ""


def test_the_worktree_cannot_point_blitz_at_another_repository(
    policy: Policy, worktree: Path
) -> None:
    dot_git = (worktree / ".git").read_text()
    entry = Path(dot_git.removeprefix("gitdir:").strip())
    _, out = run(
        policy,
        worktree,
        "echo 'gitdir: /tmp/evil' > .git; echo ../evil > "
        + str(entry / "commondir")
        + "; printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' > "
        + str(entry / "config.worktree")
        + "; echo end",
    )
    assert "end" in out
    assert (worktree / ".git").read_text() == dot_git
    assert (entry / "commondir").read_text().strip() == "../.."
    assert not (entry / "config.worktree").exists()


def test_home_blitz_files_and_other_processes_are_invisible(
    policy: Policy, worktree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "blitz" / "blitz.db").write_text("the store")
    _, out = run(
        policy,
        worktree,
        f"cat {home}/.ssh/id_ed25519; cat {tmp_path}/blitz/blitz.db; ls {tmp_path}/blitz;"
        f" cat /proc/{os.getpid()}/environ; ls -d /proc/[0-9]* | wc -l; echo HOME=$HOME",
    )
    assert "PRIVATE KEY" not in out
    assert "the store" not in out
    assert "\nblitz.db\n" not in f"\n{out}"  # `ls` of blitz's directory does not list it
    assert "HOME=/tmp/home" in out
    # Only the jail's own few processes are visible (bwrap's init, the shell, ls, wc).
    count = [line for line in out.splitlines() if line.strip().isdigit()]
    assert count and int(count[0]) <= 5


def test_no_secret_of_blitz_reaches_the_jail(
    policy: Policy, worktree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret-1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-very-secret-5678")
    monkeypatch.setenv("SOMETHING_ELSE", "not-allowlisted")
    _, out = run(policy, worktree, "env; cat /proc/1/environ; cat /proc/*/cmdline")
    assert "very-secret" not in out
    assert "not-allowlisted" not in out
    assert "PATH=" in out


@pytest.fixture
def listener() -> Iterator[int]:
    """An HTTP server on a loopback port of the host."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"reached the host")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_no_network_by_default_and_the_host_network_when_allowed(
    policy: Policy, worktree: Path, listener: int
) -> None:
    fetch = (
        'python3 -c "import urllib.request as u; print(u.urlopen('
        f"'http://127.0.0.1:{listener}/', timeout=5).read().decode())\" 2>&1 | tail -1"
    )
    _, out = run(policy, worktree, fetch)
    assert "reached the host" not in out
    connect = "import socket; socket.create_connection(('93.184.216.34', 80), timeout=3)"
    _, out = run(policy, worktree, f'python3 -c "{connect}" 2>&1 | tail -1')
    assert "unreachable" in out.lower() or "error" in out.lower()
    allowed = Policy(hidden=policy.hidden, network=True)
    _, out = run(allowed, worktree, fetch)
    assert "reached the host" in out


def test_the_proxy_network_reaches_the_proxy_and_nothing_else(
    worktree: Path, tmp_path: Path, listener: int
) -> None:
    sock_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"blitz-t-{os.getpid()}"
    sock_dir.mkdir(exist_ok=True)
    path = sock_dir / "proxy.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(4)

    def answer() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 14\r\n\r\nfrom the proxy")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    policy = Policy(hidden=(tmp_path / "blitz",), proxy_socket=path)
    script = (
        "import urllib.request as u\n"
        f"for port in ({sandbox.PROXY_PORT}, {listener}):\n"
        "    try:\n"
        "        print(port, u.urlopen(f'http://127.0.0.1:{port}/', timeout=5).read())\n"
        "    except Exception as exc:\n"
        "        print(port, 'refused', type(exc).__name__)\n"
    )
    (worktree / "probe.py").write_text(script)
    try:
        _, out = run(policy, worktree, "python3 probe.py", network="proxy")
    finally:
        server.close()
        path.unlink(missing_ok=True)
        sock_dir.rmdir()
    assert f"{sandbox.PROXY_PORT} b'from the proxy'" in out
    assert f"{listener} refused" in out


def test_nothing_outlives_the_jail_at_its_end_its_timeout_or_a_cancel(
    policy: Policy, worktree: Path
) -> None:
    async def scenario() -> None:
        jail = policy.jail(worktree)
        done = await jail.run(
            f"(setsid sleep {NAP}0 &); nohup sleep {NAP}1 & echo started", timeout=30
        )
        assert "started" in done.output
        assert _sleepers() == []  # the command ended: its namespace went with it

        async def hung(timeout: float) -> tuple[process.Completed, bool]:
            """A hung command run to its timeout, and whether both its sleeps were seen."""
            running = asyncio.ensure_future(
                jail.run(f"setsid sleep {NAP}2 & sleep {NAP}3", timeout=timeout)
            )
            seen = False
            while not running.done():
                seen = seen or len(_sleepers()) == 2
                await asyncio.sleep(0.05)
            return running.result(), seen

        # The timeout must fire after the sleeps started: on a loaded machine, a longer one.
        (done, _), _ = await long_enough(hung, lambda ran: ran[1], first=1.0)
        assert done.timed_out
        await wait_until(lambda: _sleepers() == [])
        running = asyncio.ensure_future(jail.run(f"setsid sleep {NAP}2 & sleep {NAP}3", timeout=60))
        await wait_until(lambda: len(_sleepers()) == 2)
        running.cancel()  # a cancelled attempt
        with contextlib.suppress(asyncio.CancelledError):
            await running

    asyncio.run(scenario())
    assert _sleepers() == []


def test_a_jail_dies_with_the_blitz_process_that_started_it(
    policy: Policy, worktree: Path, tmp_path: Path
) -> None:
    script = tmp_path / "starter.py"
    script.write_text(
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from blitz.sandbox import Policy\n"
        f"jail = Policy(hidden=(Path({str(tmp_path / 'blitz')!r}),)).jail(Path(sys.argv[1]))\n"
        f"asyncio.run(jail.run('setsid sleep {NAP}4 & sleep {NAP}5', timeout=600))\n"
    )
    starter = subprocess.Popen([os.sys.executable, str(script), str(worktree)])
    try:
        asyncio.run(wait_until(lambda: len(_sleepers()) == 2))
        starter.kill()  # kill -9: blitz gets no chance to clean up
        starter.wait()
        asyncio.run(wait_until(lambda: _sleepers() == []))
    finally:
        starter.kill()
        starter.wait()


def _sleepers() -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", f"^sleep {NAP}[0-5]$"], capture_output=True, text=True, check=False
    ).stdout.split()
    return [int(pid) for pid in found]


def test_unconfined_runs_as_it_is_without_secrets(
    worktree: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-open-secret-1")
    jail = sandbox.UNCONFINED.jail(worktree)
    done = asyncio.run(jail.run("echo x > ../outside.txt; env", timeout=30))
    assert (worktree.parent / "outside.txt").exists()
    assert "sk-open-secret-1" not in done.output
    assert not jail.confined


def test_probe_says_how_to_install_when_bubblewrap_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sandbox.probe.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))
    try:
        found = sandbox.probe()
        assert not found.ok
        assert "apt-get install bubblewrap" in found.reason
        assert 'mode = "off"' in found.reason
        with pytest.raises(sandbox.SandboxUnavailable, match="required"):
            sandbox.require()
    finally:
        sandbox.probe.cache_clear()


def test_the_git_entry_is_read_only_so_nothing_planted_there_reaches_blitzs_git(
    policy: Policy, worktree: Path
) -> None:
    entry = Path((worktree / ".git").read_text().removeprefix("gitdir:").strip())
    before = sorted(str(p.relative_to(entry)) for p in entry.rglob("*"))
    _, out = run(
        policy,
        worktree,
        f"rm -f {entry}/logs/HEAD; ln -s /tmp/x {entry}/index 2>&1;"
        f" mkdir {entry}/rebase-merge 2>&1; echo refs/heads/main > {entry}/rebase-merge/head-name;"
        " echo x > staged.txt && git add staged.txt && git status --short; echo end",
    )
    assert "A  staged.txt" in out  # git add works, on the jail's private index
    assert "Read-only file system" in out
    assert sorted(str(p.relative_to(entry)) for p in entry.rglob("*")) == before
    assert git("status", "--porcelain", cwd=worktree) == "?? staged.txt"


def test_a_nested_repository_cannot_make_blitzs_git_run_its_filters(
    policy: Policy, worktree: Path, tmp_path: Path
) -> None:
    from blitz.git import run_git

    pwned = tmp_path / "pwned"
    _, out = run(
        policy,
        worktree,
        "unset GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES;"
        " git init -q nested && cd nested && git config filter.x.clean"
        f" 'touch {pwned}; cat' && echo '* filter=x' > .gitattributes && echo a > a &&"
        " git add -A && git -c user.name=a -c user.email=a@b commit -qm x 2>&1; rm -f /tmp/p;"
        " echo end",
    )
    assert "end" in out

    async def blitz_git() -> None:  # what blitz does in the worktree after an agent
        await run_git(worktree, "add", "-A", timeout=30)
        (worktree / "nested" / "a").write_text("changed\n")
        await run_git(worktree, "status", "--porcelain", timeout=30)
        await run_git(worktree, "diff", "HEAD", timeout=30)

    asyncio.run(blitz_git())
    assert not pwned.exists()


def test_root_in_a_jail_has_no_capabilities_and_no_machine_sockets(
    policy: Policy, worktree: Path
) -> None:
    path = Path(f"/run/blitz-test-{os.getpid()}.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    try:
        _, out = run(
            policy,
            worktree,
            "grep CapEff /proc/self/status; mount -o remount,rw / 2>&1; echo rw=$?;"
            " unshare -Ur true 2>&1; echo userns=$?; umount -l /tmp 2>&1; echo um=$?;"
            f" python3 -c \"import socket; socket.socket(socket.AF_UNIX).connect('{path}')\""
            " 2>&1 | tail -1",
        )
    finally:
        server.close()
        path.unlink()
    assert "CapEff:\t0000000000000000" in out
    assert "rw=0" not in out and "userns=0" not in out and "um=0" not in out
    assert "FileNotFoundError" in out or "No such file" in out


def test_credentials_in_the_repositorys_git_config_stay_outside(
    policy: Policy, worktree: Path, git_repo: Path
) -> None:
    token = "ghp_thisIsAFakeTokenInAGitConfig0123456789"
    git(
        "remote", "add", "origin", f"https://x-access-token:{token}@example.com/r.git", cwd=git_repo
    )
    git(
        "config",
        "http.https://example.com/.extraheader",
        f"AUTHORIZATION: basic {token}",
        cwd=git_repo,
    )
    _, out = run(
        policy,
        worktree,
        f"cat {git_repo}/.git/config; git config --list; git log --oneline | wc -l; git status -s",
    )
    assert token not in out
    assert "repositoryformatversion" in out  # git still reads what it needs
    assert "1" in out.split()
    assert token in (git_repo / ".git" / "config").read_text()  # the real one is untouched


def test_an_installed_cli_runs_at_its_real_path_through_a_linked_tools_directory(
    policy: Policy, worktree: Path, tmp_path: Path
) -> None:
    # A tools directory reached through a symlink (here under /tmp, which the jail replaces):
    # the jail shows the installation at its real path, and the program runs from there.
    real = tmp_path / "tools-real" / "tool" / "1.0"
    (real / "node_modules" / ".bin").mkdir(parents=True)
    program = real / "node_modules" / ".bin" / "tool"
    program.write_text("#!/bin/sh\necho tool ran\n")
    program.chmod(0o755)
    (tmp_path / "tools").symlink_to(tmp_path / "tools-real")
    linked = tmp_path / "tools" / "tool" / "1.0" / "node_modules" / ".bin" / "tool"
    assert sandbox.installation(linked) == tmp_path / "tools" / "tool" / "1.0"
    assert sandbox.as_shown(linked) == program
    jail = dataclasses.replace(policy.jail(worktree), shown=(sandbox.installation(linked),))

    shown = asyncio.run(jail.run(shlex.quote(str(sandbox.as_shown(linked))), timeout=30))
    through_the_link = asyncio.run(jail.run(shlex.quote(str(linked)), timeout=30))

    assert (shown.exit_code, shown.output.strip()) == (0, "tool ran")
    assert through_the_link.exit_code != 0  # the link is not in the jail
