"""The daemon's OpenAPI document without a running daemon: the API built over a throwaway home
(nothing listens, no engine runs), so the typed clients (``integrations/openclaw/blitz-api``)
are generated from exactly what ``GET /api/openapi.json`` serves.

``python -m blitz.server.openapi`` prints it; ``scripts/openclaw-types`` writes it and the
TypeScript types generated from it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any


def document() -> dict[str, Any]:
    """The OpenAPI document the daemon serves at ``/api/openapi.json``."""
    from blitz.app import App
    from blitz.redact import redact_data
    from blitz.server.auth import TokenStore
    from blitz.server.daemon import Daemon
    from blitz.settings import Settings

    with tempfile.TemporaryDirectory(prefix="blitz-openapi-") as home:
        app = App(Settings(home=Path(home)))
        try:
            daemon = Daemon(app, tokens=TokenStore.of_home(Path(home)))
            doc: dict[str, Any] = redact_data(daemon.api.openapi())
        finally:
            asyncio.run(app.aclose())
    return doc


def text(doc: dict[str, Any]) -> str:
    """``doc`` as the committed file holds it (sorted keys, indented, a final newline)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(text(document()))


if __name__ == "__main__":
    main()
