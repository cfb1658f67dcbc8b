/**
 * The agent tools: thin calls of the daemon's API, answered in words. Reading tools are always
 * there; tools with side effects (submit, approve, reject, cancel, retry, skip) are optional, so
 * a person opts in (`tools.allow`). A refusal or an unreachable daemon is thrown as an error
 * whose message says what to do (the model relays it); the token is never part of one.
 */
import type { BlitzClient, NewGoal } from "@blitz/api";
import { Type, type Static, type TSchema } from "typebox";
import type { Conversation, Conversations } from "./conversations.js";
import { goalLine, goalStatus, planText, projectLine } from "./words.js";

/** What a tool knows of the turn that calls it (a subset of OpenClaw's tool context). */
export interface TurnContext {
  sessionKey?: string;
  agentId?: string;
  deliveryContext?: object;
}

export interface ToolResult {
  content: { type: "text"; text: string }[];
  details: unknown;
}

export interface FleetTool<P extends TSchema = TSchema> {
  name: string;
  label: string;
  description: string;
  parameters: P;
  /** Has side effects: registered as optional (opt-in). */
  optional: boolean;
  execute(toolCallId: string, params: Static<P>): Promise<ToolResult>;
}

function said(text: string, details: unknown = {}): ToolResult {
  return { content: [{ type: "text", text }], details };
}

const goalId = Type.String({ description: "The goal's id (g-...) or a unique prefix of it" });
const taskId = Type.String({ description: "The task's id within its goal, as its status lists it" });

export const SubmitParams = Type.Object({
  project: Type.String({ description: "The blitz project (its name or id) to work on" }),
  goal: Type.String({ description: "What to do, in a sentence: the goal's title" }),
  plan: Type.Optional(
    Type.String({
      description:
        "A plan to run instead of planning: the text of a blitz plan file (YAML or JSON with " +
        "summary and tasks)",
    }),
  ),
  backend: Type.Optional(
    Type.String({ description: "The coding agent backend (e.g. claude-code, codex, embedded)" }),
  ),
  best_of: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 10, description: "Attempts per task, best one kept" }),
  ),
});

