"""Follow-up goals (blitz.followups) with the real engine: the scripted planner and backend, real
git, a bare remote and fake GitHub on 127.0.0.1.

A follow-up continues an ended goal on its branch, is planned from that branch with what the
earlier goal did, and updates the same pull request; it is refused while a goal works on that
branch, for another project's goal or an unknown one; and its link survives a new process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_helpers import (
    MakeApp,
    branch_commits,
    git,
    goal_events,
    leftover_worktrees,
    make_repo,
    of_kind,
    registered_worktrees,
    run_one,
    task,
)

from blitz import actions, followups
from blitz.app import App
from blitz.domain import Goal, GoalState, Plan, TaskSpec, TaskState
from blitz.errors import Conflict, NotFound
from blitz.testing.fake_github import FakeGitHub

pytestmark = pytest.mark.usefixtures("isolated_git")

TOKEN = "ghp_followUpTest0123456789abcdefABCDEF"
GATE = {"test": "test -f README.md", "timeout": 60}
SCENARIO: dict[str, Any] = {
    "summary": "One line of notes.",
    "tasks": [task("note")],
    # Each goal's "note" task adds a line: the follow-up's lands on top of the earlier one's.
    "agent": {
        "note": [[{"append": {"path": "notes.txt", "content": "a line\n"}}]],
        "more": [[{"write": {"path": "more.txt", "content": "more\n"}}]],
    },
}


def with_remote(tmp_path: Path, repo: Path) -> Path:
    """``origin`` on GitHub for its URL, pushing to a bare repository under ``tmp_path``."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", "https://github.com/acme/notes.git")
    git(repo, "remote", "set-url", "--push", "origin", str(bare))
    return bare


async def follow_up(app: App, repo: Path, key: str, title: str, **request: Any) -> Goal:
    """Run a follow-up of goal ``key`` to its end in a fresh engine."""
    engine = app.engine()
    submitted = await actions.new_goal(
        app, engine, repo, actions.GoalRequest(title=title, follows=key, **request)
    )
    return (await engine.run())[submitted.goal.id]


async def test_a_follow_up_continues_the_branch_and_updates_the_same_pull_request(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=GATE)
    bare = with_remote(tmp_path, repo)
    with FakeGitHub(token=TOKEN) as github:
        app = apps(SCENARIO, github_token=TOKEN, github_api_url=github.url)
        _, first = await run_one(app, repo, "Start the notes")
        assert first.state is GoalState.SUCCEEDED, first.error
        first_head = git(repo, "rev-parse", first.branch)
        (pull,) = github.pulls
        opened_body = pull["body"]

        engine = app.engine()
        submitted = await actions.new_goal(
            app,
            engine,
            repo,
            actions.GoalRequest(title="Add a second line", follows=first.id),
        )
        started = submitted.goal
        assert (started.follows, started.branch) == (first.id, first.branch)
        assert started.base_sha == first_head  # where the earlier goal left its branch
        finished = (await engine.run())[started.id]

    assert finished.state is GoalState.SUCCEEDED, finished.error
    # The same branch, one commit more, of the follow-up's own task; pushed.
    commits = branch_commits(repo, first.branch)
    assert [(c.goals, c.tasks) for c in commits] == [
        ((first.id,), ("note",)),
        ((started.id,), ("note",)),
    ]
    assert git(repo, "show", f"{first.branch}:notes.txt") == "a line\na line"
    assert git(bare, "rev-parse", f"refs/heads/{first.branch}") == commits[-1].sha
    (task_row,) = app.store.load_tasks(started.id)
    assert task_row.state is TaskState.SUCCEEDED and task_row.commit == commits[-1].sha

    # The planner was shown the earlier goal's branch and told what it did.
    seen = app.scenario.seen if app.scenario else []
    assert len(seen) == 2
    assert seen[0].request.earlier == "" and "notes.txt" not in seen[0].files
    follow = seen[1]
    assert follow.files["notes.txt"] == "a line\n"  # the branch, not the user's checkout
    assert not (repo / "notes.txt").exists()
    assert f"continues goal {first.id}" in follow.request.earlier
    assert f"Earlier goal {first.id} (succeeded): Start the notes" in follow.request.earlier
    assert "- note (succeeded): Do note" in follow.request.earlier
    assert pull["html_url"] in follow.request.earlier

    # No second pull request: the first one's description says what the follow-up added.
    assert len(github.pulls) == 1
    assert finished.pr_url == first.pr_url == pull["html_url"]
    body = github.pulls[0]["body"]
    assert body.startswith(opened_body.rstrip())
    assert body.count(f"<!-- blitz:follow-up {started.id} -->") == 1
    assert "## Follow-up: Add a second line" in body
    assert f"A follow-up of goal `{first.id}`, on its branch." in body
    assert "### Tasks" in body.split("## Follow-up")[1]
    patches = [r for r in github.requests if r.method == "PATCH"]
    assert [r.path for r in patches] == ["/repos/acme/notes/pulls/1"]
    events = goal_events(app, started.id)
    assert of_kind(events, "pr.pushed") and of_kind(events, "pr.opened")
    assert leftover_worktrees(app.settings.home) == []
    assert registered_worktrees(repo) == []


