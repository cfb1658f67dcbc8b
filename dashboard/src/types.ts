/** The records of the daemon's API, as docs/api.md defines them. */

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  cost_usd: number;
}

export interface Gates {
  build: string;
  test: string;
  typecheck: string;
  lint: string;
  timeout: number;
}

export interface Project {
  id: string;
  name: string;
  path: string;
  base_branch: string;
  remote: string;
  backend: string;
  fallback_backend: string;
  model: string;
  max_parallel: number;
  require_plan_approval: boolean;
  paused: boolean;
  pause_reason: string;
  gates: Gates;
  config_file: string;
  usage: Usage;
}

export type GoalState =
  | "planning"
  | "awaiting_approval"
  | "running"
  | "finishing"
  | "succeeded"
  | "failed"
  | "cancelled";

export const GOAL_DONE: ReadonlySet<string> = new Set(["succeeded", "failed", "cancelled"]);

export interface Progress {
  done: number;
  total: number;
  by_state: Record<string, number>;
}

export interface Goal {
  id: string;
  project_id: string;
  project: string;
  title: string;
  state: GoalState;
  branch: string;
  base_branch: string;
  backend: string;
  error: string;
  pr_url: string;
  progress: Progress;
  cost_usd: number;
  created_at: number;
  finished_at: number;
  age_seconds: number;
  /** "" (not published, or nothing to push), "pending" (every task succeeded but the push or
   * pull request failed: to be retried) or "published". */
  publish_state: "" | "pending" | "published";
  /** Why the last try at publishing failed. */
  publish_error: string;
  /** How many times publishing was tried. */
  publish_attempts: number;
  /** The earlier goal this one continues (same branch, same pull request), or "". */
  follows: string;
}

/** A succeeded goal whose publishing is still to be done. */
export function publishPending(goal: Goal): boolean {
  return goal.state === "succeeded" && goal.publish_state === "pending";
}

export type TaskState =
  | "pending"
  | "ready"
  | "running"
  | "succeeded"
  | "failed"
  | "crashed"
  | "skipped"
  | "replaced"
  | "cancelled";

export interface Task {
  id: string;
  goal_id: string;
  title: string;
  state: TaskState;
  depends_on: string[];
  priority: number;
  attempts: number;
  crashes: number;
  conflicts: number;
  recoveries: number;
  commit: string;
  origin: string;
  reason: string;
  root_cause: string;
  allow_empty: boolean;
  backend: string;
  model: string;
  position: number;
  /** Worker labels its attempts need (a remote executor's nodes). */
  labels: string[];
}

export interface Recovery {
  id: string;
  task_id: string;
  attempt_id: string;
  root_cause: string;
  action: string;
  guidance: string;
  new_tasks: string[];
  created_at: number;
}

export interface GoalDetail extends Goal {
  summary: string;
  base_sha: string;
  runner: string;
  driven_here: boolean;
  explore: number;
  model: string;
  usage: Usage;
  planning_usage: Usage;
  tasks: Task[];
  recoveries: Recovery[];
  /** Requested of the API (docs/api.md, "Requested by the dashboard"); used when present. */
  attempts?: AttemptSummary[];
}

export interface Check {
  kind: string;
  path: string;
  command: string;
  timeout: number;
}

export interface AttemptSummary {
  id: string;
  goal_id: string;
  task_id: string;
  number: number;
  state: string;
  backend: string;
  model: string;
  commit: string;
  error: string;
  started_at: number;
  finished_at: number;
  duration: number;
  usage: Usage;
  gates_passed: boolean;
  candidate: number;
  selected: boolean;
}

export interface TaskDetail extends Task {
  instructions: string;
  guidance: string;
  files: string[];
  checks: Check[];
  attempts_list: AttemptSummary[];
  /** This task's recoveries. docs/api.md calls the list `recoveries`, which clashes with the
   * count of the same name on Task; the server sends it as `recoveries_list`. */
  recoveries_list?: Recovery[];
}

export interface GateRun {
  name: string;
  command: string;
  passed: boolean;
  exit_code: number | null;
  duration: number;
  output: string;
  timed_out: boolean;
  preexisting: boolean;
  new_failures: string[];
  reused: boolean;
}

export interface TranscriptLine {
  id: number;
  ts: number;
  message: string;
}

export interface AttemptDetail extends AttemptSummary {
  summary: string;
  base_sha: string;
  diff_stat: string;
  diff: string;
  verdict: string;
  gates: GateRun[];
  transcript: TranscriptLine[];
}

export interface BlitzEvent {
  id: number;
  ts: number;
  kind: string;
  goal_id: string;
  task_id: string;
  attempt_id: string;
  project_id: string;
  message: string;
  data: Record<string, unknown>;
}

export interface Breaker {
  key: string;
  state: "closed" | "open" | "half_open";
  failures: number;
  opened_at: number;
  last_error: string;
  retry_in: number | null;
}

export interface Action {
  goal_id: string;
  action: string;
  applied: "engine" | "queued";
}

/** GET /api/goals/{goal}/pull-request: the description as published and where the work went. */
export interface PullRequest {
  goal_id: string;
  written: boolean;
  description: string;
  url: string;
  branch: string;
  base_branch: string;
  pushed: boolean;
  remote: string;
  remote_url: string;
  branch_url: string;
}

export interface FileChange {
  path: string;
  /** null: a binary file. */
  added: number | null;
  removed: number | null;
}

/** GET /api/goals/{goal}/changes: every file the goal's branch changed, and the patch. */
export interface GoalChanges {
  goal_id: string;
  branch: string;
  base: string;
  head: string;
  files: FileChange[];
  added: number;
  removed: number;
  diff: string;
  truncated: boolean;
}

/** One `blitz worker` node of the cluster (`GET /api/workers`). */
export interface Worker {
  node_id: string;
  address: string;
  alive: boolean;
  slots: number;
  free_slots: number;
  backends: string[];
  labels: string[];
  /** Ids of the attempts running there. */
  attempts: string[];
  /** When the daemon last saw it alive (seconds since the epoch; 0: not yet). */
  last_seen: number;
}

export interface Workers {
  /** "local" or "ray". */
  executor: string;
  address: string;
  note: string;
  workers: Worker[];
}
