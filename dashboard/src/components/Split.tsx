/**
 * The goal page's work area: the graph, and beside it the open task's panel at the full height
 * of the window, with a handle between them to give either more room (dragged, or the arrow
 * keys; the width is remembered). ``wide`` gives the panel the whole width.
 */
import { useCallback, useRef, useState } from "react";
import type { CSSProperties, KeyboardEvent, PointerEvent, ReactNode } from "react";

const KEY = "blitz.panelWidth";
const MIN_PANEL = 360;
const MIN_GRAPH = 280;
const STEP = 40;

function initialWidth(): number {
  const stored = Number(localStorage.getItem(KEY));
  if (stored >= MIN_PANEL) return stored;
  return Math.max(560, Math.round(window.innerWidth * 0.45));
}

interface Props {
  graph: ReactNode;
  /** The task panel, or null when no task is open. */
  panel: ReactNode | null;
  wide: boolean;
}

export function Split({ graph, panel, wide }: Props) {
  const [width, setWidth] = useState(initialWidth);
  const root = useRef<HTMLDivElement>(null);

  const resize = useCallback((wanted: number) => {
    const total = root.current?.getBoundingClientRect().width ?? window.innerWidth;
    const next = Math.round(Math.min(Math.max(wanted, MIN_PANEL), Math.max(MIN_PANEL, total - MIN_GRAPH)));
    setWidth(next);
    localStorage.setItem(KEY, String(next));
  }, []);

  const drag = (start: PointerEvent<HTMLDivElement>) => {
    const handle = start.currentTarget;
    handle.setPointerCapture(start.pointerId);
    const right = root.current?.getBoundingClientRect().right ?? window.innerWidth;
    const move = (e: globalThis.PointerEvent) => resize(right - e.clientX);
    const stop = () => {
      handle.removeEventListener("pointermove", move);
      handle.removeEventListener("pointerup", stop);
      handle.removeEventListener("pointercancel", stop);
      document.body.classList.remove("resizing");
    };
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", stop);
    handle.addEventListener("pointercancel", stop);
    document.body.classList.add("resizing");
    start.preventDefault();
  };

  const keys = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key === "ArrowLeft") resize(width + STEP);
    else if (e.key === "ArrowRight") resize(width - STEP);
    else return;
    e.preventDefault();
  };

  if (!panel) return <div className="work">{graph}</div>;
  const style = { "--panel-width": `${width}px` } as CSSProperties;
  return (
    <div ref={root} className={`work with-panel ${wide ? "panel-wide" : ""}`} style={style} data-testid="work-split">
      {!wide && graph}
      {!wide && (
        <div
          className="splitter"
          role="separator"
          aria-orientation="vertical"
          aria-label="resize the task panel"
          aria-valuenow={width}
          tabIndex={0}
          onPointerDown={drag}
          onKeyDown={keys}
          data-testid="panel-splitter"
        />
      )}
      {panel}
    </div>
  );
}
