import { describe, expect, it } from "vitest";
import type { BlitzEvent } from "./types";
import { waitingTasks, workerWait } from "./waiting";

function ev(id: number, kind: string, task: string, data: Record<string, unknown> = {}): BlitzEvent {
  return { id, ts: 100 + id, kind, data, goal_id: "g", task_id: task, attempt_id: "", project_id: "", message: kind };
}

const ready = new Map([
  ["a", "ready"],
  ["b", "ready"],
]);

describe("waitingTasks", () => {
  it("keeps a task waiting until its time, with why", () => {
    const events = [
      ev(1, "task.started", "a"),
      ev(2, "task.waiting", "a", { until: 500, reason: "429 slow down", seconds: 90 }),
      ev(3, "task.ready", "a"), // queued at once, started when the wait is over
    ];
    const waits = waitingTasks(events, 200, ready);
    expect(waits.get("a")).toEqual({ until: 500, reason: "429 slow down", message: "task.waiting" });
    expect(waitingTasks(events, 500, ready).size).toBe(0); // the time has come
  });

  it("forgets the wait once the task moves on", () => {
    const events = [ev(1, "task.waiting", "a", { until: 500, reason: "x" }), ev(2, "agent.message", "a"), ev(3, "task.started", "a")];
    expect(waitingTasks(events, 200, ready).size).toBe(0);
    const waiting = events.slice(0, 2);
    expect(waitingTasks(waiting, 200, ready).has("a")).toBe(true);
    expect(waitingTasks(waiting, 200, new Map([["a", "running"]])).size).toBe(0);
  });

  it("keeps the latest wait of each task", () => {
    const events = [
      ev(1, "task.waiting", "a", { until: 300, reason: "first" }),
      ev(2, "task.waiting", "b", { until: 400, reason: "other" }),
      ev(3, "task.waiting", "a", { until: 600, reason: "second" }),
    ];
    const waits = waitingTasks(events, 200, ready);
    expect(waits.get("a")?.reason).toBe("second");
    expect(waits.get("b")?.until).toBe(400);
  });
});

describe("workerWait", () => {
  function at(id: number, kind: string, attempt: string, data: Record<string, unknown> = {}): BlitzEvent {
    return { ...ev(id, kind, "a", data), attempt_id: attempt };
  }

  it("says why a running attempt waits for a worker until it is placed", () => {
    const waiting = [
      at(1, "attempt.started", "a1"),
      at(2, "attempt.waiting", "a1", { reason: "every slot is busy" }),
      at(3, "attempt.waiting", "a1", { reason: "no worker offers the backend 'codex'" }),
    ];
    expect(workerWait(waiting, new Set(["a1"]))).toBe("no worker offers the backend 'codex'");
    expect(workerWait([...waiting, at(4, "attempt.placed", "a1", { node: "n" })], new Set(["a1"]))).toBe("");
    expect(workerWait(waiting, new Set(["a2"]))).toBe(""); // not a running attempt
  });
});
