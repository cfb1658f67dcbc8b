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

/** The attempts waiting for a worker, from the event log: attempt id -> its task and why, from
 * its latest `attempt.waiting` (data {reason}) with no `attempt.placed` or `attempt.finished`
 * after it. */
function attemptWaits(events: readonly BlitzEvent[]): Map<string, { task: string; reason: string }> {
  const waits = new Map<string, { task: string; reason: string }>();
  for (const e of events) {
    if (!e.attempt_id) continue;
    if (e.kind === "attempt.waiting") {
      const reason = typeof e.data.reason === "string" && e.data.reason ? e.data.reason : e.message;
      waits.set(e.attempt_id, { task: e.task_id, reason });
    } else if (e.kind === "attempt.placed" || e.kind === "attempt.finished") {
      waits.delete(e.attempt_id);
    }
  }
  return waits;
}

/** Why the running attempt of a task waits for a worker (`running`: its running attempt ids);
 * "" when it does not wait. */
export function workerWait(events: readonly BlitzEvent[], running: ReadonlySet<string>): string {
  for (const [attempt, wait] of attemptWaits(events)) if (running.has(attempt)) return wait.reason;
  return "";
}

/** The tasks whose running attempt waits for a worker (`running`: the goal's running attempt
 * ids), by task id: why. An attempt that has ended is not waiting, whatever its events say. */
export function workerWaitingTasks(events: readonly BlitzEvent[], running: ReadonlySet<string>): Map<string, string> {
  const tasks = new Map<string, string>();
  for (const [attempt, wait] of attemptWaits(events)) {
    if (running.has(attempt) && wait.task && !tasks.has(wait.task)) tasks.set(wait.task, wait.reason);
  }
  return tasks;
}
