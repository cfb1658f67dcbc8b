"""Fakes that ship with blitz so tests (and the demo) drive real code through them.

* :mod:`blitz.testing.clock` - a manual clock.
* :mod:`blitz.testing.scripted` - the scripted planner and the scripted agent backend.
* :mod:`blitz.testing.fake_github` - a GitHub REST API on 127.0.0.1.
* :mod:`blitz.testing.model_server` - a scripted model server speaking the Anthropic Messages API
  and the OpenAI Chat Completions API on 127.0.0.1, so the real SDK clients run.
* :mod:`blitz.testing.models` - pydantic-ai FunctionModel helpers for fast in-process unit tests.
"""
