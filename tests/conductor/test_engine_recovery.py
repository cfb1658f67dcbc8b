"""The engine recovering from failed tasks, end to end: the planner's recovery (retry with
guidance, insert, replace, skip, abort), failing for good when recoveries run out, crashes retried
without recovery. Real git repositories, real gates, the real SQLite store, driven through
:class:`blitz.app.App` by the scripted planner and backend (tests/conductor/test_engine.py has
the happy path).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from engine_helpers import (
    NO_BUG_GATE,
    SHELL_GATE,
    MakeApp,
    assert_engine_invariants,
    branch_commits,
    first_index,
    git,
    goal_events,
    isolated_git,  # noqa: F401 - the fixture, used through pytestmark
    kinds,
    last_index,
    make_repo,
    of_kind,
    run_one,
    task,
    write,
)

from blitz.conductor.planning import TAKES_THE_PLACE
from blitz.domain import (
    AttemptState,
    GoalState,
    RecoveryAction,
    TaskState,
)

pytestmark = pytest.mark.usefixtures("isolated_git")

# -- 2-4. recovery --------------------------------------------------------------------------------


async def test_gate_failure_is_retried_with_guidance_and_the_root_cause_is_kept(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=NO_BUG_GATE)
    app = apps({
        "tasks": [task("value")],
        "agent": {"value": [[write("value.txt", "bug\n")], [write("value.txt", "fixed\n")]]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    (t,) = app.store.load_tasks(goal.id)
    assert t.state is TaskState.SUCCEEDED and t.attempts == 2 and t.recoveries == 1
    (recovery,) = app.store.load_recoveries(goal.id)
    assert recovery.task_id == "value" and recovery.action is RecoveryAction.RETRY
    assert recovery.root_cause.startswith("scripted: gate test failed")
    assert t.root_cause == recovery.root_cause
    assert "The previous attempt failed" in t.guidance and "gate test failed" in t.guidance
    first, second = app.store.load_attempts(goal.id, "value")
    assert first.state is AttemptState.FAILED and not first.gates[0].passed
    assert recovery.attempt_id == first.id
    assert second.state is AttemptState.SUCCEEDED and second.gates[0].passed
    assert git(repo, "show", f"{goal.branch}:value.txt") == "fixed"
    events = goal_events(app, goal.id)
    assert first_index(events, "recovery.planned", "value") < last_index(events, "task.started")
    assert_engine_invariants(app, repo, goal)


async def test_insert_recovery_runs_the_new_task_first_then_the_failed_one(
    tmp_path: Path, apps: MakeApp
) -> None:
    gate = {"test": "test ! -f feature.txt || test -f setup.txt", "timeout": 60}
    repo = make_repo(tmp_path, gates=gate)
    app = apps({
        "tasks": [task("feature"), task("after", "feature")],
        "agent": {
            "feature": [[write("feature.txt", "feature\n")]],  # the same on every attempt
            "setup": [[write("setup.txt", "setup\n")]],
            "after": [[write("after.txt", "after\n")]],
        },
        "recovery": {"feature": [{
            "root_cause": "feature.txt needs setup.txt", "action": "insert",
            "guidance": "setup.txt exists now", "tasks": [task("setup")],
        }]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["setup"].origin == "recovery:feature"
    assert tasks["feature"].depends_on == ("setup",)
    assert tasks["feature"].attempts == 2 and tasks["feature"].guidance == "setup.txt exists now"
    assert tasks["after"].attempts == 1
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [
        ("setup",),
        ("feature",),
        ("after",),
    ]
    events = goal_events(app, goal.id)
    (injected,) = of_kind(events, "task.injected")
    assert injected.task_id == "setup"
    # setup ran after feature failed, feature ran again after setup, after waited for feature.
    assert first_index(events, "task.failed", "feature") < first_index(
        events, "task.started", "setup"
    )
    assert first_index(events, "task.succeeded", "setup") < last_index(
        events, "task.started", "feature"
    )
    assert first_index(events, "task.succeeded", "feature") < first_index(
        events, "task.started", "after"
    )
    assert_engine_invariants(app, repo, goal)


async def test_replace_recovery_rewires_the_dependents_to_the_new_task(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=NO_BUG_GATE)
    app = apps({
        "tasks": [task("bad"), task("docs", "bad")],
        "agent": {
            "bad": [[write("value.txt", "bug\n")]],
            "fix": [[write("value.txt", "fixed\n")]],
            "docs": [[write("docs.txt", "docs\n")]],
        },
        "recovery": {"bad": [{
            "root_cause": "bad writes a bug", "action": "replace", "tasks": [task("fix")],
        }]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["bad"].state is TaskState.REPLACED and tasks["bad"].reason == "replaced by fix"
    assert tasks["bad"].root_cause == "bad writes a bug"
    assert tasks["docs"].depends_on == ("fix",)
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("fix",), ("docs",)]
    events = goal_events(app, goal.id)
    assert first_index(events, "task.succeeded", "fix") < first_index(
        events, "task.started", "docs"
    )
    assert_engine_invariants(app, repo, goal)


async def test_the_last_tasks_of_a_replacement_carry_the_replaced_tasks_work(
    tmp_path: Path, apps: MakeApp
) -> None:
    # Qwen2.5-Coder-1.5B's recovery replaced "add slugify and its test" with "add shout", which
    # the branch had already: the goal succeeded without slugify.
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=NO_BUG_GATE)
    check = {"kind": "command", "command": "grep -q fixed value.txt"}
    bad = task("bad", instructions="Make value.txt say fixed.", checks=[check])
    app = apps({
        "tasks": [bad],
        "agent": {
            "bad": [[write("value.txt", "bug\n")]],
            "prep": [[write("prep.txt", "prep\n")]],
            "fix": [[write("value.txt", "fixed\n")]],
        },
        "recovery": {"bad": [{
            "root_cause": "too big", "action": "replace",
            "tasks": [task("prep", instructions="Prepare."), task("fix", "prep")],
        }]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["prep"].instructions == "Prepare." and tasks["prep"].checks == ()
    said = TAKES_THE_PLACE.format(
        id="bad", title="Do bad", instructions="Make value.txt say fixed."
    )
    assert tasks["fix"].instructions == f"Do fix\n\n{said}"  # its own (the title), then the work
    assert [(c.kind, c.command) for c in tasks["fix"].checks] == [("command", check["command"])]
    [fixed] = [a for a in app.store.load_attempts(goal.id) if a.task_id == "fix"]
    assert "check:command:grep -q fixed value.txt" in [g.name for g in fixed.gates]
    assert_engine_invariants(app, repo, goal)


async def test_skip_recovery_lets_the_dependents_go_on(tmp_path: Path, apps: MakeApp) -> None:
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=NO_BUG_GATE)
    app = apps({
        "tasks": [task("bad"), task("docs", "bad")],
        "agent": {"bad": [[write("value.txt", "bug\n")]], "docs": [[write("docs.txt", "d\n")]]},
        "recovery": {"bad": [{"root_cause": "not worth it", "action": "skip"}]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["bad"].state is TaskState.SKIPPED
    assert tasks["bad"].reason == "skipped by recovery: not worth it"
    assert tasks["docs"].state is TaskState.SUCCEEDED
    assert goal.state is GoalState.SUCCEEDED, goal.error
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("docs",)]
    assert of_kind(goal_events(app, goal.id), "task.skipped", "bad")
    assert_engine_invariants(app, repo, goal)


async def test_a_goal_whose_recovery_skipped_its_only_task_failed_having_done_nothing(
    tmp_path: Path, apps: MakeApp
) -> None:
    # Qwen2.5-Coder-1.5B's recovery skipped the goal's only task (bench/local_model.py,
    # session 17), and the goal "succeeded: all tasks done" with nothing on its branch.
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=NO_BUG_GATE)
    app = apps({
        "tasks": [task("bad")],
        "agent": {"bad": [[write("value.txt", "bug\n")]]},
        "recovery": {"bad": [{"root_cause": "not worth it", "action": "skip"}]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.FAILED
    assert goal.error == (
        "nothing was done: no task succeeded (bad was skipped by recovery: not worth it)"
    )
    assert branch_commits(repo, goal.branch) == []
    assert of_kind(goal_events(app, goal.id), "goal.failed")
    assert not of_kind(goal_events(app, goal.id), "pr.written")  # nothing to publish
    assert_engine_invariants(app, repo, goal)


async def test_abort_recovery_fails_the_goal_and_cancels_running_work(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=NO_BUG_GATE)
    app = apps({
        "tasks": [task("bad"), task("slow"), task("later", "slow")],
        "agent": {
            "bad": [[write("value.txt", "bug\n")]],
            "slow": [[{"sleep": 30}, write("slow.txt", "slow\n")]],
        },
        "recovery": {"bad": [{"root_cause": "the goal is impossible", "action": "abort"}]},
    })  # fmt: skip

    _, goal = await asyncio.wait_for(run_one(app, repo), 20)

    assert goal.state is GoalState.FAILED
    assert "the goal is impossible" in goal.error
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["slow"].state is TaskState.CANCELLED
    assert tasks["later"].state is TaskState.CANCELLED
    (slow,) = app.store.load_attempts(goal.id, "slow")
    assert slow.state is AttemptState.CANCELLED
    assert branch_commits(repo, goal.branch) == []
    events = goal_events(app, goal.id)
    assert kinds(events)[-1] == "goal.failed"
    assert_engine_invariants(app, repo, goal)


# -- 5-7. failing for good ------------------------------------------------------------------------


async def test_exhausted_recoveries_block_the_dependents_and_fail_the_goal(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(
        tmp_path,
        files={"value.txt": "start\n"},
        gates=NO_BUG_GATE,
        limits={"max_recoveries_per_task": 1},  # the default is 2
    )
    retry = {"root_cause": "still buggy", "action": "retry", "guidance": "try harder"}
    app = apps({
        "tasks": [task("bad"), task("ok"), task("docs", "bad", "ok")],
        "agent": {"bad": [[write("value.txt", "bug\n")]], "ok": [[write("ok.txt", "ok\n")]]},
        "recovery": {"bad": [retry, retry, retry, retry]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.FAILED
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["bad"].state is TaskState.FAILED and tasks["bad"].attempts == 2
    assert len(app.store.load_recoveries(goal.id)) == 1
    assert tasks["ok"].state is TaskState.SUCCEEDED
    docs = tasks["docs"]
    assert docs.state is TaskState.SKIPPED and docs.attempts == 0
    assert docs.reason.startswith("blocked: ") and "'bad'" in docs.reason
    assert "bad" in goal.error and "docs" in goal.error
    events = goal_events(app, goal.id)
    assert of_kind(events, "recovery.exhausted", "bad")
    (deadlock,) = of_kind(events, "deadlock.detected")
    assert set(deadlock.data["blocked"]) == {"docs"}
    # The description is written even for a failed goal, and says what was left out.
    description = Path(goal.pr_url)
    assert description.is_file()
    assert "bad" in description.read_text() and "docs" in description.read_text()
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("ok",)]
    assert_engine_invariants(app, repo, goal)


async def test_a_task_that_changes_nothing_fails_unless_it_allows_that(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=SHELL_GATE, limits={"max_recoveries_per_task": 0})
    app = apps({
        "tasks": [task("noop"), task("look", allow_empty=True)],
        "agent": {"look": [[{"say": "all good, nothing to change"}]]},  # noop: no actions
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["noop"].state is TaskState.FAILED
    assert "changed no files" in tasks["noop"].reason
    (noop,) = app.store.load_attempts(goal.id, "noop")
    assert "changed no files" in noop.error
    look = tasks["look"]
    assert look.state is TaskState.SUCCEEDED and look.commit == ""
    assert goal.state is GoalState.FAILED
    assert branch_commits(repo, goal.branch) == []
    events = goal_events(app, goal.id)
    assert not of_kind(events, "checkpoint.integrated")
    assert of_kind(events, "task.succeeded", "look")[0].message == "succeeded (no change)"
    assert_engine_invariants(app, repo, goal)


async def test_a_failed_attempt_s_change_is_what_its_recovery_reads(
    tmp_path: Path, apps: MakeApp
) -> None:
    # Qwen2.5-Coder-1.5B's attempt appended slugify and a test, then was stopped as stuck: its
    # recovery planner was told "The attempt changed no files", and restated the task.
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=NO_BUG_GATE)
    app = apps({
        "tasks": [task("value")],
        "agent": {"value": [
            [write("value.txt", "half done\n"), {"fail": "stuck: the same call 3 times"}],
            [write("value.txt", "fixed\n")],
        ]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    first, second = app.store.load_attempts(goal.id, "value")
    assert first.state is AttemptState.FAILED and first.error.startswith("stuck:")
    assert "+half done" in first.diff and "-start" in first.diff
    assert "value.txt" in first.diff_stat and not first.gates  # no gate ran on it
    (recovery,) = app.store.load_recoveries(goal.id)
    assert recovery.attempt_id == first.id
    assert second.state is AttemptState.SUCCEEDED
    assert git(repo, "show", f"{goal.branch}:value.txt") == "fixed"
    assert_engine_invariants(app, repo, goal)


async def test_a_failed_attempt_whose_change_cannot_be_read_is_still_its_agents_failure(
    tmp_path: Path, apps: MakeApp
) -> None:
    # Its worktree's link to the repository gone, git cannot read the change: the attempt is
    # reported as the agent failed it (recovered), not as a crash.
    repo = make_repo(tmp_path, files={"value.txt": "start\n"}, gates=NO_BUG_GATE)
    app = apps({
        "tasks": [task("value")],
        "agent": {"value": [
            [{"delete": ".git"}, {"fail": "gave up"}],
            [write("value.txt", "fixed\n")],
        ]},
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.SUCCEEDED, goal.error
    first, _ = app.store.load_attempts(goal.id, "value")
    assert first.state is AttemptState.FAILED and first.error == "gave up"
    assert first.diff == ""
    (recovery,) = app.store.load_recoveries(goal.id)
    assert recovery.attempt_id == first.id


async def test_crashes_are_retried_without_recovery_a_bounded_number_of_times(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=SHELL_GATE, limits={"max_crash_retries": 1})
    app = apps({
        "tasks": [task("flaky"), task("doomed")],
        "agent": {
            "flaky": [[{"crash": "backend died"}], [write("flaky.txt", "ok\n")]],
            "doomed": [[{"crash": "always down"}]],
        },
    })  # fmt: skip

    _, goal = await run_one(app, repo)

    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    flaky, doomed = tasks["flaky"], tasks["doomed"]
    assert flaky.state is TaskState.SUCCEEDED and flaky.attempts == 2 and flaky.crashes == 0
    assert [a.state for a in app.store.load_attempts(goal.id, "flaky")] == [
        AttemptState.CRASHED,
        AttemptState.SUCCEEDED,
    ]
    assert doomed.state is TaskState.FAILED and doomed.attempts == 2
    assert doomed.reason == "crashed 2 times: always down"
    assert {a.state for a in app.store.load_attempts(goal.id, "doomed")} == {AttemptState.CRASHED}
    # Crashes are the machinery's fault: nobody asks the planner about them.
    assert app.store.load_recoveries(goal.id) == []
    events = goal_events(app, goal.id)
    assert not of_kind(events, "recovery.requested")
    assert of_kind(events, "task.crashed", "flaky")
    assert first_index(events, "task.requeued", "flaky") < last_index(
        events, "task.started", "flaky"
    )
    assert goal.state is GoalState.FAILED
    assert [c.tasks for c in branch_commits(repo, goal.branch)] == [("flaky",)]
    assert_engine_invariants(app, repo, goal)


async def test_without_scripted_answers_a_failing_task_stays_failed(
    tmp_path: Path, apps: MakeApp
) -> None:
    """The scripted planner retries once on its own; when that fails too it has no answer, so
    the task stays failed and the goal fails (it is not skipped into a success)."""
    repo = make_repo(tmp_path, gates=NO_BUG_GATE, limits={"max_recoveries_per_task": 5})
    app = apps({
        "tasks": [task("bad"), task("after", "bad")],
        "agent": {"bad": [[write("value.txt", "bug\n")]], "after": [[write("a.txt", "a\n")]]},
    })  # fmt: skip
    _, goal = await run_one(app, repo)

    assert goal.state is GoalState.FAILED
    tasks = {t.id: t for t in app.store.load_tasks(goal.id)}
    assert tasks["bad"].state is TaskState.FAILED and tasks["bad"].attempts == 2
    assert tasks["after"].state is TaskState.SKIPPED and "bad" in tasks["after"].reason
    exhausted = of_kind(goal_events(app, goal.id), "recovery.exhausted", "bad")
    assert exhausted and "no further recovery" in exhausted[-1].message
