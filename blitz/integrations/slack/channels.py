"""Which project a channel's goals go to: the actions behind ``blitz slack map``, ``unmap`` and
``list`` and the API's ``/api/slack/channels`` (several channels may map to one project)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from blitz.actions import NotFound, project_of
from blitz.domain import Project
from blitz.errors import UserError
from blitz.store.base import Store

_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")


@dataclass(frozen=True, slots=True)
class Mapping:
    """A channel and the project its goals go to."""

    channel: str
    project: Project


def check_channel(channel: str) -> str:
    """``channel`` as Slack names it (an id such as ``C0123ABC``, not ``#general``)."""
    channel = channel.strip()
    if not _CHANNEL.match(channel):
        raise UserError(
            f"{channel!r} is not a Slack channel id: use the id (C0123ABC; in Slack, the "
            "channel's details show it at the bottom), not its name"
        )
    return channel


async def map_channel(store: Store, channel: str, project: str) -> Mapping:
    """Send the goals started in ``channel`` to ``project`` (id or name)."""
    channel = check_channel(channel)
    found = project_of(store, project)
    await asyncio.to_thread(store.slack.map_channel, channel, found.id)
    return Mapping(channel, found)


async def unmap_channel(store: Store, channel: str) -> str:
    """Stop taking goals in ``channel``."""
    channel = channel.strip()
    if not await asyncio.to_thread(store.slack.unmap_channel, channel):
        raise NotFound(f"channel {channel!r} is not mapped to a project")
    return channel


def mappings(store: Store) -> list[Mapping]:
    """Every mapped channel and its project (a project removed since is left out)."""
    projects = {p.id: p for p in store.list_projects()}
    return [
        Mapping(channel, projects[project_id])
        for channel, project_id in store.slack.channels().items()
        if project_id in projects
    ]


def project_for(store: Store, channel: str) -> Project | None:
    """The project of ``channel``, None if it has none."""
    project_id = store.slack.channels().get(channel)
    return store.get_project(project_id) if project_id else None
