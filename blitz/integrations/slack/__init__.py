"""Slack: a goal from a message, one thread per goal, steering from the thread.

- :mod:`~.settings`: the tokens (from ``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET``,
  ``SLACK_APP_TOKEN`` only) and who may use the bot;
- :mod:`~.channels`: which project each channel's goals go to (the CLI and the API);
- :mod:`~.commands`: what a reply in a goal's thread asks for;
- :mod:`~.messages`: what blitz says in a thread (plan, progress, end), built on
  :mod:`blitz.progress`;
- :mod:`~.delivery`: the Web API client: 429 and 5xx retried with backoff, a revoked token
  pauses delivery instead of failing;
- :mod:`~.threads`: follows the goals started from Slack and keeps each thread up to date;
- :mod:`~.listeners`: what blitz does with a mention, a message, a thread reply, a click;
- :mod:`~.bridge`: the bolt app over all of it, mounted at ``/slack/events`` in the daemon
  and connected over Socket Mode when an app token is set.

Invariants: a request whose signature does not check (bolt's v0 check, 5-minute window) changes
nothing; a delivery Slack retries (same event id, or the same message as a mention and a
message) starts at most one goal; every change goes through :mod:`blitz.actions` (or
:mod:`~.channels`); the thread of each goal is stored, so a restarted daemon keeps it up to date.
"""
