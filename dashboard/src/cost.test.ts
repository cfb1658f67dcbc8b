import { describe, expect, it } from "vitest";
import { costSeries } from "./cost";
import type { BlitzEvent } from "./types";

function ev(id: number, ts: number, kind: string, data: Record<string, unknown> = {}): BlitzEvent {
  return { id, ts, kind, data, goal_id: "g", task_id: "", attempt_id: "", project_id: "", message: "" };
}

describe("costSeries", () => {
  it("adds attempts where they finished and the planner where it planned", () => {
    const events = [
      ev(1, 100, "goal.created"),
      ev(2, 101, "plan.created"),
      ev(3, 105, "attempt.finished", { cost_usd: 0.25 }),
      ev(4, 109, "attempt.finished", { cost_usd: 0.5 }),
    ];
    expect(costSeries(events, 0.1, 0.85, 110)).toEqual([
      { ts: 100, total: 0 },
      { ts: 101, total: 0.1 },
      { ts: 105, total: 0.35 },
      { ts: 109, total: 0.85 },
      { ts: 110, total: 0.85 },
    ]);
  });

  it("ends at the goal's total when recovery planning cost more", () => {
    const points = costSeries([ev(1, 100, "goal.created")], 0, 1.5, 120);
    expect(points[points.length - 1]).toEqual({ ts: 120, total: 1.5 });
  });

  it("is empty without events", () => {
    expect(costSeries([], 0, 0, 0)).toEqual([]);
  });
});
