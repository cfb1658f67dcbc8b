/** Circuit breakers: closed is quiet, open says why and when it will probe again. */
import { api } from "../api";
import { duration } from "../format";
import { useToasts } from "../toasts";
import type { Breaker } from "../types";

export function Breakers({ breakers, onChanged }: { breakers: Breaker[]; onChanged: () => void }) {
  const toasts = useToasts();
  if (breakers.length === 0) {
    return (
      <p className="muted" data-testid="no-breakers">
        No breaker has tripped: every backend and project is taking work.
      </p>
    );
  }
  return (
    <ul className="breakers" data-testid="breakers">
      {breakers.map((b) => (
        <li key={b.key} className={`breaker breaker-${b.state}`} data-testid={`breaker-${b.key}`} data-state={b.state}>
          <span className="mono">{b.key}</span>
          <span className={`badge breaker-badge-${b.state}`}>{b.state.replace("_", "-")}</span>
          {b.failures > 0 && <span className="muted">{b.failures} consecutive crashes</span>}
          {b.state === "open" && b.retry_in !== null && (
            <span className="muted">probes in {duration(b.retry_in)}</span>
          )}
          {b.last_error && <span className="breaker-error">{b.last_error}</span>}
          {b.state !== "closed" && (
            <button
              className="small secondary"
              onClick={async () => {
                try {
                  await api.resetBreaker(b.key);
                  onChanged();
                } catch (error) {
                  toasts.error(error, "resetting the breaker");
                }
              }}
            >
              reset
            </button>
          )}
        </li>
      ))}
    </ul>
  );
}
