"""Circuit breakers: stop starting work while the machinery keeps breaking.

A breaker is closed until ``threshold`` consecutive failures open it. After ``cooldown`` seconds
open it goes half-open and admits exactly one probe: the probe's success closes it, its failure
opens it again for a new cooldown. Only crashes (the machinery broke) count as failures; work that
was merely wrong counts as a success of the machinery.

Breakers track time on the monotonic clock while running and persist ``opened_at`` as wall-clock
time (a :class:`~blitz.domain.BreakerRecord`), converting between the two on restore. Every state
change is returned as a :class:`Change` so the caller can emit an event and persist the record;
the one change that happens just by time passing (open -> half-open) is collected by ``poll``.
Callers outside the engine (model calls, agent runs, the model proxy) ``note`` their changes on
the board, and the engine ``drain``s them each step, so every change of every key is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from blitz.clock import Clock
from blitz.domain import BreakerRecord, BreakerState
from blitz.errors import ConfigError

GLOBAL = "global"


def project_key(project_id: str) -> str:
    """The key of a project's breaker."""
    return f"project:{project_id}"


def backend_key(name: str) -> str:
    """The key of an agent backend's breaker."""
    return f"backend:{name}"


def provider_key(name: str) -> str:
    """The key of a model provider's breaker (``anthropic``, ``openai``...)."""
    return f"provider:{name}"


