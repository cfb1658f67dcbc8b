/** Every goal, newest first: state, progress, cost and age; a row opens the goal. */
import { useEffect, useState } from "react";
import { api } from "../api";
import { age, money } from "../format";
import { goalPath, navigate } from "../router";
import { publishPending } from "../types";
import type { Goal } from "../types";
import { useToasts } from "../toasts";
import { Progress } from "./Progress";

export function GoalsTable({ goals, onChanged }: { goals: Goal[] | null; onChanged?: () => void }) {
  const now = useNow(15000);
  const toasts = useToasts();
  const [publishing, setPublishing] = useState("");
  const publish = async (goal: string) => {
    setPublishing(goal);
    try {
      await api.publish(goal);
      toasts.info("publishing again", goal);
      onChanged?.();
    } catch (error) {
      toasts.error(error, `publish ${goal} again`);
    } finally {
      setPublishing("");
    }
  };
  if (goals === null) return <p className="muted">loading…</p>;
  if (goals.length === 0) {
    return (
      <p className="muted" data-testid="no-goals">
        No goals yet.
      </p>
    );
  }
  return (
    <table className="table goals">
      <thead>
        <tr>
          <th>goal</th>
          <th>project</th>
          <th>state</th>
          <th>progress</th>
          <th>cost</th>
          <th>age</th>
        </tr>
      </thead>
      <tbody>
        {goals.map((g) => (
          <tr
            key={g.id}
            className="clickable"
            data-testid={`goal-row-${g.id}`}
            data-state={g.state}
            onClick={() => navigate(goalPath(g.id))}
          >
            <td>
              <a
                href={goalPath(g.id)}
                onClick={(e) => {
                  e.preventDefault();
                  e.stopPropagation();
                  navigate(goalPath(g.id));
                }}
              >
                {g.title}
              </a>
              <div className="muted mono small">{g.id}</div>
            </td>
            <td>{g.project}</td>
            <td>
              <span className={`badge state-${g.state}`}>{g.state.replace("_", " ")}</span>
              {publishPending(g) && (
                <span
                  className="badge badge-publish"
                  data-testid={`goal-publish-pending-${g.id}`}
                  title={`publishing failed ${g.publish_attempts} time(s): ${g.publish_error}`}
                >
                  publishing pending
                </span>
              )}
              {publishPending(g) && (
                <button
                  className="small"
                  disabled={publishing === g.id}
                  data-testid={`goal-publish-${g.id}`}
                  onClick={(e) => {
                    e.stopPropagation();
                    void publish(g.id);
                  }}
                >
                  Publish again
                </button>
              )}
            </td>
            <td>
              <Progress done={g.progress.done} total={g.progress.total} byState={g.progress.by_state} />
            </td>
            <td>{money(g.cost_usd)}</td>
            <td title={new Date(g.created_at * 1000).toLocaleString()}>{age(now / 1000 - g.created_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The current time, re-read every `interval` ms so ages move (no request is made). */
export function useNow(interval: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), interval);
    return () => clearInterval(id);
  }, [interval]);
  return now;
}
