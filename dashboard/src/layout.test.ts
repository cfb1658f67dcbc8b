import { describe, expect, it } from "vitest";
import { layoutGraph, nodeHeight, NODE_HEIGHT } from "./layout";

const tasks = [
  { id: "a", state: "succeeded", origin: "plan", depends_on: [] },
  { id: "b", state: "failed", origin: "plan", depends_on: ["a"] },
  { id: "fix", state: "running", origin: "recovery:b", depends_on: ["a"] },
  { id: "c", state: "pending", origin: "plan", depends_on: ["fix", "missing"] },
];

describe("layoutGraph", () => {
  it("places dependencies before their dependents, left to right", () => {
    const { nodes } = layoutGraph(tasks);
    const x = Object.fromEntries(nodes.map((n) => [n.id, n.x]));
    expect(x.a).toBeLessThan(x.b);
    expect(x.fix).toBeLessThan(x.c);
  });

  it("marks injected and recovery edges, drops unknown dependencies", () => {
    const { edges, nodes } = layoutGraph(tasks);
    const kinds = Object.fromEntries(edges.map((e) => [e.id, e.kind]));
    expect(kinds).toEqual({
      "a->b": "plan",
      "a->fix": "injected",
      "b~>fix": "recovery",
      "fix->c": "injected",
    });
    expect(nodes.find((n) => n.id === "fix")?.recovery).toBe(true);
  });

  it("draws no recovery link beside the edge of an inserted task", () => {
    const { edges } = layoutGraph([
      { id: "b", state: "ready", origin: "plan", depends_on: ["prep"] },
      { id: "prep", state: "succeeded", origin: "recovery:b", depends_on: [] },
    ]);
    expect(edges.map((e) => [e.id, e.kind])).toEqual([["prep->b", "injected"]]);
  });

  it("groups candidates under their task and grows the node for them", () => {
    const { nodes } = layoutGraph(tasks.slice(0, 1), [
      { id: "x2", task: "a", candidate: 2, state: "failed" },
      { id: "x1", task: "a", candidate: 1, state: "succeeded" },
      { id: "x0", task: "a", candidate: 0, state: "succeeded" },
    ]);
    expect(nodes[0].candidates.map((c) => c.id)).toEqual(["x1", "x2"]);
    expect(nodes[0].height).toBe(nodeHeight(2));
    expect(nodes[0].height).toBeGreaterThan(NODE_HEIGHT);
  });
});
