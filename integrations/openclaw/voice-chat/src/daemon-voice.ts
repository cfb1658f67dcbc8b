/**
 * The way to blitz's voice session (`GET /api/voice`, docs/api.md "Voice") that both of the
 * plugin's voice paths share: the route's WebSocket bridge (bridge.ts) and the realtime voice
 * provider of OpenClaw's talk mode (realtime.ts). One place for the daemon's URL, its token
 * (sent only as `Authorization: Bearer`, never in a message), the hello, the frame limit and
 * the words of a failure.
 */

import { WebSocket } from "openclaw/plugin-sdk/websocket-runtime";
import type { RawData } from "ws";

/** Where the daemon is and its API token (`daemonUrl`, `daemonToken`). */
export interface Daemon {
  readonly url: string;
  readonly token: string;
}

/** `ws://host:port/api/voice` of a daemon at `http://host:port`. */
export function voiceUrl(daemonUrl: string): string {
  const url = new URL(daemonUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.pathname = url.pathname.replace(/\/+$/, "") + "/api/voice";
  url.search = "";
  return url.toString();
}

/** The socket to the daemon's voice session, the token in its upgrade request's header. */
export function openVoiceSession(daemon: Daemon, connectTimeoutMs: number): WebSocket {
  const headers: Record<string, string> = daemon.token ? { Authorization: `Bearer ${daemon.token}` } : {};
  return new WebSocket(voiceUrl(daemon.url), { headers, handshakeTimeout: connectTimeoutMs });
}

/** The hello for pcm16 mono audio at `sampleRate` (the daemon's default is 16 kHz). */
export function pcmHello(sampleRate: number): string {
  return JSON.stringify({ type: "hello", format: "pcm16", sample_rate: sampleRate });
}

/** What went wrong on the way to the daemon, in words that say which (never the token). */
export const failure = {
  unreachable: (target: string, error: Error & { code?: string }): string =>
    `cannot reach the blitz daemon at ${target}: ${error.code ?? error.message}`,
  refused: (target: string, status: number | undefined): string =>
    `the blitz daemon at ${target} refused the voice session (HTTP ${status ?? 0})`,
  dropped: (target: string): string => `blitz's voice session at ${target} dropped (the daemon went away)`,
  unset: "voice-chat: daemonUrl is not set in the plugin's config",
} as const;

/** A frame's payload as one Buffer (ws hands it over as a Buffer, an ArrayBuffer or pieces). */
export function bytes(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}
