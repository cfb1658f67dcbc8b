"""Prometheus metrics of one daemon, on a registry of its own.

Gauges and totals are read from the store at scrape time (so they count every process sharing
it); the attempt-duration histogram is fed by the event hub as attempts finish while the daemon
runs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from blitz.domain import BreakerRecord, BreakerState, GoalState, TaskState
from blitz.events import Event, EventKind
from blitz.store.base import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf"))


class _StoreCollector(Collector):
    def __init__(self, store: Store, clients: Callable[[], int]) -> None:
        self._store = store
        self._clients = clients
        self.live: list[BreakerRecord] = []  # the engine's own view, newer than the store's

    def collect(self) -> Iterator[Metric]:
        store = self._store
        goals = store.list_goals()
        by_goal_state = dict.fromkeys((s.value for s in GoalState), 0)
        by_task_state = dict.fromkeys((s.value for s in TaskState), 0)
        for goal in goals:
            by_goal_state[goal.state.value] += 1
            for task in store.load_tasks(goal.id):
                by_task_state[task.state.value] += 1
        goal_gauge = GaugeMetricFamily("blitz_goals", "Goals by state.", labels=["state"])
        for state, n in by_goal_state.items():
            goal_gauge.add_metric([state], n)
        yield goal_gauge
        task_gauge = GaugeMetricFamily("blitz_tasks", "Tasks by state.", labels=["state"])
        for state, n in by_task_state.items():
            task_gauge.add_metric([state], n)
        yield task_gauge

        tokens = CounterMetricFamily(
            "blitz_tokens", "Model tokens used, by project.", labels=["project", "kind"]
        )
        cost = CounterMetricFamily("blitz_cost_usd", "Model cost in USD.", labels=["project"])
        for project in store.list_projects():
            usage = store.project_usage(project.id)
            tokens.add_metric([project.name, "input"], usage.input_tokens)
            tokens.add_metric([project.name, "output"], usage.output_tokens)
            tokens.add_metric([project.name, "cached"], usage.cached_tokens)
            cost.add_metric([project.name], usage.cost_usd)
        yield tokens
        yield cost

        breakers = GaugeMetricFamily(
            "blitz_breaker_state",
            "Circuit breakers: 1 for the state each is in.",
            labels=["key", "state"],
        )
        records = {r.key: r for r in store.load_breakers()}
        records.update((r.key, r) for r in self.live)
        for _, record in sorted(records.items()):
            for state in BreakerState:
                breakers.add_metric([record.key, state.value], float(record.state is state))
        yield breakers

        yield GaugeMetricFamily(
            "blitz_event_stream_clients", "Event streams open now.", value=self._clients()
        )


class Metrics:
    """The daemon's registry; :meth:`observe` is an event hub observer."""

    def __init__(self, store: Store, *, clients: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self._collector = _StoreCollector(store, clients)
        self.registry.register(self._collector)
        self.durations = Histogram(
            "blitz_attempt_duration_seconds",
            "Wall time of attempts that finished while the daemon ran.",
            labelnames=["outcome"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        # Start times of attempts seen starting, oldest first (bounded: a lost finish event
        # must not grow it forever).
        self._started: OrderedDict[str, float] = OrderedDict()

    def observe(self, event: Event) -> None:
        if not event.attempt_id:
            return
        if event.kind in (EventKind.TASK_STARTED, EventKind.ATTEMPT_STARTED):
            self._started.setdefault(event.attempt_id, event.ts)
            while len(self._started) > 10_000:
                self._started.popitem(last=False)
        elif event.kind is EventKind.ATTEMPT_FINISHED:
            started = self._started.pop(event.attempt_id, None)
            if started is not None:
                outcome = str(event.data.get("outcome", "unknown"))
                self.durations.labels(outcome=outcome).observe(max(0.0, event.ts - started))

    def render(self, breakers: list[BreakerRecord]) -> bytes:
        """The text exposition format, with ``breakers`` as the engine sees them (taken on the
        loop); reads the store, so call it from a worker thread."""
        self._collector.live = breakers
        return generate_latest(self.registry)
