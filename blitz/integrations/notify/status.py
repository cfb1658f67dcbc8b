"""How notification delivery goes, per sink: what ``blitz notify status`` and
``GET /api/notifications`` show, read from the store's outbox."""

from __future__ import annotations

from dataclasses import dataclass

from blitz.store.outbox import DeliveryState, Outbox


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkStatus:
    """One sink's deliveries: how many were delivered, are pending (being retried) and failed
    (given up on), and the newest error (``""`` once a delivery after it went through)."""

    sink: str
    delivered: int = 0
    pending: int = 0
    failed: int = 0
    last_error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryStatus:
    """Every sink's status, and how many notifications wait for a daemon to send them."""

    sinks: tuple[SinkStatus, ...]
    waiting: int


def status(outbox: Outbox, *, limit: int = 1000) -> DeliveryStatus:
    """The status of the newest ``limit`` deliveries."""
    counts: dict[str, dict[DeliveryState, int]] = {}
    errors: dict[str, str] = {}
    for delivery, notification in reversed(outbox.deliveries(limit=limit)):  # oldest first
        counts.setdefault(delivery.sink, dict.fromkeys(DeliveryState, 0))[delivery.state] += 1
        if delivery.last_error:
            about = f"{notification.kind} {notification.goal_id}".strip()
            errors[delivery.sink] = f"{about}: {delivery.last_error}"
        elif delivery.state is DeliveryState.DELIVERED:
            errors[delivery.sink] = ""
    sinks = tuple(
        SinkStatus(
            sink=sink,
            delivered=by_state[DeliveryState.DELIVERED],
            pending=by_state[DeliveryState.PENDING],
            failed=by_state[DeliveryState.FAILED],
            last_error=errors.get(sink, ""),
        )
        for sink, by_state in sorted(counts.items())
    )
    return DeliveryStatus(sinks=sinks, waiting=outbox.waiting())
