"""What the routes need from the process that serves them: the app (its store and wiring),
the engine that drives goals here, the token store, the event hub and the metrics.

The daemon is one such host; route modules know only this protocol, so none of them (nor the
FastAPI application) imports the daemon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from blitz.app import App
    from blitz.conductor import Engine
    from blitz.server.auth import TokenStore
    from blitz.server.events import EventHub
    from blitz.server.metrics import Metrics
    from blitz.server.workers import WorkerWatch
    from blitz.store.base import Store


class Host(Protocol):
    """The daemon as its routes see it."""

    @property
    def app(self) -> App: ...

    @property
    def store(self) -> Store: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def hub(self) -> EventHub: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def workers(self) -> WorkerWatch: ...

    @property
    def cors_origins(self) -> tuple[str, ...]: ...

    @property
    def ping(self) -> float: ...

    @property
    def draining(self) -> bool: ...

    def check_open(self) -> None:
        """Raise the 503 problem once shutdown began (no new work is taken)."""
