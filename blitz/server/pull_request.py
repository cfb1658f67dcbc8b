"""The route of a goal's pull request as the dashboard shows it: the description that was
published (Markdown, rendered by the page), the real pull request when one was opened, and
where the branch went (a link on GitHub, the remote's name and address elsewhere). The
description's file on the server is never answered as a place to look."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter
from pydantic import BaseModel

from blitz import actions
from blitz.conductor.publishing import PUBLISHED
from blitz.domain import Goal, Project
from blitz.git import Git
from blitz.integrations.github import parse_github_remote

if TYPE_CHECKING:
    from blitz.server.host import Host

DESCRIPTION_CAP = 200_000
"""Characters of a description answered (GitHub takes no more than 65,536)."""


class PullRequestOut(BaseModel):
    """A goal's pull request: its description and where its work went."""

    goal_id: str
    written: bool  # the description exists (written when the goal ended)
    description: str  # Markdown, as published
    url: str  # the pull request opened for the goal ("" when none was)
    branch: str
    base_branch: str
    pushed: bool  # the goal branch reached the project's remote
    remote: str  # the project's remote ("" when it has none)
    remote_url: str  # its address, without credentials ("" when unknown)
    branch_url: str  # the branch on GitHub, when it was pushed there


def description_path(home: Path, goal_id: str) -> Path:
    """Where publishing writes a goal's description (blitz.publish.Publisher)."""
    return home / "goals" / goal_id / "pull-request.md"


def without_credentials(url: str) -> str:
    """``url`` with any user and password taken out (an HTTPS token, say); an scp-like
    address (``git@host:path``) carries no password and is kept."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def routes(router: APIRouter, host: Host) -> None:
    """Add ``GET /api/goals/{goal}/pull-request`` (docs/api.md) to ``router``."""
    store = host.store

    @router.get("/api/goals/{goal}/pull-request", response_model=PullRequestOut)
    async def pull_request(goal: str) -> PullRequestOut:
        """The goal's pull request description and the links to its work."""

        def load() -> tuple[Goal, str, bool, Project | None]:
            found = actions.goal_of(store, goal)
            path = description_path(host.app.settings.home, found.id)
            written = path.is_file()
            text = path.read_text(encoding="utf-8", errors="replace") if written else ""
            return found, text[:DESCRIPTION_CAP], written, store.get_project(found.project_id)

        found, text, written, project = await asyncio.to_thread(load)
        remote = project.remote if project else ""
        address = ""
        if project is not None and remote and Path(project.path).is_dir():
            named = await Git(Path(project.path), timeout=30).remote_url(remote)
            address = without_credentials(named or "")
        pushed = found.publish_state == PUBLISHED
        url = found.pr_url if found.pr_url.startswith(("https://", "http://")) else ""
        github = parse_github_remote(address) if address else None
        branch_url = ""
        if pushed and github is not None:
            branch_url = f"https://github.com/{github[0]}/{github[1]}/tree/{found.branch}"
        return PullRequestOut(
            goal_id=found.id,
            written=written,
            description=text.rstrip("\n"),
            url=url,
            branch=found.branch,
            base_branch=found.base_branch,
            pushed=pushed,
            remote=remote,
            remote_url=address,
            branch_url=branch_url,
        )
