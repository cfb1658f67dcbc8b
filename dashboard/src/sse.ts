/**
 * Server-sent events over `fetch`, so the request can carry the `Authorization` header
 * (EventSource cannot). Reconnects with `Last-Event-ID` after a dropped stream, the way
 * EventSource does, and hands each complete event to `onEvent`.
 */

export interface SseMessage {
  id: string;
  event: string;
  data: string;
}

/** Splits a text stream into SSE messages; feed it chunks, it returns the messages completed. */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id = "";
  lastId = "";
  retry = 0;

  feed(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone "\r" at the end may be the first half of "\r\n": wait for more.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const message = this.line(line);
      if (message) out.push(message);
    }
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === "") {
      if (this.data.length === 0) {
        this.event = "";
        return null;
      }
      const message = { id: this.id, event: this.event || "message", data: this.data.join("\n") };
      this.lastId = this.id;
      this.data = [];
      this.event = "";
      return message;
    }
    if (line.startsWith(":")) return null; // a comment: keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) this.id = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
    return null;
  }
}

export interface StreamOptions {
  url: string;
  headers: Record<string, string>;
  lastId?: string;
  onEvent: (message: SseMessage) => void;
  onOpen?: () => void;
  /** Called with the response when the server refuses the stream (no reconnect then). */
  onRefused?: (response: Response) => void;
  onDrop?: () => void;
}

/** Follows the stream until `abort` is called; returns that abort function. */
export function openStream(options: StreamOptions): () => void {
  const controller = new AbortController();
  let lastId = options.lastId ?? "";
  let delay = 1000;

  const run = async (): Promise<void> => {
    while (!controller.signal.aborted) {
      const parser = new SseParser();
      parser.lastId = lastId;
      try {
        const headers: Record<string, string> = { Accept: "text/event-stream", ...options.headers };
        if (lastId) headers["Last-Event-ID"] = lastId;
        const response = await fetch(options.url, { headers, signal: controller.signal });
        if (!response.ok || !response.body) {
          if (response.status >= 400 && response.status < 500) {
            options.onRefused?.(response);
            return;
          }
          throw new Error(`stream answered ${response.status}`);
        }
        options.onOpen?.();
        delay = 1000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const message of parser.feed(value)) {
            if (message.id) lastId = message.id;
            options.onEvent(message);
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
        void error;
      }
      if (controller.signal.aborted) return;
      options.onDrop?.();
      if (parser.retry) delay = parser.retry;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  };
  void run();
  return () => controller.abort();
}
