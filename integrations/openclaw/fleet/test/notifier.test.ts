import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BlitzClient, follow, type BlitzEvent, type Follower } from "@blitz/api";
import { Conversations, type Conversation } from "../src/conversations.js";
import { startNotifier } from "../src/notifier.js";
import { client, GATED, METERED, plan, PROJECT, run, tools, TURN, URL, waitFor } from "./fleet.js";

const running: Follower[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((f) => f.stop()));
});

/** A notifier delivering into a list, and that list. */
function notifier(conversations: Conversations): { said: [Conversation, string][] } {
  const said: [Conversation, string][] = [];
  running.push(startNotifier({ client, conversations, deliver: (c, text) => { said.push([c, text]); } }));
  return { said };
}

async function until<T>(find: () => T | undefined): Promise<T> {
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function submit(conversations: Conversations, project: string, goal: string, tasks?: string[]): Promise<string> {
  const text = await run(tools(conversations).blitz_submit_goal, { project, goal, ...(tasks ? { plan: plan(...tasks) } : {}) });
  return /goal (g-[\w-]+)/.exec(text)?.[1] ?? "";
}

describe("the notifier tells the conversation that started a goal", () => {
  it("that it finished, with the pull request, and nothing of goals it did not start", async () => {
    const conversations = new Conversations();
    const { said } = notifier(conversations);
    const other = await client.submit({ project: PROJECT, title: "Not ours", plan: plan("hello") });
    const id = await submit(conversations, PROJECT, "Greet the world", ["hello", "world"]);
    const [to, text] = await until(() => said.find(([, t]) => t.includes(id)));
    const goal = await waitFor(id, ["succeeded"]);
    expect(to).toEqual(conversations.of(id) ?? { sessionKey: TURN.sessionKey, agentId: TURN.agentId, deliveryContext: TURN.deliveryContext });
    expect(text).toBe(`blitz: the goal "Greet the world" (${id}, ${PROJECT}) finished. 2 of 2 tasks done. Pull request: ${goal.pr_url}`);
    await waitFor(other.id, ["succeeded", "failed"]);
    expect(said.some(([, t]) => t.includes(other.id))).toBe(false);
    expect(conversations.of(id)).toBeUndefined(); // an ended goal is forgotten
  });

  it("that it failed, and why", async () => {
    const conversations = new Conversations();
    const { said } = notifier(conversations);
    const id = await submit(conversations, PROJECT, "Break", ["broken"]);
    const [, text] = await until(() => said.find(([, t]) => t.includes(id)));
    expect(text).toMatch(new RegExp(`^blitz: the goal "Break" \\(${id}, ${PROJECT}\\) failed: .+\\. Ask for its status`));
  });

  it("that its plan waits for approval, with the plan", async () => {
    const conversations = new Conversations();
    const { said } = notifier(conversations);
    const id = await submit(conversations, GATED, "Needs a yes");
    const [, text] = await until(() => said.find(([, t]) => t.includes(id)));
    expect(text).toBe(
      `blitz: the plan of "Needs a yes" (${id}, ${GATED}) waits for approval.\n` +
        `Plan for "Needs a yes" on ${GATED} (${id}), 2 tasks:\nhello: Write hello\n` +
        "world: Append world (after hello)\nApprove or reject it.",
    );
    await client.reject(id);
  });

  it("that it went over its budget", async () => {
    const conversations = new Conversations();
    const { said } = notifier(conversations);
    const id = await submit(conversations, METERED, "Spend", ["costly", "hello"]);
    const [, text] = await until(() => said.find(([, t]) => t.includes(id) && t.includes("budget")));
    expect(text).toMatch(new RegExp(`^blitz: the goal "Spend" \\(${id}, ${METERED}\\) went over its budget: .*\\$1\\.00`));
  });

  it("of a goal whose news came before its conversation was remembered", async () => {
    // A goal given its plan waits for approval before the submit tool has remembered where it
    // came from (OpenClaw's news test missed "plan waits" in CI).
    const conversations = new Conversations();
    const { said } = notifier(conversations);
    const seen: BlitzEvent[] = [];
    running.push(follow(client, { onEvent: (e) => { seen.push(e); } }));
    const goal = await client.submit({ project: GATED, title: "Remembered late", plan: plan("hello") });
    const waits = await until(() => seen.find((e) => e.goal_id === goal.id && e.kind === "plan.awaiting_approval"));
    await until(() => (conversations.lastEventId >= waits.id ? true : undefined)); // the notifier had it
    expect(said).toEqual([]);

    conversations.remember(goal.id, { sessionKey: "agent:main:late" });
    const [to, text] = await until(() => said.find(([, t]) => t.includes(goal.id)));
    expect(to).toEqual({ sessionKey: "agent:main:late" });
    expect(text).toMatch(new RegExp(`^blitz: the plan of "Remembered late" \\(${goal.id}, ${GATED}\\) waits for approval`));
    await client.reject(goal.id);
  });

  it("nothing of a goal whose conversation is never remembered", async () => {
    const conversations = new Conversations();
    const said: string[] = [];
    running.push(startNotifier({ client, conversations, deliver: (_, text) => { said.push(text); }, unclaimedMs: 300 }));
    const seen: BlitzEvent[] = [];
    running.push(follow(client, { onEvent: (e) => { seen.push(e); } }));
    const goal = await client.submit({ project: GATED, title: "Nobody's", plan: plan("hello") });
    const waits = await until(() => seen.find((e) => e.goal_id === goal.id && e.kind === "plan.awaiting_approval"));
    await until(() => (conversations.lastEventId >= waits.id ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 800)); // past the 300 ms it is kept
    conversations.remember(goal.id, { sessionKey: "agent:main:late" }); // too late: dropped
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(said.some((t) => t.includes(goal.id))).toBe(false);
    await client.reject(goal.id);
  });

  it("resumes after a restart from the last event it handled", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fleet-"));
    const file = join(dir, "conversations.json");
    const before = new Conversations();
    before.attach(file);
    const first = notifier(before);
    const id = await submit(before, PROJECT, "Before the restart", ["hello"]);
    await until(() => first.said.find(([, t]) => t.includes(id)));
    await Promise.all(running.splice(0).map((f) => f.stop()));
    const saved = JSON.parse(readFileSync(file, "utf8")) as { lastEventId: number };
    expect(saved.lastEventId).toBeGreaterThan(0);

    const after = new Conversations();
    after.attach(file); // a restarted gateway
    expect(after.lastEventId).toBe(saved.lastEventId);
    const again = notifier(after);
    const next = await submit(after, PROJECT, "After the restart", ["hello"]);
    await until(() => again.said.find(([, t]) => t.includes(next)));
    expect(again.said.some(([, t]) => t.includes(id))).toBe(false); // not told twice
  });

  it("keeps going when the daemon is unreachable, without crashing", async () => {
    const errors: string[] = [];
    const down = new BlitzClient({ url: URL.replace(/:\d+$/, ":9"), token: "t" });
    running.push(startNotifier({ client: down, conversations: new Conversations(), deliver: () => undefined, retryMs: 10, onError: (e) => errors.push(e.message) }));
    await until(() => (errors.length >= 2 ? true : undefined));
    expect(errors[0]).toMatch(/^No blitz daemon answers at http:\/\/127\.0\.0\.1:9 /);
  });
});
