"""Which real agent ``blitz init`` gives a repository: the best one usable here, and why.

In order of preference: Claude Code, then Codex (each with a key blitz can pass it), then the
embedded agent on a model that answers: the one ``BLITZ_MODEL`` names, else Anthropic's or
OpenAI's with their key, else the first model of a local server (Ollama, llama.cpp, vLLM, LM
Studio) answering on this machine. The planner needs a model too; the chosen one also plans
(for Claude Code and Codex: a hosted model whose key is here, else a local one). ``scripted`` is
never chosen: it plays a scenario, it does no work. With nothing usable, :data:`HOW_TO_GET_ONE`
says how to get an agent, a free local one included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from blitz.backends.availability import CLAUDE_KEY, OAUTH_PREFIX, Availability, check
from blitz.backends.local_servers import LocalServer
from blitz.backends.options import BackendOptions

ANTHROPIC_MODEL = "anthropic:claude-sonnet-4-6"
OPENAI_MODEL = "openai:gpt-5"
LOCAL_MODEL = "qwen2.5-coder:7b"
"""The free model suggested when there is none: a 7B coder runs on a laptop's CPU."""

HOW_TO_GET_ONE = (
    "  a hosted model: export ANTHROPIC_API_KEY=... (Claude Code; `claude setup-token` gives a "
    "Claude subscription's) or OPENAI_API_KEY=... (Codex: `blitz backends install codex`)",
    f"  a free local model: install Ollama (https://ollama.com), `ollama pull {LOCAL_MODEL}`, "
    "and leave it running",
    "  then run `blitz init --force` again; `blitz backends list` says what each agent needs",
)
"""Three lines on how to get a usable agent, for when there is none."""


OTHER_KEYS: dict[str, str] = {
    "OPENROUTER_API_KEY": "https://openrouter.ai/api/v1",
    "GROQ_API_KEY": "https://api.groq.com/openai/v1",
    "DEEPSEEK_API_KEY": "https://api.deepseek.com/v1",
    "MISTRAL_API_KEY": "https://api.mistral.ai/v1",
    "GEMINI_API_KEY": "https://generativelanguage.googleapis.com/v1beta/openai",
}
"""Keys of other providers that speak the OpenAI API -> their base URL: the embedded agent can
use them as an ``openai-compatible:`` server once told the model (which blitz cannot guess)."""


def other_keys(names: Iterable[str]) -> list[str]:
    """How to use the keys of :data:`OTHER_KEYS` among the environment variable ``names``."""
    return [
        f"  {name} is set: export BLITZ_COMPATIBLE_API_KEY=${name} and set [models] default = "
        f'"openai-compatible:MODEL@{url}" (the embedded agent)'
        for name, url in OTHER_KEYS.items()
        if name in names
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Choice:
    """The agent chosen: its backend, the model to write in ``[models] default`` ("" = none
    needed, or none found), why, and what the user should know."""

    backend: str
    model: str = ""
    reason: str
    local: bool = False
    """The model is a server of one's own, which answers one request at a time."""
    notes: tuple[str, ...] = ()


async def choose(
    options: BackendOptions, servers: Sequence[LocalServer], *, logged_in: bool | None = None
) -> Choice | None:
    """The best agent ``options`` (the provider keys, the configured model and CLIs) and the
    local ``servers`` answering make usable, or None."""
    models = _models(options, servers)
    planner = models[0] if models else None
    for name in ("claude-code", "codex"):
        found = await check(name, options, logged_in=logged_in)
        if found.available:
            return _with_planner(name, f"{found.name}: {found.detail}", planner)
    for model, local in models:
        # The embedded agent on a model written as its default; "" is the one BLITZ_MODEL names.
        found = await check("embedded", dataclasses.replace(options, model=model or options.model))
        if found.available:
            return Choice(
                backend="embedded",
                model=model,
                local=local,
                reason=f"the embedded agent: {found.detail}",
            )
    return None


def near_misses(found: Sequence[Availability]) -> list[str]:
    """What came close to usable and what it lacks, where that says more than
    :data:`HOW_TO_GET_ONE`: a Claude Code login blitz cannot use, an installed codex with no
    key, a configured model that does not answer."""
    return [
        f"  {item.name}: {item.detail}"
        for item in found
        if not item.available
        and (
            (item.name == "claude-code" and item.detail != CLAUDE_KEY)
            or (item.name == "codex" and "not installed" not in item.detail)
            or (item.name == "embedded" and item.detail.startswith("model "))
        )
    ]


def _models(options: BackendOptions, servers: Sequence[LocalServer]) -> list[tuple[str, bool]]:
    """Models usable here, best first, each with whether it is local: "" for the one configured
    (BLITZ_MODEL, which then needs no writing), the hosted ones whose key is set, local ones."""
    from blitz.llm.models import LOCAL_SERVERS

    found: list[tuple[str, bool]] = []
    if options.model:
        found.append(("", options.model.split(":")[0] in LOCAL_SERVERS))
    providers = options.providers
    anthropic = providers.anthropic_api_key if providers else ""
    if anthropic and not anthropic.startswith(OAUTH_PREFIX):
        found.append((ANTHROPIC_MODEL, False))
    if providers and providers.openai_api_key:
        found.append((OPENAI_MODEL, False))
    for server in servers:
        name = server.model_name(LOCAL_SERVERS.get(server.provider, ""))
        if name:
            found.append((name, True))
    return found


def _with_planner(backend: str, reason: str, planner: tuple[str, bool] | None) -> Choice:
    if planner is None:
        return Choice(
            backend=backend,
            reason=reason,
            notes=(
                "no model here to plan or to diagnose failures: `blitz run --plan FILE` runs a "
                "plan you wrote (a failed task is then only retried once as it was); for `blitz "
                "run GOAL` and real recovery, set [models] default (or BLITZ_MODEL)",
            ),
        )
    model, local = planner
    planning = f"plans with {model}" if model else "plans with the model BLITZ_MODEL names"
    return Choice(backend=backend, model=model, local=local, reason=f"{reason}; {planning}")
