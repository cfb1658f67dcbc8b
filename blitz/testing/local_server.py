"""llama.cpp's own OpenAI-compatible server (from the ``xllamacpp`` wheel) on 127.0.0.1, for
tests and benchmarks that need a real model.

xllamacpp runs the server inside the Python process that creates it and installs its own
SIGINT/SIGTERM handlers, so :class:`LocalServer` runs it in a child Python process (this module,
run as ``python -m blitz.testing.local_server PARAMS_JSON``). The child binds port 0, prints
``LISTENING <address>`` once the model is loaded and the HTTP server listens, and serves until its
stdin closes. Stopping closes the child's stdin; if it has not exited within
:data:`STOP_GRACE` seconds its process group and every process carrying its marker are killed
(:mod:`blitz.proctree`). If the parent dies, the child's stdin closes too, so it never outlives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from blitz import proctree

__all__ = ["LocalServer", "LocalServerError"]

READY = "LISTENING "
"""What the child prints before the server's address once it serves."""

START_TIMEOUT = 120.0
"""Seconds the model may take to load before the start is given up."""

STOP_GRACE = 5.0
"""Seconds the child has to exit after its stdin closed, before it is killed."""


class LocalServerError(RuntimeError):
    """The server did not start (its log's tail says why)."""


class LocalServer:
    """A started llama.cpp server for the GGUF at ``model``, as a context manager.

    ``base_url`` is the OpenAI base URL (``http://127.0.0.1:PORT/v1``), ``url`` the server's
    root, ``alias`` the model name it answers to, ``pid`` the child's process id. ``n_ctx`` is the
    context (shared by the ``n_parallel`` slots), ``threads`` the CPU threads for generation and
    prompt evaluation. The child's output goes to :attr:`log_path`.
    """

    def __init__(
        self,
        model: Path,
        *,
        alias: str = "local",
        n_ctx: int = 4096,
        threads: int = 2,
        n_parallel: int = 1,
        start_timeout: float = START_TIMEOUT,
        python: str = sys.executable,
    ) -> None:
        self.model = Path(model)
        self.alias = alias
        self.params = {
            "model": str(self.model),
            "alias": alias,
            "n_ctx": n_ctx,
            "threads": threads,
            "n_parallel": n_parallel,
        }
        self.start_timeout = start_timeout
        self.python = python
        self.url = ""
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._marker = ""

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> Self:
        if not self.model.is_file():
            raise LocalServerError(f"no model file at {self.model}")
        fd, log = tempfile.mkstemp(prefix="blitz-llama-", suffix=".log")
        self.log_path = Path(log)
        self._marker = proctree.new_marker()
        env = {**os.environ, proctree.MARKER_VARIABLE: self._marker}
        with os.fdopen(fd, "w") as log_file:
            self._proc = subprocess.Popen(
                [self.python, "-m", "blitz.testing.local_server", json.dumps(self.params)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                env=env,
                start_new_session=True,
            )
        try:
            self.url = self._await_address()
        except BaseException:
            self.stop()
            raise
        return self

    def _await_address(self) -> str:
        """The address the child prints once it serves; raises if it exits or takes too long."""
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        lines: list[str] = []

        def read() -> None:
            lines.extend(iter(stdout.readline, ""))

        reader = self._reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for line in lines:
                if line.startswith(READY):
                    return line.removeprefix(READY).split()[0].rstrip("/")
            if not reader.is_alive() or self._proc.poll() is not None:
                break
            time.sleep(0.05)
        else:
            raise LocalServerError(
                f"llama.cpp's server did not start within {self.start_timeout:g} s: {self.log()}"
            )
        raise LocalServerError(f"llama.cpp's server exited while starting: {self.log()}")

    def log(self, chars: int = 3000) -> str:
        """The tail of the child's output."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def health(self, timeout: float = 10.0) -> str:
        """The server's ``GET /health`` answer (``{"status":"ok"}`` when it serves)."""
        with urllib.request.urlopen(f"{self.url}/health", timeout=timeout) as answer:
            return str(answer.read().decode())

    def stop(self) -> None:
        """Close the child's stdin, wait for it a moment, then kill what is left of it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proctree.send_group(proc.pid, signal.SIGKILL)
            proc.wait(STOP_GRACE)
        for pid in proctree.marked(self._marker):  # anything that left the group
            proctree.send(pid, signal.SIGKILL)
        if self._reader is not None:  # it reads to the end of the child's output, then stops
            self._reader.join(STOP_GRACE)
            self._reader = None
        if proc.stdout is not None:
            proc.stdout.close()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _serve(params: dict[str, Any]) -> None:
    """The child: serve until stdin closes."""
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = params["model"]
    p.hostnames = ["127.0.0.1"]
    p.port = 0  # a free port, printed below
    p.n_ctx = params["n_ctx"]  # the default (0) is the model's whole context: 32k for Qwen
    p.n_parallel = params["n_parallel"]
    p.cpuparams.n_threads = params["threads"]
    p.cpuparams_batch.n_threads = params["threads"]
    p.warmup = False  # no warm-up decode: starts in ~2 s instead of ~4
    p.endpoint_props = True
    p.model_alias = {params["alias"]}
    server = xllamacpp.Server(p)  # returns once the model is loaded and HTTP listens
    print(READY + server.listening_address, flush=True)
    sys.stdin.read()
    del server  # ~Server() ends the loop and joins its thread


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
