"""``blitz speech serve`` as a user runs it, in a process of its own on 127.0.0.1 at a free
port, for the speech tests and ``bench/voice.py``: started once (its models load once), stopped
with its whole process tree (:mod:`blitz.proctree`).

It runs offline: ``HF_HUB_OFFLINE=1`` and an empty Hugging Face cache of its own, so a model
that is not in its package would fail to load rather than be downloaded.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from blitz import proctree

READY = "blitz speech listening on "
KEY = "key: "
"""What the server prints before the key it made (when none was given)."""
START_TIMEOUT = 120.0
"""Seconds the server may take to load its models and listen."""
STOP_GRACE = 10.0


class SpeechServerError(RuntimeError):
    """The server did not start (its output says why)."""


class SpeechServer:
    """``blitz speech serve --port 0``: :attr:`url` is its API's base (``.../v1``), :attr:`key`
    the key it asks for: ``key`` given as ``BLITZ_SPEECH_API_KEY``, or with ``key=""`` the one
    the server makes and prints. ``env`` is the environment it starts from (``BLITZ_*`` and
    Hugging Face's variables are set here)."""

    def __init__(
        self,
        *,
        env: dict[str, str] | None = None,
        threads: int = 0,
        blitz: str = "",
        key: str | None = None,
    ) -> None:
        self.key = secrets.token_urlsafe(16) if key is None else key
        self._key_given = bool(self.key)
        self.url = ""
        self.output: list[str] = []
        self._env = dict(os.environ if env is None else env)
        self._threads = threads
        self._blitz = blitz or str(Path(sys.executable).with_name("blitz"))
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._marker = proctree.new_marker()
        self._cache = tempfile.TemporaryDirectory(prefix="blitz-speech-hf-")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> Self:
        env = {
            **{k: v for k, v in self._env.items() if k != "BLITZ_SPEECH_API_KEY"},
            **({"BLITZ_SPEECH_API_KEY": self.key} if self._key_given else {}),
            "HF_HUB_OFFLINE": "1",
            "HF_HOME": self._cache.name,
            proctree.MARKER_VARIABLE: self._marker,
        }
        command = [self._blitz, "speech", "serve", "--port", "0"]
        if self._threads:
            command += ["--threads", str(self._threads)]
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        try:
            self.url = self._await_url()
        except BaseException:
            self.stop()
            raise
        return self

    def _await_url(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        self._reader = threading.Thread(
            target=lambda: self.output.extend(iter(stdout.readline, "")), daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            url = key = ""
            for line in list(self.output):
                if line.startswith(READY):
                    url = line.removeprefix(READY).split()[0]
                elif line.startswith(KEY):
                    key = line.removeprefix(KEY).strip()
            if url and (self._key_given or key):
                self.key = self.key or key
                return url
            if self._proc.poll() is not None:
                time.sleep(0.2)  # the reader's last lines
                raise SpeechServerError(f"blitz speech serve exited: {self.log()}")
            time.sleep(0.05)
        raise SpeechServerError(f"blitz speech serve did not listen in time: {self.log()}")

    def log(self) -> str:
        return "".join(self.output)[-3000:]

    def stop(self) -> None:
        """SIGTERM to its process group (uvicorn stops gently), then SIGKILL to whatever of its
        tree is left."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proctree.send_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                proctree.send_group(proc.pid, signal.SIGKILL)
                proc.wait(STOP_GRACE)
            for pid in proctree.marked(self._marker):  # anything that left the group
                proctree.send(pid, signal.SIGKILL)
            if self._reader is not None:
                self._reader.join(STOP_GRACE)
            if proc.stdout is not None:
                proc.stdout.close()
        self._cache.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
