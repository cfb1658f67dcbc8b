import { describe, expect, it } from "vitest";
import type { BlitzEvent } from "./types";
import { waitingTasks, workerWait, workerWaitingTasks } from "./waiting";

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

describe("workerWaitingTasks", () => {
  function at(id: number, kind: string, task: string, attempt: string, data: Record<string, unknown> = {}): BlitzEvent {
    return { ...ev(id, kind, task, data), attempt_id: attempt };
  }

  it("marks each task whose running attempt waits for a worker, with why", () => {
    const events = [
      at(1, "attempt.started", "a", "a1"),
      at(2, "attempt.waiting", "a", "a1", { reason: "no worker offers the backend 'codex'" }),
      at(3, "attempt.started", "b", "b1"),
      at(4, "attempt.waiting", "b", "b1", { reason: "every slot is busy" }),
      at(5, "attempt.placed", "b", "b1", { node: "n" }),
      at(6, "attempt.started", "c", "c1"),
      at(7, "attempt.waiting", "c", "c1", {}), // no reason in its data: its message
    ];
    const running = new Set(["a1", "b1", "c1"]);
    expect(workerWaitingTasks(events, running)).toEqual(
      new Map([
        ["a", "no worker offers the backend 'codex'"],
        ["c", "attempt.waiting"],
      ]),
    );
  });

  it("forgets an attempt that ended or is not running, and a task with none waiting", () => {
    const events = [
      at(1, "attempt.waiting", "a", "a1", { reason: "busy" }),
      at(2, "attempt.finished", "a", "a1"),
      at(3, "attempt.waiting", "b", "b1", { reason: "busy" }),
    ];
    expect(workerWaitingTasks(events, new Set(["a1", "b1"]))).toEqual(new Map([["b", "busy"]]));
    expect(workerWaitingTasks(events, new Set(["a1"])).size).toBe(0); // b1 is no longer running
    expect(workerWaitingTasks([], new Set(["a1"])).size).toBe(0);
  });

  it("keeps a task's running attempt waiting after an earlier attempt of it was placed", () => {
    const events = [
      at(1, "attempt.waiting", "a", "a1", { reason: "busy" }),
      at(2, "attempt.placed", "a", "a1", { node: "n" }),
      at(3, "attempt.finished", "a", "a1"),
      at(4, "attempt.waiting", "a", "a2", { reason: "the node died; no other offers it" }),
    ];
    expect(workerWaitingTasks(events, new Set(["a2"]))).toEqual(new Map([["a", "the node died; no other offers it"]]));
  });
});
