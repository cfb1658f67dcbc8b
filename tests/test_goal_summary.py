"""A goal in a line and a paragraph (blitz.goal_summary): how far it got, what it cost, its pull
request, and when a person is needed, why and what they can do, from the goal's records."""

from __future__ import annotations

from blitz.domain import Goal, GoalState, Project, Task, TaskState
from blitz.goal_summary import Action, GoalSummary, Step, summarize

PROJECT = Project(id="p-1", name="api", path="/repo", base_branch="main")


def goal(state: GoalState = GoalState.RUNNING, **more: object) -> Goal:
    return Goal(
        id="g-1",
        project_id="p-1",
        title="Add rate\nlimiting",
        state=state,
        branch="blitz/add-rate-limiting-g-1",
        **more,  # type: ignore[arg-type]
    )


def task(id: str, state: TaskState, reason: str = "") -> Task:
    return Task(id=id, goal_id="g-1", title=f"Do {id}", state=state, reason=reason)


def actions(summary: GoalSummary) -> list[tuple[str, str]]:
    return [(str(s.action), s.task or s.project) for s in summary.steps]


def test_a_running_goal_says_how_far_it_got_and_what_it_cost() -> None:
    tasks = [
        task("a", TaskState.SUCCEEDED),
        task("b", TaskState.RUNNING),
        task("c", TaskState.PENDING),
        task("old", TaskState.REPLACED),  # recovery's tasks are counted in its place
    ]
    summary = summarize(goal(), tasks, cost_usd=0.4234, project=PROJECT)

    assert summary.line() == "g-1 running: 1/3 tasks done, 1 running; $0.42"
    assert summary.paragraph() == (
        "Add rate limiting (g-1, api): running\n1/3 tasks done, 1 running (b); $0.42 spent"
    )
    assert summary.steps == () and not summary.ended


def test_a_failed_goal_says_why_and_what_can_be_done() -> None:
    reason = "validation failed\ntest: FAILED (exit 1)\n  tests/test_limits.py::test_burst"
    tasks = [
        task("a", TaskState.SUCCEEDED),
        task("b", TaskState.FAILED, reason),
        task("c", TaskState.SKIPPED, "b failed"),
    ]
    failed = goal(GoalState.FAILED, error="1 task(s) did not succeed: b")
    summary = summarize(failed, tasks, cost_usd=1.5, project=PROJECT)

    assert summary.line() == (
        "g-1 failed: 1/3 tasks done, 1 failed; $1.50: 1 task(s) did not succeed: b"
    )
    assert summary.failures == (("b", "test: FAILED (exit 1) (+2 more lines)"),)
    assert actions(summary) == [("retry", "b"), ("skip", "b"), ("follow_up", "")]
    assert summary.paragraph().splitlines() == [
        "Add rate limiting (g-1, api): failed",
        "1/3 tasks done, 1 failed (b), 1 skipped; $1.50 spent",
        "Why: 1 task(s) did not succeed: b",
        "- b: test: FAILED (exit 1) (+2 more lines)",
        "What to do: retry task b; skip task b; start a follow-up goal on its branch",
    ]

    # A place words the steps its own way (a Slack thread: what to reply).
    def reply(s: GoalSummary, step: Step) -> str:
        return f"reply `{' '.join(filter(None, (str(step.action), step.task)))}`"

    assert "What to do: reply `retry b`; reply `skip b`" in summary.paragraph(reply)


def test_a_goal_that_failed_before_any_task_is_run_again_not_followed_up() -> None:
    failed = goal(GoalState.FAILED, error="invalid plan:\n  - cycle: a -> b -> a")
    summary = summarize(failed, [], cost_usd=0.0, project=PROJECT)

    assert summary.reason == "invalid plan: (+1 more line)"
    assert actions(summary) == [("rerun", "")]


def test_a_plan_waiting_for_approval_asks_for_it() -> None:
    waiting = goal(GoalState.AWAITING_APPROVAL)
    tasks = [task("a", TaskState.PENDING), task("b", TaskState.PENDING)]
    summary = summarize(waiting, tasks, cost_usd=0.02, project=PROJECT)

    assert summary.line() == (
        "g-1 awaiting approval: 0/2 tasks done; $0.02: the plan (2 tasks) waits for approval"
    )
    assert actions(summary) == [("approve", ""), ("reject", "")]


def test_a_succeeded_goal_gives_its_pull_request_and_a_follow_up() -> None:
    done = goal(GoalState.SUCCEEDED, pr_url="https://github.com/acme/api/pull/7", follows="g-0")
    summary = summarize(done, [task("a", TaskState.SUCCEEDED)], cost_usd=0.004, project=PROJECT)

    assert summary.line() == (
        "g-1 succeeded: 1/1 tasks done; < $0.01; pull request https://github.com/acme/api/pull/7"
    )
    assert "A follow-up of goal g-0, on branch blitz/add-rate-limiting-g-1" in summary.paragraph()
    assert "Pull request https://github.com/acme/api/pull/7" in summary.paragraph()
    assert summary.pr_link == "https://github.com/acme/api/pull/7"
    assert actions(summary) == [("follow_up", "")] and summary.ended

    local = goal(GoalState.SUCCEEDED, pr_url="/home/blitz/goals/g-1/pull-request.md")
    summary = summarize(local, [task("a", TaskState.SUCCEEDED)], cost_usd=0, project=PROJECT)
    assert summary.pr_link == "" and summary.line().endswith(
        "; pull request description in /home/blitz/goals/g-1/pull-request.md (not pushed)"
    )


def test_publishing_pending_and_a_paused_project_say_so() -> None:
    pending = goal(GoalState.SUCCEEDED, publish_state="pending", publish_error="push refused\nmore")
    summary = summarize(pending, [task("a", TaskState.SUCCEEDED)], cost_usd=0, project=PROJECT)
    assert summary.line() == (
        "g-1 succeeded, publishing pending: 1/1 tasks done; $0.00: "
        "publishing failed: push refused (+1 more line)"
    )
    assert actions(summary)[0] == ("publish", "")

    paused = Project(
        id="p-1", name="api", path="/r", paused=True, pause_reason="budget spent ($5.00)"
    )
    summary = summarize(goal(), [task("a", TaskState.PENDING)], cost_usd=5, project=paused)
    assert summary.line() == (
        "g-1 running, project paused: 0/1 tasks done; $5.00: "
        "the project is paused: budget spent ($5.00)"
    )
    assert actions(summary) == [("resume_project", "api")]
    assert Action.RESUME_PROJECT == "resume_project"
