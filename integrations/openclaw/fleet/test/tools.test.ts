import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { Conversations } from "../src/conversations.js";
import { OPTIONAL_TOOLS, TOOL_NAMES } from "../src/tools.js";
import { GATED, plan, PROJECT, run, tools, TURN, waitFor } from "./fleet.js";

describe("the fleet tools against a real daemon", () => {
  it("are the manifest's tools, side effects optional", () => {
    const manifest = JSON.parse(readFileSync(new URL("../openclaw.plugin.json", import.meta.url), "utf8")) as {
      contracts: { tools: string[] };
      toolMetadata: Record<string, { optional?: boolean }>;
    };
    const all = tools();
    expect(Object.keys(all)).toEqual([...TOOL_NAMES]);
    expect(manifest.contracts.tools).toEqual([...TOOL_NAMES]);
    for (const name of TOOL_NAMES) {
      expect(all[name]?.optional, name).toBe(manifest.toolMetadata[name]?.optional === true);
      expect(OPTIONAL_TOOLS.has(name), name).toBe(manifest.toolMetadata[name]?.optional === true);
    }
    expect(all.blitz_submit_goal?.optional).toBe(true);
    expect(all.blitz_goals?.optional).toBe(false);
  });

  it("submit a goal, remember who asked, and report its status", async () => {
    const conversations = new Conversations();
    const t = tools(conversations);
    expect(await run(t.blitz_projects, {})).toContain(`${PROJECT}: `);
    const started = await run(t.blitz_submit_goal, { project: PROJECT, goal: "Greet the world", plan: plan("hello", "world") });
    const id = /goal (g-[\w-]+)/.exec(started)?.[1] ?? "";
    expect(started).toContain(`Started goal ${id} on ${PROJECT}: Greet the world`);
    expect(conversations.of(id)).toEqual({
      sessionKey: TURN.sessionKey, agentId: TURN.agentId, deliveryContext: TURN.deliveryContext,
    });
    await waitFor(id, ["succeeded"]);
    const status = await run(t.blitz_goal_status, { goal: id });
    expect(status).toContain("State: succeeded");
    expect(status).toContain("- hello [succeeded] Do hello; 1 attempt");
    expect(status).toContain("- world [succeeded] Do world; 1 attempt");
    expect(status).toMatch(/Pull request: \S+/);
    expect(await run(t.blitz_goals, { project: PROJECT, state: "succeeded" })).toContain(`${id} [succeeded] Greet the world`);
  });

  it("best of N and a backend go to the daemon", async () => {
    const t = tools();
    const started = await run(t.blitz_submit_goal, { project: PROJECT, goal: "Twice", plan: plan("hello"), best_of: 2, backend: "scripted" });
    const id = /goal (g-[\w-]+)/.exec(started)?.[1] ?? "";
    const goal = await waitFor(id, ["succeeded", "failed"]);
    expect(goal.explore).toBe(2);
    expect(goal.backend).toBe("scripted");
  });

  it("cancel, retry and skip steer a goal", async () => {
    const t = tools();
    const slow = /goal (g-[\w-]+)/.exec(await run(t.blitz_submit_goal, { project: PROJECT, goal: "Slow", plan: plan("slow") }))?.[1] ?? "";
    await waitFor(slow, ["running"]);
    expect(await run(t.blitz_cancel_goal, { goal: slow })).toBe(`Cancelling ${slow}.`);
    expect((await waitFor(slow, ["cancelled"])).state).toBe("cancelled");

    const broken = /goal (g-[\w-]+)/.exec(await run(t.blitz_submit_goal, { project: PROJECT, goal: "Broken", plan: plan("broken", "hello") }))?.[1] ?? "";
    const failed = await waitFor(broken, ["failed"]);
    expect(failed.tasks.find((x) => x.id === "broken")?.state).toBe("failed");
    const attempts = failed.attempts.length;
    expect(await run(t.blitz_retry_task, { goal: broken, task: "broken" })).toBe(`Retrying task broken of ${broken}.`);
    let again = await waitFor(broken, ["failed"]);
    while (again.attempts.length <= attempts) again = await waitFor(broken, ["failed"]); // ran again
    expect(again.tasks.find((x) => x.id === "broken")?.state).toBe("failed");
    expect(await run(t.blitz_skip_task, { goal: broken, task: "broken" })).toBe(`Skipping task broken of ${broken}.`);
    const skipped = await waitFor(broken, ["succeeded"]);
    expect(skipped.tasks.map((x) => [x.id, x.state])).toEqual([["broken", "skipped"], ["hello", "succeeded"]]);
  });

  it("approve and reject a waiting plan", async () => {
    const t = tools();
    const first = /goal (g-[\w-]+)/.exec(await run(t.blitz_submit_goal, { project: GATED, goal: "Gated" }))?.[1] ?? "";
    await waitFor(first, ["awaiting_approval"]);
    expect(await run(t.blitz_goal_status, { goal: first })).toContain("The plan waits for approval");
    expect(await run(t.blitz_approve_plan, { goal: first })).toBe(`Approved the plan of ${first}; it runs now.`);
    expect((await waitFor(first, ["succeeded", "failed"])).state).toBe("succeeded");

    const second = /goal (g-[\w-]+)/.exec(await run(t.blitz_submit_goal, { project: GATED, goal: "Gated again" }))?.[1] ?? "";
    await waitFor(second, ["awaiting_approval"]);
    expect(await run(t.blitz_reject_plan, { goal: second, reason: "not now" })).toBe(`Rejected the plan of ${second}; the goal is cancelled.`);
    expect((await waitFor(second, ["cancelled"])).state).toBe("cancelled");
  });

  it("throw clear errors: unknown goal, ended goal, unknown project", async () => {
    const t = tools();
    await expect(run(t.blitz_goal_status, { goal: "g-nosuchgoal" })).rejects.toThrow(/Not found: .*g-nosuchgoal/);
    await expect(run(t.blitz_submit_goal, { project: "nosuchproject", goal: "x" })).rejects.toThrow(/Not found: .*nosuchproject/);
    const done = /goal (g-[\w-]+)/.exec(await run(t.blitz_submit_goal, { project: PROJECT, goal: "Done", plan: plan("hello") }))?.[1] ?? "";
    await waitFor(done, ["succeeded"]);
    await expect(run(t.blitz_cancel_goal, { goal: done })).rejects.toThrow(/^Refused: /);
  });
});
