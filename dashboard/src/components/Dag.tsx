/**
 * The goal's task graph, live: one node per task coloured by state, recovery tasks and the edges
 * recovery injected drawn apart, best-of-N candidates as small nodes inside their task.
 */
import {
  Background,
  Controls,
  Handle,
  MarkerType,
  Position,
  ReactFlow,
  ReactFlowProvider,
  useNodesState,
  useReactFlow,
} from "@xyflow/react";
import type { Edge, Node, NodeProps } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { memo, useEffect, useMemo, useRef } from "react";
import type { RefObject } from "react";
import {
  CANDIDATE_HEIGHT,
  CANDIDATE_WIDTH,
  candidatePosition,
  layoutGraph,
  recoveryOf,
} from "../layout";
import type { GraphCandidate } from "../layout";
import { clock, duration } from "../format";
import type { TaskTime } from "../timeline";
import type { Task } from "../types";
import { firstLine } from "../waiting";
import type { Wait } from "../waiting";

type TaskNodeData = {
  task: Task;
  selected: boolean;
  candidates: number;
  wait?: Wait;
  workerWait?: string;
  time?: TaskTime;
};
type CandidateNodeData = { candidate: GraphCandidate; selected: boolean; chosen: boolean };
type TaskNode = Node<TaskNodeData, "task">;
type CandidateNode = Node<CandidateNodeData, "candidate">;

export interface DagCandidate extends GraphCandidate {
  selected: boolean; // the candidate whose work was kept
}

