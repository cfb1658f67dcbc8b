import { describe, expect, it } from "vitest";
import { LEAD, nextStart } from "./voiceAudio";

describe("nextStart", () => {
  it("queues a chunk right after the one before it", () => {
    expect(nextStart(10, 10.4)).toBe(10.4);
  });
  it("starts a chunk a little ahead when nothing is queued, or what was queued has played", () => {
    expect(nextStart(10, 0)).toBe(10 + LEAD);
    expect(nextStart(10, 9.5)).toBe(10 + LEAD);
  });
});
