"""``blitz speech serve``: the bundled local speech server (:mod:`blitz.speech.server`)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from typing import TYPE_CHECKING

import typer

from blitz.cli.common import app
from blitz.settings import Settings

if TYPE_CHECKING:
    import socket

    from fastapi import FastAPI

speech = typer.Typer(help="Speech services for talking to blitz.", no_args_is_help=True)
app.add_typer(speech, name="speech")

KEY_VARIABLE = "BLITZ_SPEECH_API_KEY"


@speech.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8766, "--port", min=0, max=65535, help="Port (0: a free one)."),
    threads: int = typer.Option(
        0, "--threads", min=0, help="CPU threads for transcription (0: one per CPU)."
    ),
) -> None:
    """Serve Whisper tiny.en and a Piper voice behind OpenAI's audio API (/v1/audio/
    transcriptions, /v1/audio/speech) on this machine. Its key: BLITZ_SPEECH_API_KEY, else one
    made now and printed; clients send it as BLITZ_STT_API_KEY and BLITZ_TTS_API_KEY."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship in packages: never download
    from blitz.server.daemon import listen  # one place binds blitz's servers' sockets
    from blitz.speech.engines import Engines
    from blitz.speech.server import speech_app

    chosen = Settings().speech_api_key
    key = chosen.get_secret_value() if chosen is not None else ""
    made = not key
    key = key or secrets.token_urlsafe(24)
    sock = listen(host, port)
    engines = Engines.load(threads=threads)
    code = asyncio.run(_serve(speech_app(engines, api_key=key), sock, key if made else ""))
    raise typer.Exit(code)


async def _serve(api: FastAPI, sock: socket.socket, made: str) -> int:
    import uvicorn

    from blitz.server.daemon import url_of

    config = uvicorn.Config(api, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if server.started:
        url = url_of(sock) + "/v1"
        # Plain prints, flushed: scripts read these lines.
        print(f"blitz speech listening on {url} (pid {os.getpid()})", flush=True)
        if made:
            print(f"key: {made}", flush=True)
            print(f"  made for this run; set {KEY_VARIABLE} to choose one", flush=True)
    await serving
    return 0 if server.started else 1
