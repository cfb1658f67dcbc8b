import { describe, expect, it } from "vitest";
import { BlitzClient } from "@blitz/api";
import { blitzCommand, USAGE } from "../src/command.js";
import { readConfig } from "../src/config.js";
import { client, deadUrl, plan, PROJECT, URL, waitFor } from "./fleet.js";

describe("/blitz answers without a model turn", () => {
  it("status, goals and cancel", async () => {
    const goal = await client.submit({ project: PROJECT, title: "Slow one", plan: plan("slow") });
    await waitFor(goal.id, ["running"]);
    const status = await blitzCommand(client, "status");
    expect(status).toMatch(new RegExp(`^blitz \\S+ at ${URL}: ok; \\d+ goals? unfinished`));
    expect(status).toContain(`${goal.id} [running] Slow one`);
    expect(await blitzCommand(client, "")).toContain(`${goal.id} [running]`);
    expect(await blitzCommand(client, "goals")).toContain(`${goal.id} [running] Slow one (${PROJECT};`);
    expect(await blitzCommand(client, `cancel ${goal.id}`)).toBe(`Cancelling ${goal.id}.`);
    expect((await waitFor(goal.id, ["cancelled"])).state).toBe("cancelled");
    expect(await blitzCommand(client, `cancel ${goal.id}`)).toMatch(/^Refused: /);
  });

  it("usage, unknown goals, a daemon that is down, a wrong token, no settings", async () => {
    expect(await blitzCommand(client, "cancel")).toBe(USAGE);
    expect(await blitzCommand(client, "dance")).toBe(USAGE);
    expect(await blitzCommand(client, "cancel g-nosuchgoal")).toMatch(/^Not found: .*g-nosuchgoal/);
    const down = await deadUrl();
    expect(await blitzCommand(new BlitzClient({ url: down, token: "x" }), "status")).toBe(
      `No blitz daemon answers at ${down} (ECONNREFUSED). Is \`blitz serve\` running there?`,
    );
    const wrong = await blitzCommand(new BlitzClient({ url: URL, token: "blitz_wrong-one" }), "goals");
    expect(wrong).toContain("refused the token");
    expect(wrong).not.toContain("wrong-one");
    const unset = readConfig({ url: URL });
    expect(typeof unset).toBe("string");
    expect(await blitzCommand(unset as string, "status")).toBe(
      "blitz is not set up: set plugins.entries.blitz-fleet.config.token (the URL and token `blitz serve` prints).",
    );
  });
});
