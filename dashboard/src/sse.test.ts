import { describe, expect, it } from "vitest";
import { SseParser } from "./sse";

describe("SseParser", () => {
  it("joins data lines and keeps the event name and id", () => {
    const parser = new SseParser();
    const out = parser.feed("id: 7\nevent: task.started\ndata: {\"a\":\ndata: 1}\n\n");
    expect(out).toEqual([{ id: "7", event: "task.started", data: '{"a":\n1}' }]);
    expect(parser.lastId).toBe("7");
  });

  it("waits for the blank line across chunks and handles CRLF split in two", () => {
    const parser = new SseParser();
    expect(parser.feed("data: one\r")).toEqual([]);
    expect(parser.feed("\n\r")).toEqual([]);
    expect(parser.feed("\ndata: two\n")).toEqual([{ id: "", event: "message", data: "one" }]);
    expect(parser.feed("\n")).toEqual([{ id: "", event: "message", data: "two" }]);
  });

  it("ignores comments and keep-alives, reads retry", () => {
    const parser = new SseParser();
    expect(parser.feed(": ping\n\nretry: 2500\n\n")).toEqual([]);
    expect(parser.retry).toBe(2500);
  });

  it("keeps the last id for later events without one", () => {
    const parser = new SseParser();
    parser.feed("id: 3\ndata: x\n\n");
    expect(parser.feed("data: y\n\n")).toEqual([{ id: "3", event: "message", data: "y" }]);
  });
});
