/** The goal's spending over time, from its event log. */
import type { BlitzEvent } from "./types";

export interface CostPoint {
  ts: number;
  total: number;
}

/**
 * Cumulative cost: each finished attempt adds its `cost_usd`; the planner's cost (known only as
 * a total, `planningCost`) is put where the plan was made. Ends at `now` with `total` when that is
 * larger (recovery planning is part of the planner's cost and has no event of its own).
 */
export function costSeries(events: BlitzEvent[], planningCost: number, total: number, now: number): CostPoint[] {
  const sorted = [...events].sort((a, b) => a.id - b.id);
  if (sorted.length === 0) return [];
  const points: CostPoint[] = [{ ts: sorted[0].ts, total: 0 }];
  let sum = 0;
  let plannedAt = false;
  for (const e of sorted) {
    let add = 0;
    if (e.kind === "plan.created" && !plannedAt) {
      plannedAt = true;
      add = planningCost;
    } else if (e.kind === "attempt.finished") {
      const cost = Number(e.data?.cost_usd ?? 0);
      add = Number.isFinite(cost) ? cost : 0;
    }
    if (add > 0) {
      sum += add;
      points.push({ ts: e.ts, total: sum });
    }
  }
  if (!plannedAt && planningCost > 0) {
    sum += planningCost;
    points.splice(1, 0, { ts: sorted[0].ts, total: planningCost });
    for (let i = 2; i < points.length; i++) points[i] = { ...points[i], total: points[i].total + planningCost };
  }
  const last = sorted[sorted.length - 1].ts;
  points.push({ ts: Math.max(now, last), total: Math.max(sum, total) });
  return points;
}
