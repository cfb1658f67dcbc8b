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
  /** How long news of a goal with no known conversation is kept (default `UNCLAIMED_MS`). */
  unclaimedMs?: number;
}

const ENDINGS = new Set(["goal.succeeded", "goal.failed", "goal.cancelled"]);

/**
 * How long the news of a goal no conversation here is known to have started is kept, in case the
 * tool that submitted it has not remembered its conversation yet: a goal given its plan waits for
 * approval (or fails) within milliseconds, before the submit call has returned, and its news was
 * lost. Past this, the goal is someone else's (submitted from the CLI or the dashboard).
 */
export const UNCLAIMED_MS = 30_000;
const RECHECK_MS = 200;

/** Start following; `stop()` the returned follower to end. */
export function startNotifier(options: NotifierOptions): Follower {
  const { client, conversations, deliver } = options;
  const unclaimedMs = options.unclaimedMs ?? UNCLAIMED_MS;
  // News held for goals whose conversation is not known yet, each goal's in order.
  const held = new Map<string, { since: number; events: BlitzEvent[] }>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  async function tell(conversation: Conversation, event: BlitzEvent): Promise<void> {
    if (NOTIFIED.has(event.kind)) {
      let goal: GoalDetail | undefined;
      try {
        goal = await client.goal(event.goal_id);
      } catch {
        goal = undefined; // the message still goes, with what the event says
      }
      await deliver(conversation, announcement(event, goal));
    }
    if (ENDINGS.has(event.kind)) conversations.forget(event.goal_id);
  }

  /** Tell the goals whose conversation is known now what was held for them; drop the rest once
   * they have waited `unclaimedMs`. */
  async function recheck(): Promise<void> {
    conversations.refresh(); // once for all the goals held
    for (const [goal, waiting] of held) {
      const conversation = conversations.of(goal, false);
      if (!conversation) {
        if (Date.now() - waiting.since > unclaimedMs) held.delete(goal);
        continue;
      }
      // Events of the goal that come meanwhile join the queue, so they are told in order.
      for (let event = waiting.events.shift(); event; event = waiting.events.shift()) {
        await tell(conversation, event).catch(() => undefined);
      }
      held.delete(goal);
    }
  }

  function schedule(): void {
    if (timer || stopped) return;
    timer = setTimeout(() => {
      void recheck().finally(() => {
        timer = undefined;
        if (held.size > 0) schedule();
      });
    }, RECHECK_MS);
  }

  const follower = follow(client, {
    lastEventId: conversations.lastEventId,
    ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
    async onEvent(event: BlitzEvent) {
      const goal = event.goal_id;
      if (goal && (NOTIFIED.has(event.kind) || ENDINGS.has(event.kind))) {
        const waiting = held.get(goal);
        const conversation = waiting ? undefined : conversations.of(goal);
        if (conversation) {
          await tell(conversation, event);
        } else if (waiting) {
          waiting.events.push(event);
        } else {
          held.set(goal, { since: Date.now(), events: [event] });
          schedule();
        }
      }
      conversations.handled(event.id);
    },
  });
  return {
    get lastEventId() {
      return follower.lastEventId;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      held.clear();
      await follower.stop();
    },
  };
}
