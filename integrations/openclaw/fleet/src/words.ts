/** blitz's records and events in words for a conversation: short, plain, with what to do next. */
import type { BlitzEvent, Goal, GoalDetail, Project } from "@blitz/api";

export function projectLine(p: Project): string {
  const paused = p.paused ? ` (paused: ${p.pause_reason || "no reason given"})` : "";
  const approval = p.require_plan_approval ? ", plans need approval" : "";
  return `${p.name}: ${p.path}, backend ${p.backend}${approval}${paused}`;
}

export function goalLine(g: Goal): string {
  const progress = `${g.progress.done}/${g.progress.total} tasks`;
  const pr = g.pr_url ? `, PR ${g.pr_url}` : "";
  return `${g.id} [${g.state}] ${g.title} (${g.project}; ${progress}, $${g.cost_usd.toFixed(2)}${pr})`;
}

export function goalStatus(g: GoalDetail): string {
  const lines = [
    `Goal ${g.id} on ${g.project}: ${g.title}`,
    `State: ${g.state}${g.error ? ` (${g.error})` : ""}; cost $${g.cost_usd.toFixed(2)}; ` +
      `${g.progress.done}/${g.progress.total} tasks done`,
  ];
  if (g.pr_url) lines.push(`Pull request: ${g.pr_url}`);
  for (const t of g.tasks) {
    const tries = g.attempts.filter((a) => a.task_id === t.id).length;
    const why = t.reason ? ` (${t.reason})` : "";
    lines.push(`- ${t.id} [${t.state}] ${t.title}; ${tries} attempt${tries === 1 ? "" : "s"}${why}`);
  }
  if (g.state === "awaiting_approval") {
    lines.push("The plan waits for approval: approve or reject it.");
  }
  return lines.join("\n");
}

/** The plan of a goal awaiting approval, as a person reads it before deciding. */
export function planText(g: GoalDetail): string {
  const tasks = g.tasks.map((t) => {
    const after = t.depends_on.length > 0 ? ` (after ${t.depends_on.join(", ")})` : "";
    return `${t.id}: ${t.title}${after}`;
  });
  return [`Plan for "${g.title}" on ${g.project} (${g.id}), ${tasks.length} tasks:`, ...tasks].join(
    "\n",
  );
}

/** The event kinds the conversation hears about. */
export const NOTIFIED = new Set([
  "goal.succeeded",
  "goal.failed",
  "plan.awaiting_approval",
  "budget.exceeded",
]);

/** What to tell the conversation that started the goal of `event` (which is in {@link NOTIFIED}). */
export function announcement(event: BlitzEvent, goal: GoalDetail | undefined): string {
  const name = goal ? `"${goal.title}" (${goal.id}, ${goal.project})` : event.goal_id;
  switch (event.kind) {
    case "goal.succeeded": {
      const done = goal ? ` ${goal.progress.done} of ${goal.progress.total} tasks done.` : "";
      const pr = goal?.pr_url ? ` Pull request: ${goal.pr_url}` : "";
      return `blitz: the goal ${name} finished.${done}${pr}`;
    }
    case "goal.failed": {
      const why = goal?.error || event.message;
      return `blitz: the goal ${name} failed${why ? `: ${why}` : ""}. Ask for its status to see the tasks.`;
    }
    case "plan.awaiting_approval": {
      const plan = goal ? `\n${planText(goal)}\n` : " ";
      return `blitz: the plan of ${name} waits for approval.${plan}Approve or reject it.`;
    }
    default:
      return `blitz: the goal ${name} went over its budget: ${event.message}`;
  }
}
