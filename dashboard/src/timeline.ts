/**
 * When tasks and attempts ran: a task's wall time on its graph node, and the goal's timeline
 * (a Gantt chart) of attempts in lanes, so best-of-N candidates running side by side do not
 * hide one another.
 */

export interface TimedAttempt {
  id: string;
  task_id: string;
  number: number;
  candidate: number;
  state: string;
  started_at: number;
  finished_at: number;
}

export interface TaskTime {
  /** Seconds from the task's first attempt starting to its last one ending (or now). */
  seconds: number;
  running: boolean;
}

/** The end of an attempt: when it finished, or ``now`` while it runs. */
function endOf(a: TimedAttempt, now: number): number {
  return a.finished_at > 0 ? a.finished_at : Math.max(a.started_at, now);
}

/** Each task's wall time over its attempts (tasks that never started have none). */
export function taskTimes(attempts: readonly TimedAttempt[], now: number): Map<string, TaskTime> {
  const spans = new Map<string, { start: number; end: number; running: boolean }>();
  for (const a of attempts) {
    if (!(a.started_at > 0)) continue;
    const running = !(a.finished_at > 0);
    const end = endOf(a, now);
    const span = spans.get(a.task_id);
    if (!span) spans.set(a.task_id, { start: a.started_at, end, running });
    else {
      span.start = Math.min(span.start, a.started_at);
      span.end = Math.max(span.end, end);
      span.running ||= running;
    }
  }
  return new Map([...spans].map(([task, s]) => [task, { seconds: Math.max(0, s.end - s.start), running: s.running }]));
}

export interface Bar {
  attempt: TimedAttempt;
  /** Left edge and width as fractions of the timeline. */
  left: number;
  width: number;
  seconds: number;
  running: boolean;
  lane: number;
}

export interface Row {
  task: string;
  bars: Bar[];
  lanes: number;
}

export interface Timeline {
  start: number;
  end: number;
  rows: Row[];
}

/** The timeline from ``start`` (the goal's creation) to ``end`` (its end, or now): one row per
 * task in ``order``, its attempts as bars, overlapping ones in lanes of their own. */
export function timeline(order: readonly string[], attempts: readonly TimedAttempt[], start: number, end: number): Timeline {
  const started = attempts.filter((a) => a.started_at > 0);
  const first = Math.min(start, ...started.map((a) => a.started_at));
  const last = Math.max(end, ...started.map((a) => endOf(a, end)));
  const span = Math.max(last - first, 1e-6);
  const byTask = new Map<string, TimedAttempt[]>();
  for (const a of started) byTask.set(a.task_id, [...(byTask.get(a.task_id) ?? []), a]);
  const rows = order.map((task) => {
    const mine = (byTask.get(task) ?? []).slice().sort((a, b) => a.started_at - b.started_at || a.candidate - b.candidate);
    const laneEnds: number[] = [];
    const bars = mine.map((a) => {
      const finish = endOf(a, end);
      let lane = laneEnds.findIndex((e) => e <= a.started_at);
      if (lane < 0) lane = laneEnds.push(finish) - 1;
      else laneEnds[lane] = finish;
      return {
        attempt: a,
        left: (a.started_at - first) / span,
        width: (finish - a.started_at) / span,
        seconds: finish - a.started_at,
        running: !(a.finished_at > 0),
        lane,
      };
    });
    return { task, bars, lanes: Math.max(1, laneEnds.length) };
  });
  return { start: first, end: first + span, rows };
}

/** Round tick marks for an axis of ``seconds``: about ``count`` of them, at 1/2/5 × 10^n. */
export function ticks(seconds: number, count = 5): number[] {
  if (!(seconds > 0)) return [0];
  const raw = seconds / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const found: number[] = [];
  for (let t = 0; t <= seconds + 1e-9; t += step) found.push(Number(t.toFixed(6)));
  return found;
}
