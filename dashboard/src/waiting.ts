/**
 * Tasks parked until their model provider takes calls again, from the event log: a
 * `task.waiting` event (data {until, reason, seconds}) says a task waits until a wall time; a
 * later start or end of the task says it no longer does. (`task.ready` follows `task.waiting`
 * at once: the task is queued, but is not started before its time.)
 */
import type { BlitzEvent } from "./types";

export interface Wait {
  /** Wall time (seconds since the epoch) the task waits until. */
  until: number;
  /** Why: what the provider answered. */
  reason: string;
  message: string;
}

const MOVED_ON = new Set([
  "task.started",
  "attempt.started",
  "task.succeeded",
  "task.failed",
  "task.crashed",
  "task.skipped",
  "task.retried",
]);
const PARKED = new Set(["pending", "ready"]);

/** The tasks waiting now (`now` in seconds), by task id; `states` (task id to state) leaves
 * out a task that has moved on even if its events have not arrived yet. */
export function waitingTasks(
  events: readonly BlitzEvent[],
  now: number,
  states: ReadonlyMap<string, string>,
): Map<string, Wait> {
  const waits = new Map<string, Wait>();
  for (const e of events) {
    if (!e.task_id) continue;
    if (e.kind === "task.waiting") {
      const until = Number(e.data.until);
      const reason = typeof e.data.reason === "string" ? e.data.reason : "";
      if (Number.isFinite(until)) waits.set(e.task_id, { until, reason, message: e.message });
    } else if (MOVED_ON.has(e.kind)) {
      waits.delete(e.task_id);
    }
  }
  for (const [task, wait] of waits) {
    const state = states.get(task);
    if (wait.until <= now || (state !== undefined && !PARKED.has(state))) waits.delete(task);
  }
  return waits;
}

/** "429 rate limited (retry-after 90)" -> its first line, for a tag or a tooltip. */
export function firstLine(text: string): string {
  return text.split("\n", 1)[0].trim();
}

/** Why the running attempt of a task waits for a worker, from the event log: the latest
 * `attempt.waiting` (data {reason}) of one of `running` (attempt ids) with no `attempt.placed`
 * or `attempt.finished` after it; "" when it does not wait. */
export function workerWait(events: readonly BlitzEvent[], running: ReadonlySet<string>): string {
  const waits = new Map<string, string>();
  for (const e of events) {
    if (!e.attempt_id) continue;
    if (e.kind === "attempt.waiting") {
      waits.set(e.attempt_id, typeof e.data.reason === "string" && e.data.reason ? e.data.reason : e.message);
    } else if (e.kind === "attempt.placed" || e.kind === "attempt.finished") {
      waits.delete(e.attempt_id);
    }
  }
  for (const [attempt, reason] of waits) if (running.has(attempt)) return reason;
  return "";
}
