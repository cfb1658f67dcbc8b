/** A plan waiting for a person: its summary and tasks, with approve (as planned, or with an
 * edited plan written as a plan file is: YAML or JSON) and reject. What the daemon says is wrong
 * shows here, under what caused it, once: not as a toast far from the form. */
import { useState } from "react";
import { ApiError } from "../api";
import { NO_PROBLEM, formProblem } from "../formProblem";
import type { FormProblem } from "../formProblem";
import type { Action, GoalDetail, TaskDetail } from "../types";
import { FieldError, FormError } from "./FieldError";

interface Props {
  goal: GoalDetail;
  details: Record<string, TaskDetail>;
  /** Approve the plan: as planned (""), or the edited plan's text instead. */
  approve: (plan: string) => Promise<Action>;
  reject: (reason: string) => Promise<Action>;
  /** After an approval or rejection was taken: read the goal again. */
  onDone: () => void;
}

const FIELDS = ["plan", "reason"];

export function PlanReview({ goal, details, approve, reject, onDone }: Props) {
  const [busy, setBusy] = useState(false);
  const [reason, setReason] = useState("");
  const [plan, setPlan] = useState("");
  const [problem, setProblem] = useState<FormProblem>(NO_PROBLEM);
  const [note, setNote] = useState("");
  const [editing, setEditing] = useState(false);
  const run = async (what: () => Promise<Action>) => {
    setBusy(true);
    setProblem(NO_PROBLEM);
    setNote("");
    try {
      const action = await what();
      if (action.applied === "queued") setNote("Queued for the process that runs this goal.");
      onDone();
    } catch (error) {
      // A refused token returns to the login form on its own.
      if (!(error instanceof ApiError && error.status === 401)) {
        const found = formProblem(error, FIELDS);
        if (found.fields.plan) setEditing(true);
        setProblem(found);
      }
    } finally {
      setBusy(false);
    }
  };
  const tasks = [...goal.tasks].sort((a, b) => a.position - b.position);
  return (
    <section className="card plan-review" data-testid="plan-review">
      <div className="card-head">
        <h2>The plan waits for your approval</h2>
        <div className="actions">
          <input
            placeholder="reason (for a rejection)"
            value={reason}
            onChange={(e) => setReason(e.target.value)}
            data-testid="reject-reason"
          />
          <button className="danger" disabled={busy} onClick={() => run(() => reject(reason))} data-testid="goal-reject">
            reject
          </button>
          <button disabled={busy} onClick={() => run(() => approve(plan))} data-testid="goal-approve">
            {plan.trim() ? "approve the edited plan" : "approve and run"}
          </button>
        </div>
      </div>
      <FieldError messages={problem.fields.reason} testid="plan-error-reason" />
      {goal.summary && <p className="summary">{goal.summary}</p>}
      <ol className="plan-tasks" data-testid="plan-tasks">
        {tasks.map((t) => (
          <li key={t.id} data-testid={`plan-task-${t.id}`}>
            <div>
              <span className="mono">{t.id}</span> <strong>{t.title}</strong>
              {t.depends_on.length > 0 && <span className="muted small"> after {t.depends_on.join(", ")}</span>}
              {t.backend && <span className="tag">{t.backend}</span>}
            </div>
            {details[t.id]?.instructions && <pre className="instructions small">{details[t.id].instructions}</pre>}
          </li>
        ))}
      </ol>
      <details open={editing} onToggle={(e) => setEditing(e.currentTarget.open)} data-testid="plan-edit-box">
        <summary>run another plan instead: YAML or JSON, as in a plan file (docs/plan-format.md)</summary>
        <div className={problem.fields.plan ? "has-error" : undefined}>
          <textarea
            rows={7}
            className="mono"
            placeholder={"summary: what the plan does\ntasks:\n  - id: first\n    title: what it does"}
            value={plan}
            onChange={(e) => {
              setPlan(e.target.value);
              setProblem(NO_PROBLEM);
            }}
            data-testid="plan-edit"
          />
          <FieldError messages={problem.fields.plan} testid="plan-error-plan" />
        </div>
      </details>
      <FormError message={problem.message} testid="plan-review-error" />
      {note && <p className="muted" data-testid="plan-review-note">{note}</p>}
    </section>
  );
}
