/** Cumulative cost of the goal over time, as a small SVG step chart. */
import { useMemo } from "react";
import { costSeries } from "../cost";
import { clock, money } from "../format";
import type { BlitzEvent } from "../types";

const W = 360;
const H = 120;
const PAD = { left: 44, right: 10, top: 10, bottom: 22 };

export function CostChart({ events, planningCost, total, now }: { events: BlitzEvent[]; planningCost: number; total: number; now: number }) {
  const points = useMemo(() => costSeries(events, planningCost, total, now), [events, planningCost, total, now]);
  if (points.length < 2 || total <= 0) {
    return (
      <p className="muted" data-testid="cost-chart-empty">
        No spending yet.
      </p>
    );
  }
  const t0 = points[0].ts;
  const t1 = Math.max(points[points.length - 1].ts, t0 + 1);
  const top = Math.max(points[points.length - 1].total, 0.0001);
  const x = (ts: number) => PAD.left + ((ts - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  let d = `M${x(points[0].ts)},${y(points[0].total)}`;
  for (let i = 1; i < points.length; i++) {
    d += ` H${x(points[i].ts)} V${y(points[i].total)}`;
  }
  const area = `${d} V${y(0)} H${x(points[0].ts)} Z`;
  return (
    <svg
      className="cost-chart"
      viewBox={`0 0 ${W} ${H}`}
      role="img"
      aria-label={`cost over time, ${money(total)} in all`}
      data-testid="cost-chart"
      data-total={total}
    >
      <line x1={PAD.left} x2={W - PAD.right} y1={y(0)} y2={y(0)} className="axis" />
      <line x1={PAD.left} x2={PAD.left} y1={PAD.top} y2={y(0)} className="axis" />
      <text x={PAD.left - 4} y={y(top) + 4} className="tick" textAnchor="end">
        {money(top)}
      </text>
      <text x={PAD.left - 4} y={y(0)} className="tick" textAnchor="end">
        $0
      </text>
      <text x={PAD.left} y={H - 6} className="tick">
        {clock(t0)}
      </text>
      <text x={W - PAD.right} y={H - 6} className="tick" textAnchor="end">
        {clock(t1)}
      </text>
      <path d={area} className="cost-area" />
      <path d={d} className="cost-line" />
      {points.slice(1, -1).map((p, i) => (
        <circle key={i} cx={x(p.ts)} cy={y(p.total)} r={2.5} className="cost-dot">
          <title>
            {clock(p.ts)}: {money(p.total)}
          </title>
        </circle>
      ))}
    </svg>
  );
}
