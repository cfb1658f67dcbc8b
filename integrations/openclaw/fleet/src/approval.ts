/**
 * Plan approval as an interactive step: when the model calls `blitz_review_plan`, OpenClaw's
 * plugin approval flow (a `before_tool_call` hook answering `requireApproval`) shows the person
 * the plan and holds the turn until they answer. Allowed: the tool runs and approves the plan.
 * Denied (or no answer in time): the goal's plan is rejected and the goal ends cancelled.
 * Cancelled (the run was aborted, or no client could show the prompt: OpenClaw asks only a
 * connected approval client or a chat that can answer `/approve`): the plan keeps waiting, for
 * `blitz_approve_plan` / `blitz_reject_plan` or the dashboard; the person never saw it.
 */
import type { BlitzClient } from "@blitz/api";
import { planText } from "./words.js";

export const REVIEW_TOOL = "blitz_review_plan";

/** What the hook answers (OpenClaw's PluginHookBeforeToolCallResult, the parts used here). */
export interface ApprovalRequest {
  block?: boolean;
  blockReason?: string;
  requireApproval?: {
    title: string;
    description: string;
    severity: "info" | "warning" | "critical";
    allowedDecisions: ("allow-once" | "allow-always" | "deny")[];
    timeoutMs: number;
    onResolution: (decision: string) => Promise<void>;
  };
}

/** The `before_tool_call` answer for a call of `toolName` with `params`; undefined: not ours. */
export async function reviewPlan(
  client: BlitzClient,
  toolName: string,
  params: Record<string, unknown>,
  log: (message: string) => void,
): Promise<ApprovalRequest | undefined> {
  if (toolName !== REVIEW_TOOL) return undefined;
  const id = typeof params.goal === "string" ? params.goal : "";
  let text: string;
  let goalId: string;
  try {
    const goal = await client.goal(id);
    if (goal.state !== "awaiting_approval") {
      return { block: true, blockReason: `The goal ${goal.id} is ${goal.state}, not awaiting approval.` };
    }
    text = planText(goal);
    goalId = goal.id;
  } catch (error) {
    return { block: true, blockReason: error instanceof Error ? error.message : String(error) };
  }
  return {
    requireApproval: {
      title: "Run this blitz plan?",
      description: text.length > 512 ? `${text.slice(0, 509)}...` : text,
      severity: "warning",
      allowedDecisions: ["allow-once", "deny"],
      timeoutMs: 600_000, // OpenClaw's longest; an unanswered approval fails closed (denied)
      async onResolution(decision: string) {
        if (decision.startsWith("allow")) return; // the tool runs and approves
        if (decision === "cancelled") {
          log(`blitz: the review of ${goalId} was cancelled; its plan still waits for approval`);
          return;
        }
        try {
          await client.reject(goalId, `plan ${decision === "deny" ? "rejected" : decision} in OpenClaw`);
        } catch (error) {
          log(`blitz: rejecting the plan of ${goalId} failed: ${String(error)}`);
        }
      },
    },
  };
}