const TaskNodeView = memo(function TaskNodeView({ data }: NodeProps<TaskNode>) {
  const { task, wait, workerWait, time } = data;
  const origin = recoveryOf(task.origin);
  const classes = ["dag-node", `state-${task.state}`];
  if (origin) classes.push("recovery");
  if (data.selected) classes.push("selected");
  if (wait || workerWait) classes.push("waiting");
  return (
    <div
      className={classes.join(" ")}
      data-testid={`dag-node-${task.id}`}
      data-state={task.state}
      data-origin={task.origin}
      data-waiting={wait ? "true" : undefined}
      data-worker-wait={workerWait ? "true" : undefined}
      title={
        wait
          ? wait.message || firstLine(wait.reason)
          : workerWait
            ? `waiting for a worker: ${workerWait}`
            : task.reason || task.title
      }
    >
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="dag-node-head">
        <span className="dag-node-id">{task.id}</span>
        <span className="dag-node-state">
          {time && (
            <span className="dag-node-time" data-testid={`dag-duration-${task.id}`} data-seconds={time.seconds}>
              {time.running ? "running " : ""}
              {duration(time.seconds)}
            </span>
          )}
          <span className="state-pill">{task.state}</span>
        </span>
      </div>
      <div className="dag-node-title">{task.title}</div>
      {wait && (
        <div className="dag-node-tag dag-node-waiting" data-testid={`dag-waiting-${task.id}`}>
          waiting until {clock(wait.until)} (provider)
        </div>
      )}
      {workerWait && !wait && (
        <div className="dag-node-tag dag-node-waiting" data-testid={`dag-worker-wait-${task.id}`}>
          waiting for a worker
        </div>
      )}
      {origin && <div className="dag-node-tag">↻ recovery of {origin}</div>}
      {!origin && task.attempts > 1 && data.candidates === 0 && (
        <div className="dag-node-tag muted">{task.attempts} attempts</div>
      )}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
});

const CandidateNodeView = memo(function CandidateNodeView({ data }: NodeProps<CandidateNode>) {
  const { candidate } = data;
  const classes = ["dag-candidate", `state-${candidate.state}`];
  if (data.chosen) classes.push("chosen");
  if (data.selected) classes.push("selected");
  return (
    <div
      className={classes.join(" ")}
      data-testid={`dag-candidate-${candidate.task}-${candidate.candidate}`}
      data-state={candidate.state}
      data-chosen={data.chosen ? "true" : "false"}
      title={`candidate ${candidate.candidate}: ${candidate.state}${data.chosen ? " (kept)" : ""}`}
    >
      #{candidate.candidate}
      {data.chosen && <span className="star">★</span>}
    </div>
  );
});

const nodeTypes = { task: TaskNodeView, candidate: CandidateNodeView };

const EDGE_STYLE = {
  plan: { stroke: "#8a94a6", strokeWidth: 1.5 },
  injected: { stroke: "#a970ff", strokeWidth: 2, strokeDasharray: "6 4" },
  recovery: { stroke: "#a970ff", strokeWidth: 1.5, strokeDasharray: "2 4" },
};

interface DagProps {
  /** Changes when the space around the graph changes (a side panel opened), to re-fit it. */
  frame?: string;
  tasks: Task[];
  candidates: DagCandidate[];
  selectedTask: string;
  selectedAttempt: string;
  onSelect: (task: string, attempt?: string) => void;
  /** Tasks waiting for their model provider, by id. */
  waits?: ReadonlyMap<string, Wait>;
  /** Tasks whose running attempt waits for a worker node, by id: why. */
  workerWaits?: ReadonlyMap<string, string>;
  /** How long each task ran (its attempts' wall time), by id. */
  times?: ReadonlyMap<string, TaskTime>;
}

export function Dag(props: DagProps) {
  return (
    <ReactFlowProvider>
      <DagFlow {...props} />
    </ReactFlowProvider>
  );
}

function DagFlow({
  tasks,
  candidates,
  selectedTask,
  selectedAttempt,
  onSelect,
  waits,
  workerWaits,
  times,
  frame = "",
}: DagProps) {
  // The layout depends only on the graph's shape, so state changes do not move nodes.
  const shape = tasks.map((t) => `${t.id}<${t.depends_on.join(",")}|${t.origin}`).join(";");
  const candidateShape = candidates.map((c) => `${c.task}#${c.candidate}`).join(";");
  const laid = useMemo(
    () => layoutGraph(tasks, candidates),
    [shape, candidateShape],
  );

  const byId = useMemo(() => new Map(tasks.map((t) => [t.id, t])), [tasks]);
  const stateOf = useMemo(() => new Map(candidates.map((c) => [c.id, c])), [candidates]);

  const nodes = useMemo(() => {
    const out: (TaskNode | CandidateNode)[] = [];
    for (const n of laid.nodes) {
      const task = byId.get(n.id);
      if (!task) continue;
      out.push({
        id: n.id,
        type: "task",
        position: { x: n.x, y: n.y },
        width: n.width,
        height: n.height,
        data: {
          task,
          selected: task.id === selectedTask,
          candidates: n.candidates.length,
          wait: waits?.get(task.id),
          workerWait: workerWaits?.get(task.id),
          time: times?.get(task.id),
        },
        draggable: false,
        connectable: false,
      });
      n.candidates.forEach((c, i) => {
        const live = stateOf.get(c.id) ?? (c as DagCandidate);
        out.push({
          id: `${n.id}::${c.id}`,
          type: "candidate",
          parentId: n.id,
          extent: "parent",
          position: candidatePosition(i),
          width: CANDIDATE_WIDTH,
          height: CANDIDATE_HEIGHT,
          data: {
            candidate: { ...c, state: live.state },
            chosen: (live as DagCandidate).selected ?? false,
            selected: c.id === selectedAttempt,
          },
          draggable: false,
          connectable: false,
        });
      });
    }
    return out;
  }, [laid, byId, stateOf, selectedTask, selectedAttempt, waits, workerWaits, times]);

  // Controlled nodes that keep what React Flow measured: a node object without `measured`
  // loses its handle positions, and its edges vanish until something resizes it.
  const [flowNodes, setFlowNodes, onNodesChange] = useNodesState<TaskNode | CandidateNode>([]);
  useEffect(() => {
    setFlowNodes((previous) => {
      const old = new Map(previous.map((n) => [n.id, n]));
      return nodes.map((n) => {
        const measured = old.get(n.id)?.measured;
        return measured ? { ...n, measured } : n;
      });
    });
  }, [nodes, setFlowNodes]);

  const edges = useMemo<Edge[]>(
    () =>
      laid.edges.map((e) => {
        const target = byId.get(e.target);
        const style = EDGE_STYLE[e.kind];
        return {
          id: e.id,
          source: e.source,
          target: e.target,
          type: e.kind === "plan" ? "default" : "smoothstep",
          animated: target?.state === "running" && e.kind !== "recovery",
          style,
          className: `edge-${e.kind}`,
          label: e.kind === "recovery" ? "recovers" : undefined,
          labelStyle: { fill: "#a970ff", fontSize: 10 },
          labelBgStyle: { fill: "var(--panel)" },
          markerEnd: { type: MarkerType.ArrowClosed, color: style.stroke, width: 16, height: 16 },
          data: { kind: e.kind },
        };
      }),
    [laid, byId],
  );

  const box = useRef<HTMLDivElement>(null);
  return (
    <div className="dag-wrap">
      <Legend />
      <div className="dag" data-testid="dag" ref={box}>
      <ReactFlow
        nodes={flowNodes}
        onNodesChange={onNodesChange}
        edges={edges}
        nodeTypes={nodeTypes}
        nodesDraggable={false}
        nodesConnectable={false}
        edgesFocusable={false}
        fitView
        colorMode="dark"
        fitViewOptions={{ padding: 0.15, maxZoom: 1.2 }}
        minZoom={0.1}
        onNodeClick={(_, node) => {
          if (node.type === "candidate") {
            const data = node.data as CandidateNodeData;
            onSelect(data.candidate.task, data.candidate.id);
          } else {
            onSelect(node.id);
          }
        }}
      >
        <Background gap={20} size={1} color="var(--grid)" />
        <Controls showInteractive={false} />
        <FitOnChange signature={`${shape}/${candidateShape}/${frame}`} box={box} />
      </ReactFlow>
      </div>
    </div>
  );
}

/** Re-fits the view when the graph's shape changes (tasks injected, candidates started) and
 * when its box changes size (the task panel opened or closed, the split moved, the window). */
function FitOnChange({ signature, box }: { signature: string; box: RefObject<HTMLDivElement | null> }) {
  const flow = useReactFlow();
  useEffect(() => {
    const id = requestAnimationFrame(() => void flow.fitView({ padding: 0.15, maxZoom: 1.2 }));
    return () => cancelAnimationFrame(id);
  }, [signature, flow]);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    let timer = 0;
    let size = "";
    const observer = new ResizeObserver(([entry]) => {
      const next = `${Math.round(entry.contentRect.width)}x${Math.round(entry.contentRect.height)}`;
      if (next === size) return;
      size = next;
      // After React Flow has seen the new size too (its own observer), and once per drag pause.
      window.clearTimeout(timer);
      timer = window.setTimeout(() => void flow.fitView({ padding: 0.15, maxZoom: 1.2 }), 60);
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      window.clearTimeout(timer);
    };
  }, [box, flow]);
  return null;
}

function Legend() {
  const states = ["pending", "ready", "running", "succeeded", "failed", "crashed", "skipped", "replaced", "cancelled"];
  return (
    <div className="dag-legend" data-testid="dag-legend">
      {states.map((s) => (
        <span key={s} className={`legend-item state-${s}`}>
          <span className="swatch" />
          {s}
        </span>
      ))}
      <span className="legend-item">
        <span className="edge-swatch injected" /> injected
      </span>
      <span className="legend-item">
        <span className="edge-swatch recovery" /> recovery of
      </span>
    </div>
  );
}