/** Every tool, bound to a client, the conversations registry and the calling turn. */
export function fleetTools(
  client: BlitzClient,
  conversations: Conversations,
  turn: TurnContext = {},
): FleetTool[] {
  const tools = [
    tool({
      name: "blitz_projects",
      label: "blitz projects",
      description: "List the projects (repositories) the blitz daemon can run goals on.",
      parameters: Type.Object({}),
      optional: false,
      async execute() {
        const projects = await client.projects();
        const text = projects.length
          ? projects.map(projectLine).join("\n")
          : "blitz has no projects yet: register one with `blitz init` or the dashboard.";
        return said(text, { projects: projects.map((p) => p.name) });
      },
    }),
    tool({
      name: "blitz_goals",
      label: "blitz goals",
      description: "List recent blitz goals, newest first, optionally of one project or state.",
      parameters: Type.Object({
        project: Type.Optional(Type.String({ description: "Only this project's goals" })),
        state: Type.Optional(
          Type.Union(
            [
              Type.Literal("planning"),
              Type.Literal("awaiting_approval"),
              Type.Literal("running"),
              Type.Literal("finishing"),
              Type.Literal("succeeded"),
              Type.Literal("failed"),
              Type.Literal("cancelled"),
            ],
            { description: "Only goals in this state" },
          ),
        ),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50, default: 10 })),
      }),
      optional: false,
      async execute(_id, p) {
        const goals = await client.goals({
          ...(p.project ? { project: p.project } : {}),
          ...(p.state ? { state: [p.state] } : {}),
          limit: p.limit ?? 10,
        });
        const text = goals.length ? goals.map(goalLine).join("\n") : "No goals match.";
        return said(text, { goals: goals.map((g) => ({ id: g.id, state: g.state })) });
      },
    }),
    tool({
      name: "blitz_goal_status",
      label: "blitz goal status",
      description: "A goal's state, tasks, attempts, cost and pull request.",
      parameters: Type.Object({ goal: goalId }),
      optional: false,
      async execute(_id, p) {
        const goal = await client.goal(p.goal);
        return said(goalStatus(goal), { id: goal.id, state: goal.state, pr_url: goal.pr_url });
      },
    }),
    tool({
      name: "blitz_submit_goal",
      label: "blitz submit goal",
      description:
        "Start a blitz goal on a project: blitz plans it, runs coding agents, checks the work " +
        "with the project's gates and opens a pull request. This conversation is told when it " +
        "finishes, fails, waits for plan approval or goes over budget.",
      parameters: SubmitParams,
      optional: true,
      async execute(_id, p) {
        const body: NewGoal = { project: p.project, title: p.goal };
        if (p.plan) body.plan = p.plan;
        if (p.backend) body.backend = p.backend;
        if (p.best_of) body.explore = p.best_of;
        const goal = await client.submit(body);
        if (turn.sessionKey) conversations.remember(goal.id, conversationOf(turn));
        return said(
          `Started goal ${goal.id} on ${goal.project}: ${goal.title} (state ${goal.state}, ` +
            `branch ${goal.branch}). I will say here when it finishes.`,
          { id: goal.id, state: goal.state, branch: goal.branch },
        );
      },
    }),
    tool({
      name: "blitz_review_plan",
      label: "blitz review plan",
      description:
        "Ask the person to approve or reject the plan of a goal that awaits approval: the plan " +
        "is shown to them and the goal runs (approved) or is cancelled (rejected) by their answer.",
      parameters: Type.Object({ goal: goalId }),
      optional: true,
      async execute(_id, p) {
        // Runs only once the person allowed it (the before_tool_call approval in approval.ts).
        const action = await client.approve(p.goal);
        return said(`The plan of ${action.goal_id} is approved; the goal runs now.`, action);
      },
    }),
    tool({
      name: "blitz_approve_plan",
      label: "blitz approve plan",
      description: "Approve the plan of a goal awaiting approval (when the person said so).",
      parameters: Type.Object({ goal: goalId }),
      optional: true,
      async execute(_id, p) {
        const action = await client.approve(p.goal);
        return said(`Approved the plan of ${action.goal_id}; it runs now.`, action);
      },
    }),
    tool({
      name: "blitz_reject_plan",
      label: "blitz reject plan",
      description: "Reject the plan of a goal awaiting approval; the goal ends cancelled.",
      parameters: Type.Object({ goal: goalId, reason: Type.Optional(Type.String()) }),
      optional: true,
      async execute(_id, p) {
        const action = await client.reject(p.goal, p.reason);
        return said(`Rejected the plan of ${action.goal_id}; the goal is cancelled.`, action);
      },
    }),
    tool({
      name: "blitz_cancel_goal",
      label: "blitz cancel goal",
      description: "Cancel a running goal (running attempts are stopped).",
      parameters: Type.Object({ goal: goalId, reason: Type.Optional(Type.String()) }),
      optional: true,
      async execute(_id, p) {
        const action = await client.cancel(p.goal, p.reason);
        return said(`Cancelling ${action.goal_id}.`, action);
      },
    }),
    tool({
      name: "blitz_retry_task",
      label: "blitz retry task",
      description: "Run a failed or skipped task of a goal again (reopens an ended goal).",
      parameters: Type.Object({ goal: goalId, task: taskId }),
      optional: true,
      async execute(_id, p) {
        const action = await client.retry(p.goal, p.task);
        return said(`Retrying task ${p.task} of ${action.goal_id}.`, action);
      },
    }),
    tool({
      name: "blitz_skip_task",
      label: "blitz skip task",
      description: "Skip a task of a goal; the tasks after it go on without it.",
      parameters: Type.Object({ goal: goalId, task: taskId }),
      optional: true,
      async execute(_id, p) {
        const action = await client.skip(p.goal, p.task);
        return said(`Skipping task ${p.task} of ${action.goal_id}.`, action);
      },
    }),
  ];
  return tools;
}

/** The names of every tool, in the manifest's `contracts.tools` order. */
export const TOOL_NAMES = [
  "blitz_projects",
  "blitz_goals",
  "blitz_goal_status",
  "blitz_submit_goal",
  "blitz_review_plan",
  "blitz_approve_plan",
  "blitz_reject_plan",
  "blitz_cancel_goal",
  "blitz_retry_task",
  "blitz_skip_task",
] as const;

/** The tools with side effects: registered optional, so a person opts in (`tools.allow`). */
export const OPTIONAL_TOOLS: ReadonlySet<string> = new Set(
  TOOL_NAMES.filter((name) => !["blitz_projects", "blitz_goals", "blitz_goal_status"].includes(name)),
);

function tool<P extends TSchema>(definition: FleetTool<P>): FleetTool<P> {
  return definition;
}

function conversationOf(turn: TurnContext): Conversation {
  const conversation: Conversation = { sessionKey: turn.sessionKey ?? "" };
  if (turn.agentId) conversation.agentId = turn.agentId;
  if (turn.deliveryContext) {
    conversation.deliveryContext = { ...turn.deliveryContext };
  }
  return conversation;
}

export { planText };
