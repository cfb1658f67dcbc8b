/** The goals, newest first, found by words, state and project a page at a time (the daemon
 * searches): state, progress, cost and age; a row opens the goal; an ended goal runs again and a
 * succeeded one is published again from its row. */
import { useEffect, useState } from "react";
import { age, money } from "../format";
import { NO_QUERY, STATE_CHOICES, isFiltered, pageCount } from "../goalQuery";
import type { GoalPage, GoalQuery } from "../goalQuery";
import { goalPath, navigate } from "../router";
import { publishPending } from "../types";
import type { Goal, Project } from "../types";
import { FormError } from "./FieldError";
import { GoalActions } from "./GoalActions";
import { Progress } from "./Progress";

interface Props {
  page: GoalPage | null;
  query: GoalQuery;
  onQuery: (query: GoalQuery) => void;
  projects: Project[];
  /** Why the list could not be read ("" when it could). */
  error: string;
  onChanged?: () => void;
}

export function GoalsTable({ page, query, onQuery, projects, error, onChanged }: Props) {
  const now = useNow(15000);
  const pages = pageCount(page?.total ?? 0);
  const filter = (changes: Partial<GoalQuery>) => onQuery({ ...query, ...changes, page: 1 });
  return (
    <>
      <div className="goal-search" role="search">
        <input
          type="search"
          placeholder="find goals by words of their title, id or branch"
          aria-label="find goals"
          value={query.q}
          onChange={(e) => filter({ q: e.target.value })}
          data-testid="goal-search"
        />
        <select
          aria-label="state"
          value={query.state}
          onChange={(e) => filter({ state: e.target.value })}
          data-testid="goal-filter-state"
        >
          {STATE_CHOICES.map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
        </select>
        <select
          aria-label="project"
          value={query.project}
          onChange={(e) => filter({ project: e.target.value })}
          data-testid="goal-filter-project"
        >
          <option value="">every project</option>
          {projects.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </select>
        {isFiltered(query) && (
          <button className="small ghost" onClick={() => onQuery(NO_QUERY)} data-testid="goals-clear">
            clear
          </button>
        )}
        {page && (
          <span className="goals-count" data-testid="goals-count" data-total={page.total}>
            {page.total} {page.total === 1 ? "goal" : "goals"}
            {isFiltered(query) ? " found" : ""}
          </span>
        )}
      </div>
      <FormError message={error} testid="goals-error" />
      <Rows goals={page?.goals ?? null} filtered={isFiltered(query)} now={now} onChanged={onChanged} />
      {page && pages > 1 && (
        <div className="pager">
          <button
            className="small secondary"
            disabled={query.page <= 1}
            onClick={() => onQuery({ ...query, page: query.page - 1 })}
            data-testid="goals-prev"
          >
            ← newer
          </button>
          <span data-testid="goals-page" data-page={query.page} data-pages={pages}>
            page {query.page} of {pages}
          </span>
          <button
            className="small secondary"
            disabled={query.page >= pages}
            onClick={() => onQuery({ ...query, page: query.page + 1 })}
            data-testid="goals-next"
          >
            older →
          </button>
        </div>
      )}
    </>
  );
}

function Rows({
  goals,
  filtered,
  now,
  onChanged,
}: {
  goals: Goal[] | null;
  filtered: boolean;
  now: number;
  onChanged?: () => void;
}) {
  if (goals === null) return <p className="muted">loading…</p>;
  if (goals.length === 0) {
    return filtered ? (
      <p className="muted" data-testid="no-match">
        No goal matches.
      </p>
    ) : (
      <p className="muted" data-testid="no-goals">
        No goals yet.
      </p>
    );
  }
  return (
    <table className="table goals">
      <thead>
        <tr>
          <th>goal</th>
          <th>project</th>
          <th>state</th>
          <th>progress</th>
          <th>cost</th>
          <th>age</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {goals.map((g) => (
          <tr
            key={g.id}
            className="clickable"
            data-testid={`goal-row-${g.id}`}
            data-state={g.state}
            onClick={() => navigate(goalPath(g.id))}
          >
            <td>
              <a
                href={goalPath(g.id)}
                onClick={(e) => {
                  e.preventDefault();
                  e.stopPropagation();
                  navigate(goalPath(g.id));
                }}
              >
                {g.title}
              </a>
              <div className="muted mono small">{g.id}</div>
            </td>
            <td>{g.project}</td>
            <td>
              <span className={`badge state-${g.state}`}>{g.state.replace("_", " ")}</span>
              {publishPending(g) && (
                <span
                  className="badge badge-publish"
                  data-testid={`goal-publish-pending-${g.id}`}
                  title={`publishing failed ${g.publish_attempts} time(s): ${g.publish_error}`}
                >
                  publishing pending
                </span>
              )}
            </td>
            <td>
              <Progress done={g.progress.done} total={g.progress.total} byState={g.progress.by_state} />
            </td>
            <td>{money(g.cost_usd)}</td>
            <td title={new Date(g.created_at * 1000).toLocaleString()}>{age(now / 1000 - g.created_at)}</td>
            <td className="right" onClick={(e) => e.stopPropagation()}>
              <GoalActions goal={g} onChanged={onChanged} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The current time, re-read every `interval` ms so ages move (no request is made). */
export function useNow(interval: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), interval);
    return () => clearInterval(id);
  }, [interval]);
  return now;
}
