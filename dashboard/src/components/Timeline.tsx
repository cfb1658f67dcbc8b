/** The goal's timeline: one row per task, its attempts as bars from start to end, with their
 * durations; best-of-N candidates that ran side by side get lanes of their own. */
import { useMemo } from "react";
import { duration } from "../format";
import { ticks, timeline } from "../timeline";
import type { AttemptSummary, Task } from "../types";

interface Props {
  tasks: Task[];
  attempts: AttemptSummary[];
  start: number;
  end: number;
  selectedTask: string;
  selectedAttempt: string;
  onSelect: (task: string, attempt?: string) => void;
}

export function Timeline({ tasks, attempts, start, end, selectedTask, selectedAttempt, onSelect }: Props) {
  const laid = useMemo(() => timeline(tasks.map((t) => t.id), attempts, start, end), [tasks, attempts, start, end]);
  const titles = new Map(tasks.map((t) => [t.id, t.title]));
  const span = laid.end - laid.start;
  if (!attempts.some((a) => a.started_at > 0)) {
    return <p className="muted">No attempt has started yet.</p>;
  }
  return (
    <div className="timeline" data-testid="timeline" data-start={laid.start} data-end={laid.end}>
      <div className="timeline-axis">
        <span className="timeline-label" />
        <div className="timeline-track">
          {ticks(span).map((t) => (
            <span key={t} className="timeline-tick" style={{ left: `${(t / span) * 100}%` }}>
              {t === 0 ? "start" : `+${duration(t)}`}
            </span>
          ))}
        </div>
      </div>
      {laid.rows.map((row) => (
        <div key={row.task} className={`timeline-row ${row.task === selectedTask ? "current" : ""}`} data-testid={`timeline-row-${row.task}`}>
          <button className="link timeline-label mono small" title={titles.get(row.task)} onClick={() => onSelect(row.task)}>
            {row.task}
          </button>
          <div className="timeline-track" style={{ height: `${row.lanes * 22}px` }}>
            {row.bars.map((bar) => {
              const a = bar.attempt;
              const name = `${a.number}${a.candidate ? `-${a.candidate}` : ""}`;
              return (
                <button
                  key={a.id}
                  className={`timeline-bar state-${a.state} ${a.id === selectedAttempt ? "selected" : ""} ${bar.left + bar.width > 0.7 ? "text-before" : ""}`}
                  style={{ left: `${bar.left * 100}%`, width: `max(4px, ${bar.width * 100}%)`, top: `${bar.lane * 22 + 2}px` }}
                  title={`${row.task} attempt ${a.number}${a.candidate ? ` candidate ${a.candidate}` : ""}: ${a.state}, ${duration(bar.seconds)}`}
                  onClick={() => onSelect(row.task, a.id)}
                  data-testid={`timeline-bar-${row.task}-${name}`}
                  data-state={a.state}
                  data-start={a.started_at}
                  data-end={a.finished_at}
                  data-seconds={bar.seconds}
                >
                  <span className="timeline-bar-text">
                    #{name} {bar.running ? `running ${duration(bar.seconds)}` : duration(bar.seconds)}
                  </span>
                </button>
              );
            })}
          </div>
        </div>
      ))}
    </div>
  );
}
