"""blitz as an MCP server: other agents start and steer goals through the Model Context Protocol.

One set of tool and resource definitions (:mod:`.tools`, over the official ``mcp`` SDK's
``MCPServer``) reaches blitz through one small interface, :class:`.access.Access`, which two
ways in implement:

* ``blitz mcp`` (stdio, for an agent's MCP configuration): :class:`.remote.RemoteAccess` talks to
  the running daemon over its HTTP API, with the daemon's URL and token;
* ``/mcp`` in the daemon (streamable HTTP, behind the API's bearer token,
  :mod:`.endpoint`): :class:`.local.LocalAccess` calls :mod:`blitz.actions` through the daemon's
  :class:`~blitz.server.host.Host`.

Either way every change goes through :mod:`blitz.actions`, as from the CLI and the API; what a
tool refuses (no such goal, not now, a bad argument) comes back as a tool error saying what was
wrong and what is valid, for the calling model to act on.
"""
