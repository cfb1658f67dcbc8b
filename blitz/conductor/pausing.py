"""Paused projects: which are paused and why. Pausing a project holds its queued tasks in the
router (running attempts finish) and updates every goal of it; resuming frees them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from blitz.conductor.goal import GoalRun
from blitz.conductor.journal import Journal
from blitz.domain import Project
from blitz.errors import UserError
from blitz.events import EventKind
from blitz.router import Router


class Pauses:
    """The paused projects of the engine's goals. Shares the engine's ``runs``."""

    __slots__ = ("_journal", "_reasons", "_router", "_runs")

    def __init__(self, *, runs: dict[str, GoalRun], router: Router, journal: Journal) -> None:
        self._runs = runs
        self._router = router
        self._journal = journal
        self._reasons: dict[str, str] = {}  # project id -> why it is paused

    def __contains__(self, project_id: str) -> bool:
        return project_id in self._reasons

    def reason(self, project_id: str) -> str | None:
        """Why a project is paused; None when it is not."""
        return self._reasons.get(project_id)

    def blocked(self) -> dict[str, str]:
        """Goals that cannot move because their project is paused and nothing of theirs runs:
        goal id -> the pause reason."""
        held = {}
        for goal_id, run in self._runs.items():
            reason = self._reasons.get(run.project.id)
            if reason is not None and not run.jobs:
                held[goal_id] = reason
        return held

    def hold(self, project_id: str, reason: str) -> None:
        """A project already paused in the store: hold its tasks."""
        self._reasons[project_id] = reason
        self._router.pause_project(project_id)

    def pause(self, project_id: str, reason: str) -> None:
        """Pause a project and record it (nothing if it already is)."""
        if project_id in self._reasons:
            return
        self.hold(project_id, reason)
        run = next((r for r in self._runs.values() if r.project.id == project_id), None)
        stored = self._journal.store.get_project(project_id) or (run.project if run else None)
        if stored is None:
            return
        paused = dataclasses.replace(stored, paused=True, pause_reason=reason)
        self._set_project(paused)
        message = f"{paused.name} paused: {reason}"
        event = self._journal.event(EventKind.PROJECT_PAUSED, message, project_id=project_id)
        self._journal.write(paused, events=[event])

    def resume(self, project_id: str) -> None:
        """Resume a project and record it if it was paused."""
        stored = self._journal.store.get_project(project_id)
        if stored is None:
            raise UserError(f"no project {project_id}")
        self._reasons.pop(project_id, None)
        self._router.resume_project(project_id)
        resumed = dataclasses.replace(stored, paused=False, pause_reason="")
        self._set_project(resumed)
        if stored.paused:
            message = f"{stored.name} resumed"
            event = self._journal.event(EventKind.PROJECT_RESUMED, message, project_id=project_id)
            self._journal.write(resumed, events=[event])

    def follow(self, projects: Mapping[str, Project]) -> None:
        """Follow pauses and resumes that other processes stored (``blitz projects pause``)."""
        for project_id in {run.project.id for run in self._runs.values()}:
            stored = projects.get(project_id)
            if stored is None or stored.paused == (project_id in self._reasons):
                continue
            if stored.paused:
                self.hold(project_id, stored.pause_reason or "paused")
            else:
                del self._reasons[project_id]
                self._router.resume_project(project_id)
                self._set_project(stored)

    def _set_project(self, project: Project) -> None:
        for run in self._runs.values():
            if run.project.id == project.id:
                run.project = project