async def test_a_follow_up_of_a_follow_up_hears_of_the_whole_chain(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=GATE)  # no remote: the branch stays local
    app = apps(SCENARIO)
    _, first = await run_one(app, repo, "Start the notes")
    second = await follow_up(app, repo, first.id, "Add a second line")
    assert second.state is GoalState.SUCCEEDED, second.error
    plan = Plan(summary="more", tasks=(TaskSpec(id="more", title="Write more"),))
    third = await follow_up(app, repo, second.id, "Write more", plan=lambda **_: plan)

    assert third.state is GoalState.SUCCEEDED, third.error
    assert third.branch == first.branch and third.follows == second.id
    assert [c.goals for c in branch_commits(repo, first.branch)] == [
        (first.id,),
        (second.id,),
        (third.id,),
    ]
    stored = app.store.get_goal(third.id)
    assert stored is not None
    text = followups.planning_context(app.store, stored)
    assert text.index(f"Earlier goal {second.id}") < text.index(f"Earlier goal {first.id}")


async def test_a_follow_up_is_refused_while_its_branch_is_busy_or_unknown_or_elsewhere(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=GATE)
    other_repo = make_repo(tmp_path, name="other", gates=GATE)
    app = apps(SCENARIO)
    _, first = await run_one(app, repo, "Start the notes")
    before = {g.id for g in app.store.list_goals()}

    with pytest.raises(NotFound, match="no goal 'g-nope' to follow up"):
        await follow_up(app, repo, "g-nope", "More")

    # Another project's goal.
    other = await app.register(other_repo)
    elsewhere = await app.new_goal(other, "Elsewhere")
    await actions.cancel(app, None, elsewhere.id, "not needed")
    with pytest.raises(Conflict, match=f"belongs to project other .*not to {repo.name}"):
        await follow_up(app, repo, elsewhere.id, "More")

    # A goal that ended before making its branch.
    project = await app.register(repo)
    unborn = await app.new_goal(project, "Never started")
    await actions.cancel(app, None, unborn.id, "changed my mind")
    with pytest.raises(Conflict, match=f"goal {unborn.id} left no branch"):
        await follow_up(app, repo, unborn.id, "More")

    # The earlier goal's branch busy: a follow-up written but not run yet (planning).
    waiting = await app.new_goal(project, "Queued", follows=first.id)
    with pytest.raises(Conflict, match=f"goal {waiting.id} is still planning on branch"):
        await follow_up(app, repo, first.id, "Another")
    # ...and the earlier goal cannot be reopened under it.
    with pytest.raises(Conflict, match=f"goal {waiting.id} is working on branch"):
        await actions.retry(app, None, first.id, "note")

    added = {g.id for g in app.store.list_goals()} - before
    assert added == {elsewhere.id, unborn.id, waiting.id}  # no refused follow-up was written


async def test_a_follow_up_is_resumed_by_a_new_process_on_the_same_branch(
    tmp_path: Path, apps: MakeApp
) -> None:
    repo = make_repo(tmp_path, gates=GATE)
    app = apps(SCENARIO)
    _, first = await run_one(app, repo, "Start the notes")
    project = await app.register(repo)
    written = await app.new_goal(project, "Add a second line", follows=first.id)

    # Nobody planned it; another process (a new app on the same home) takes it on.
    again = apps(SCENARIO)
    stored = again.store.get_goal(written.id)
    assert stored is not None
    assert (stored.follows, stored.branch, stored.base_sha) == (
        first.id,
        first.branch,
        git(repo, "rev-parse", first.branch),
    )
    engine = again.engine()
    await engine.resume(stored)
    done = (await engine.run())[written.id]

    assert done.state is GoalState.SUCCEEDED, done.error
    assert [c.goals for c in branch_commits(repo, first.branch)] == [(first.id,), (written.id,)]
    seen = again.scenario.seen if again.scenario else []
    assert [s.files.get("notes.txt") for s in seen] == ["a line\n"]


def test_publishing_again_replaces_the_follow_up_s_section() -> None:
    goal = Goal(id="g-2", project_id="p", title="Add  a\nline", follows="g-1")
    description = (
        "# blitz: Add a line\n\n## Goal\n\nAdd a line\n\n## Tasks\n\n"
        "<details><summary>out</summary>\n\n````text\n## not a heading\n````\n\n</details>\n"
    )
    once = followups.updated_body("# The PR\n\nWhat it did.\n", goal, description)
    twice = followups.updated_body(once, goal, description.replace("## Tasks", "## Tasks!"))

    assert once.startswith("# The PR\n\nWhat it did.\n\n<!-- blitz:follow-up g-2 -->\n")
    assert "## Follow-up: Add a line\n" in once
    assert "### Goal" in once and "### Tasks" in once
    assert "# blitz: Add a line" not in once  # the section's own heading says it
    assert "\n## not a heading\n" in once  # a fenced block is left as it is
    assert twice.count("<!-- blitz:follow-up g-2 -->") == 1
    assert "### Tasks!" in twice and "### Tasks\n" not in twice
    # Another follow-up's section goes after it, and the first stays.
    third = Goal(id="g-3", project_id="p", title="More", follows="g-2")
    both = followups.updated_body(twice, third, "# blitz: More\n\n## Goal\n\nMore\n")
    assert both.startswith(twice.rstrip()) and "## Follow-up: More" in both


def test_a_description_too_long_for_github_gives_way_at_its_start() -> None:
    goal = Goal(id="g-2", project_id="p", title="More", follows="g-1")
    body = followups.updated_body("x" * 70_000, goal, "# blitz: More\n\n## Goal\n\nMore\n")

    assert len(body) <= followups.BODY_LIMIT
    assert "## Follow-up: More" in body and body.rstrip().endswith("<!-- /blitz:follow-up g-2 -->")
    assert "too long for GitHub" in body
