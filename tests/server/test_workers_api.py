"""``GET /api/workers`` and ``blitz workers --server`` with the local executor: no workers, and
a note saying attempts run in the daemon; the route is behind the token like every other. (The
ray executor's answer, with real worker nodes, is tests/executors/ray/test_worker_node.py.)"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from server_helpers import Running, blitz

from blitz.server.workers import LOCAL_NOTE


async def test_the_local_executor_has_no_workers_and_says_so(live: Any) -> None:
    r: Running = await live()
    answer = await r.json("GET", "/api/workers")
    assert answer == {"executor": "local", "address": "", "note": LOCAL_NOTE, "workers": []}
    async with httpx.AsyncClient(base_url=str(r.http.base_url)) as anonymous:
        refused = await anonymous.get("/api/workers")
        assert refused.status_code == 401
        wrong = await anonymous.get("/api/workers", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    # The OpenAPI schema the dashboard's types come from describes it.
    schema = await r.json("GET", "/api/openapi.json")
    assert "/api/workers" in schema["paths"]
    assert {"WorkersOut", "WorkerOut"} <= set(schema["components"]["schemas"])

    # The daemon answers on this test's loop: the command runs in a thread meanwhile.
    url = str(r.http.base_url)
    shown = await asyncio.to_thread(blitz, r.home, "workers", "--server", url, "--token", r.token)
    assert shown.returncode == 0, shown.stderr
    assert "runs every attempt in the daemon's process" in shown.stdout
    as_json = await asyncio.to_thread(
        blitz, r.home, "workers", "--server", url, "--token", r.token, "--json"
    )
    assert json.loads(as_json.stdout)["workers"] == []
