/**
 * A small typed client of a blitz daemon's HTTP API (docs/api.md): fetch, the Bearer token,
 * and every failure turned into a {@link BlitzApiError} with a message for the person.
 */
import { BlitzApiError, fromResponse, unreachable } from "./errors.js";
import type {
  Action,
  Approval,
  Goal,
  GoalDetail,
  GoalQuery,
  Health,
  NewGoal,
  Project,
  TaskDetail,
} from "./types.js";

export interface ClientOptions {
  /** The daemon's base URL, e.g. `http://127.0.0.1:8765`. */
  url: string;
  /** The daemon's token (`blitz serve` prints it once). Never logged. */
  token: string;
  /** Milliseconds one request may take (default 30 s). */
  timeoutMs?: number;
}

type Method = "GET" | "POST" | "PATCH" | "DELETE";

export class BlitzClient {
  /** The daemon's base URL, without a trailing slash. */
  readonly url: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(options: ClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Headers of an authenticated request (for streams the client does not make itself). */
  authHeaders(): Record<string, string> {
    return { Authorization: `Bearer ${this.#token}` };
  }

  /** One request; the parsed JSON answer (undefined for an empty one). */
  async request<T>(method: Method, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const headers: Record<string, string> = { ...this.authHeaders(), Accept: "application/json" };
    const init: RequestInit = {
      method,
      headers,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, init);
    } catch (error) {
      throw unreachable(this.url, error);
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { detail: text.slice(0, 500) };
      }
    }
    if (!response.ok) throw fromResponse(response.status, parsed, this.url);
    return parsed as T;
  }

  health(): Promise<Health> {
    return this.request("GET", "/api/health");
  }

  projects(): Promise<Project[]> {
    return this.request("GET", "/api/projects");
  }

  project(project: string): Promise<Project> {
    return this.request("GET", `/api/projects/${seg(project)}`);
  }

  /** Register a repository (an absolute path) as a project, or find the one already known. */
  addProject(path: string, name?: string): Promise<Project> {
    return this.request("POST", "/api/projects", name ? { path, name } : { path });
  }

  goals(query: GoalQuery = {}): Promise<Goal[]> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      for (const one of Array.isArray(value) ? value : [value]) params.append(key, String(one));
    }
    const qs = params.toString();
    return this.request("GET", `/api/goals${qs ? `?${qs}` : ""}`);
  }

  goal(goal: string): Promise<GoalDetail> {
    return this.request("GET", `/api/goals/${seg(goal)}`);
  }

  task(goal: string, task: string): Promise<TaskDetail> {
    return this.request("GET", `/api/goals/${seg(goal)}/tasks/${seg(task)}`);
  }

  submit(goal: NewGoal): Promise<GoalDetail> {
    return this.request("POST", "/api/goals", goal);
  }

  cancel(goal: string, reason?: string): Promise<Action> {
    return this.request("POST", `/api/goals/${seg(goal)}/cancel`, reason ? { reason } : {});
  }

  approve(goal: string, edited?: Approval): Promise<Action> {
    return this.request("POST", `/api/goals/${seg(goal)}/approve`, edited ?? {});
  }

  reject(goal: string, reason?: string): Promise<Action> {
    return this.request("POST", `/api/goals/${seg(goal)}/reject`, reason ? { reason } : {});
  }

  retry(goal: string, task: string): Promise<Action> {
    return this.request("POST", `/api/goals/${seg(goal)}/tasks/${seg(task)}/retry`);
  }

  skip(goal: string, task: string): Promise<Action> {
    return this.request("POST", `/api/goals/${seg(goal)}/tasks/${seg(task)}/skip`);
  }
}

/** One path segment, escaped (ids come from people and models). */
function seg(value: string): string {
  if (!value.trim()) throw new BlitzApiError("invalid", "An id is needed here.");
  return encodeURIComponent(value.trim());
}
