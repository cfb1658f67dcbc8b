/** One attempt: the agent's transcript (live while it runs), its diff, and the gates' output
 * (streamed while they run). */
import { useEffect, useMemo, useState } from "react";
import { ApiError, api } from "../api";
import { classifyDiff, diffCounts } from "../diff";
import { clock, duration } from "../format";
import { useToasts } from "../toasts";
import type { AttemptDetail, AttemptSummary, BlitzEvent, TranscriptLine } from "../types";
import { LiveGates } from "./LiveGates";

type Tab = "transcript" | "diff" | "gates";

const REREAD = new Set(["attempt.finished", "validation.passed", "validation.failed", "checkpoint.committed"]);

export function AttemptView({ goalId, summary, events }: { goalId: string; summary: AttemptSummary; events: BlitzEvent[] }) {
  const toasts = useToasts();
  const [detail, setDetail] = useState<AttemptDetail | null>(null);
  const [tab, setTab] = useState<Tab>(summary.state === "succeeded" ? "diff" : "transcript");

  const mine = useMemo(() => events.filter((e) => e.attempt_id === summary.id), [events, summary.id]);
  // Re-read the attempt when something about it was recorded (its end, a gate, a commit).
  const version = mine.filter((e) => REREAD.has(e.kind)).length + (summary.state === "running" ? 0 : 1);

  useEffect(() => {
    let live = true;
    api
      .attempt(goalId, summary.id)
      .then((d) => live && setDetail(d))
      .catch((error) => {
        if (live && !(error instanceof ApiError && error.status === 401)) toasts.error(error, "loading the attempt");
      });
    return () => {
      live = false;
    };
  }, [goalId, summary.id, version, toasts]);

  const transcript = useMemo(() => {
    const lines = new Map<number, TranscriptLine>();
    for (const line of detail?.transcript ?? []) lines.set(line.id, line);
    for (const e of mine) if (e.kind === "agent.message") lines.set(e.id, { id: e.id, ts: e.ts, message: e.message });
    return [...lines.values()].sort((a, b) => a.id - b.id);
  }, [detail, mine]);

  const diff = useMemo(() => classifyDiff(detail?.diff ?? ""), [detail]);
  const counts = diffCounts(diff);

  return (
    <div className="attempt" data-testid="attempt-view" data-attempt={summary.id} data-state={summary.state}>
      <div className="attempt-head">
        <strong>
          attempt {summary.number}
          {summary.candidate > 0 && ` · candidate ${summary.candidate}`}
        </strong>
        <span className={`badge state-${summary.state}`}>{summary.state}</span>
        {summary.duration > 0 && <span className="muted small">{duration(summary.duration)}</span>}
      </div>
      {summary.error && (
        <div className="note note-bad" data-testid="attempt-error">
          {summary.error}
        </div>
      )}
      {detail?.verdict && <div className="note small">verdict: {detail.verdict}</div>}
      {detail?.summary && <div className="note small">agent: {detail.summary}</div>}
      <div className="tabs" role="tablist">
        {(["transcript", "diff", "gates"] as Tab[]).map((t) => (
          <button
            key={t}
            role="tab"
            aria-selected={tab === t}
            className={`tab ${tab === t ? "active" : ""}`}
            onClick={() => setTab(t)}
            data-testid={`tab-${t}`}
          >
            {t}
            {t === "diff" && diff.length > 0 && (
              <span className="small">
                {" "}
                <span className="plus">+{counts.added}</span> <span className="minus">−{counts.removed}</span>
              </span>
            )}
            {t === "gates" && detail && detail.gates.length > 0 && (
              <span className={detail.gates.every((g) => g.passed || g.preexisting) ? "plus" : "minus"}> ●</span>
            )}
          </button>
        ))}
      </div>
      {tab === "transcript" && (
        <div className="transcript" data-testid="transcript">
          {transcript.length === 0 ? (
            <p className="muted">{summary.state === "running" ? "waiting for the agent…" : "The agent said nothing."}</p>
          ) : (
            transcript.map((line) => (
              <div key={line.id} className="transcript-line">
                <span className="muted mono small">{clock(line.ts)}</span>
                <span className="transcript-text">{line.message}</span>
              </div>
            ))
          )}
        </div>
      )}
      {tab === "diff" && (
        <div className="diff-wrap" data-testid="attempt-diff">
          {detail === null ? (
            <p className="muted">loading…</p>
          ) : diff.length === 0 && detail.diff_stat ? (
            <>
              <pre className="diff-stat">{detail.diff_stat}</pre>
              <p className="muted small" data-testid="diff-not-kept">
                The daemon sent the change's summary but not its patch.
              </p>
            </>
          ) : diff.length === 0 ? (
            <p className="muted">{summary.state === "running" ? "No diff until the agent is done." : "No change."}</p>
          ) : (
            <>
              {detail.diff_stat && <pre className="diff-stat">{detail.diff_stat}</pre>}
              <pre className="diff">
                {diff.map((line, i) => (
                  <div key={i} className={`diff-line diff-${line.kind}`}>
                    {line.text || " "}
                  </div>
                ))}
              </pre>
            </>
          )}
        </div>
      )}
      {tab === "gates" && (
        <div className="gates" data-testid="attempt-gates">
          {summary.state === "running" ? (
            <LiveGates goalId={goalId} attemptId={summary.id} />
          ) : detail === null || detail.gates.length === 0 ? (
            <p className="muted">No gate ran.</p>
          ) : (
            detail.gates.map((g, i) => (
              <details key={i} open={!g.passed && !g.preexisting} className="gate" data-testid={`gate-${g.name}`}>
                <summary>
                  <span className={`badge ${g.passed ? "state-succeeded" : g.preexisting ? "state-skipped" : "state-failed"}`}>
                    {g.passed ? "passed" : g.preexisting ? "failed before" : g.timed_out ? "timed out" : "failed"}
                  </span>{" "}
                  {g.reused && (
                    <span className="badge badge-reused" title="the result of an earlier run on the same tree, command and set-up inputs">
                      reused
                    </span>
                  )}{" "}
                  <strong>{g.name}</strong> <span className="mono small">{g.command}</span>{" "}
                  <span className="muted small">
                    exit {g.exit_code ?? "—"} · {duration(g.duration)}
                  </span>
                </summary>
                {g.new_failures.length > 0 && (
                  <p className="small">new failures: {g.new_failures.join(", ")}</p>
                )}
                <pre className="gate-output">{g.output || "(no output)"}</pre>
              </details>
            ))
          )}
        </div>
      )}
    </div>
  );
}
