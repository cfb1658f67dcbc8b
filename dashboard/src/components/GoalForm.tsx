/** Submits a goal: project, what to do, the backend, best-of-N exploration and, optionally, a plan. */
import { useEffect, useState } from "react";
import { ApiError, api } from "../api";
import { goalPath, navigate } from "../router";
import { useToasts } from "../toasts";
import type { Project } from "../types";

const BACKENDS = ["scripted", "embedded", "claude-code", "codex"];

export function GoalForm({ projects, onSubmitted }: { projects: Project[]; onSubmitted: () => void }) {
  const toasts = useToasts();
  const [project, setProject] = useState("");
  const [title, setTitle] = useState("");
  const [backend, setBackend] = useState("");
  const [explore, setExplore] = useState(1);
  const [maxParallel, setMaxParallel] = useState("");
  const [plan, setPlan] = useState("");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    // Functional: a choice made while the list was loading must not be overwritten.
    if (projects.length) setProject((chosen) => chosen || projects[0].id);
  }, [projects]);

  const chosen = projects.find((p) => p.id === project);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    let parsedPlan: unknown;
    if (plan.trim()) {
      try {
        parsedPlan = JSON.parse(plan);
      } catch (err) {
        toasts.error(new ApiError({ title: "the plan is not JSON", status: 0, detail: String(err) }));
        return;
      }
    }
    setBusy(true);
    try {
      const goal = await api.submitGoal({
        project,
        title: title.trim(),
        ...(backend.trim() ? { backend: backend.trim() } : {}),
        ...(explore > 1 ? { explore } : {}),
        ...(maxParallel ? { max_parallel: Number(maxParallel) } : {}),
        ...(parsedPlan !== undefined ? { plan: parsedPlan } : {}),
      });
      setTitle("");
      onSubmitted();
      navigate(goalPath(goal.id));
    } catch (error) {
      toasts.error(error, "submitting the goal");
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="goal-form" onSubmit={submit} data-testid="goal-form">
      <label>
        project
        <select value={project} onChange={(e) => setProject(e.target.value)} data-testid="goal-project">
          {projects.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
              {p.paused ? " (paused)" : ""}
            </option>
          ))}
        </select>
      </label>
      <label>
        goal
        <textarea
          rows={3}
          placeholder="Add rate limiting to the API"
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          data-testid="goal-title"
        />
      </label>
      <div className="row">
        <label>
          backend
          <input
            list="backends"
            placeholder={chosen?.backend ?? "the project's"}
            value={backend}
            onChange={(e) => setBackend(e.target.value)}
            data-testid="goal-backend"
          />
          <datalist id="backends">
            {BACKENDS.map((b) => (
              <option key={b} value={b} />
            ))}
          </datalist>
        </label>
        <label title="attempts per task run side by side; the best is kept">
          explore (best of N)
          <input
            type="number"
            min={1}
            max={16}
            value={explore}
            onChange={(e) => setExplore(Math.max(1, Number(e.target.value) || 1))}
            data-testid="goal-explore"
          />
        </label>
        <label>
          max parallel
          <input
            type="number"
            min={1}
            placeholder={String(chosen?.max_parallel ?? "")}
            value={maxParallel}
            onChange={(e) => setMaxParallel(e.target.value)}
            data-testid="goal-max-parallel"
          />
        </label>
      </div>
      <details>
        <summary>plan (optional, JSON in the plan-file format)</summary>
        <textarea
          rows={6}
          className="mono"
          placeholder={'{"summary": "…", "tasks": [{"id": "a", "title": "…", "depends_on": []}]}'}
          value={plan}
          onChange={(e) => setPlan(e.target.value)}
          data-testid="goal-plan"
        />
      </details>
      <div className="form-foot">
        {chosen?.require_plan_approval && (
          <span className="muted">This project waits for you to approve the plan.</span>
        )}
        <button type="submit" disabled={busy || !project || !title.trim()} data-testid="goal-submit">
          {busy ? "submitting…" : "run goal"}
        </button>
      </div>
    </form>
  );
}
