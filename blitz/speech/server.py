"""The bundled speech server's HTTP API, shaped like OpenAI's audio API so any client of it
(blitz's own included) can use it:

* ``POST /v1/audio/transcriptions``: multipart ``file`` and ``model`` (``response_format`` json or
  text) -> ``{"text": ...}``. WAV, WebM/Opus, MP3, FLAC, or raw 16 kHz PCM named ``.pcm``.
* ``POST /v1/audio/speech``: JSON ``input``, ``model``, ``voice``, ``response_format`` (``wav``,
  the default here, or ``pcm``: raw 24 kHz 16-bit mono, streamed sentence by sentence).
* ``GET /v1/models``: the names it answers to.

Every request carries the server's key as a bearer token. Errors are OpenAI's shape,
``{"error": {"message", "type", "code"}}``, with a 4xx for what the client sent.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from blitz.speech import audio
from blitz.speech.engines import STT_MODELS, TTS_MODELS, VOICES, Engines

MAX_UPLOAD = 25 * 1024 * 1024
"""Bytes an upload may have (OpenAI's limit)."""
MAX_SECONDS = 600
"""Seconds of audio one transcription may hold."""
MAX_INPUT = 4096
"""Characters of text one synthesis may speak (OpenAI's limit)."""


class ApiError(HTTPException):
    """A refusal in OpenAI's shape: ``code`` says what kind (``model_not_found``...)."""

    def __init__(self, status: int, message: str, code: str, *, param: str = "") -> None:
        super().__init__(status, message)
        self.message = message
        self.code = code
        self.param = param or None


def speech_app(engines: Engines, *, api_key: str, max_upload: int = MAX_UPLOAD) -> FastAPI:
    """The API over loaded ``engines``; a request without ``api_key`` as its bearer token is
    refused (401)."""
    api = FastAPI(title="blitz speech", docs_url=None, redoc_url=None, openapi_url=None)

    @api.exception_handler(ApiError)
    async def _refused(request: Request, exc: ApiError) -> JSONResponse:
        kind = "authentication_error" if exc.status_code == 401 else "invalid_request_error"
        error = {"message": exc.message, "type": kind, "code": exc.code, "param": exc.param}
        return JSONResponse({"error": error}, status_code=exc.status_code)

    @api.middleware("http")
    async def _authorised(request: Request, call_next: Any) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.strip().encode(), api_key.encode()
        ):
            return await _refused(
                request,
                ApiError(401, "send the speech server's key as a bearer token", "invalid_api_key"),
            )
        response: Response = await call_next(request)
        return response

    @api.get("/v1/models")
    async def models() -> dict[str, Any]:
        names = [*STT_MODELS, *TTS_MODELS]
        return {
            "object": "list",
            "data": [{"id": name, "object": "model", "owned_by": "blitz"} for name in names],
        }

    @api.post("/v1/audio/transcriptions", response_model=None)
    async def transcriptions(request: Request) -> Response:
        size = request.headers.get("content-length", "")
        if size.isdigit() and int(size) > max_upload + 64 * 1024:  # the form's own few bytes
            raise _too_big(max_upload)
        try:
            form = await request.form(max_files=1, max_fields=16)
        except ClientDisconnect as exc:
            raise _gone() from exc
        except (AssertionError, ValueError, HTTPException) as exc:
            detail = getattr(exc, "detail", "") or str(exc)
            raise ApiError(400, f"send a multipart form: {detail}", "invalid_form") from exc
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "the form needs the audio as `file`", "missing_file", param="file")
        model = str(form.get("model") or "")
        if not model:
            raise ApiError(400, "the form needs `model`", "missing_model", param="model")
        if model not in STT_MODELS:
            raise ApiError(404, _unknown("model", model, STT_MODELS), "model_not_found")
        language = str(form.get("language") or "en")
        if language.lower() not in ("en", "english"):
            raise ApiError(400, f"this model speaks only English, not {language!r}", "language")
        answer = str(form.get("response_format") or "json")
        if answer not in ("json", "text"):
            raise ApiError(400, "response_format must be json or text", "response_format")
        data = await upload.read(max_upload + 1)
        if len(data) > max_upload:
            raise _too_big(max_upload)
        raw = audio.is_raw_pcm(upload.filename or "", upload.content_type or "")
        try:  # decoding too runs in a thread: a long upload takes FFmpeg a while
            samples = await asyncio.to_thread(audio.decode, data, raw_pcm=raw)
        except audio.BadAudio as exc:
            raise ApiError(400, str(exc), "invalid_audio", param="file") from exc
        if samples.size > MAX_SECONDS * audio.WHISPER_RATE:
            raise ApiError(413, f"at most {MAX_SECONDS} s of audio at a time", "audio_too_long")
        text = await engines.transcribe_async(samples)
        if answer == "text":
            return PlainTextResponse(text)
        return JSONResponse({"text": text})

    @api.post("/v1/audio/speech", response_model=None)
    async def speech(request: Request) -> Response:
        try:
            body = await request.json()
        except ClientDisconnect as exc:
            raise _gone() from exc
        except ValueError as exc:
            raise ApiError(400, "send a JSON object", "invalid_json") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "send a JSON object", "invalid_json")
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "`input` must be non-empty text", "missing_input", param="input")
        if len(text) > MAX_INPUT:
            raise ApiError(400, f"`input` is over {MAX_INPUT} characters", "input_too_long")
        model = body.get("model")
        if model not in TTS_MODELS:
            raise ApiError(404, _unknown("model", model, TTS_MODELS), "model_not_found")
        voice = body.get("voice")
        if voice not in VOICES:
            raise ApiError(404, _unknown("voice", voice, VOICES), "voice_not_found")
        answer = body.get("response_format") or "wav"
        if answer == "pcm":
            return StreamingResponse(_pcm(engines, text), media_type="audio/pcm")
        if answer != "wav":
            raise ApiError(
                400, f"response_format {answer!r}: this server makes wav or pcm", "response_format"
            )
        pcm = b"".join([chunk async for chunk in _pcm(engines, text, rate=engines.rate)])
        return Response(audio.wav(pcm, engines.rate), media_type="audio/wav")

    return api


async def _pcm(engines: Engines, text: str, rate: int = audio.PCM_OUT_RATE) -> AsyncIterator[bytes]:
    async for spoken in engines.speak(text):
        yield audio.to_pcm16(spoken.samples, spoken.rate, rate)


def _gone() -> ApiError:
    """A client that went away before its request was in: an answer nobody reads, in place of a
    traceback in the server's log (a browser's push-to-talk cancelled mid-upload does this)."""
    return ApiError(400, "the client went away before its request was read", "client_gone")


def _unknown(kind: str, name: object, known: tuple[str, ...]) -> str:
    return f"no {kind} {name!r} here; this server has " + ", ".join(known)


def _too_big(limit: int) -> ApiError:
    return ApiError(413, f"the upload is over {limit // (1024 * 1024)} MB", "file_too_large")
