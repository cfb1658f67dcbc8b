"""Agent backends: the :class:`~blitz.backends.base.AgentBackend` protocol and its adapters,
chosen by name through :func:`~blitz.backends.registry.create_backend`.

* ``base`` (the protocol, :class:`~blitz.backends.base.AgentResult` and its ``Outcome``,
  ``task_prompt``) and ``options`` (what a backend is built from) are all an adapter needs.
* Adapters: ``embedded`` (with ``tools``, ``files``), ``claude_code`` (with ``claude_session``),
  ``codex`` (with ``codex_events``, ``install``), ``command``; ``scripted`` loads the fake from
  :mod:`blitz.testing` and is imported only when chosen by that name.
* Wrappers are backends too: ``circuit`` (the provider's circuit breaker) and ``guard`` (the
  user's checkout is not touched); ``confine`` holds the worktree confinement shared by the
  embedded tools and the Claude Code hook.
* ``registry`` maps names to ``"module:factory"`` strings and imports an adapter only when it is
  chosen; no adapter imports the registry.
* ``availability`` says whether a backend can do a run here (its CLI, key, model, a local server
  answering), checked before a goal starts; ``local_servers`` finds Ollama, llama.cpp, vLLM and
  LM Studio answering; ``choice`` is the agent ``blitz init`` writes (never ``scripted``).
"""
