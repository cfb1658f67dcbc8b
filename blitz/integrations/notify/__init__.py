"""Notifications: telling people what happened, durably.

A notifiable event (goal succeeded / failed, plan waits for approval, budget exceeded, project
paused, breaker opened) gets a row of the store's outbox in the transaction that writes it
(:mod:`blitz.store.outbox`). The daemon's :class:`~blitz.integrations.notify.notifier.Notifier`
sends each to the sinks of the daemon's ``[notify]`` (``BLITZ_NOTIFY``) and of the project's
blitz.toml (:mod:`~blitz.integrations.notify.sinks`: webhook, Slack, email), at least once, with
backoff, and reports a sink it gives up on. :mod:`~blitz.integrations.notify.message` says what
a notification says. Invariant: no secret leaves through a sink (every text is redacted, every
secret a sink reads is registered for redaction).
"""
