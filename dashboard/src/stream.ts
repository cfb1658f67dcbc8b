/**
 * The live event stream as a React hook: one `/api/events` connection per view, events handed
 * over in batches (a replay of a long log arrives all at once), and a callback on every
 * (re)connection so views re-read what they show after a gap.
 */
import { useEffect, useRef, useState } from "react";
import { authHeaders, reportUnauthorized } from "./api";
import { openStream } from "./sse";
import type { BlitzEvent } from "./types";

/** Larger than any event id: the stream then starts with the next event written (docs/api.md). */
const FROM_NOW = String(Number.MAX_SAFE_INTEGER);

export type StreamStatus = "connecting" | "live" | "reconnecting" | "refused";

export interface StreamOptions {
  /** Follow one goal (its whole log is replayed first) or, when empty, every event from now. */
  goal?: string;
  onEvents: (events: BlitzEvent[]) => void;
  onOpen?: () => void;
  onRefused?: (response: Response) => void;
}

export function useEventStream(options: StreamOptions): StreamStatus {
  const [status, setStatus] = useState<StreamStatus>("connecting");
  const handlers = useRef(options);
  handlers.current = options;
  const goal = options.goal ?? "";

  useEffect(() => {
    let pending: BlitzEvent[] = [];
    let timer: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      timer = null;
      const batch = pending;
      pending = [];
      if (batch.length) handlers.current.onEvents(batch);
    };
    const url = goal ? `/api/events?goal=${encodeURIComponent(goal)}` : "/api/events";
    setStatus("connecting");
    const stop = openStream({
      url,
      headers: authHeaders(),
      lastId: goal ? "" : FROM_NOW,
      onOpen: () => {
        setStatus("live");
        handlers.current.onOpen?.();
      },
      onDrop: () => setStatus("reconnecting"),
      onRefused: (response) => {
        setStatus("refused");
        if (response.status === 401) void reportUnauthorized(response);
        else handlers.current.onRefused?.(response);
      },
      onEvent: (message) => {
        let event: BlitzEvent;
        try {
          event = JSON.parse(message.data) as BlitzEvent;
        } catch {
          return;
        }
        pending.push(event);
        if (timer === null) timer = setTimeout(flush, 40);
      },
    });
    return () => {
      stop();
      if (timer !== null) clearTimeout(timer);
    };
  }, [goal]);

  return status;
}
