/**
 * The background service's work: follow the daemon's events (resuming after the last one
 * handled, across reconnects and restarts) and tell the conversation that started a goal what
 * matters: finished (with the pull request), failed (why), plan waiting for approval, budget
 * exceeded.
 */
import { follow, type BlitzApiError, type BlitzClient, type BlitzEvent, type Follower, type GoalDetail } from "@blitz/api";
import type { Conversation, Conversations } from "./conversations.js";
import { NOTIFIED, announcement } from "./words.js";

/** How a message reaches a conversation (OpenClaw's runtime in the plugin, a recorder in tests). */
export type Deliver = (conversation: Conversation, text: string) => void | Promise<void>;

export interface NotifierOptions {
  client: BlitzClient;
  conversations: Conversations;
  deliver: Deliver;
  /** Told when the stream fails or drops (it reconnects on its own). */
  onError?: (error: BlitzApiError) => void;
  retryMs?: number;
}

const ENDINGS = new Set(["goal.succeeded", "goal.failed", "goal.cancelled"]);

/** Start following; `stop()` the returned follower to end. */
export function startNotifier(options: NotifierOptions): Follower {
  const { client, conversations, deliver } = options;
  return follow(client, {
    lastEventId: conversations.lastEventId,
    ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
    async onEvent(event: BlitzEvent) {
      const conversation = event.goal_id ? conversations.of(event.goal_id) : undefined;
      if (conversation && NOTIFIED.has(event.kind)) {
        let goal: GoalDetail | undefined;
        try {
          goal = await client.goal(event.goal_id);
        } catch {
          goal = undefined; // the message still goes, with what the event says
        }
        await deliver(conversation, announcement(event, goal));
      }
      if (conversation && ENDINGS.has(event.kind)) conversations.forget(event.goal_id);
      conversations.handled(event.id);
    },
  });
}