def executor_key(name: str) -> str:
    """The key of an executor's breaker (``ray``...): open while it cannot reach where attempts
    run (its cluster)."""
    return f"executor:{name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerPolicy:
    """When a breaker opens (``threshold`` consecutive failures) and how long it stays open."""

    threshold: int = 5
    cooldown: float = 60.0

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ConfigError(f"breaker threshold must be at least 1, not {self.threshold}")
        if self.cooldown < 0:
            raise ConfigError(f"breaker cooldown must not be negative, not {self.cooldown}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """A breaker moved from ``old`` to ``new``; ``reason`` says why in one line."""

    key: str
    old: BreakerState
    new: BreakerState
    reason: str


class Breaker:
    """One circuit breaker, keyed ``global``, ``project:<id>``, ``backend:<name>``,
    ``provider:<name>`` or ``executor:<name>``.

    Outcomes reported while open are ignored (they belong to work started before it opened, and
    must not extend the cooldown); any outcome reported while half-open decides the probe.
    """

    def __init__(
        self,
        key: str,
        policy: BreakerPolicy,
        clock: Clock,
        record: BreakerRecord | None = None,
        *,
        unsettled: set[str] | None = None,
    ) -> None:
        """``unsettled``: a set (its board's) that holds this breaker's key exactly while the
        breaker is not closed, counts failures or has an unpolled change."""
        self.key = key
        self.policy = policy
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._last_error = ""
        self._opened_at = 0.0  # wall time, for the record
        self._retry_at = 0.0  # monotonic time an open breaker goes half-open
        self._probing = False  # the half-open probe has been handed out
        self._unreported: Change | None = None
        self._unsettled = unsettled
        if record is not None:
            self._restore(record)
        self._note()

    def _restore(self, record: BreakerRecord) -> None:
        if record.key != self.key:
            raise ValueError(f"record of breaker {record.key!r} given to breaker {self.key!r}")
        self._state = record.state
        self._failures = record.failures
        self._last_error = record.last_error
        self._opened_at = record.opened_at
        if record.state is BreakerState.OPEN:
            # Clamped to [0, cooldown]: a wall clock that jumped back must not extend the wait.
            elapsed = self._clock.time() - record.opened_at
            remaining = min(self.policy.cooldown, max(0.0, self.policy.cooldown - elapsed))
            self._retry_at = self._clock.monotonic() + remaining
        # A restored half-open breaker hands out a fresh probe: the old one died with its process.

    @property
    def state(self) -> BreakerState:
        """The current state; reading it moves an open breaker to half-open once its cooldown
        has elapsed."""
        if self._state is BreakerState.OPEN and self._clock.monotonic() >= self._retry_at:
            self._state = BreakerState.HALF_OPEN
            self._probing = False
            self._unreported = Change(
                key=self.key,
                old=BreakerState.OPEN,
                new=BreakerState.HALF_OPEN,
                reason="cooldown elapsed",
            )
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted while closed."""
        return self._failures

    @property
    def last_error(self) -> str:
        return self._last_error

    def would_allow(self) -> bool:
        """Whether :meth:`allow` would return True now, without taking the half-open probe."""
        state = self.state
        return state is BreakerState.CLOSED or (
            state is BreakerState.HALF_OPEN and not self._probing
        )

    def allow(self) -> bool:
        """May work start? Half-open, this hands out the single probe and refuses everyone else
        until the probe reports (or is released)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def _note(self) -> None:
        """Keep this breaker's key in its board's ``unsettled`` set exactly while it matters."""
        if self._unsettled is None:
            return
        if self._state is BreakerState.CLOSED and not self._failures and self._unreported is None:
            self._unsettled.discard(self.key)
        else:
            self._unsettled.add(self.key)

    def release_probe(self) -> None:
        """The probe was not run after all: let the next caller have it."""
        if self._state is BreakerState.HALF_OPEN:
            self._probing = False

    def record_success(self) -> Change | None:
        """The machinery worked: reset the failure count, or close a half-open breaker."""
        state = self.state
        change = None
        if state is BreakerState.CLOSED:
            self._failures = 0
        elif state is BreakerState.HALF_OPEN:
            self._failures = 0
            self._probing = False
            change = self._move(BreakerState.CLOSED, "probe succeeded")
        self._note()
        return change

    def record_failure(self, error: str = "", retry_after: float | None = None) -> Change | None:
        """The machinery broke: count it, and open the breaker at the threshold or on a failed
        probe. ``retry_after``: the failing party said when to come back (a provider's
        ``Retry-After``); an opening breaker stays open that long instead of its cooldown."""
        state = self.state
        if error:
            self._last_error = error
        change = None
        if state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self.policy.threshold:
                change = self._open(f"{self._failures} consecutive failures", error, retry_after)
        elif state is BreakerState.HALF_OPEN:
            change = self._open("probe failed", error, retry_after)
        self._note()
        return change

    def reset(self) -> Change | None:
        """Force the breaker closed (a human said the cause is fixed)."""
        self._failures = 0
        self._probing = False
        change = (
            None if self.state is BreakerState.CLOSED else self._move(BreakerState.CLOSED, "reset")
        )
        self._note()
        return change

    def retry_at(self) -> float | None:
        """The monotonic time an open breaker goes half-open; None unless it is open."""
        if self.state is BreakerState.OPEN:
            return self._retry_at
        return None

    def poll(self) -> Change | None:
        """The open -> half-open move that time made since the last poll, if any."""
        self.state  # noqa: B018 - reading the state applies an elapsed cooldown
        change, self._unreported = self._unreported, None
        if change is not None:
            self._note()
        return change

    def to_record(self) -> BreakerRecord:
        """The state to persist (``opened_at`` in wall-clock time)."""
        return BreakerRecord(
            key=self.key,
            state=self.state,
            failures=self._failures,
            opened_at=self._opened_at,
            last_error=self._last_error,
        )

    def _open(self, why: str, error: str, retry_after: float | None = None) -> Change:
        self._probing = False
        self._opened_at = self._clock.time()
        cooldown = self.policy.cooldown if retry_after is None else retry_after
        self._retry_at = self._clock.monotonic() + cooldown
        return self._move(BreakerState.OPEN, f"{why}: {error}" if error else why)

    def _move(self, new: BreakerState, reason: str) -> Change:
        old, self._state = self._state, new
        return Change(key=self.key, old=old, new=new, reason=reason)

    def __repr__(self) -> str:
        return f"Breaker({self.key!r}, {self._state}, failures={self._failures})"


class BreakerBoard:
    """All breakers by key, created lazily. A breaker's policy is chosen by the key's prefix
    before ``:`` (``global``, ``project``, ``backend``), else ``default``."""

    def __init__(
        self,
        clock: Clock,
        *,
        default: BreakerPolicy = BreakerPolicy(),
        policies: Mapping[str, BreakerPolicy] = MappingProxyType({}),
        records: Iterable[BreakerRecord] = (),
    ) -> None:
        self.clock = clock
        self._default = default
        self._policies = dict(policies)
        self._breakers: dict[str, Breaker] = {}
        # Keys of the breakers that are not closed, count failures or have an unpolled change.
        # While it is empty every breaker allows and a success changes nothing, so the router's
        # per-item calls return at once.
        self._unsettled: set[str] = set()
        self._noted: list[Change] = []  # changes of callers outside the engine, see note()
        for record in records:
            self._breakers[record.key] = Breaker(
                record.key, self.policy_for(record.key), clock, record, unsettled=self._unsettled
            )

    def policy_for(self, key: str) -> BreakerPolicy:
        """The policy set for this exact key, else for its prefix, else the default."""
        exact = self._policies.get(key)
        if exact is not None:
            return exact
        return self._policies.get(key.split(":", 1)[0], self._default)

    def configure(self, key: str, policy: BreakerPolicy) -> None:
        """Set the policy of one key (a project's thresholds from its blitz.toml)."""
        self._policies = {**self._policies, key: policy}
        if key in self._breakers:
            self._breakers[key].policy = policy

    def get(self, key: str) -> Breaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = Breaker(
                key, self.policy_for(key), self.clock, unsettled=self._unsettled
            )
        return breaker

    def settled(self) -> bool:
        """True while every breaker is closed with no failures counted and no change unpolled:
        then every breaker allows, and a success changes nothing."""
        return not self._unsettled

    def all(self) -> list[Breaker]:
        return list(self._breakers.values())

    def allow(self, keys: Sequence[str]) -> bool:
        """True only if every breaker allows; a refusal takes no half-open probe from the others."""
        return self.admit(keys) is not None

    def admit(self, keys: Sequence[str]) -> list[str] | None:
        """Like :meth:`allow`, but on admission returns the keys whose half-open probe was taken,
        so the caller can give back exactly those with :meth:`release`. None when refused."""
        if not self._unsettled:
            return []
        breakers = [self.get(key) for key in dict.fromkeys(keys)]
        if not all(breaker.would_allow() for breaker in breakers):
            return None
        probes = []
        for breaker in breakers:
            if breaker.state is BreakerState.HALF_OPEN:
                probes.append(breaker.key)
            breaker.allow()
        return probes

    def record(
        self, keys: Sequence[str], ok: bool, error: str = "", retry_after: float | None = None
    ) -> list[Change]:
        """Report one outcome to every key's breaker (``retry_after``: see
        :meth:`Breaker.record_failure`). Returns every state change of these keys in order,
        including an unpolled open -> half-open move that preceded the outcome."""
        if ok and not self._unsettled:
            return []
        changes = []
        for key in dict.fromkeys(keys):
            breaker = self.get(key)
            if (moved := breaker.poll()) is not None:
                changes.append(moved)
            change = breaker.record_success() if ok else breaker.record_failure(error, retry_after)
            if change is not None:
                changes.append(change)
        return changes

    def note(self, changes: Iterable[Change]) -> None:
        """Keep changes made outside the engine's own calls (by model calls, agent runs, the model
        proxy) until the engine drains them to announce and persist them."""
        self._noted.extend(changes)

    def drain(self) -> list[Change]:
        """The changes noted since the last drain, oldest first."""
        changes, self._noted = self._noted, []
        return changes

    def release(self, keys: Sequence[str]) -> None:
        """Give back the half-open probes of these keys (the work never ran)."""
        if not self._unsettled:
            return
        for key in keys:
            if (breaker := self._breakers.get(key)) is not None:
                breaker.release_probe()

    def reset(self, key: str) -> list[Change]:
        """Force one breaker closed; returns its changes in order, like :meth:`record`."""
        breaker = self.get(key)
        changes = [moved] if (moved := breaker.poll()) is not None else []
        if (change := breaker.reset()) is not None:
            changes.append(change)
        return changes

    def next_retry_at(self) -> float | None:
        """The earliest monotonic time an open breaker goes half-open; None if none is open."""
        if not self._unsettled:
            return None
        times = [t for breaker in self._breakers.values() if (t := breaker.retry_at()) is not None]
        return min(times, default=None)

    def poll(self) -> list[Change]:
        """Breakers that went half-open since the last poll (so the caller can emit events)."""
        if not self._unsettled:
            return []
        unsettled = [b for b in self._breakers.values() if b.key in self._unsettled]
        return [c for breaker in unsettled if (c := breaker.poll()) is not None]
