import { describe, expect, it } from "vitest";
import { BlitzApiError, BlitzClient } from "@blitz/api";
import { client, deadUrl, plan, PROJECT, TOKEN, URL, waitFor } from "./daemon.js";

async function failure(call: Promise<unknown>): Promise<BlitzApiError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(BlitzApiError);
    return error as BlitzApiError;
  }
  throw new Error("the call succeeded");
}

describe("BlitzClient against a real daemon", () => {
  it("lists the projects and runs a goal to the end", async () => {
    const names = (await client.projects()).map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining([PROJECT]));
    const goal = await client.submit({ project: PROJECT, title: "Greet", plan: plan("hello", "world") });
    expect(goal.state).toBe("planning");
    const done = await waitFor(goal.id, ["succeeded", "failed", "cancelled"]);
    expect(done.state).toBe("succeeded");
    expect(done.tasks.map((t) => [t.id, t.state])).toEqual([["hello", "succeeded"], ["world", "succeeded"]]);
    expect(done.pr_url).not.toBe("");
    const listed = await client.goals({ project: PROJECT, state: ["succeeded"] });
    expect(listed.map((g) => g.id)).toContain(goal.id);
  });

  it("says the token is wrong, without the token", async () => {
    const wrong = new BlitzClient({ url: URL, token: "blitz_not-the-token" });
    const error = await failure(wrong.projects());
    expect(error.kind).toBe("unauthorized");
    expect(error.status).toBe(401);
    expect(error.message).toContain("refused the token");
    expect(error.message).toContain("blitz token");
    expect(error.message).not.toContain("not-the-token");
    expect(error.message).not.toContain(TOKEN);
  });

  it("says when no daemon answers", async () => {
    const url = await deadUrl();
    const error = await failure(new BlitzClient({ url, token: TOKEN }).projects());
    expect(error.kind).toBe("unreachable");
    expect(error.message).toBe(
      `No blitz daemon answers at ${url} (ECONNREFUSED). Is \`blitz serve\` running there?`,
    );
  });

  it("says which goal is unknown", async () => {
    const error = await failure(client.goal("g-nosuchgoal"));
    expect(error.kind).toBe("not_found");
    expect(error.message).toContain("g-nosuchgoal");
  });

  it("says why a request is refused", async () => {
    const error = await failure(client.submit({ project: PROJECT, title: "Bad", plan: "tasks: [" }));
    expect(error.kind).toBe("invalid");
    expect(error.message).toMatch(/^Refused: /);
    expect(error.message).toContain("plan");
    const ended = await failure(client.cancel((await client.goals({ state: ["succeeded"], limit: 1 }))[0]?.id ?? "x"));
    expect(ended.kind).toBe("conflict");
  });
});
