/** The output of an attempt's gates while they run, streamed from the daemon
 * (`GET /api/goals/{goal}/attempts/{attempt}/gates/live`); their recorded results replace it
 * once the attempt has ended. */
import { useEffect, useState } from "react";
import { authHeaders, reportUnauthorized } from "../api";
import { applyUpdate } from "../liveGates";
import type { LiveGate, Update } from "../liveGates";
import { openStream } from "../sse";

export function LiveGates({ goalId, attemptId }: { goalId: string; attemptId: string }) {
  const [gates, setGates] = useState<LiveGate[]>([]);
  const [open, setOpen] = useState(false);
  useEffect(() => {
    const enc = encodeURIComponent;
    return openStream({
      url: `/api/goals/${enc(goalId)}/attempts/${enc(attemptId)}/gates/live`,
      headers: authHeaders(),
      // A reconnected stream goes on from the last message (Last-Event-ID); when the daemon
      // cannot (a first connection, or it restarted) it says gate.reset and sends all it kept.
      onOpen: () => setOpen(true),
      onDrop: () => setOpen(false),
      onRefused: (response) => {
        if (response.status === 401) void reportUnauthorized(response);
      },
      onEvent: (message) => {
        if (message.event === "gate.reset") setGates([]);
        if (message.event !== "gate.output") return;
        try {
          const update = JSON.parse(message.data) as Update;
          setGates((list) => applyUpdate(list, update));
        } catch {
          // not an update: ignored
        }
      },
    });
  }, [goalId, attemptId]);

  if (!gates.length) {
    return (
      <p className="muted" data-testid="gates-live-waiting" data-open={open ? "true" : "false"}>
        Gates run when the agent is done; their output shows here as they print it.
      </p>
    );
  }
  return (
    <div data-testid="gates-live">
      {gates.map((g, i) => (
        <details key={i} open className="gate" data-testid={`gate-live-${g.name}`} data-ended={g.ended ? "true" : "false"}>
          <summary>
            <span className={`badge ${g.ended ? "state-skipped" : "state-running"}`}>{g.ended ? "ended" : "running"}</span>{" "}
            <strong>{g.name}</strong> <span className="mono small">{g.command}</span>
          </summary>
          <pre className="gate-output">{g.text || "(nothing printed yet)"}</pre>
        </details>
      ))}
    </div>
  );
}
