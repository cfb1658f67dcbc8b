/** A plan waiting for a person: its summary and tasks, with approve and reject. */
import { useState } from "react";
import type { GoalDetail, TaskDetail } from "../types";

interface Props {
  goal: GoalDetail;
  details: Record<string, TaskDetail>;
  onApprove: () => Promise<void>;
  onReject: (reason: string) => Promise<void>;
}

export function PlanReview({ goal, details, onApprove, onReject }: Props) {
  const [busy, setBusy] = useState(false);
  const [reason, setReason] = useState("");
  const run = async (what: () => Promise<void>) => {
    setBusy(true);
    try {
      await what();
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
          <button className="danger" disabled={busy} onClick={() => run(() => onReject(reason))} data-testid="goal-reject">
            reject
          </button>
          <button disabled={busy} onClick={() => run(onApprove)} data-testid="goal-approve">
            approve and run
          </button>
        </div>
      </div>
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
    </section>
  );
}
