/**
 * Which conversation started which goal, and the last daemon event handled: what the
 * background service needs to tell the right conversation, and to resume after a restart
 * without repeating or missing an event. Kept in one JSON file in the plugin's state dir.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** Where a goal's news goes: the OpenClaw session that submitted it. */
export interface Conversation {
  sessionKey: string;
  agentId?: string;
  /** The channel route of that session when the goal was submitted (OpenClaw's DeliveryContext). */
  deliveryContext?: Record<string, unknown>;
}

interface Saved {
  lastEventId: number;
  goals: Record<string, Conversation>;
}

export class Conversations {
  #goals = new Map<string, Conversation>();
  #lastEventId = 0;
  #file: string | undefined;

  /** Load (and later save to) `file`; without one, everything stays in memory. */
  attach(file: string): void {
    this.#file = file;
    let saved: Partial<Saved> = {};
    try {
      saved = JSON.parse(readFileSync(file, "utf8")) as Partial<Saved>;
    } catch {
      // first start, or an unreadable file: start afresh
    }
    for (const [goal, conversation] of Object.entries(saved.goals ?? {})) {
      if (!this.#goals.has(goal)) this.#goals.set(goal, conversation);
    }
    this.#lastEventId = Math.max(this.#lastEventId, saved.lastEventId ?? 0);
  }

  get lastEventId(): number {
    return this.#lastEventId;
  }

  /** The conversation that started `goal`. */
  of(goal: string): Conversation | undefined {
    return this.#goals.get(goal);
  }

  remember(goal: string, conversation: Conversation): void {
    this.#goals.set(goal, conversation);
    this.#save();
  }

  /** Forget an ended goal's conversation (it hears nothing more). */
  forget(goal: string): void {
    if (this.#goals.delete(goal)) this.#save();
  }

  handled(eventId: number): void {
    if (eventId <= this.#lastEventId) return;
    this.#lastEventId = eventId;
    this.#save();
  }

  #save(): void {
    if (!this.#file) return;
    const saved: Saved = { lastEventId: this.#lastEventId, goals: Object.fromEntries(this.#goals) };
    mkdirSync(dirname(this.#file), { recursive: true });
    const temporary = `${this.#file}.tmp`;
    writeFileSync(temporary, JSON.stringify(saved), { mode: 0o600 });
    renameSync(temporary, this.#file);
  }
}
