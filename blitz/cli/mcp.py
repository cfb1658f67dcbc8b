"""``blitz mcp``: blitz's MCP tools over stdio, for an agent's MCP configuration.

It talks to the running daemon (``blitz serve``) over its HTTP API, with the URL and token the
other ``--server`` commands use. Standard output is the protocol's alone; what it has to say
goes to standard error. With no daemon to talk to it still serves, says so on standard error,
and every tool answers with the same message as a tool error, so the calling agent learns what
to do (start ``blitz serve``, or give the right URL and token).
"""

from __future__ import annotations

import asyncio
import logging

import typer

from blitz.cli.common import app, err, token_option
from blitz.integrations.mcp.remote import DEFAULT_SERVER, SERVER_ENV


@app.command()
def mcp(
    server: str = typer.Option(
        DEFAULT_SERVER,
        "--server",
        envvar=SERVER_ENV,
        help=f"The blitz daemon's URL (or ${SERVER_ENV}).",
    ),
    token: str = token_option(),
) -> None:
    """Serve blitz's MCP tools over stdio (for an agent's MCP configuration), talking to the
    running daemon (`blitz serve`) with its URL and token."""
    logging.basicConfig(level=logging.WARNING, format="blitz mcp: %(levelname)s %(message)s")
    asyncio.run(_serve(server, token))


async def _serve(url: str, token: str) -> None:
    from blitz.integrations.mcp.remote import RemoteAccess
    from blitz.integrations.mcp.tools import build

    access = RemoteAccess(url, token)
    try:
        problem = access.problem() or await access.check()
        if problem:
            err.print(f"blitz mcp: {problem}", markup=False, soft_wrap=True)
        else:
            err.print(f"blitz mcp: serving the blitz daemon at {access.url}", markup=False)
        await build(access).run_stdio_async()
    finally:
        await access.aclose()
