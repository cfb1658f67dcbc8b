/** Submits a goal: project, what to do, the backend, best-of-N exploration and, optionally, a plan
 * written as a plan file is (YAML or JSON; the daemon reads it as `blitz run --plan` does). What
 * the daemon refuses is shown next to the field it names, once. */
import { useEffect, useState } from "react";
import { api } from "../api";
import { NO_PROBLEM, formProblem } from "../formProblem";
import type { FormProblem } from "../formProblem";
import { goalPath, navigate } from "../router";
import type { Project } from "../types";
import { FieldError, FormError } from "./FieldError";

const BACKENDS = ["scripted", "embedded", "claude-code", "codex"];

/** The fields of the request whose errors are shown next to them. */
const FIELDS = ["project", "title", "backend", "explore", "max_parallel", "plan", "allow_dirty"];

const PLAN_EXAMPLE = `summary: what the plan does
tasks:
  - id: model
    title: Add the model
  - id: api
    title: Expose it in the API
    depends_on: [model]`;

export function GoalForm({ projects, onSubmitted }: { projects: Project[]; onSubmitted: () => void }) {
  const [project, setProject] = useState("");
  const [title, setTitle] = useState("");
  const [backend, setBackend] = useState("");
  const [explore, setExplore] = useState(1);
  const [maxParallel, setMaxParallel] = useState("");
  const [plan, setPlan] = useState("");
  const [planOpen, setPlanOpen] = useState(false);
  const [allowDirty, setAllowDirty] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<FormProblem>(NO_PROBLEM);

  useEffect(() => {
    // Functional: a choice made while the list was loading must not be overwritten.
    if (projects.length) setProject((chosen) => chosen || projects[0].id);
  }, [projects]);

  const chosen = projects.find((p) => p.id === project);

  /** Editing a field puts its error away (the rest stay until the next try). */
  const edited = (field: string) => {
    setProblem((p) => {
      if (!p.fields[field]) return p;
      const fields = { ...p.fields };
      delete fields[field];
      return { ...p, fields };
    });
  };

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setProblem(NO_PROBLEM);
    setBusy(true);
    try {
      const goal = await api.submitGoal({
        project,
        title: title.trim(),
        ...(backend.trim() ? { backend: backend.trim() } : {}),
        ...(explore > 1 ? { explore } : {}),
        ...(maxParallel ? { max_parallel: Number(maxParallel) } : {}),
        ...(plan.trim() ? { plan } : {}),
        ...(allowDirty ? { allow_dirty: true } : {}),
      });
      setTitle("");
      onSubmitted();
      navigate(goalPath(goal.id));
    } catch (error) {
      const found = formProblem(error, FIELDS);
      if (found.fields.plan) setPlanOpen(true);
      setProblem(found);
    } finally {
      setBusy(false);
    }
  };

  const wrong = (field: string) => (problem.fields[field] ? "has-error" : undefined);
  const showDirty = allowDirty || Boolean(problem.fields.allow_dirty);

  return (
    <form className="goal-form" onSubmit={submit} data-testid="goal-form">
      <label className={wrong("project")}>
        project
        <select
          value={project}
          onChange={(e) => {
            setProject(e.target.value);
            edited("project");
            edited("allow_dirty");
          }}
          data-testid="goal-project"
        >
          {projects.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
              {p.paused ? " (paused)" : ""}
            </option>
          ))}
        </select>
        <FieldError messages={problem.fields.project} testid="goal-error-project" />
      </label>
      <label className={wrong("title")}>
        goal
        <textarea
          rows={3}
          placeholder="Add rate limiting to the API"
          value={title}
          onChange={(e) => {
            setTitle(e.target.value);
            edited("title");
          }}
          data-testid="goal-title"
        />
        <FieldError messages={problem.fields.title} testid="goal-error-title" />
      </label>
      <div className="row">
        <label className={wrong("backend")}>
          backend
          <input
            list="backends"
            placeholder={chosen?.backend ?? "the project's"}
            value={backend}
            onChange={(e) => {
              setBackend(e.target.value);
              edited("backend");
            }}
            data-testid="goal-backend"
          />
          <datalist id="backends">
            {BACKENDS.map((b) => (
              <option key={b} value={b} />
            ))}
          </datalist>
          <FieldError messages={problem.fields.backend} testid="goal-error-backend" />
        </label>
        <label title="attempts per task run side by side; the best is kept" className={wrong("explore")}>
          explore (best of N)
          <input
            type="number"
            min={1}
            max={10}
            value={explore}
            onChange={(e) => {
              setExplore(Math.max(1, Number(e.target.value) || 1));
              edited("explore");
            }}
            data-testid="goal-explore"
          />
          <FieldError messages={problem.fields.explore} testid="goal-error-explore" />
        </label>
        <label className={wrong("max_parallel")}>
          max parallel
          <input
            type="number"
            min={1}
            placeholder={String(chosen?.max_parallel ?? "")}
            value={maxParallel}
            onChange={(e) => {
              setMaxParallel(e.target.value);
              edited("max_parallel");
            }}
            data-testid="goal-max-parallel"
          />
          <FieldError messages={problem.fields.max_parallel} testid="goal-error-max_parallel" />
        </label>
      </div>
      <details open={planOpen} onToggle={(e) => setPlanOpen(e.currentTarget.open)}>
        <summary>plan (optional): YAML or JSON, as in a plan file (docs/plan-format.md)</summary>
        <div className={wrong("plan")}>
          <textarea
            rows={7}
            className="mono"
            placeholder={PLAN_EXAMPLE}
            value={plan}
            onChange={(e) => {
              setPlan(e.target.value);
              edited("plan");
            }}
            data-testid="goal-plan"
          />
          <FieldError messages={problem.fields.plan} testid="goal-error-plan" />
        </div>
      </details>
      {showDirty && (
        <div className={wrong("allow_dirty")}>
          <label className="check">
            <input
              type="checkbox"
              checked={allowDirty}
              onChange={(e) => {
                setAllowDirty(e.target.checked);
                edited("allow_dirty");
              }}
              data-testid="goal-allow-dirty"
            />
            go ahead without the repository's uncommitted changes
          </label>
          <FieldError messages={problem.fields.allow_dirty} testid="goal-error-allow_dirty" />
        </div>
      )}
      <div className="form-foot">
        <FormError message={problem.message} testid="goal-form-error" />
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
