/**
 * Following a daemon's event stream (`GET /api/events`, server-sent events) without missing or
 * repeating an event: every (re)connection sends `Last-Event-ID`, the id of the last event
 * handled, so the daemon replays what came after it (docs/api.md, "The event stream").
 */
import type { BlitzClient } from "./client.js";
import { BlitzApiError, fromResponse, unreachable } from "./errors.js";
import type { BlitzEvent } from "./types.js";

export interface FollowOptions {
  /** Only this goal's events. */
  goal?: string;
  /** Resume after this event id (0 or absent: the whole log is replayed first). */
  lastEventId?: number;
  /** Called once per event, in order; the next waits for it. An event counts as handled (its
   * id is resumed after) once this resolves. */
  onEvent(event: BlitzEvent): void | Promise<void>;
  /** Called when a connection fails or drops; the follower reconnects after `retryMs`. */
  onError?(error: BlitzApiError): void;
  /** Called on every successful (re)connection. */
  onConnect?(): void;
  /** Milliseconds between reconnection attempts (default 1000, doubled up to `maxRetryMs`). */
  retryMs?: number;
  maxRetryMs?: number;
}

/** A running follower. */
export interface Follower {
  /** The id of the last event handled (what a reconnection resumes after). */
  readonly lastEventId: number;
  /** Stop following; resolves once the stream is closed. */
  stop(): Promise<void>;
}

/** Follow the event stream until stopped, reconnecting with `Last-Event-ID` whenever it drops. */
export function follow(client: BlitzClient, options: FollowOptions): Follower {
  const controller = new AbortController();
  let lastEventId = options.lastEventId ?? 0;
  const base = options.retryMs ?? 1000;
  const max = options.maxRetryMs ?? 30_000;

  async function connect(): Promise<void> {
    const query = options.goal ? `?goal=${encodeURIComponent(options.goal)}` : "";
    const headers: Record<string, string> = { ...client.authHeaders(), Accept: "text/event-stream" };
    if (lastEventId > 0) headers["Last-Event-ID"] = String(lastEventId);
    let response: Response;
    try {
      response = await fetch(`${client.url}/api/events${query}`, {
        headers,
        signal: controller.signal,
      });
    } catch (error) {
      throw unreachable(client.url, error);
    }
    if (!response.ok || !response.body) {
      const text = await response.text().catch(() => "");
      throw fromResponse(response.status, parse(text), client.url);
    }
    options.onConnect?.();
    for await (const message of messages(response.body)) {
      if (!message.data) continue;
      const event = JSON.parse(message.data) as BlitzEvent;
      try {
        await options.onEvent(event);
      } catch (error) {
        // Not handled: the reconnection replays it (the next try may succeed).
        const why = error instanceof Error ? error.message : String(error);
        throw new BlitzApiError("failed", `Handling event ${event.id} (${event.kind}) failed: ${why}`);
      }
      lastEventId = event.id;
    }
  }

  // A function, not the property: the signal changes while the loop awaits.
  const stopped = (): boolean => controller.signal.aborted;

  async function loop(): Promise<void> {
    let wait = base;
    while (!stopped()) {
      const before = lastEventId;
      try {
        await connect();
        if (stopped()) return;
        throw new BlitzApiError(
          "unreachable",
          `The blitz daemon at ${client.url} closed the event stream.`,
        );
      } catch (error) {
        if (stopped()) return;
        const failure =
          error instanceof BlitzApiError ? error : unreachable(client.url, error);
        options.onError?.(failure);
      }
      if (lastEventId > before) wait = base; // it got somewhere: start backing off afresh
      await sleep(wait, controller.signal);
      wait = Math.min(wait * 2, max);
    }
  }

  const running = loop();
  return {
    get lastEventId() {
      return lastEventId;
    },
    async stop() {
      controller.abort();
      await running;
    },
  };
}

interface Message {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

/** The messages of a server-sent event stream (the WHATWG parsing rules, minus `retry:`). */
export async function* messages(body: ReadableStream<Uint8Array>): AsyncGenerator<Message> {
  const decoder = new TextDecoderStream();
  let buffer = "";
  let id: string | undefined;
  let event: string | undefined;
  let data: string[] = [];
  for await (const chunk of body.pipeThrough(decoder)) {
    buffer += chunk;
    let end: number;
    while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
      if (line === "") {
        if (data.length > 0) yield { id, event, data: data.join("\n") };
        event = undefined;
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue; // a comment (the daemon's keep-alive pings)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "event") event = value;
      else if (field === "id") id = value;
    }
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 500) };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
