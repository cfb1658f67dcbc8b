import { describe, expect, it } from "vitest";
import { reviewPlan, REVIEW_TOOL } from "../src/approval.js";
import { client, GATED, PROJECT, plan, run, tools, waitFor } from "./fleet.js";

async function waiting(title: string): Promise<string> {
  const text = await run(tools().blitz_submit_goal, { project: GATED, goal: title });
  const id = /goal (g-[\w-]+)/.exec(text)?.[1] ?? "";
  await waitFor(id, ["awaiting_approval"]);
  return id;
}

describe("plan approval as an interactive step", () => {
  it("shows the plan and approves it when the person allows", async () => {
    const id = await waiting("Ask first");
    const asked = await reviewPlan(client, REVIEW_TOOL, { goal: id }, () => undefined);
    expect(asked?.requireApproval?.title).toBe("Run this blitz plan?");
    expect(asked?.requireApproval?.description).toBe(
      `Plan for "Ask first" on ${GATED} (${id}), 2 tasks:\nhello: Write hello\nworld: Append world (after hello)`,
    );
    expect(asked?.requireApproval?.allowedDecisions).toEqual(["allow-once", "deny"]);
    await asked?.requireApproval?.onResolution("allow-once"); // the host then runs the tool
    expect((await client.goal(id)).state).toBe("awaiting_approval");
    expect(await run(tools().blitz_review_plan, { goal: id })).toBe(`The plan of ${id} is approved; the goal runs now.`);
    expect((await waitFor(id, ["succeeded", "failed"])).state).toBe("succeeded");
  });

  it("rejects the plan when the person denies, or does not answer in time", async () => {
    for (const decision of ["deny", "timeout"]) {
      const id = await waiting(`Ask and ${decision}`);
      const asked = await reviewPlan(client, REVIEW_TOOL, { goal: id }, () => undefined);
      expect(asked?.requireApproval).not.toHaveProperty("timeoutBehavior"); // deprecated, ignored
      await asked?.requireApproval?.onResolution(decision);
      expect((await waitFor(id, ["cancelled"])).state).toBe("cancelled");
    }
  });

  it("leaves the plan waiting when the review is cancelled (the person never saw it)", async () => {
    const id = await waiting("Ask, then the run stops");
    const said: string[] = [];
    const asked = await reviewPlan(client, REVIEW_TOOL, { goal: id }, (m) => said.push(m));
    await asked?.requireApproval?.onResolution("cancelled");
    expect((await client.goal(id)).state).toBe("awaiting_approval");
    expect(said).toEqual([`blitz: the review of ${id} was cancelled; its plan still waits for approval`]);
    await client.reject(id, "done with the test");
  });

  it("blocks a review of a goal that does not wait, and ignores other tools", async () => {
    const goal = await client.submit({ project: PROJECT, title: "No approval", plan: plan("hello") });
    await waitFor(goal.id, ["succeeded"]);
    expect(await reviewPlan(client, REVIEW_TOOL, { goal: goal.id }, () => undefined)).toEqual({
      block: true,
      blockReason: `The goal ${goal.id} is succeeded, not awaiting approval.`,
    });
    const unknown = await reviewPlan(client, REVIEW_TOOL, { goal: "g-nosuchgoal" }, () => undefined);
    expect(unknown?.block).toBe(true);
    expect(unknown?.blockReason).toMatch(/^Not found: .*g-nosuchgoal/);
    expect(await reviewPlan(client, "blitz_goals", {}, () => undefined)).toBeUndefined();
  });
});
