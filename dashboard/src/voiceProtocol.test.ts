import { describe, expect, it } from "vitest";
import { parseServerMessage, voiceUrl } from "./voiceProtocol";

describe("the protocol", () => {
  it("reads the server's messages and refuses what it does not know", () => {
    expect(parseServerMessage('{"type":"say","id":3,"text":"ok","sample_rate":22050}')).toEqual({
      type: "say",
      id: 3,
      text: "ok",
      sample_rate: 22050,
    });
    expect(parseServerMessage('{"type":"event","kind":"goal.succeeded","text":"done","goal":"g"}')).toEqual({
      type: "event",
      kind: "goal.succeeded",
      text: "done",
    });
    expect(parseServerMessage('{"type":"error"}')).toEqual({ type: "error", message: "error" });
    expect(parseServerMessage("not json")).toBeNull();
    expect(parseServerMessage("[1]")).toBeNull();
    expect(parseServerMessage('{"type":"say","text":"no id"}')).toBeNull();
    expect(parseServerMessage('{"type":"dance"}')).toBeNull();
  });

  it("addresses the daemon the page came from, wss behind https", () => {
    expect(voiceUrl({ protocol: "http:", host: "127.0.0.1:8765" })).toBe("ws://127.0.0.1:8765/api/voice");
    expect(voiceUrl({ protocol: "https:", host: "blitz.example" })).toBe("wss://blitz.example/api/voice");
  });
});
