/**
 * The goal's task graph as positioned nodes and styled edges, laid out with dagre.
 *
 * Pure: the Dag component turns the result into React Flow nodes. Recovery tasks (origin
 * "recovery:<task>") and the edges recovery injected are marked so they can be drawn apart;
 * best-of-N candidates become small child nodes inside their task's node.
 */
import dagre from "@dagrejs/dagre";

export interface GraphTask {
  id: string;
  state: string;
  origin: string;
  depends_on: string[];
}

export interface GraphCandidate {
  task: string;
  candidate: number;
  state: string;
  id: string;
}

export type EdgeKind = "plan" | "injected" | "recovery";

export interface LaidNode {
  id: string;
  x: number;
  y: number;
  width: number;
  height: number;
  recovery: boolean;
  candidates: GraphCandidate[];
}

export interface LaidEdge {
  id: string;
  source: string;
  target: string;
  kind: EdgeKind;
}

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 64;
export const CANDIDATE_WIDTH = 58;
export const CANDIDATE_HEIGHT = 26;
export const CANDIDATE_GAP = 8;
const CANDIDATE_ROW = CANDIDATE_HEIGHT + 12;

export function recoveryOf(origin: string): string | null {
  return origin.startsWith("recovery:") ? origin.slice("recovery:".length) : null;
}

/** How many candidate chips fit in one row of a task node. */
export const CANDIDATES_PER_ROW = Math.floor(
  (NODE_WIDTH - CANDIDATE_GAP) / (CANDIDATE_WIDTH + CANDIDATE_GAP),
);

export function nodeHeight(candidates: number): number {
  if (candidates === 0) return NODE_HEIGHT;
  return NODE_HEIGHT + Math.ceil(candidates / CANDIDATES_PER_ROW) * CANDIDATE_ROW;
}

/** Position of candidate `index` (0-based) relative to its task node's top-left corner. */
export function candidatePosition(index: number): { x: number; y: number } {
  const row = Math.floor(index / CANDIDATES_PER_ROW);
  const col = index % CANDIDATES_PER_ROW;
  return {
    x: CANDIDATE_GAP + col * (CANDIDATE_WIDTH + CANDIDATE_GAP),
    y: NODE_HEIGHT - 4 + row * CANDIDATE_ROW,
  };
}

export function layoutGraph(
  tasks: GraphTask[],
  candidates: GraphCandidate[] = [],
  direction: "LR" | "TB" = "LR",
): { nodes: LaidNode[]; edges: LaidEdge[] } {
  const known = new Set(tasks.map((t) => t.id));
  const byTask = new Map<string, GraphCandidate[]>();
  for (const c of candidates) {
    if (!known.has(c.task) || c.candidate <= 0) continue;
    const list = byTask.get(c.task) ?? [];
    list.push(c);
    byTask.set(c.task, list);
  }
  for (const list of byTask.values()) list.sort((a, b) => a.candidate - b.candidate);

  const byId = new Map(tasks.map((t) => [t.id, t]));
  const edges: LaidEdge[] = [];
  const recoveryTask = new Set(tasks.filter((t) => recoveryOf(t.origin)).map((t) => t.id));
  for (const task of tasks) {
    for (const dep of task.depends_on) {
      if (!known.has(dep)) continue;
      const injected = recoveryTask.has(task.id) || recoveryTask.has(dep);
      edges.push({
        id: `${dep}->${task.id}`,
        source: dep,
        target: task.id,
        kind: injected ? "injected" : "plan",
      });
    }
    // A dotted link from the failed task to the work recovery made for it, unless an edge
    // already joins them (an inserted task that the failed one now depends on).
    const origin = recoveryOf(task.origin);
    const joined = task.depends_on.includes(origin ?? "") || byId.get(origin ?? "")?.depends_on.includes(task.id);
    if (origin && known.has(origin) && !joined) {
      edges.push({ id: `${origin}~>${task.id}`, source: origin, target: task.id, kind: "recovery" });
    }
  }

  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: direction, nodesep: 28, ranksep: 70, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const task of tasks) {
    g.setNode(task.id, { width: NODE_WIDTH, height: nodeHeight(byTask.get(task.id)?.length ?? 0) });
  }
  for (const edge of edges) {
    // The recovery link says where a task came from; it should not pull the layout around.
    if (edge.kind !== "recovery") g.setEdge(edge.source, edge.target);
  }
  dagre.layout(g);

  const nodes = tasks.map((task) => {
    const placed = g.node(task.id);
    const height = nodeHeight(byTask.get(task.id)?.length ?? 0);
    return {
      id: task.id,
      // dagre gives centres; React Flow wants top-left corners.
      x: placed.x - NODE_WIDTH / 2,
      y: placed.y - height / 2,
      width: NODE_WIDTH,
      height,
      recovery: recoveryTask.has(task.id),
      candidates: byTask.get(task.id) ?? [],
    };
  });
  return { nodes, edges };
}
