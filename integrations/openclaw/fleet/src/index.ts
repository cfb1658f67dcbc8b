/**
 * The `blitz-fleet` OpenClaw plugin: a thin typed client of a blitz daemon (docs/api.md). Tools
 * to list, submit and steer goals; a background service that tells the conversation that started
 * a goal how it ended; plan approval as an interactive step; and `/blitz`, answered without a
 * model turn. blitz does the work; this plugin only talks to it.
 */
import { BlitzClient } from "@blitz/api";
import { definePluginEntry, type OpenClawPluginApi } from "openclaw/plugin-sdk/plugin-entry";
import { join } from "node:path";
import { reviewPlan } from "./approval.js";
import { blitzCommand } from "./command.js";
import { readConfig } from "./config.js";
import { Conversations, type Conversation } from "./conversations.js";
import { startNotifier, type Deliver } from "./notifier.js";
import { fleetTools, OPTIONAL_TOOLS, TOOL_NAMES } from "./tools.js";
import type { Follower } from "@blitz/api";

type SystemEventOptions = Parameters<OpenClawPluginApi["runtime"]["system"]["enqueueSystemEvent"]>[1];

export default definePluginEntry({
  id: "blitz-fleet",
  name: "blitz fleet",
  description: "Run coding goals on a blitz daemon and hear in the conversation when they finish.",
  register(api) {
    const config = readConfig(api.pluginConfig);
    const client = typeof config === "string" ? undefined : new BlitzClient(config);
    const conversations = new Conversations();
    // Shared with the plugin's other instances (see Conversations): the service's stateDir.
    conversations.attach(conversationsFile(api.runtime.state.resolveStateDir()));
    const unconfigured = typeof config === "string" ? config : "";
    if (unconfigured) api.logger.warn(unconfigured);

    for (const name of TOOL_NAMES) {
      const optional = OPTIONAL_TOOLS.has(name);
      api.registerTool(
        (ctx) => {
          const tools = client ? fleetTools(client, conversations, ctx) : [];
          const found = tools.find((t) => t.name === name);
          if (found) return found;
          return null;
        },
        { name, optional },
      );
    }

    api.on("before_tool_call", async (event) =>
      client ? await reviewPlan(client, event.toolName, event.params, (m) => { api.logger.warn(m); }) : undefined,
    );

    api.registerCommand({
      name: "blitz",
      description: "blitz: status, goals, cancel GOAL_ID (no model turn)",
      acceptsArgs: true,
      async handler(ctx) {
        return { text: await blitzCommand(client ?? unconfigured, ctx.args ?? "") };
      },
    });

    let follower: Follower | undefined;
    api.registerService({
      id: "blitz-fleet-events",
      start(ctx) {
        conversations.attach(conversationsFile(ctx.stateDir));
        if (!client || typeof config === "string" || !config.notify) return;
        let last = "";
        follower = startNotifier({
          client,
          conversations,
          deliver: systemEventDelivery(api),
          onError(error) {
            if (error.message !== last) ctx.logger.warn(error.message); // once per new problem
            last = error.message;
          },
        });
      },
      async stop() {
        await follower?.stop();
        follower = undefined;
      },
    });
  },
});

/**
 * Deliver a message into the conversation that started a goal: queued as a system event of its
 * session (with the channel route it had when the goal was submitted) and a wake of that
 * session, OpenClaw's path for a plugin's asynchronous news (as background commands use). The
 * wake is "immediate", as a finished task's follow-up: an "event" wake runs at once only the first
 * time, and later ones wait for the agent's next heartbeat (`shouldDeferWake` in OpenClaw's
 * heartbeat-runner-scheduler: "defer if now < nextDueMs"), up to `heartbeat.every` late.
 */
function systemEventDelivery(api: OpenClawPluginApi): Deliver {
  return (conversation: Conversation, text: string) => {
    const options: SystemEventOptions & { agentId?: string } = { sessionKey: conversation.sessionKey };
    if (conversation.agentId) options.agentId = conversation.agentId;
    if (conversation.deliveryContext) {
      options.deliveryContext = conversation.deliveryContext;
    }
    api.runtime.system.enqueueSystemEvent(text, options);
    api.runtime.system.requestHeartbeat({
      source: "other",
      intent: "immediate",
      reason: "blitz",
      sessionKey: conversation.sessionKey,
      ...(conversation.agentId ? { agentId: conversation.agentId } : {}),
    });
  };
}

/** Where the goals' conversations and the last event handled are kept. */
function conversationsFile(stateDir: string): string {
  return join(stateDir, "blitz-fleet", "conversations.json");
}
