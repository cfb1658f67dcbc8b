"""Turning a transcript into an :class:`~blitz.voice.intent.Intent`: with the planner model
when one is configured (structured output through pydantic-ai: one tool call with the action
and its names), else the built-in grammar (:func:`blitz.voice.intent.parse`).

Whatever the model answers, the names it gives are matched against what exists the same
forgiving way the grammar's are; a model that fails or answers nothing usable leaves the
grammar to understand, so a provider outage never silences the session.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, Field

from blitz.voice.intent import Act, Intent, Known, closest, parse

if TYPE_CHECKING:
    from pydantic_ai.models import Model

    from blitz.app import App
    from blitz.llm.models import ModelSpec

log = logging.getLogger("blitz.voice")

MODEL_TIMEOUT = 20.0
"""Seconds the model may take to understand one utterance before the grammar does."""
RULES = """You turn what a person said to blitz (an engine running coding agents) into one
action. The text is a speech-to-text transcript of a short command and may be misheard: "sorry
to go" can be "start a goal", project names can be misspelt. Choose the action meant:
start (a new goal in a project; title = what to do, as said), yes / no (answering a question),
status (of one goal, or of everything), approve / reject (a plan waiting for approval), cancel
(a goal), retry / skip (a failed task), pause / resume (a project), help, or unclear.
Name a project, goal id or task only from the lists given; leave a name empty when none is said."""


class Understanding(Protocol):
    """What a transcript means, given what exists."""

    async def __call__(self, text: str, known: Known) -> Intent: ...


class Grammar:
    """The built-in grammar: no model."""

    async def __call__(self, text: str, known: Known) -> Intent:
        return parse(text, known)


class Understood(BaseModel):
    """The model's answer: one action and the names it takes."""

    act: Literal[
        "start",
        "yes",
        "no",
        "status",
        "approve",
        "reject",
        "cancel",
        "retry",
        "skip",
        "pause",
        "resume",
        "help",
        "unclear",
    ]
    project: str = Field("", description="The project's name, from the list; empty if none.")
    goal: str = Field("", description="The goal's id, from the list; empty if none said.")
    task: str = Field("", description="The task's id for retry and skip; empty if none said.")
    title: str = Field("", description="For start: what the new goal should do, as said.")


class ModelUnderstanding:
    """The planner model, asked for :class:`Understood` as a tool call."""

    def __init__(self, model: Model, spec: ModelSpec) -> None:
        self._model = model
        self._spec = spec

    async def __call__(self, text: str, known: Known) -> Intent:
        import asyncio

        try:
            async with asyncio.timeout(MODEL_TIMEOUT):
                understood = await self._ask(text, known)
        except Exception as exc:  # the provider's or the model's failure: the grammar answers
            log.warning("the model could not understand %r (%s); using the grammar", text, exc)
            return parse(text, known)
        return _resolved(understood, known)

    async def _ask(self, text: str, known: Known) -> Understood:
        from pydantic_ai import Agent, ToolOutput, UsageLimits

        from blitz.llm.models import model_settings

        agent = Agent(
            self._model,
            output_type=ToolOutput(Understood, name="understood", max_retries=1),
            instructions=RULES,
            model_settings=model_settings(self._spec, structured=True),
            name="blitz-voice",
        )
        projects = ", ".join(known.projects) or "none"
        goals = "; ".join(f"{g.id}: {g.title}" for g in known.goals[:20]) or "none"
        prompt = f"Projects: {projects}\nGoals (newest first): {goals}\n\nThe person said: {text}"
        async with self._model:
            result = await agent.run(prompt, usage_limits=UsageLimits(request_limit=2))
        return result.output


def _resolved(understood: Understood, known: Known) -> Intent:
    goal = ""
    if understood.goal:
        ids = tuple(g.id for g in known.goals)
        goal = understood.goal if understood.goal in ids else closest(understood.goal, ids, 0.8)
    return Intent(
        act=Act(understood.act),
        project=closest(understood.project, known.projects, 0.5) if understood.project else "",
        goal=goal,
        task=understood.task,
        title=understood.title.strip(),
    )


def for_app(app: App) -> Understanding:
    """The planner model's understanding when a planner model is configured (the daemon's own
    choice: ``--planner-model``/``--model``, ``BLITZ_PLANNER_MODEL``/``BLITZ_MODEL``), else the
    grammar."""
    name = (
        app.models.get("planner")
        or app.models.get("default")
        or app.settings.planner_model
        or app.settings.model
    )
    if not name:
        return Grammar()
    from blitz.llm.models import build_model, parse_model

    spec = parse_model(name)
    return ModelUnderstanding(build_model(spec, app.providers()), spec)
