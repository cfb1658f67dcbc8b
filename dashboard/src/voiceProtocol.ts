/**
 * The messages of the voice session's WebSocket (`GET /api/voice`; docs/api.md): what the
 * browser sends, what the daemon answers, read strictly (a frame this client does not know is
 * dropped, never half-read).
 */

export type SayId = string | number;

export type ServerMessage =
  | { type: "ready"; speech: { format: string; sample_rate: number } }
  | { type: "heard"; text: string }
  | { type: "say"; id: SayId; text: string; sample_rate: number }
  | { type: "said"; id: SayId }
  | { type: "confirm"; text: string }
  | { type: "stopped"; id: SayId }
  | { type: "error"; message: string }
  | { type: "event"; kind: string; text: string };

/** How an utterance ends: where the daemon's VAD hears silence (hands-free), or only at `end`
 * (push-to-talk: a pause while the button is held stays part of it). */
export type Endpoint = "vad" | "client";

export type ClientMessage =
  | { type: "hello"; format: "pcm16"; sample_rate: number; endpoint: Endpoint }
  | { type: "endpoint"; endpoint: Endpoint }
  | { type: "end" }
  | { type: "text"; text: string }
  | { type: "stop" };

/** The close code of a socket the daemon refused for want of a valid token. */
export const POLICY_VIOLATION = 1008;

/** Close codes that say trying again will not help (docs/api.md): an unknown message (1003),
 * a field that does not fit (1007), no valid token (1008), a frame or an utterance too big
 * (1009), the daemon unable to hold a session (1011, the voice extra missing). After these the
 * session stops until the person reconnects by hand; after any other (1006 the network, 1001
 * the daemon restarting) it reconnects by itself. */
export const FINAL_CLOSES: readonly number[] = [1003, 1007, POLICY_VIOLATION, 1009, 1011];

const str = (v: unknown): v is string => typeof v === "string";
const id = (v: unknown): v is SayId => typeof v === "string" || typeof v === "number";

/** A server text frame as a message, or null when it is not one this client knows. */
export function parseServerMessage(text: string): ServerMessage | null {
  let m: Record<string, unknown>;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
    m = value as Record<string, unknown>;
  } catch {
    return null;
  }
  switch (m.type) {
    case "ready": {
      const speech = (m.speech ?? {}) as Record<string, unknown>;
      const rate = typeof speech.sample_rate === "number" ? speech.sample_rate : 0;
      return { type: "ready", speech: { format: str(speech.format) ? speech.format : "", sample_rate: rate } };
    }
    case "heard":
    case "confirm":
      return str(m.text) ? { type: m.type, text: m.text } : null;
    case "say":
      return id(m.id) && str(m.text) && typeof m.sample_rate === "number"
        ? { type: "say", id: m.id, text: m.text, sample_rate: m.sample_rate }
        : null;
    case "said":
    case "stopped":
      return id(m.id) ? { type: m.type, id: m.id } : null;
    case "error":
      return { type: "error", message: str(m.message) ? m.message : "error" };
    case "event":
      return str(m.text) ? { type: "event", kind: str(m.kind) ? m.kind : "", text: m.text } : null;
    default:
      return null;
  }
}

/** The WebSocket address of the voice session on the page's own daemon. */
export function voiceUrl(location: { protocol: string; host: string }): string {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/voice`;
}
