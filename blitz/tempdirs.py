"""Temporary directories that a killed process does not leave behind.

A process removes its temporary directories when it ends well; one that is killed (a SIGKILLed
daemon, a Ray worker torn down with its node) never does, and a long-lived machine collects
them. So:

- :func:`private` makes a directory for this process alone,
  ``<tmp>/<prefix><pid namespace>.<pid>-<random>`` (mode 0700), and first removes those of its
  prefix that a process of this user and pid namespace left when it ended without cleaning up
  (its pid no longer runs). The caller still removes its own when done (:func:`temporary`
  does).
- :func:`shared_file` gives a file with the content asked, in a directory named by the content's
  hash and this user's id, shared by every process that asks for the same content: one per
  content, never per process, so nothing is left to clean. The directory must be this user's,
  mode 0700, a real directory (not a link): one planted by another user is never used (a private
  directory stands in).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


def private(prefix: str) -> Path:
    """A new directory for this process (mode 0700), after sweeping ``prefix``'s leftovers."""
    sweep(prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{_namespace()}.{os.getpid()}-"))


@contextlib.contextmanager
def temporary(prefix: str) -> Iterator[Path]:
    """:func:`private`, removed when the block ends."""
    directory = private(prefix)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def sweep(prefix: str) -> list[Path]:
    """Remove the directories ``<prefix><namespace>.<pid>-*`` of this user and pid namespace
    whose process is gone; those removed."""
    removed: list[Path] = []
    root = Path(tempfile.gettempdir())
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        pid = _pid_of(entry.name, prefix)
        if pid is None or _running(pid):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def shared_file(prefix: str, name: str, content: bytes) -> Path:
    """A file ``name`` holding ``content``, shared by this user's processes:
    ``<tmp>/<prefix><uid>-<hash>/<name>``, written atomically when missing or different."""
    digest = hashlib.sha256(content).hexdigest()[:20]
    directory = Path(tempfile.gettempdir()) / f"{prefix}{os.getuid()}-{digest}"
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    if not _ours(directory):
        directory = private(prefix)
    path = directory / name
    try:
        if path.read_bytes() == content:
            return path
    except OSError:
        pass
    fd, staged = tempfile.mkstemp(dir=directory, prefix=f".{name}-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(staged, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise
    return path


def _ours(directory: Path) -> bool:
    """A real directory of this user that no one else may enter."""
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    )


def _pid_of(name: str, prefix: str) -> int | None:
    """The pid in a private directory's name, if it is one of this pid namespace's (a process
    of another one, sharing this /tmp, is not ours to judge)."""
    if not name.startswith(prefix):
        return None
    namespace, _, pid = name[len(prefix) :].split("-", 1)[0].partition(".")
    return int(pid) if pid.isdigit() and namespace == _namespace() else None


def _namespace() -> str:
    """This process's pid namespace (its inode; "0" where /proc does not say)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's: not ours to judge
    return True
