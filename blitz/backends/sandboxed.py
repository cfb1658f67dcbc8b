"""A backend wrapper that holds the sandbox's mode: with ``[sandbox] mode = "required"`` (the
default) no agent runs where the sandbox cannot start (the project is paused with a message
saying how to install bubblewrap); with ``"off"`` every run starts with a warning that the agent
runs unconfined."""

from __future__ import annotations

from blitz import sandbox
from blitz.backends.base import AgentBackend, AgentRequest, AgentResult, MessageSink
from blitz.sandbox import Policy

UNCONFINED_WARNING = (
    'warning: [sandbox] mode = "off": this agent runs unconfined, with your user\'s access to '
    "files and network"
)


class SandboxedBackend:
    """``inner``, run only as the project's sandbox policy allows."""

    def __init__(self, inner: AgentBackend, policy: Policy) -> None:
        self.inner = inner
        self.policy = policy
        self.name = inner.name

    async def run(
        self, request: AgentRequest, on_message: MessageSink | None = None
    ) -> AgentResult:
        if self.policy.confined:
            found = sandbox.probe()
            if not found.ok:
                return AgentResult.configuration(
                    f"the sandbox is required but cannot start here: {found.reason}"
                )
        elif on_message is not None:
            await on_message(UNCONFINED_WARNING)
        return await self.inner.run(request, on_message)


def confine(name: str, backend: AgentBackend, policy: Policy) -> AgentBackend:
    """``backend`` (named ``name``) as blitz runs it, in the daemon or on a worker node: held to
    the sandbox's mode, and an agent CLI also guarded against edits outside its worktree (the
    scripted one is a fake; the embedded one confines its own tools)."""
    if name in ("scripted", "embedded"):
        return SandboxedBackend(backend, policy)
    from blitz.backends.guard import GuardedBackend

    return SandboxedBackend(GuardedBackend(backend), policy)
