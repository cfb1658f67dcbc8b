"""Fakes that ship with blitz so tests (and the demo) drive real code through them.

* :mod:`blitz.testing.clock` - a manual clock.
* :mod:`blitz.testing.scripted` - the scripted planner and the scripted agent backend.
* :mod:`blitz.testing.fake_github` - a GitHub REST API on 127.0.0.1.
* :mod:`blitz.testing.model_server` - a scripted model server on 127.0.0.1, so the real SDK clients
  and agent CLIs run: the script (:mod:`~blitz.testing.turns`) is rendered in the Anthropic
  Messages API (:mod:`~blitz.testing.anthropic_api`), OpenAI's Chat Completions
  (:mod:`~blitz.testing.openai_api`) or OpenAI's Responses API
  (:mod:`~blitz.testing.responses_api`), with what they share in :mod:`~blitz.testing.wire`.
* :mod:`blitz.testing.models` - pydantic-ai FunctionModel helpers for fast in-process unit tests.
* :mod:`blitz.testing.local_model` - real small models (Qwen2.5-Coder GGUFs, fetched from PyPI
  and cached) and :mod:`~blitz.testing.local_server`, llama.cpp's own server running one.
"""
