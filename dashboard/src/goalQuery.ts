/**
 * The goals list's search: words, a state (or a group of states), a project and a page, kept in
 * the overview's address (?q=&state=&project=&page=) so a reload or a shared link shows the same
 * goals. The daemon does the finding (GET /api/goals?q=&state=&project=&limit=&offset=) and says
 * how many goals match in its X-Total-Count header.
 */
import { ApiError, authHeaders, problemOf, reportUnauthorized } from "./api";
import type { Goal, GoalState } from "./types";

export const PAGE_SIZE = 20;

export interface GoalQuery {
  /** Words all found in a goal's title, id or branch. */
  q: string;
  /** "" (any), "active", "ended" or one state. */
  state: string;
  /** A project id, or "" for every project. */
  project: string;
  /** From 1. */
  page: number;
}

export const NO_QUERY: GoalQuery = { q: "", state: "", project: "", page: 1 };

/** The state filter's choices, with the states each stands for. */
export const STATE_CHOICES: { value: string; label: string; states: GoalState[] }[] = [
  { value: "", label: "any state", states: [] },
  { value: "active", label: "active", states: ["planning", "awaiting_approval", "running", "finishing"] },
  { value: "ended", label: "ended", states: ["succeeded", "failed", "cancelled"] },
  { value: "planning", label: "planning", states: ["planning"] },
  { value: "awaiting_approval", label: "awaiting approval", states: ["awaiting_approval"] },
  { value: "running", label: "running", states: ["running"] },
  { value: "finishing", label: "finishing", states: ["finishing"] },
  { value: "succeeded", label: "succeeded", states: ["succeeded"] },
  { value: "failed", label: "failed", states: ["failed"] },
  { value: "cancelled", label: "cancelled", states: ["cancelled"] },
];

export function queryFromParams(params: URLSearchParams): GoalQuery {
  const state = params.get("state") ?? "";
  const page = Number(params.get("page") ?? "1");
  return {
    q: params.get("q") ?? "",
    state: STATE_CHOICES.some((c) => c.value === state) ? state : "",
    project: params.get("project") ?? "",
    page: Number.isInteger(page) && page >= 1 ? page : 1,
  };
}

/** The overview's address for `query` (no parameter for what is not filtered). */
export function queryToSearch(query: GoalQuery): string {
  const params = new URLSearchParams();
  if (query.q) params.set("q", query.q);
  if (query.state) params.set("state", query.state);
  if (query.project) params.set("project", query.project);
  if (query.page > 1) params.set("page", String(query.page));
  const text = params.toString();
  return text ? `?${text}` : "";
}

export function isFiltered(query: GoalQuery): boolean {
  return Boolean(query.q.trim() || query.state || query.project);
}

/** The API's path for one page of `query`. */
export function apiPath(query: GoalQuery, size = PAGE_SIZE): string {
  const params = new URLSearchParams();
  if (query.q.trim()) params.set("q", query.q.trim());
  for (const state of STATE_CHOICES.find((c) => c.value === query.state)?.states ?? []) {
    params.append("state", state);
  }
  if (query.project) params.set("project", query.project);
  params.set("limit", String(size));
  params.set("offset", String((query.page - 1) * size));
  return `/api/goals?${params.toString()}`;
}

/** The pages there are for `total` goals (at least one, so "page 1 of 1" when none match). */
export function pageCount(total: number, size = PAGE_SIZE): number {
  return Math.max(1, Math.ceil(total / size));
}

export interface GoalPage {
  goals: Goal[];
  total: number;
}

/** One page of goals and how many match in all; an ApiError when the daemon refuses. */
export async function fetchGoals(query: GoalQuery, size = PAGE_SIZE): Promise<GoalPage> {
  let response: Response;
  try {
    response = await fetch(apiPath(query, size), {
      headers: { Accept: "application/json", ...authHeaders() },
      credentials: "same-origin",
    });
  } catch (error) {
    throw new ApiError({ title: "daemon unreachable", status: 0, detail: String(error) });
  }
  if (!response.ok) {
    await reportUnauthorized(response.clone());
    throw new ApiError(await problemOf(response));
  }
  const goals = (await response.json()) as Goal[];
  const total = Number(response.headers.get("X-Total-Count") ?? goals.length);
  return { goals, total: Number.isFinite(total) ? total : goals.length };
}
