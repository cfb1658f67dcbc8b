"""What the Claude Code backend's tests share: the backend as the registry builds it, and a
script that speaks the CLI's stream-json protocol in place of a CLI that is broken."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from backend_helpers import script

from blitz.backends.base import AgentBackend
from blitz.backends.registry import BackendOptions, create_backend
from blitz.breaker import BreakerBoard
from blitz.config import ClaudeCodeConfig
from blitz.testing.clock import ManualClock
from blitz.testing.model_server import ModelServer

KEY = "sk-ant-claude-code-test-key-0123456789"
QUICK = {"CLAUDE_CODE_MAX_RETRIES": "0"}  # the CLI's own retries would only slow the tests


def backend(
    server: ModelServer | None = None,
    *,
    key: str = KEY,
    breakers: BreakerBoard | None = None,
    **config: Any,
) -> AgentBackend:
    """The backend as the registry builds it, pointed at ``server``."""
    env = {"ANTHROPIC_API_KEY": key, **QUICK}
    if server is not None:
        env["ANTHROPIC_BASE_URL"] = server.anthropic_base_url
    options = BackendOptions(
        claude_code=ClaudeCodeConfig(**config), env=env, breakers=breakers, clock=ManualClock()
    )
    return create_backend("claude-code", options)


FAKE_CLI = """#!{python}
import json, sys
if "--version" in sys.argv:
    print("2.1.330 (Claude Code)")
    sys.exit(0)

def send(message):
    print(json.dumps(message), flush=True)

initialize = json.loads(sys.stdin.readline())
answer = {{"subtype": "success", "request_id": initialize["request_id"], "response": {{}}}}
send({{"type": "control_response", "response": answer}})
sys.stdin.readline()  # the prompt
send({{"type": "assistant", "message": {{"role": "assistant", "model": "fake",
      "content": [{{"type": "text", "text": "Starting."}}]}}}})
{body}
"""


def fake_cli(tmp_path: Path, body: str) -> Path:
    """A script speaking the CLI's stream-json protocol up to a first message, then ``body``."""
    return script(tmp_path / "fake-claude", FAKE_CLI.format(python=sys.executable, body=body))
