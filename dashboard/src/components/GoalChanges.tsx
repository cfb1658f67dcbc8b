/** The goal's whole change: the files its branch changed (lines added and removed) and the
 * patch, file by file. */
import { useEffect, useMemo, useState } from "react";
import { ApiError, api } from "../api";
import { classifyDiff, splitByFile } from "../diff";
import { shortSha } from "../format";
import type { GoalChanges as GoalChangesRecord } from "../types";

/** Files whose patch is shown open at first; past this many lines they start closed. */
const OPEN_LINES = 1500;

interface Props {
  goalId: string;
  /** Changes when the goal branch may have moved (a task committed). */
  version: string;
  onError: (error: unknown, what: string) => void;
}

export function GoalChanges({ goalId, version, onError }: Props) {
  const [found, setFound] = useState<GoalChangesRecord | null>(null);
  useEffect(() => {
    let live = true;
    api
      .changes(goalId)
      .then((c) => live && setFound(c))
      .catch((error) => {
        if (live && !(error instanceof ApiError && error.status === 401)) onError(error, "loading the goal's changes");
      });
    return () => {
      live = false;
    };
  }, [goalId, version, onError]);
  const files = useMemo(() => splitByFile(classifyDiff(found?.diff ?? "")), [found]);

  if (!found) return <p className="muted">loading the changes…</p>;
  if (!found.head) return <p className="muted" data-testid="goal-changes">No task has committed anything yet.</p>;
  if (!found.files.length) return <p className="muted" data-testid="goal-changes">The goal branch changes no file.</p>;
  const open = files.reduce((n, f) => n + f.lines.length, 0) <= OPEN_LINES;
  const most = Math.max(1, ...found.files.map((f) => (f.added ?? 0) + (f.removed ?? 0)));
  const anchor = (path: string) => `change-${goalId}-${path}`;
  return (
    <div data-testid="goal-changes">
      <p className="small">
        <strong>
          {found.files.length} {found.files.length === 1 ? "file" : "files"} changed
        </strong>{" "}
        <span className="plus">+{found.added}</span> <span className="minus">−{found.removed}</span>{" "}
        <span className="muted mono">
          {shortSha(found.base)}..{shortSha(found.head)} ({found.branch})
        </span>
      </p>
      <table className="table changed-files" data-testid="changed-files">
        <tbody>
          {found.files.map((f) => (
            <tr key={f.path} data-testid={`changed-file-${f.path}`}>
              <td className="mono small">
                <a
                  href={`#${anchor(f.path)}`}
                  onClick={(e) => {
                    e.preventDefault();
                    const target = document.getElementById(anchor(f.path));
                    if (target instanceof HTMLDetailsElement) target.open = true;
                    target?.scrollIntoView({ block: "start" });
                  }}
                >
                  {f.path}
                </a>
              </td>
              <td className="small right">
                {f.added === null ? (
                  <span className="muted">binary</span>
                ) : (
                  <>
                    <span className="plus">+{f.added}</span> <span className="minus">−{f.removed}</span>
                  </>
                )}
              </td>
              <td className="change-bar-cell">
                <span className="change-bar add" style={{ width: `${((f.added ?? 0) / most) * 100}%` }} />
                <span className="change-bar del" style={{ width: `${((f.removed ?? 0) / most) * 100}%` }} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="goal-diff" data-testid="goal-diff">
        {files.map((f, i) => (
          <details key={`${f.path}-${i}`} id={anchor(f.path)} open={open} className="goal-diff-file" data-testid={`goal-diff-file-${f.path}`}>
            <summary className="mono small">{f.path || "(patch)"}</summary>
            <pre className="diff">
              {f.lines.map((line, k) => (
                <div key={k} className={`diff-line diff-${line.kind}`}>
                  {line.text || " "}
                </div>
              ))}
            </pre>
          </details>
        ))}
        {found.truncated && (
          <p className="muted small" data-testid="goal-diff-truncated">
            The patch is longer than the daemon sends; the rest is on branch {found.branch}.
          </p>
        )}
      </div>
    </div>
  );
}
