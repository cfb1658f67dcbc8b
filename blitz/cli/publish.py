"""``blitz publish``: push a succeeded goal's branch and open its pull request, by hand.

A goal whose tasks all succeeded but whose push or pull request failed ends ``succeeded`` with
publishing pending; this tries once more, now (the process that drove it already retried with
backoff). Publishing is idempotent, so a goal that did publish may be published again.
"""

from __future__ import annotations

import asyncio

import typer

from blitz.cli.common import app, make_app, out, print_json
from blitz.cli.run import drive, reported
from blitz.conductor.publishing import PENDING
from blitz.publish import publish_again


@app.command()
def publish(
    goal: str = typer.Argument(..., help="Goal id (or a unique prefix)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Push a succeeded goal's branch and open its pull request again (after it failed)."""
    code = asyncio.run(_publish(goal, json_out))
    raise typer.Exit(code)


async def _publish(key: str, json_out: bool) -> int:
    blitz = make_app()
    blitz.settings.publish_retry_for = 0.0  # one try, now: a person is waiting for it
    try:
        engine = blitz.engine()
        found = await publish_again(blitz, engine, key)
        if not json_out:
            out.print(f"publishing {found.id}: {found.title}", markup=False)
        finished = await drive(engine)
        final = finished.get(found.id) or blitz.store.get_goal(found.id)
        assert final is not None
        if not json_out:
            return 0 if reported(blitz, final, json_out=False) else 1
        print_json(
            {
                "goal": final.id,
                "state": final.state.value,
                "publish_state": final.publish_state,
                "publish_error": final.publish_error,
                "publish_attempts": final.publish_attempts,
                "pr": final.pr_url,
            }
        )
        return 0 if final.publish_state != PENDING else 1
    finally:
        await blitz.aclose()
