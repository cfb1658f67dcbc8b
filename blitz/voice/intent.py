"""What a person said, as one action: a small, forgiving grammar.

Whisper tiny.en mishears short commands ("start a goal" can come back as "sorry to go", "calc"
as "CalP"), so nothing here asks for exact words: filler words are dropped, verbs are matched
by closeness (:mod:`difflib`), and project names and goal titles are matched against the ones
that exist (:class:`Known`), closest first. An utterance that names a project and says what to
do ("... on the calc project: add a multiply function") is taken as starting a goal whatever
its first words were heard as. Starting a goal is only ever proposed: the session reads it back
and waits for a yes.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from enum import StrEnum


class Act(StrEnum):
    """The actions a person can take by voice."""

    START = "start"  # a new goal in a project (confirmed first)
    YES = "yes"
    NO = "no"
    STATUS = "status"  # of one goal, or of everything
    APPROVE = "approve"  # a plan waiting for approval
    REJECT = "reject"
    CANCEL = "cancel"  # a goal
    RETRY = "retry"  # a failed task
    SKIP = "skip"
    PAUSE = "pause"  # a project
    RESUME = "resume"
    HELP = "help"
    UNCLEAR = "unclear"


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """One action and what it names: ``project`` and ``goal`` as they exist (resolved), or ""
    (the goal the conversation is about, or everything); ``task`` and ``title`` as heard."""

    act: Act
    project: str = ""
    goal: str = ""
    task: str = ""
    title: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class GoalName:
    id: str
    title: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Known:
    """What exists to be named: project names, and goals (newest first)."""

    projects: tuple[str, ...] = ()
    goals: tuple[GoalName, ...] = ()


FILLER = frozenset(
    {
        "um",
        "uh",
        "er",
        "erm",
        "hmm",
        "hey",
        "ok",
        "okay",
        "so",
        "well",
        "please",
        "blitz",
        "now",
        "just",
        "could",
        "can",
        "would",
        "you",
        "kindly",
        "like",
        "i",
        "want",
        "wanna",
        "d",
    }
)
YES = frozenset(
    {
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "confirm",
        "confirmed",
        "correct",
        "affirmative",
        "right",
        "absolutely",
    }
)
YES_PHRASES = ("go ahead", "do it", "sounds good", "that's right", "yes please")
NO = frozenset(["no", "nope", "nah", "negative", "don't", "dont"])
NO_PHRASES = ("never mind", "forget it", "don't do it", "not now")
VERBS: dict[str, Act] = {
    "approve": Act.APPROVE,
    "proof": Act.APPROVE,  # "approve the plan" heard as "a proof the plan"
    "approved": Act.APPROVE,
    "accept": Act.APPROVE,
    "reject": Act.REJECT,
    "rejected": Act.REJECT,
    "decline": Act.REJECT,
    "cancel": Act.CANCEL,
    "retry": Act.RETRY,
    "skip": Act.SKIP,
    "pause": Act.PAUSE,
    "paws": Act.PAUSE,
    "resume": Act.RESUME,
    "unpause": Act.RESUME,
    "help": Act.HELP,
    "status": Act.STATUS,
    "progress": Act.STATUS,
    "start": Act.START,
    "begin": Act.START,
    "create": Act.START,
    "launch": Act.START,
}
DESTRUCTIVE = frozenset([Act.CANCEL, Act.REJECT, Act.SKIP])
"""Verbs that undo work: taken only when heard exactly ("what about it" is close to "abort")."""
STATUS_PHRASES = (
    "how is it going",
    "how's it going",
    "how are things",
    "what's happening",
    "how is the goal",
    "how's the goal",
    "what is going on",
    "what's going on",
    "how are we doing",
    "any news",
    "what's the status",
)
HELP_PHRASES = ("what can i say", "what can you do")
START_PHRASES = ("start a goal", "new goal", "start goal", "create a goal", "begin a goal")
STATUS_WORDS = frozenset({"going", "doing", "coming", "progressing"})
PROJECT = "project"
LEADING = frozenset(
    {
        "to",
        "and",
        "that",
        "which",
        "called",
        "the",
        "a",
        "an",
        "colon",
        "then",
        "on",
        "in",
        "for",
        "of",
    }
)
UNNAMING = frozenset({"goal", "plan", "it", "this", "how", "is", "are", "what's", "status"})
"""Words around a goal's name that are not its name."""
WORD = re.compile(r"[a-z0-9][a-z0-9'_-]*")


def words(text: str) -> list[str]:
    """Lower-case words (apostrophes and hyphens kept)."""
    return WORD.findall(text.lower())


def _spans(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in WORD.finditer(text.lower())]


