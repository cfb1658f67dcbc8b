import type { StreamStatus } from "../stream";

const LABEL: Record<StreamStatus, string> = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  refused: "stream refused",
};

/** Whether the event stream is connected: the page is only live while it is. */
export function StreamBadge({ status }: { status: StreamStatus }) {
  return (
    <span className={`stream-badge stream-${status}`} data-testid="stream-status" data-status={status}>
      <span className="dot" /> {LABEL[status]}
    </span>
  );
}
