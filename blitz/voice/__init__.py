"""The voice session: a person talks to the daemon over a WebSocket (``/api/voice``) and hears
its answers.

One concept per module: :mod:`~.frames` (the protocol's messages and limits),
:mod:`~.listening` (incoming audio as 16 kHz samples: pcm16 as it comes, WebM/Opus decoded by
PyAV), :mod:`~.vad` (Silero voice activity detection, streamed, finding where an utterance
ends), :mod:`~.intent` (what was said, as an action: a forgiving grammar with fuzzy names),
:mod:`~.understanding` (the planner model with structured output, when one is configured),
:mod:`~.replies` (an intent done through :mod:`blitz.actions`, and the spoken answer),
:mod:`~.speakup` (the events worth saying aloud) and :mod:`~.session` (one socket's
conversation: utterances, answers spoken and cut off, speak-ups). Speech itself goes through
:mod:`blitz.speech`'s clients; the route is :mod:`blitz.server.voice`.

Nothing here blocks the loop: the VAD, decoding and the store run in worker threads. A frame
too big or malformed closes the socket with a reason; a failing speech service or an action
refused is an ``error`` message and the session goes on.
"""
