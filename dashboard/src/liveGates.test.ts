import { describe, expect, it } from "vitest";
import { applyUpdate } from "./liveGates";

const update = (gate: string, text: string, ended = false, skipped = 0) => ({ gate, command: `run ${gate}`, text, ended, skipped });

describe("applyUpdate", () => {
  it("appends a running gate's output and starts a gate again once it ended", () => {
    let gates = applyUpdate([], update("test", "one\n"));
    gates = applyUpdate(gates, update("lint", "fine\n"));
    gates = applyUpdate(gates, update("test", "two\n", true));
    gates = applyUpdate(gates, update("test", "", false, 10));
    expect(gates.map((g) => [g.name, g.text, g.ended])).toEqual([
      ["test", "one\ntwo\n", true],
      ["lint", "fine\n", false],
      ["test", "[… 10 bytes left out …]\n", false],
    ]);
  });
});
