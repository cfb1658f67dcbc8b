"""Slack's settings: the tokens, read from Slack's own variable names only, and who may use it.

Read once by ``blitz serve`` and handed to the daemon; nothing here is ever written to a file.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SlackSettings(BaseSettings):
    """``SLACK_BOT_TOKEN`` (``xoxb-``), ``SLACK_SIGNING_SECRET`` (HTTP events) and
    ``SLACK_APP_TOKEN`` (``xapp-``: Socket Mode); ``BLITZ_SLACK_*`` for the rest."""

    model_config = SettingsConfigDict(
        env_prefix="BLITZ_SLACK_", extra="ignore", populate_by_name=True
    )

    bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN")
    )
    signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET")
    )
    app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN")
    )
    api_url: str = ""
    """Slack's Web API base URL (``BLITZ_SLACK_API_URL``; a fake in tests)."""
    update_interval: float = Field(default=1.0, ge=0)
    """Seconds between two rounds of thread updates (Slack takes about one edit a second)."""
    retry_backoff: float = Field(default=0.5, ge=0)
    """The first wait, in seconds, before retrying a call Slack answered with a 5xx (doubles)."""
    allowed_users: str = ""
    """Comma-separated user ids who may start and steer goals; empty: everyone in a mapped
    channel (``BLITZ_SLACK_ALLOWED_USERS``)."""
    allowed_channels: str = ""
    """Comma-separated channel ids the bot answers in; empty: every mapped channel."""

    @property
    def enabled(self) -> bool:
        """A bot token and a way in (HTTP events or Socket Mode)."""
        return self.bot_token is not None and (
            self.signing_secret is not None or self.app_token is not None
        )

    @property
    def users(self) -> frozenset[str]:
        return _ids(self.allowed_users)

    @property
    def channels(self) -> frozenset[str]:
        return _ids(self.allowed_channels)

    def secrets(self) -> list[str]:
        """The tokens set, for redaction."""
        found = (self.bot_token, self.signing_secret, self.app_token)
        return [s.get_secret_value() for s in found if s is not None and s.get_secret_value()]


def _ids(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())
