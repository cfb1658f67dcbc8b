"""Agent backends: the :class:`~blitz.backends.base.AgentBackend` protocol and its adapters,
chosen by name through :func:`~blitz.backends.registry.create_backend`."""
