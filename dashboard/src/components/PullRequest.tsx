/** The goal's pull request: its description rendered in the page, and the link to the real
 * pull request or branch when there is one (never a file on the daemon's machine). */
import { useEffect, useState } from "react";
import { ApiError, api } from "../api";
import { Markdown } from "./Markdown";
import type { PullRequest as PullRequestRecord } from "../types";

interface Props {
  goalId: string;
  /** Changes when the pull request may have changed (the goal ended, was published again). */
  version: string;
  onError: (error: unknown, what: string) => void;
}

export function PullRequest({ goalId, version, onError }: Props) {
  const [found, setFound] = useState<PullRequestRecord | null>(null);
  useEffect(() => {
    let live = true;
    api
      .pullRequest(goalId)
      .then((pr) => live && setFound(pr))
      .catch((error) => {
        if (live && !(error instanceof ApiError && error.status === 401)) onError(error, "loading the pull request");
      });
    return () => {
      live = false;
    };
  }, [goalId, version, onError]);

  if (!found) return <p className="muted">loading the pull request…</p>;
  return (
    <div data-testid="pull-request" data-written={found.written ? "true" : "false"}>
      <div className="facts pr-where" data-testid="pr-where">
        <Where pr={found} />
      </div>
      {found.written ? (
        <details className="pr-description-box" open>
          <summary className="muted small">description</summary>
          <Markdown source={found.description} testId="pr-description" />
        </details>
      ) : (
        <p className="muted" data-testid="pr-not-written">
          The description is written when every task has ended.
        </p>
      )}
    </div>
  );
}

/** Where the goal's work is: the pull request, the pushed branch, or the local branch. */
function Where({ pr }: { pr: PullRequestRecord }) {
  const branch = <code>{pr.branch}</code>;
  if (pr.url) {
    return (
      <>
        <a href={pr.url} target="_blank" rel="noreferrer" data-testid="pr-link">
          {pr.url}
        </a>
        <span className="muted small">
          {branch} into <code>{pr.base_branch}</code>
        </span>
      </>
    );
  }
  if (pr.pushed) {
    return (
      <span data-testid="pr-pushed">
        branch {branch} pushed to <strong>{pr.remote}</strong>
        {pr.branch_url ? (
          <>
            {" "}
            (
            <a href={pr.branch_url} target="_blank" rel="noreferrer" data-testid="pr-branch-link">
              see the branch
            </a>
            )
          </>
        ) : (
          pr.remote_url && <span className="muted mono small"> ({pr.remote_url})</span>
        )}
        ; no pull request was opened
      </span>
    );
  }
  if (!pr.remote) {
    return (
      <span data-testid="pr-local">
        local branch {branch} (the project has no remote: nothing is pushed)
      </span>
    );
  }
  if (!pr.remote_url) {
    return (
      <span data-testid="pr-local">
        local branch {branch} (the repository has no remote <strong>{pr.remote}</strong>: nothing is pushed)
      </span>
    );
  }
  return (
    <span data-testid="pr-unpushed">
      branch {branch}, not pushed to <strong>{pr.remote}</strong>
    </span>
  );
}
