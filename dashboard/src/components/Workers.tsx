/** The cluster's worker nodes: slots, backends, labels, what runs there, when last seen. With
 * the local executor, the daemon's note that attempts run in its own process. */
import { age } from "../format";
import type { Workers as WorkersAnswer } from "../types";

export function Workers({ answer }: { answer: WorkersAnswer | null }) {
  if (answer === null) return <p className="muted">loading the workers…</p>;
  const now = Date.now() / 1000;
  return (
    <div data-testid="workers" data-executor={answer.executor}>
      {answer.note && (
        <p className="muted" data-testid="workers-note">
          {answer.note}
        </p>
      )}
      {answer.address && (
        <p className="small">
          Ray cluster at <span className="mono">{answer.address}</span>
        </p>
      )}
      {answer.workers.length > 0 && (
        <table className="workers">
          <thead>
            <tr>
              <th>node</th>
              <th>state</th>
              <th>slots free</th>
              <th>backends</th>
              <th>labels</th>
              <th>attempts</th>
              <th>last seen</th>
            </tr>
          </thead>
          <tbody>
            {answer.workers.map((w) => (
              <tr key={w.node_id} data-testid={`worker-${w.node_id}`} data-alive={w.alive}>
                <td className="mono" title={w.node_id}>
                  {w.address} <span className="muted">{w.node_id.slice(0, 8)}</span>
                </td>
                <td>
                  <span className={`badge ${w.alive ? "state-running" : "state-failed"}`}>{w.alive ? "alive" : "dead"}</span>
                </td>
                <td data-testid="worker-slots">
                  {w.free_slots}/{w.slots}
                </td>
                <td data-testid="worker-backends">{w.backends.join(", ") || "none"}</td>
                <td data-testid="worker-labels">{w.labels.join(", ") || "-"}</td>
                <td className="mono small" data-testid="worker-attempts">
                  {w.attempts.join(", ") || "-"}
                </td>
                <td className="muted">{w.last_seen > 0 ? `${age(now - w.last_seen)} ago` : "not yet"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
