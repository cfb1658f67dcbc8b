"""The API's Slack routes: which project each channel's goals go to (docs/api.md, "Slack").

``GET /api/slack/channels``; ``PUT /api/slack/channels/{channel}`` with ``{"project": ...}``;
``DELETE /api/slack/channels/{channel}``. Behind the daemon's token, like the rest of the API;
Slack's own requests come in at ``/slack/events`` (:mod:`~.bridge`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from blitz.integrations.slack import channels

if TYPE_CHECKING:
    from blitz.server.host import Host


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project: str = Field(description="The project's id or name.")


class ChannelOut(BaseModel):
    channel: str
    project_id: str
    project: str


def _out(mapping: channels.Mapping) -> ChannelOut:
    return ChannelOut(
        channel=mapping.channel, project_id=mapping.project.id, project=mapping.project.name
    )


def routes(router: APIRouter, host: Host) -> None:
    store = host.store

    @router.get("/api/slack/channels", response_model=list[ChannelOut])
    def list_channels() -> list[ChannelOut]:
        """Every channel mapped to a project."""
        return [_out(m) for m in channels.mappings(store)]

    @router.put("/api/slack/channels/{channel}", response_model=ChannelOut)
    async def map_channel(channel: str, body: ChannelIn) -> ChannelOut:
        """Start the goals of ``channel`` (a Slack channel id) in ``project``."""
        return _out(await channels.map_channel(store, channel, body.project))

    @router.delete("/api/slack/channels/{channel}", status_code=204)
    async def unmap_channel(channel: str) -> Response:
        await channels.unmap_channel(store, channel)
        return Response(status_code=204)
