"""The end of a goal: push its branch and open a pull request, or write the description to a file.

Publishing is idempotent so a resumed goal can publish again: pushing the same branch head is a
no-op, and an open pull request for the branch is found rather than opened twice. A push refused
for its credentials (like GitHub refusing the token) is a :class:`~blitz.errors.ConfigError`
that says what to fix: trying again would not help until a person does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from blitz import actions, followups, pr
from blitz.conductor import GoalReport, Published
from blitz.conductor.ownership import GoalTaken
from blitz.conductor.publishing import PENDING
from blitz.domain import Goal, GoalState, TaskState
from blitz.errors import ConfigError, GitError
from blitz.integrations.github import (
    GitHubClient,
    open_or_find_pr,
    parse_github_remote,
    update_open_pr,
)
from blitz.store.leases import held_elsewhere

if TYPE_CHECKING:
    from blitz.app import App
    from blitz.conductor import Engine
    from blitz.workspace import Workspace


class Publisher:
    """Publishes one project's goals."""

    def __init__(
        self,
        *,
        workspace: Workspace,
        goals_dir: Path,
        github_token: str = "",
        github_api_url: str = "https://api.github.com",
        fault: Callable[[str], None] = lambda point: None,
        unconfined: bool = False,
    ) -> None:
        """``unconfined``: the project's agents run without the sandbox (the PR says so)."""
        self._unconfined = unconfined
        self._ws = workspace
        self._goals_dir = goals_dir
        self._token = github_token
        self._api_url = github_api_url
        self._fault = fault

    async def __call__(self, report: GoalReport) -> Published:
        goal, project = report.goal, report.project
        body = pr.describe(
            goal=goal,
            tasks=report.tasks,
            attempts=report.attempts,
            recoveries=report.recoveries,
            scripted=report.scripted,
            unconfined=self._unconfined,
        )
        path = self._goals_dir / goal.id / "pull-request.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body + "\n", encoding="utf-8")
        committed = any(t.commit for t in report.tasks if t.state is TaskState.SUCCEEDED)
        if not committed:
            return Published(description_path=str(path), note="no task committed anything")
        if not project.remote:
            return Published(
                description_path=str(path),
                note="the project has no remote: the goal branch stays local",
            )
        url = await self._ws.remote_url(project.remote)
        if url is None:
            return Published(
                description_path=str(path), note=f"remote {project.remote!r} does not exist"
            )
        try:
            await self._ws.push(project.remote, goal.branch)
        except GitError as exc:
            if _CREDENTIALS.search(str(exc)):
                raise ConfigError(
                    f"git push was refused: check the credentials of remote {project.remote!r} "
                    f"({url}): a credential helper, an SSH key or a token with write access. "
                    f"{exc}"
                ) from exc
            raise
        self._fault("after_push")
        if parse_github_remote(url) is None:
            return Published(
                description_path=str(path), pushed=True, note="the remote is not on GitHub"
            )
        if not self._token:
            return Published(
                description_path=str(path),
                pushed=True,
                note="no GitHub token (set GITHUB_TOKEN) so no pull request was opened",
            )
        async with GitHubClient(self._token, base_url=self._api_url) as client:
            if goal.follows:  # the earlier goal's pull request, said what the follow-up added
                found = await update_open_pr(
                    client,
                    remote_url=url,
                    head=goal.branch,
                    body=lambda text: followups.updated_body(text, goal, body),
                )
                if found:
                    return Published(pr_url=found, description_path=str(path), pushed=True)
            pr_url = await open_or_find_pr(
                client,
                remote_url=url,
                title=pr.pr_title(goal),
                body=body,
                head=goal.branch,
                base=goal.base_branch,
            )
        return Published(pr_url=pr_url, description_path=str(path), pushed=True)


async def publish_again(app: App, engine: Engine, key: str) -> Goal:
    """Take on a succeeded goal to publish it once more (after its publishing failed): it is
    marked pending and resumed in ``engine``, whose run publishes it. A Conflict when the goal
    did not succeed or another process is publishing it."""
    goal = actions.goal_of(app.store, key)
    elsewhere = held_elsewhere(app.store.lease(goal.id), engine.ownership.owner)
    if goal.state is GoalState.FINISHING and not elsewhere:
        raise actions.Conflict(
            f"goal {goal.id} stopped while publishing its pull request: resuming it finishes "
            "that (`blitz resume`; a daemon takes it over by itself)"
        )
    if goal.state is not GoalState.SUCCEEDED:
        raise actions.Conflict(
            f"goal {goal.id} is {goal.state.value}: only a goal whose tasks all succeeded is "
            "published"
        )
    if goal.id in engine.runs or elsewhere:
        raise actions.Conflict(f"goal {goal.id} is being published ({goal.runner})")
    try:
        engine.ownership.claim(goal.id)  # first: the pending mark is written as its owner
    except GoalTaken as taken:
        raise actions.Conflict(f"goal {goal.id} is being published ({taken.holder})") from None
    pending = goal.evolve(publish_state=PENDING)
    app.store.write(pending)
    await app.store.flush()
    await engine.resume(pending)
    return pending


_CREDENTIALS = re.compile(
    r"authentication failed|could not read (username|password)|terminal prompts disabled"
    r"|permission denied \(publickey|invalid username or password|access denied"
    r"|returned error: 40[13]|permission to \S+ denied|bad credentials",
    re.IGNORECASE,
)
"""What git says when a remote refuses who is pushing (HTTPS and SSH, GitHub and others)."""
