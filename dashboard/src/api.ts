/**
 * The daemon's REST API (docs/api.md): every request carries the token from sessionStorage as
 * a bearer token; every error becomes an ApiError holding the problem details.
 */
import type {
  Action,
  AttemptDetail,
  Breaker,
  Goal,
  GoalChanges,
  GoalDetail,
  Project,
  PullRequest,
  TaskDetail,
  Workers,
} from "./types";

const TOKEN_KEY = "blitz.token";

export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail?: string;
  errors?: { field: string; message: string }[];
}

export class ApiError extends Error {
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(describe(problem));
    this.problem = problem;
  }

  get status(): number {
    return this.problem.status;
  }
}

/** One line for a person: title, detail and field errors. */
export function describe(problem: Problem): string {
  let text = problem.title || `HTTP ${problem.status}`;
  if (problem.detail && problem.detail !== problem.title) text += `: ${problem.detail}`;
  if (problem.errors?.length) {
    text += ` (${problem.errors.map((e) => `${e.field}: ${e.message}`).join("; ")})`;
  }
  return text;
}

export function storedToken(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function storeToken(token: string): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Called when the daemon refuses the token, so the app can return to the login form. */
let onUnauthorized: (problem: Problem) => void = () => {};

export function setUnauthorizedHandler(handler: (problem: Problem) => void): void {
  onUnauthorized = handler;
}

/** Hands a refused response (401) to the unauthorized handler, with its problem details. */
export async function reportUnauthorized(response: Response): Promise<void> {
  if (response.status === 401) onUnauthorized(await problemOf(response));
}

export function authHeaders(): Record<string, string> {
  const token = storedToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** The problem details of a refused response (a made-up one when it carries none). */
export async function problemOf(response: Response): Promise<Problem> {
  const fallback: Problem = { title: response.statusText || "request failed", status: response.status };
  const text = await response.text().catch(() => "");
  if (!text) return fallback;
  try {
    const body = JSON.parse(text) as Partial<Problem>;
    return { ...fallback, ...body, status: body.status ?? response.status };
  } catch {
    return { ...fallback, detail: text.slice(0, 300) };
  }
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (error) {
    throw new ApiError({
      title: "daemon unreachable",
      status: 0,
      detail: error instanceof Error ? error.message : String(error),
    });
  }
  if (!response.ok) {
    const problem = await problemOf(response);
    if (response.status === 401) onUnauthorized(problem);
    throw new ApiError(problem);
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

const enc = encodeURIComponent;

/** Checks the token with the daemon (which also sets its cookie); throws ApiError when wrong. */
export async function login(token: string): Promise<void> {
  const response = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ token }),
    credentials: "same-origin",
  }).catch((error: unknown) => {
    throw new ApiError({ title: "daemon unreachable", status: 0, detail: String(error) });
  });
  if (!response.ok) throw new ApiError(await problemOf(response));
  storeToken(token);
}

export async function logout(): Promise<void> {
  storeToken("");
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
}

export const api = {
  projects: () => request<Project[]>("GET", "/api/projects"),
  addProject: (path: string, name?: string) =>
    request<Project>("POST", "/api/projects", name ? { path, name } : { path }),
  pauseProject: (project: string, reason: string) =>
    request<Project>("POST", `/api/projects/${enc(project)}/pause`, reason ? { reason } : {}),
  resumeProject: (project: string) =>
    request<Project>("POST", `/api/projects/${enc(project)}/resume`),
  goals: () => request<Goal[]>("GET", "/api/goals?limit=200"),
  goal: (goal: string) => request<GoalDetail>("GET", `/api/goals/${enc(goal)}`),
  submitGoal: (body: {
    project: string;
    title: string;
    backend?: string;
    explore?: number;
    max_parallel?: number;
    /** The plan, or the text of a plan file (YAML or JSON) for the daemon to read. */
    plan?: unknown;
    allow_dirty?: boolean;
  }) => request<GoalDetail>("POST", "/api/goals", body),
  cancel: (goal: string, reason = "") =>
    request<Action>("POST", `/api/goals/${enc(goal)}/cancel`, reason ? { reason } : {}),
  /** Approve as planned, or with `plan`: an edited plan's text (YAML or JSON) to run instead. */
  approve: (goal: string, plan = "") =>
    request<Action>("POST", `/api/goals/${enc(goal)}/approve`, plan.trim() ? { plan } : undefined),
  reject: (goal: string, reason = "") =>
    request<Action>("POST", `/api/goals/${enc(goal)}/reject`, reason ? { reason } : {}),
  publish: (goal: string) => request<Action>("POST", `/api/goals/${enc(goal)}/publish`),
  rerun: (goal: string, body: { replan?: boolean; allow_dirty?: boolean } = {}) =>
    request<GoalDetail>("POST", `/api/goals/${enc(goal)}/rerun`, body),
  retry: (goal: string, task: string) =>
    request<Action>("POST", `/api/goals/${enc(goal)}/tasks/${enc(task)}/retry`),
  skip: (goal: string, task: string) =>
    request<Action>("POST", `/api/goals/${enc(goal)}/tasks/${enc(task)}/skip`),
  task: (goal: string, task: string) =>
    request<TaskDetail>("GET", `/api/goals/${enc(goal)}/tasks/${enc(task)}`),
  attempt: (goal: string, attempt: string) =>
    request<AttemptDetail>("GET", `/api/goals/${enc(goal)}/attempts/${enc(attempt)}`),
  pullRequest: (goal: string) => request<PullRequest>("GET", `/api/goals/${enc(goal)}/pull-request`),
  changes: (goal: string) => request<GoalChanges>("GET", `/api/goals/${enc(goal)}/changes`),
  breakers: () => request<Breaker[]>("GET", "/api/breakers"),
  workers: () => request<Workers>("GET", "/api/workers"),
  resetBreaker: (key: string) => request<Breaker>("POST", "/api/breakers/reset", { key }),
};
