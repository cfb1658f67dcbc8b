"""Scripting the real codex CLI against the scripted Responses API server
(:class:`blitz.testing.model_server.ModelServer`): its tool calls, and a small project it works
on (tests/backends/test_codex.py, tests/executors/ray/test_codex_on_worker.py): adding the
multiply module to ``engine_helpers.CALC``."""

from __future__ import annotations

from typing import Any

from engine_helpers import MUL, MUL_TEST


def patch(*lines: str) -> str:
    """An apply_patch envelope around ``lines``."""
    return "\n".join(["*** Begin Patch", *lines, "*** End Patch"]) + "\n"


def apply_patch(*lines: str) -> dict[str, Any]:
    """A call of codex's freeform apply_patch tool."""
    return {"name": "apply_patch", "input": {"input": patch(*lines)}}


def shell(command: str) -> dict[str, Any]:
    """A call of codex's shell tool (``exec_command``, a PTY-backed unified exec)."""
    return {"name": "exec_command", "input": {"cmd": command}}


def reply(*calls: dict[str, Any], text: str | None = None, **condition: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"tool_calls": list(calls)}
    if text is not None:
        answer["text"] = text
    return {**condition, "reply": answer}


MUL_CHECK = "from calc.mul import mul; assert mul(4, 5) == 20"


def added(path: str, text: str) -> list[str]:
    """The lines of an apply_patch that adds the file ``path`` holding ``text``."""
    return [f"*** Add File: {path}", *(f"+{line}" for line in text.splitlines())]


def mul_script(unittest: str) -> list[dict[str, Any]]:
    """Codex adds calc/mul.py and its test, runs ``unittest``, and says what it did."""
    return [
        reply(
            apply_patch(*added("calc/mul.py", MUL), *added("tests/test_mul.py", MUL_TEST)),
            match="Task mul: Add mul()",
        ),
        reply(shell(f"{unittest} 2>&1"), match_tool_result="A calc/mul.py"),
        {"match_tool_result": "\nOK", "reply": {"text": "Added calc/mul.py and its test."}},
    ]
