"""The MCP tools' :class:`~blitz.integrations.mcp.access.Access` for ``blitz mcp``: the running
daemon, over its HTTP API (docs/api.md), with its URL and token.

The daemon's problem documents become the same user errors the actions raise (404:
:class:`~blitz.actions.NotFound`, 409: :class:`~blitz.actions.Conflict`, another 4xx: a
:class:`~blitz.errors.UserError` naming the fields); a daemon that cannot be reached, or that
refuses the token, is :class:`~blitz.integrations.mcp.access.NoDaemon`, saying how to start it
or where the token comes from. Nothing is asked before a tool is called, so an agent's MCP
client can start ``blitz mcp`` before the daemon runs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from blitz.actions import Conflict, NotFound
from blitz.domain import GoalState
from blitz.errors import RunError, UserError
from blitz.integrations.mcp.access import Action, NoDaemon
from blitz.server.inputs import GoalIn
from blitz.server.schemas import (
    ActionOut,
    AttemptDetailOut,
    EventOut,
    GoalDetailOut,
    GoalOut,
    ProjectOut,
    TaskDetailOut,
)

TOKEN_ENV = "BLITZ_SERVER_TOKEN"
SERVER_ENV = "BLITZ_SERVER"
DEFAULT_SERVER = "http://127.0.0.1:8765"
"""Where ``blitz serve`` listens unless told otherwise."""


def _segment(value: str) -> str:
    return quote(value, safe="")


class RemoteAccess:
    """The daemon at ``url``, reached with ``token``."""

    def __init__(self, url: str, token: str, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def problem(self) -> str:
        """Why this access cannot work whatever the daemon says ("" if it may)."""
        if not self.url.startswith(("http://", "https://")):
            return (
                f"--server wants the daemon's URL such as {DEFAULT_SERVER}, not {self.url!r} "
                f"(or set {SERVER_ENV})"
            )
        if not self.token:
            return (
                f"no token for the blitz daemon at {self.url}: pass --token or set {TOKEN_ENV} "
                "in the MCP server's environment (it was printed when `blitz serve` first "
                "started; `blitz token` makes a new one)"
            )
        return ""

    async def check(self) -> str:
        """Whether the daemon answers and takes the token: "" if so, else why not."""
        try:
            await self._call("GET", "/api/projects")
        except UserError as exc:
            return str(exc)
        return ""

    async def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        if problem := self.problem():
            raise NoDaemon(problem)
        try:
            response = await self._http.request(method, path, json=body, params=params)
        except httpx.TransportError as exc:
            raise NoDaemon(
                f"no blitz daemon is running at {self.url} ({type(exc).__name__}: {exc}): start "
                "it with `blitz serve`, or point `blitz mcp` at the one that runs with --server "
                f"(or {SERVER_ENV})"
            ) from exc
        if response.status_code >= 400:
            raise _refusal(response, self.url)
        return response.json() if response.content else None

    # -- projects ---------------------------------------------------------------------------

    async def list_projects(self) -> list[ProjectOut]:
        return [ProjectOut.model_validate(p) for p in await self._call("GET", "/api/projects")]

    async def add_project(self, path: str, name: str) -> ProjectOut:
        body = {"path": path, "name": name}
        return ProjectOut.model_validate(await self._call("POST", "/api/projects", body))

    # -- goals ------------------------------------------------------------------------------

    async def submit_goal(self, request: GoalIn) -> GoalDetailOut:
        body = request.model_dump(exclude_none=True)
        return GoalDetailOut.model_validate(await self._call("POST", "/api/goals", body))

    async def list_goals(self, project: str, states: list[GoalState], limit: int) -> list[GoalOut]:
        params: dict[str, Any] = {"limit": limit}
        if project:
            params["project"] = project
        if states:
            params["state"] = [s.value for s in states]
        found = await self._call("GET", "/api/goals", params=params)
        return [GoalOut.model_validate(g) for g in found]

    async def goal(self, key: str) -> GoalDetailOut:
        return GoalDetailOut.model_validate(await self._call("GET", f"/api/goals/{_segment(key)}"))

    async def events(self, key: str, after: int, limit: int) -> list[EventOut]:
        found = await self._call(
            "GET", f"/api/goals/{_segment(key)}/events", params={"after": after, "limit": limit}
        )
        return [EventOut.model_validate(e) for e in found]

    async def task(self, key: str, task: str) -> TaskDetailOut:
        path = f"/api/goals/{_segment(key)}/tasks/{_segment(task)}"
        return TaskDetailOut.model_validate(await self._call("GET", path))

    async def attempt(self, key: str, attempt: str) -> AttemptDetailOut:
        path = f"/api/goals/{_segment(key)}/attempts/{_segment(attempt)}"
        return AttemptDetailOut.model_validate(await self._call("GET", path))

    async def act(self, key: str, action: Action, *, task: str = "", reason: str = "") -> ActionOut:
        goal = _segment(key)
        body: dict[str, str] | None = None
        if action in (Action.RETRY, Action.SKIP):
            path = f"/api/goals/{goal}/tasks/{_segment(task)}/{action.value}"
        else:
            path = f"/api/goals/{goal}/{action.value}"
            if action in (Action.REJECT, Action.CANCEL) and reason:
                body = {"reason": reason}
        return ActionOut.model_validate(await self._call("POST", path, body))


def _refusal(response: httpx.Response, url: str) -> Exception:
    """The user error for a problem document the daemon answered."""
    try:
        problem = response.json()
        detail = str(problem.get("detail") or problem.get("title") or "")
        errors = problem.get("errors") or []
    except (ValueError, AttributeError):
        detail, errors = response.text[:500], []
    status = response.status_code
    if status == 401:
        return NoDaemon(
            f"the blitz daemon at {url} refused the token ({detail}): give `blitz mcp` the "
            f"daemon's current token with --token or {TOKEN_ENV} (`blitz token` makes a new one)"
        )
    if status == 404:
        return NotFound(detail)
    if status == 409:
        return Conflict(detail)
    if status < 500:
        said = [e for e in errors if isinstance(e, dict) and str(e.get("message") or "")]
        fields = "; ".join(
            f"{e.get('field', '')}: {e['message']}" for e in said if str(e["message"]) not in detail
        )
        return UserError(detail + (f" ({fields})" if fields else ""))
    return RunError(f"the blitz daemon failed ({status}): {detail}", retryable=status == 503)
