"""Who drives a goal: a runner id (``pid@host``) owns the goal's lease (:mod:`blitz.store.leases`)
and is stored on the goal, so others can tell whether its driver still runs
(:func:`blitz.proctree.runner_alive`)."""

from __future__ import annotations

import os
import socket


def runner_id() -> str:
    """This process as a runner: ``pid@host``."""
    return f"{os.getpid()}@{socket.gethostname()}"
