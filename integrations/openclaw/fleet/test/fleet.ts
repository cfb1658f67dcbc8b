/** What the fleet tests share: the daemon (blitz-api's test helpers) and a turn's context. */
import { Conversations } from "../src/conversations.js";
import { fleetTools, type FleetTool, type TurnContext } from "../src/tools.js";
import { client } from "../../blitz-api/test/daemon.js";

export * from "../../blitz-api/test/daemon.js";

/** The context OpenClaw gives a tool in a conversation (the parts the tools read). */
export const TURN: TurnContext = {
  sessionKey: "agent:main:telegram:direct:42",
  agentId: "main",
  deliveryContext: { channel: "telegram", to: "42", accountId: "default" },
};

export function tools(conversations = new Conversations(), turn: TurnContext = TURN): Record<string, FleetTool> {
  return Object.fromEntries(fleetTools(client, conversations, turn).map((t) => [t.name, t]));
}

/** The text a tool answered. */
export async function run(tool: FleetTool | undefined, params: Record<string, unknown>): Promise<string> {
  if (!tool) throw new Error("no such tool");
  const result = await tool.execute("call-1", params);
  return result.content.map((c) => c.text).join("\n");
}
