"""Adapters to outside services (GitHub, ...).

Each adapter translates the service's failures into :mod:`blitz.errors` at its edge: a rejected
credential is a :class:`~blitz.errors.ConfigError` (never retried), an outage a retryable
:class:`~blitz.errors.RunError`. No message an adapter raises ever contains a credential.
"""
