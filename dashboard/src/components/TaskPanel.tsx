/** One task: what it was asked, its attempts, and the chosen attempt's transcript, diff and gates. */
import { useState } from "react";
import { api } from "../api";
import { age, clock, duration, money, shortSha } from "../format";
import { recoveryOf } from "../layout";
import { useToasts } from "../toasts";
import type { BlitzEvent, Recovery, TaskDetail } from "../types";
import { workerWait } from "../waiting";
import type { Wait } from "../waiting";
import { AttemptView } from "./AttemptView";

const RETRYABLE = new Set(["failed", "crashed", "skipped"]);
const SKIPPABLE = new Set(["pending", "ready", "failed", "crashed"]);

interface Props {
  goalId: string;
  goalDone: boolean;
  detail: TaskDetail | null;
  attemptId: string;
  events: BlitzEvent[];
  /** Set while the task waits for its model provider. */
  wait?: Wait;
  /** The panel has the whole width (the graph is hidden). */
  wide: boolean;
  onWide: (wide: boolean) => void;
  onSelectAttempt: (attempt: string) => void;
  onClose: () => void;
}

export function TaskPanel({ goalId, goalDone, detail, attemptId, events, wait, wide, onWide, onSelectAttempt, onClose }: Props) {
  const toasts = useToasts();
  const [busy, setBusy] = useState(false);
  if (!detail) {
    return (
      <aside className="task-panel card" data-testid="task-panel">
        <p className="muted">loading the task…</p>
      </aside>
    );
  }
  const attempts = detail.attempts_list;
  const shown = attempts.find((a) => a.id === attemptId) ?? attempts[attempts.length - 1];
  const origin = recoveryOf(detail.origin);
  const running = new Set(attempts.filter((a) => a.state === "running").map((a) => a.id));
  const forWorker = running.size > 0 ? workerWait(events, running) : "";
  const listed: unknown = detail.recoveries_list ?? detail.recoveries;
  const recoveries = Array.isArray(listed) ? (listed as Recovery[]) : [];

  const act = async (what: "retry" | "skip") => {
    setBusy(true);
    try {
      const action = what === "retry" ? await api.retry(goalId, detail.id) : await api.skip(goalId, detail.id);
      toasts.info(`${what} requested`, action.applied === "queued" ? "queued for the process that runs the goal" : "");
    } catch (error) {
      toasts.error(error, `${what} ${detail.id}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <aside className="task-panel card" data-testid="task-panel" data-task={detail.id} data-state={detail.state}>
      <div className="panel-head">
        <div>
          <div className="muted mono small">{detail.id}</div>
          <h2>{detail.title}</h2>
        </div>
        <div className="panel-buttons">
          <button
            className="small secondary"
            onClick={() => onWide(!wide)}
            data-testid="task-wide"
            aria-pressed={wide}
            title={wide ? "show the graph beside the task" : "give the task the whole width"}
          >
            {wide ? "⇥ beside the graph" : "⇤ whole width"}
          </button>
          <button className="link" onClick={onClose} aria-label="close the task" data-testid="task-close">
            ×
          </button>
        </div>
      </div>
      <div className="facts">
        <span className={`badge state-${detail.state}`} data-testid="task-state">
          {detail.state}
        </span>
        {origin && <span className="tag tag-recovery">recovery of {origin}</span>}
        {detail.commit && <span className="mono small">commit {shortSha(detail.commit)}</span>}
        {detail.backend && <span className="small">backend {detail.backend}</span>}
        {detail.model && <span className="small">model {detail.model}</span>}
        {detail.depends_on.length > 0 && <span className="small">after {detail.depends_on.join(", ")}</span>}
        {(detail.labels ?? []).length > 0 && (
          <span className="small" data-testid="task-labels">
            needs {detail.labels.join(", ")}
          </span>
        )}
      </div>
      {!goalDone && (RETRYABLE.has(detail.state) || SKIPPABLE.has(detail.state)) && (
        <div className="actions">
          {RETRYABLE.has(detail.state) && (
            <button className="small" disabled={busy} onClick={() => act("retry")} data-testid="task-retry">
              retry
            </button>
          )}
          {SKIPPABLE.has(detail.state) && (
            <button className="small secondary" disabled={busy} onClick={() => act("skip")} data-testid="task-skip">
              skip
            </button>
          )}
        </div>
      )}
      {wait && (
        <div className="note note-warn" data-testid="task-waiting" data-until={wait.until}>
          <strong>waiting for its model provider</strong> until {clock(wait.until)} (in{" "}
          {age(wait.until - Date.now() / 1000)}): {wait.reason || wait.message}
        </div>
      )}
      {forWorker && (
        <div className="note note-warn" data-testid="task-worker-wait">
          <strong>waiting for a worker:</strong> {forWorker}
        </div>
      )}
      {detail.reason && !(wait && detail.reason.startsWith("waiting until")) && (
        <div className={`note ${detail.state === "failed" ? "note-bad" : ""}`} data-testid="task-reason">
          <strong>why:</strong> {detail.reason}
        </div>
      )}
      {detail.root_cause && (
        <div className="note note-bad" data-testid="task-root-cause">
          <strong>root cause:</strong> {detail.root_cause}
        </div>
      )}
      <details open={!shown}>
        <summary>instructions</summary>
        <pre className="instructions" data-testid="task-instructions">
          {detail.instructions || "(none beyond the title)"}
        </pre>
        {detail.guidance && (
          <>
            <h4>guidance from recovery</h4>
            <pre className="instructions">{detail.guidance}</pre>
          </>
        )}
        {detail.files.length > 0 && <p className="small mono">files: {detail.files.join(", ")}</p>}
        {detail.checks.length > 0 && (
          <ul className="small">
            {detail.checks.map((c, i) => (
              <li key={i} className="mono">
                {c.kind}: {c.command || c.path}
              </li>
            ))}
          </ul>
        )}
      </details>
      {recoveries.length > 0 && (
        <div className="recoveries small">
          {recoveries.map((r) => (
            <div key={r.id} className="note">
              <strong>recovery: {r.action}</strong> — {r.root_cause}
              {r.new_tasks.length > 0 && <> (new: {r.new_tasks.join(", ")})</>}
            </div>
          ))}
        </div>
      )}
      <h3>Attempts</h3>
      {attempts.length === 0 ? (
        <p className="muted">No attempt yet.</p>
      ) : (
        <table className="table attempts" data-testid="attempts">
          <thead>
            <tr>
              <th>#</th>
              <th>state</th>
              <th>backend / model</th>
              <th>cost</th>
              <th>time</th>
            </tr>
          </thead>
          <tbody>
            {attempts.map((a) => (
              <tr
                key={a.id}
                className={`clickable ${shown?.id === a.id ? "current" : ""}`}
                onClick={() => onSelectAttempt(a.id)}
                data-testid={`attempt-row-${a.number}${a.candidate ? `-${a.candidate}` : ""}`}
                data-state={a.state}
              >
                <td>
                  {a.number}
                  {a.candidate > 0 && <span className="tag">cand {a.candidate}</span>}
                  {a.selected && <span className="tag tag-kept">kept</span>}
                </td>
                <td>
                  <span className={`badge state-${a.state}`}>{a.state}</span>
                </td>
                <td>
                  {a.backend}
                  {a.model && <span className="muted"> / {a.model}</span>}
                </td>
                <td>{money(a.usage.cost_usd)}</td>
                <td>{a.duration ? duration(a.duration) : a.state === "running" ? "…" : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {shown && <AttemptView key={shown.id} goalId={goalId} summary={shown} events={events} />}
    </aside>
  );
}
