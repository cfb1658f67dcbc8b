import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { OpenClawPluginApi } from "openclaw/plugin-sdk/plugin-entry";
import entry from "../src/index.js";
import { OPTIONAL_TOOLS, TOOL_NAMES, type FleetTool } from "../src/tools.js";
import { plan, PROJECT, TOKEN, TURN, URL, waitFor } from "./fleet.js";

/** What the plugin registered with, and asked of, OpenClaw's API (OpenClaw itself loads it for
 * real in tests/openclaw/test_fleet_inspect.py; this records the calls to check the wiring). */
interface Recorded {
  tools: { factory: (ctx: object) => FleetTool | null; options: { name: string; optional: boolean } }[];
  hooks: string[];
  commands: { name: string; handler: (ctx: { args?: string }) => Promise<{ text: string }> }[];
  services: { id: string; start(ctx: object): void; stop(): Promise<void> }[];
  warnings: string[];
  systemEvents: [string, Record<string, unknown>][];
  wakes: Record<string, unknown>[];
}

function load(pluginConfig: Record<string, unknown>, stateDir = mkdtempSync(join(tmpdir(), "fleet-state-"))): Recorded {
  const r: Recorded = { tools: [], hooks: [], commands: [], services: [], warnings: [], systemEvents: [], wakes: [] };
  const api = {
    pluginConfig,
    logger: { warn: (m: string) => r.warnings.push(m), info: () => undefined, error: () => undefined, debug: () => undefined },
    registerTool: (factory: Recorded["tools"][number]["factory"], options: Recorded["tools"][number]["options"]) => r.tools.push({ factory, options }),
    on: (hook: string) => r.hooks.push(hook),
    registerCommand: (command: Recorded["commands"][number]) => r.commands.push(command),
    registerService: (service: Recorded["services"][number]) => r.services.push(service),
    runtime: {
      state: { resolveStateDir: () => stateDir },
      system: {
        enqueueSystemEvent: (text: string, options: Record<string, unknown>) => { r.systemEvents.push([text, options]); return true; },
        requestHeartbeat: (options: Record<string, unknown>) => { r.wakes.push(options); },
      },
    },
  };
  entry.register(api as unknown as OpenClawPluginApi);
  return r;
}

describe("the plugin entry", () => {
  it("registers every tool (side effects optional), the approval hook, /blitz and the service", () => {
    const r = load({ url: URL, token: TOKEN });
    expect(r.tools.map((t) => t.options.name)).toEqual([...TOOL_NAMES]);
    expect(r.tools.filter((t) => t.options.optional).map((t) => t.options.name)).toEqual([...OPTIONAL_TOOLS]);
    expect(r.tools.map((t) => t.factory(TURN)?.name)).toEqual([...TOOL_NAMES]);
    expect(r.hooks).toEqual(["before_tool_call"]);
    expect(r.commands.map((c) => c.name)).toEqual(["blitz"]);
    expect(r.services.map((s) => s.id)).toEqual(["blitz-fleet-events"]);
    expect(r.warnings).toEqual([]);
  });

  it("tells the session that submitted a goal, through a system event and a wake of it", async () => {
    const r = load({ url: URL, token: TOKEN });
    const service = r.services[0];
    if (!service) throw new Error("no service");
    service.start({ stateDir: mkdtempSync(join(tmpdir(), "fleet-state-")), logger: { warn: () => undefined } });
    try {
      const submit = r.tools.find((t) => t.options.name === "blitz_submit_goal")?.factory(TURN);
      const started = await submit?.execute("call-1", { project: PROJECT, goal: "Told", plan: plan("hello") });
      const id = /goal (g-[\w-]+)/.exec(started?.content[0]?.text ?? "")?.[1] ?? "";
      const goal = await waitFor(id, ["succeeded"]);
      while (!r.systemEvents.some(([text]) => text.includes(id))) await new Promise((s) => setTimeout(s, 50));
      const [text, options] = r.systemEvents.find(([t]) => t.includes(id)) ?? ["", {}];
      expect(text).toBe(`blitz: the goal "Told" (${id}, ${PROJECT}) finished. 1 of 1 tasks done. Pull request: ${goal.pr_url}`);
      expect(options).toEqual({ sessionKey: TURN.sessionKey, agentId: TURN.agentId, deliveryContext: TURN.deliveryContext });
      expect(r.wakes).toContainEqual({ source: "other", intent: "immediate", reason: "blitz", sessionKey: TURN.sessionKey, agentId: TURN.agentId });
    } finally {
      await service.stop();
    }
  });

  it("tells the submitting session when the tool and the service run in two instances, as in the gateway", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "fleet-state-"));
    const serving = load({ url: URL, token: TOKEN }, stateDir);
    const calling = load({ url: URL, token: TOKEN }, stateDir);
    const service = serving.services[0];
    if (!service) throw new Error("no service");
    service.start({ stateDir, logger: { warn: () => undefined } });
    try {
      const submit = calling.tools.find((t) => t.options.name === "blitz_submit_goal")?.factory(TURN);
      const started = await submit?.execute("call-1", { project: PROJECT, goal: "Told twice", plan: plan("hello") });
      const id = /goal (g-[\w-]+)/.exec(started?.content[0]?.text ?? "")?.[1] ?? "";
      await waitFor(id, ["succeeded"]);
      while (!serving.systemEvents.some(([text]) => text.includes(id))) await new Promise((s) => setTimeout(s, 50));
      const [, options] = serving.systemEvents.find(([t]) => t.includes(id)) ?? ["", {}];
      expect(options).toEqual({ sessionKey: TURN.sessionKey, agentId: TURN.agentId, deliveryContext: TURN.deliveryContext });
      expect(calling.systemEvents).toEqual([]);
    } finally {
      await service.stop();
    }
  });

  it("without settings: says what to set, offers no tools, and never crashes", async () => {
    const r = load({ url: URL });
    const said = "blitz is not set up: set plugins.entries.blitz-fleet.config.token (the URL and token `blitz serve` prints).";
    expect(r.warnings).toEqual([said]);
    expect(r.tools.map((t) => t.factory(TURN))).toEqual(TOOL_NAMES.map(() => null));
    expect((await r.commands[0]?.handler({ args: "status" }))?.text).toBe(said);
  });
});
