"""``[notify]``: who is told what, in a project's blitz.toml and (as ``BLITZ_NOTIFY``) in the
daemon's settings. Its own module, light to import: the settings, which every command reads,
need it (:mod:`blitz.config_sections` holds the other sections of blitz.toml)."""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

NotifyEvent = Literal[
    "goal.succeeded",
    "goal.failed",
    "plan.awaiting_approval",
    "budget.exceeded",
    "project.paused",
    "breaker.opened",
]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = get_args(NotifyEvent)
"""The events a ``[notify]`` section may ask for (:data:`blitz.events.NOTIFIABLE`)."""


def _env_name(value: str) -> str:
    if value and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError("must be the name of an environment variable (NAME), not its value")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
"""The name of an environment variable (a secret's place, never the secret itself)."""


class NotifyConfig(BaseModel):
    """Who is told when a goal ends, a plan waits for approval, a budget is spent, the project
    pauses or a breaker opens. No secrets here: URLs and passwords come from the environment
    variables named below (`*_env`); the Slack bot's token from SLACK_BOT_TOKEN."""

    # As strict as every section of blitz.toml: TOML has real types and a quoted number is a
    # mistake. An error never shows the value: a URL pasted where a variable's name goes is a
    # secret.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, hide_input_in_errors=True)

    events: list[NotifyEvent] = Field(
        default_factory=lambda: list(NOTIFY_EVENTS), description="The events that notify."
    )
    webhook_url_env: EnvName = Field(
        default="", description="Variable holding the webhook's URL (a JSON POST per event)."
    )
    webhook_secret_env: EnvName = Field(
        default="", description="Variable holding the key of X-Blitz-Signature (HMAC-SHA256)."
    )
    slack_webhook_url_env: EnvName = Field(
        default="", description="Variable holding a Slack incoming webhook's URL."
    )
    slack_channel: str = Field(
        default="", description="A Slack channel (id or #name) the bot posts to."
    )
    email_to: list[str] = Field(default_factory=list, description="Addresses mailed.")
    email_from: str = Field(default="", description="The sender of the mail.")
    smtp_host: str = Field(default="", description="The SMTP server's host.")
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=587, description="The SMTP server's port."
    )
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description='"starttls", "tls" (from the start) or "none".'
    )
    smtp_user: str = Field(default="", description='User to log in as ("": no login).')
    smtp_password_env: EnvName = Field(
        default="", description="Variable holding the SMTP password."
    )
