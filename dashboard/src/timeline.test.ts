import { describe, expect, it } from "vitest";
import { taskTimes, ticks, timeline } from "./timeline";

const attempt = (task: string, number: number, started: number, finished: number, candidate = 0) => ({
  id: `${task}-${number}-${candidate}`,
  task_id: task,
  number,
  candidate,
  state: finished ? "succeeded" : "running",
  started_at: started,
  finished_at: finished,
});

describe("taskTimes", () => {
  it("is the wall time from a task's first start to its last end, now while it runs", () => {
    const times = taskTimes(
      [attempt("a", 1, 100, 110), attempt("a", 2, 120, 130), attempt("b", 1, 110, 0), attempt("c", 1, 0, 0)],
      150,
    );
    expect(times.get("a")).toEqual({ seconds: 30, running: false });
    expect(times.get("b")).toEqual({ seconds: 40, running: true });
    expect(times.has("c")).toBe(false);
  });
});

describe("timeline", () => {
  it("places attempts on the goal's time axis, side by side candidates in lanes", () => {
    const laid = timeline(
      ["a", "b", "idle"],
      [attempt("a", 1, 110, 130), attempt("b", 1, 130, 150, 1), attempt("b", 1, 132, 140, 2), attempt("b", 2, 150, 200)],
      100,
      200,
    );
    expect([laid.start, laid.end]).toEqual([100, 200]);
    const [a, b, idle] = laid.rows;
    expect(a.bars[0]).toMatchObject({ left: 0.1, width: 0.2, seconds: 20, lane: 0 });
    expect(b.lanes).toBe(2);
    expect(b.bars.map((bar) => bar.lane)).toEqual([0, 1, 0]);
    expect(idle).toEqual({ task: "idle", bars: [], lanes: 1 });
  });

  it("stretches to an attempt that ran past the end it was given", () => {
    const laid = timeline(["a"], [attempt("a", 1, 90, 0)], 100, 120);
    expect([laid.start, laid.end]).toEqual([90, 120]);
    expect(laid.rows[0].bars[0]).toMatchObject({ left: 0, width: 1, running: true });
  });
});

describe("ticks", () => {
  it("marks round numbers", () => {
    expect(ticks(10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(ticks(95)).toEqual([0, 20, 40, 60, 80]);
    expect(ticks(0)).toEqual([0]);
  });
});
