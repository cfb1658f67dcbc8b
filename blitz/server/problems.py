"""Errors as RFC 9457 problem details (``application/problem+json``).

Routes raise :class:`Problem` (or let a :class:`~blitz.errors.UserError` through: an action's
:class:`~blitz.actions.NotFound` is a 404, its :class:`~blitz.actions.Conflict` a 409); the handlers
installed by :func:`install` turn every failure, including FastAPI's own validation errors,
unknown routes and bugs, into a problem document. A bug answers 500 with no traceback; the
traceback goes to the server's log.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from blitz.actions import Conflict, NotFound, ProjectPaused
from blitz.backends.options import NO_MODEL
from blitz.errors import (
    BlitzError,
    ConfigError,
    DirtyCheckout,
    PlanError,
    RunError,
    UserError,
)
from blitz.redact import redact_data

log = logging.getLogger("blitz.server")

MEDIA_TYPE = "application/problem+json"

_TITLES = {
    400: "bad request",
    401: "token required",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    422: "invalid request",
    500: "internal error",
    503: "shutting down",
}


class Problem(Exception):
    """An error answer: ``status``, a short ``title`` and a ``detail`` for the user."""

    def __init__(
        self,
        status: int,
        detail: str = "",
        *,
        title: str = "",
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title or _TITLES.get(status, "error")
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def not_found(detail: str) -> Problem:
    return Problem(404, detail)


def conflict(detail: str) -> Problem:
    return Problem(409, detail)


def field_errors(field: str, *messages: str) -> dict[str, Any]:
    """The ``errors`` member of a problem: what is wrong with one field of the request."""
    return {"errors": [{"field": field, "message": m} for m in messages]}


def no_planner(project: str) -> Problem:
    """A goal sent without a plan to a project that has no model to plan it."""
    return Problem(
        400,
        f"no model is configured to plan goals of {project}: send the goal with its plan, or "
        "set a planner model ([models] planner in the project's blitz.toml, or BLITZ_MODEL in "
        "the daemon's environment)",
        title="no planner",
        extra=field_errors(
            "plan",
            "no model is configured to plan this goal: write its plan here, or set [models] "
            "planner in the project's blitz.toml",
        ),
    )


@contextlib.contextmanager
def in_api_terms() -> Iterator[None]:
    """Say the errors of an action whose messages speak of the command line (its flags and
    commands) in the API's terms, naming the field of the request to change."""
    try:
        yield
    except ProjectPaused as exc:
        raise Problem(
            409,
            f"project paused: {exc.reason}",
            extra=field_errors("project", f"paused ({exc.reason}): resume the project first"),
        ) from exc
    except ConfigError as exc:
        if str(exc) != NO_MODEL:
            raise
        raise Problem(
            400,
            "no model is configured for the embedded agent: set [models] agent in the project's "
            "blitz.toml (or BLITZ_MODEL in the daemon's environment), or choose another backend",
            title="no model",
            extra=field_errors("backend", "the embedded agent has no model configured"),
        ) from exc
    except DirtyCheckout as exc:
        shown = ", ".join(exc.paths[:5]) + (
            f" and {len(exc.paths) - 5} more" if exc.paths[5:] else ""
        )
        raise Problem(
            400,
            f"{exc.repo} has uncommitted changes ({shown}), which would not be part of the "
            "goal: blitz works only from committed work. Commit or stash them, or set "
            "allow_dirty to go ahead without them.",
            title="uncommitted changes",
            extra=field_errors(
                "allow_dirty",
                f"the repository has uncommitted changes ({shown}); commit or stash them, or go "
                "ahead without them",
            ),
        ) from exc


def problem_response(problem: Problem) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        **problem.extra,
    }
    return Response(
        content=json.dumps(redact_data(body)),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=problem.headers,
    )


def from_user_error(exc: UserError) -> Problem:
    """The problem for a user error that a route let through: what does not exist is 404, an
    action that does not apply now 409, a bad plan an invalid body (422), a repository or
    configuration problem a bad request (400)."""
    if isinstance(exc, NotFound):
        return not_found(str(exc))
    if isinstance(exc, Conflict):
        return conflict(str(exc))
    if isinstance(exc, PlanError):
        return Problem(
            422,
            str(exc),
            title="invalid plan",
            extra={"errors": [{"field": "plan", "message": p} for p in exc.problems]},
        )
    return Problem(400, str(exc))


def _field(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_problem(exc: RequestValidationError) -> Problem:
    """422 naming every invalid field; a body that is not JSON at all is a 400."""
    errors = list(exc.errors())
    broken = [e for e in errors if e.get("type") == "json_invalid"]
    if broken:
        error = broken[0]
        where = (error.get("ctx") or {}).get("error", "")
        return Problem(400, f"malformed JSON{': ' + str(where) if where else ''}")
    fields = [{"field": _field(e.get("loc", ())), "message": str(e.get("msg", ""))} for e in errors]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return Problem(422, detail, extra={"errors": fields})


Fallback = Callable[[Request], Awaitable[Response | None]]


def install(app: FastAPI, *, not_found: Fallback | None = None) -> None:
    """Answer every error of ``app`` with a problem document. ``not_found`` may answer a request
    that matched no route instead (the dashboard's files)."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc)

    async def on_user_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, UserError)
        return problem_response(from_user_error(exc))

    async def on_run_error(request: Request, exc: Exception) -> Response:
        # A failure blitz knows (git failed, a provider is down): its message, not a traceback.
        log.warning("request %s %s failed: %s", request.method, request.url.path, exc)
        return problem_response(Problem(500, str(exc), title="run error"))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(validation_problem(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else ""
        if exc.status_code == 404 and detail in ("", "Not Found"):
            if not_found is not None and (answer := await not_found(request)) is not None:
                return answer
            detail = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return problem_response(Problem(exc.status_code, detail, headers=exc.headers))

    async def on_bug(request: Request, exc: Exception) -> Response:
        log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(Problem(500, "the server failed; see its log"))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(UserError, on_user_error)
    app.add_exception_handler(RunError, on_run_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(BlitzError, on_bug)
    app.add_exception_handler(Exception, on_bug)
