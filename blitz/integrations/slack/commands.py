"""What a reply in a goal's thread asks for: ``status``, ``cancel``, ``approve``, ``retry TASK``,
``skip TASK``; anything else is a follow-up goal that continues the thread's goal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
"""A link, channel or user group as Slack writes them: ``<https://x|label>``, ``<#C123|name>``."""

HELP = (
    "`status`, `cancel`, `approve`, `retry TASK`, `skip TASK`, or anything else: a follow-up goal"
)


class Verb(StrEnum):
    STATUS = "status"
    CANCEL = "cancel"
    APPROVE = "approve"
    RETRY = "retry"
    SKIP = "skip"
    FOLLOW_UP = "follow-up"
    UNCLEAR = "unclear"  # a command missing its task


@dataclass(frozen=True, slots=True)
class Command:
    verb: Verb
    task: str = ""  # retry, skip
    text: str = ""  # a follow-up's goal; what is unclear


def words(text: str) -> str:
    """``text`` as its author wrote it, on one line: without mentions of users (the bot's own
    included), a link as its address, a channel as its name, and Slack's escapes of ``&``, ``<``
    and ``>`` undone."""
    plain = _LINK.sub(_literal, _MENTION.sub(" ", text))
    plain = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(plain.split())


def _literal(link: re.Match[str]) -> str:
    target, label = link.group(1), link.group(2)
    if target.startswith("#"):
        return f"#{label}" if label else target
    if target.startswith("!"):
        return f"@{label or target[1:]}"
    return target.removeprefix("mailto:")


def parse(text: str) -> Command:
    """The command a thread reply says (case and mentions aside)."""
    said = words(text)
    head, _, rest = said.partition(" ")
    verb = head.lower().rstrip(":!.")
    rest = rest.strip()
    if verb in ("status", "cancel", "approve") and not rest:
        return Command(Verb(verb))
    if verb in ("retry", "skip"):
        task = rest.strip("`'\"")
        if task and " " not in task:
            return Command(Verb(verb), task=task)
        if not task:
            return Command(Verb.UNCLEAR, text=f"say which task: `{verb} TASK`")
    return Command(Verb.FOLLOW_UP, text=said)
