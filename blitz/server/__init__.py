"""The daemon: one process running the engine and its HTTP API on one asyncio loop.

``daemon.py`` wires an :class:`~blitz.app.App`, a keep-alive engine, the event hub and uvicorn
together and owns start-up (resume unfinished goals) and shutdown (drain within a grace period).
``host.py`` says what the routes need from the daemon, so no route module imports it;
``app.py`` is the FastAPI application: routes only (the rules are :mod:`blitz.actions`), every
error a problem document (``problems.py``), every request
authenticated (``auth.py``) except the health check.
``events.py`` tails the store's event log for server-sent event streams; ``metrics.py`` exports
Prometheus metrics; ``schemas.py`` holds the pydantic models of the API; ``client.py`` is the
HTTP client the CLI uses to talk to a daemon.

Invariants: the engine is touched only from the loop's thread (read-only routes run in worker
threads and read the store); nothing leaves the server without passing :mod:`blitz.redact`; an
event stream delivers every event after its resume point exactly once, in id order.
The contract is docs/api.md.
"""
