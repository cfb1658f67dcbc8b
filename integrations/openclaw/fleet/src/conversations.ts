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

/**
 * OpenClaw calls a plugin's `register` more than once, each time in a module instance of its
 * own: the service that follows the daemon runs in one, the tools in another. So the registry
 * is shared through its file: `remember` (a tool) writes the goal there, `of` (the service)
 * reads the file again for a goal it does not know, and every save merges with what the file
 * holds instead of overwriting what the other instance wrote.
 */
export class Conversations {
  #goals = new Map<string, Conversation>();
  #forgotten = new Set<string>();
  #lastEventId = 0;
  #file: string | undefined;

  /** Load (and later save to) `file`; without one, everything stays in memory. */
  attach(file: string): void {
    this.#file = file;
    this.#load();
  }

  get lastEventId(): number {
    return this.#lastEventId;
  }

  /** The conversation that started `goal` (`reload`: read the file again for a goal not known). */
  of(goal: string, reload = true): Conversation | undefined {
    if (reload && !this.#goals.has(goal)) this.#load();
    return this.#goals.get(goal);
  }

  /** Read the file again: the goals another instance remembered since. */
  refresh(): void {
    this.#load();
  }

  remember(goal: string, conversation: Conversation): void {
    this.#forgotten.delete(goal);
    this.#goals.set(goal, conversation);
    this.#save();
  }

  /** Forget an ended goal's conversation (it hears nothing more). */
  forget(goal: string): void {
    this.#forgotten.add(goal);
    if (this.#goals.delete(goal)) this.#save();
  }

  handled(eventId: number): void {
    if (eventId <= this.#lastEventId) return;
    this.#lastEventId = eventId;
    this.#save();
  }

  /** Merge the file into memory: goals another instance remembered, the last event handled. */
  #load(): void {
    if (!this.#file) return;
    let saved: Partial<Saved> = {};
    try {
      saved = JSON.parse(readFileSync(this.#file, "utf8")) as Partial<Saved>;
    } catch {
      // first start, or an unreadable file: start afresh
    }
    for (const [goal, conversation] of Object.entries(saved.goals ?? {})) {
      if (!this.#goals.has(goal) && !this.#forgotten.has(goal)) this.#goals.set(goal, conversation);
    }
    this.#lastEventId = Math.max(this.#lastEventId, saved.lastEventId ?? 0);
  }

  #save(): void {
    if (!this.#file) return;
    this.#load();
    const saved: Saved = { lastEventId: this.#lastEventId, goals: Object.fromEntries(this.#goals) };
    mkdirSync(dirname(this.#file), { recursive: true });
    const temporary = `${this.#file}.tmp`;
    writeFileSync(temporary, JSON.stringify(saved), { mode: 0o600 });
    renameSync(temporary, this.#file);
  }
}
