/** `/blitz status | goals | cancel ID`: answered by the plugin, without a model turn. */
import { BlitzApiError, type BlitzClient } from "@blitz/api";
import { goalLine } from "./words.js";

export const USAGE = "Usage: /blitz status | /blitz goals | /blitz cancel GOAL_ID";

/** The reply to `/blitz <args>`; never throws (a failure is the reply). */
export async function blitzCommand(client: BlitzClient | string, args: string): Promise<string> {
  if (typeof client === "string") return client; // not configured: say what to set
  const [verb = "status", ...rest] = args.trim().split(/\s+/).filter(Boolean);
  try {
    switch (verb) {
      case "status": {
        const health = await client.health();
        const running = await client.goals({ state: ["planning", "awaiting_approval", "running", "finishing"] });
        const head = `blitz ${health.version} at ${client.url}: ${health.status}; ${running.length} goal${running.length === 1 ? "" : "s"} unfinished`;
        return [head, ...running.map(goalLine)].join("\n");
      }
      case "goals": {
        const goals = await client.goals({ limit: 10 });
        return goals.length ? goals.map(goalLine).join("\n") : "No goals yet.";
      }
      case "cancel": {
        const id = rest[0];
        if (!id) return USAGE;
        const action = await client.cancel(id, "cancelled with /blitz in OpenClaw");
        return `Cancelling ${action.goal_id}.`;
      }
      default:
        return USAGE;
    }
  } catch (error) {
    return error instanceof BlitzApiError ? error.message : `blitz: ${String(error)}`;
  }
}