def similar(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def closest(heard: str, names: tuple[str, ...], cutoff: float) -> str:
    """The name most like ``heard`` (case, hyphens and spaces aside), if close enough."""
    key = _squash(heard)
    if not key:
        return ""
    scored = sorted(((similar(key, _squash(name)), name) for name in names), reverse=True)
    return scored[0][1] if scored and scored[0][0] >= cutoff else ""


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def parse(text: str, known: Known) -> Intent:
    """What ``text`` (a transcript, or typed) asks for, names resolved against ``known``."""
    spans = _spans(text)
    said = [w for w, _, _ in spans if w not in FILLER]
    joined = " ".join(said)
    if not said:
        return Intent(act=Act.UNCLEAR)
    if set(said) <= YES or joined in YES_PHRASES:
        return Intent(act=Act.YES)
    if said[0] in NO or joined in NO_PHRASES:
        return Intent(act=Act.NO)
    if " ".join(w for w, _, _ in spans).startswith(HELP_PHRASES):
        return Intent(act=Act.HELP)
    start = _start(text, spans, known)
    if start is not None:
        return start
    act = _verb(said)
    if act is None and (
        any(phrase in joined for phrase in STATUS_PHRASES)
        or (said[0] == "how" and STATUS_WORDS & set(said))
    ):
        act = Act.STATUS
    if act is None:
        return Intent(act=Act.UNCLEAR, title=text.strip())
    rest = said[1:] if said and VERBS.get(said[0]) is act else said
    if act in (Act.PAUSE, Act.RESUME):
        return Intent(act=act, project=_project_in(rest, known))
    if act in (Act.RETRY, Act.SKIP):
        return Intent(act=act, task=_task_in(rest), goal=_goal_in(rest, known))
    return Intent(act=act, goal=_goal_in(rest, known))


def _verb(said: list[str]) -> Act | None:
    """The verb among the first words (closest to one known, allowing a misheard letter)."""
    for word in said[:3]:
        if word in VERBS:
            return VERBS[word]
    for word in said[:2]:
        match = difflib.get_close_matches(word, list(VERBS), n=1, cutoff=0.8)
        if match and VERBS[match[0]] not in DESTRUCTIVE:
            return VERBS[match[0]]
    return None


def _start(text: str, spans: list[tuple[str, int, int]], known: Known) -> Intent | None:
    """A new goal: a project named and words after it, or a start phrase and words after it."""
    plain = [w for w, _, _ in spans]
    at = next((i for i, w in enumerate(plain) if similar(w, PROJECT) >= 0.75), -1)
    project, end = "", -1
    if at > 0:
        before = [w for w in plain[max(0, at - 2) : at] if w not in LEADING]
        project = closest(" ".join(before), known.projects, 0.5) or closest(
            before[-1] if before else "", known.projects, 0.5
        )
        end = at
    if not project:  # no "project" heard: a known name, closely
        for i, (w, _, _) in enumerate(spans):
            project = closest(w, known.projects, 0.75)
            if project:
                end = i
                break
    if not project:
        return None
    head = " ".join(plain[:end])
    starting = (
        any(word in ("start", "begin", "create", "launch", "new", "goal") for word in plain[:end])
        or any(similar(head, phrase) >= 0.5 for phrase in START_PHRASES)
        or _verb([w for w in plain[:end] if w not in FILLER]) in (None, Act.START)
    )
    title = _after(text, spans, end)
    if not starting or not title:
        return None
    return Intent(act=Act.START, project=project, title=title)


def _after(text: str, spans: list[tuple[str, int, int]], index: int) -> str:
    """The text after the word at ``index``, without leading filler or the closing stop."""
    rest = spans[index + 1 :]
    while rest and (rest[0][0] in LEADING or rest[0][0] in FILLER):
        rest = rest[1:]
    if not rest:
        return ""
    title = text[rest[0][1] :].strip().rstrip(".!?").strip()
    return title[:1].upper() + title[1:]


def _project_in(rest: list[str], known: Known) -> str:
    named = [w for w in rest if w not in LEADING and similar(w, PROJECT) < 0.75]
    if not named:
        return ""
    return closest(" ".join(named), known.projects, 0.5) or next(
        (p for w in named if (p := closest(w, known.projects, 0.6))), ""
    )


def _task_in(rest: list[str]) -> str:
    """The task named: the words after "task", else the last word."""
    named = [w for w in rest if w not in LEADING]
    if "task" in named:
        at = named.index("task")
        after = named[at + 1 :]
        return "-".join(after) if after else (named[at - 1] if at else "")
    return named[-1] if named else ""


def _goal_in(rest: list[str], known: Known) -> str:
    """A goal named by its id or (closely) by its title; "" for the one being talked about."""
    named = [w for w in rest if w not in LEADING and w not in UNNAMING and w not in STATUS_WORDS]
    if not named:
        return ""
    for goal in known.goals:
        if any(_squash(w) and _squash(goal.id).endswith(_squash(w)) and len(w) >= 4 for w in named):
            return goal.id
    scored = sorted(((_overlap(named, goal.title), goal.id) for goal in known.goals), reverse=True)
    return scored[0][1] if scored and scored[0][0] >= 0.8 else ""


def _overlap(named: list[str], title: str) -> float:
    """How much of what was said is in ``title``: each word's closest match there, averaged."""
    in_title = words(title)
    if not in_title:
        return 0.0
    return sum(max(similar(w, t) for t in in_title) for w in named) / len(named)
