"""The voice grammar: commands as Whisper tiny.en hears Piper say them (misheard words
included), filler words, and names matched against the projects and goals that exist."""

from __future__ import annotations

import pytest

from blitz.voice.intent import Act, GoalName, Intent, Known, parse

KNOWN = Known(
    projects=("calc", "api-server"),
    goals=(
        GoalName(id="g-1a2b3c4d", title="Add a multiply function"),
        GoalName(id="g-99887766", title="Rate limit the login endpoint"),
    ),
)
MULTIPLY = Intent(act=Act.START, project="calc", title="Add a multiply function")


@pytest.mark.parametrize(
    "heard",
    [
        "Start a goal on the calc project: add a multiply function.",
        "Start a goal on the calc project, add a multiply function.",
        # tiny.en's mishearings of Piper saying the command.
        "Sorry to go on the CalP project, add a multiply function.",
        "Start a goal on the Kalk project. Add a multiply function.",
        "Start to go on the calc projects. Add a multiply function.",
        "Um, please start a goal on the calc project, add a multiply function.",
    ],
)
def test_starting_a_goal_is_heard_however_it_was_misheard(heard: str) -> None:
    assert parse(heard, KNOWN) == MULTIPLY


def test_a_project_with_a_hyphen_is_named_in_words() -> None:
    intent = parse("New goal in the API server project: rate limit logins", KNOWN)
    assert intent == Intent(act=Act.START, project="api-server", title="Rate limit logins")


def test_a_sentence_misheard_by_tiny_en_in_bench_voice_still_starts_a_goal() -> None:
    heard = "It's hard to go on the API project, add rate limiting to the login endpoint."
    assert parse(heard, KNOWN) == Intent(
        act=Act.START, project="api-server", title="Add rate limiting to the login endpoint"
    )


def test_a_project_that_does_not_exist_is_not_named() -> None:
    assert parse("Start a goal on the weather project: add rain", KNOWN).project == ""


@pytest.mark.parametrize(
    ("heard", "act"),
    [
        ("Yes.", Act.YES),
        ("Yes, please.", Act.YES),
        ("Yeah", Act.YES),
        ("Go ahead.", Act.YES),
        ("Confirm.", Act.YES),
        ("No.", Act.NO),
        ("No, never mind.", Act.NO),
        ("Never mind", Act.NO),
        ("How is it going?", Act.STATUS),
        ("What's the status?", Act.STATUS),
        ("Status.", Act.STATUS),
        ("Approve the plan.", Act.APPROVE),
        ("A proof the plan.", Act.APPROVE),
        ("Reject the plan.", Act.REJECT),
        ("Cancel the goal.", Act.CANCEL),
        ("What can I say?", Act.HELP),
        ("Help.", Act.HELP),
        ("Thank you.", Act.UNCLEAR),
        ("", Act.UNCLEAR),
    ],
)
def test_short_commands(heard: str, act: Act) -> None:
    assert parse(heard, KNOWN).act is act


def test_yes_inside_a_longer_sentence_is_not_a_confirmation() -> None:
    assert parse("Yes, start a goal on the calc project: add tests", KNOWN).act is Act.START


def test_goals_are_named_by_title_or_by_the_end_of_their_id() -> None:
    assert parse("Cancel the multiply function goal", KNOWN).goal == "g-1a2b3c4d"
    assert parse("How is the rate limit goal going?", KNOWN) == Intent(
        act=Act.STATUS, goal="g-99887766"
    )
    assert parse("Approve 99887766", KNOWN).goal == "g-99887766"
    assert parse("Approve the plan", KNOWN).goal == ""


def test_tasks_and_projects_are_named() -> None:
    assert parse("Retry task hello", KNOWN) == Intent(act=Act.RETRY, task="hello")
    assert parse("Skip the world task", KNOWN) == Intent(act=Act.SKIP, task="world")
    assert parse("Pause the calc project", KNOWN) == Intent(act=Act.PAUSE, project="calc")
    assert parse("Resume CalP.", KNOWN) == Intent(act=Act.RESUME, project="calc")


@pytest.mark.parametrize(
    "heard",
    ["What about the rate limiting goal?", "What about it?", "Cancelled?", "Rejects", "Skips"],
)
def test_a_word_only_close_to_cancel_reject_or_skip_undoes_nothing(heard: str) -> None:
    assert parse(heard, KNOWN).act not in (Act.CANCEL, Act.REJECT, Act.SKIP)
