/**
 * The WebSocket bridge: a client that reaches the gateway's route (behind the gateway's own
 * auth) is joined to a session on blitz's `/api/voice` (behind the daemon's token, which stays
 * here). Frames pass both ways unchanged, text as text and audio as binary; a close on either
 * side closes the other with the same code and reason.
 *
 * One thing is added: the audio format. OpenClaw's talk audio is pcm16 mono at 24 kHz, while
 * `/api/voice` assumes 16 kHz when no `hello` comes; so unless the client's first frame is a
 * `hello` of its own, the bridge sends `{"type":"hello","format":"pcm16","sample_rate":R}`
 * (R = the `sampleRate` setting, 24000 by default) before anything else.
 *
 * The daemon down, refusing the upgrade, or gone mid-session closes the client with 1014 (bad
 * gateway) and a reason that says which; a missing `daemonUrl` with 1011. No reason ever
 * carries the token (it is sent only as `Authorization: Bearer`).
 */

import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";

import { WebSocket, WebSocketServer } from "openclaw/plugin-sdk/websocket-runtime";
import type { RawData } from "ws";

import type { Daemon } from "./daemon-voice.js";
import { bytes, failure, openVoiceSession, pcmHello, voiceUrl } from "./daemon-voice.js";

export { bytes, voiceUrl } from "./daemon-voice.js";

/** Close codes this bridge sends of its own (the daemon's own pass through). */
export const BAD_GATEWAY = 1014;
export const INTERNAL = 1011;
/** A WebSocket close reason is at most 123 bytes of UTF-8. */
const REASON_BYTES = 123;
/** Milliseconds to wait for the client's first frame (its `hello`, maybe) once the daemon has
 * answered, before sending the default hello: well under the daemon's own one second. */
export const HELLO_WAIT_MS = 250;
/** Bytes a client frame may have; the daemon refuses more than 64 KiB itself (1009). */
const MAX_PAYLOAD = 1024 * 1024;
/** Bytes of client frames held while the daemon has not answered yet (2 MiB: the daemon's own
 * limit for one WebM utterance); more closes the client with 1009. */
export const MAX_WAITING = 2 * 1024 * 1024;
const TOO_BIG = 1009;

export interface BridgeSettings {
  readonly daemon: Daemon | null;
  readonly sampleRate: number;
  /** Milliseconds the daemon gets to answer the upgrade. */
  readonly connectTimeoutMs: number;
  readonly log?: (message: string) => void;
}

export interface VoiceBridge {
  /** The route's `handleUpgrade`: takes every upgrade on the route. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Closes every bridged session (the plugin is stopping). */
  close(): void;
}

export function createVoiceBridge(settings: BridgeSettings): VoiceBridge {
  const server = new WebSocketServer({ noServer: true, maxPayload: MAX_PAYLOAD });
  const open = new Set<WebSocket>();
  return {
    handleUpgrade(req, socket, head) {
      server.handleUpgrade(req, socket, head, (client) => {
        open.add(client);
        client.once("close", () => open.delete(client));
        join(client, settings);
      });
      return true;
    },
    close() {
      for (const client of open) client.close(1001, "the voice-chat plugin is stopping");
      server.close();
    },
  };
}

interface Frame {
  readonly data: RawData;
  readonly isBinary: boolean;
}

function join(client: WebSocket, settings: BridgeSettings): void {
  const daemon = settings.daemon;
  if (!daemon) {
    client.close(INTERNAL, failure.unset);
    return;
  }
  const target = voiceUrl(daemon.url);
  const upstream = openVoiceSession(daemon, settings.connectTimeoutMs);
  const waiting: Frame[] = [];
  let waitingBytes = 0;
  let helloSent = false;
  let helloTimer: NodeJS.Timeout | undefined;
  let closing = false;

  const finish = (code: number, reason: string): void => {
    if (closing) return;
    closing = true;
    clearTimeout(helloTimer);
    settings.log?.(`voice-chat: bridge to ${target} closed (${code}${reason ? `: ${reason}` : ""})`);
    if (client.readyState === WebSocket.OPEN || client.readyState === WebSocket.CONNECTING) {
      client.close(code, clip(reason));
    }
    if (upstream.readyState === WebSocket.OPEN) upstream.close(code === BAD_GATEWAY ? 1000 : code, clip(reason));
    else if (upstream.readyState === WebSocket.CONNECTING) upstream.terminate();
  };

  // The first frame the daemon sees is a hello: the client's own, or the default one.
  const sendHello = (): void => {
    if (helloSent || upstream.readyState !== WebSocket.OPEN) return;
    helloSent = true;
    clearTimeout(helloTimer);
    const first = waiting[0];
    if (first === undefined || !isHello(first)) {
      upstream.send(pcmHello(settings.sampleRate));
    }
    for (const frame of waiting.splice(0)) upstream.send(frame.data, { binary: frame.isBinary });
  };

  client.on("message", (data, isBinary) => {
    if (helloSent && upstream.readyState === WebSocket.OPEN) {
      upstream.send(data, { binary: isBinary });
      return;
    }
    waiting.push({ data, isBinary });
    waitingBytes += bytes(data).length;
    if (waitingBytes > MAX_WAITING) {
      finish(TOO_BIG, `voice-chat: more than ${MAX_WAITING} bytes sent before the blitz daemon answered`);
      return;
    }
    sendHello();
  });
  client.on("close", (code, reason) => {
    // What the client said goes on to the daemon (1005: it gave no code).
    const said = reason.toString();
    if (closing) return;
    closing = true;
    clearTimeout(helloTimer);
    if (upstream.readyState === WebSocket.OPEN) upstream.close(sendable(code) ? code : 1000, clip(said));
    else upstream.terminate();
  });
  client.on("error", () => { finish(INTERNAL, "voice-chat: the client's socket failed"); });

  upstream.on("open", () => {
    if (waiting.length > 0) sendHello();
    else helloTimer = setTimeout(sendHello, HELLO_WAIT_MS);
  });
  upstream.on("message", (data, isBinary) => {
    if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
  });
  upstream.on("close", (code, reason) => {
    if (code === 1006) {
      finish(BAD_GATEWAY, failure.dropped(target));
    } else {
      finish(sendable(code) ? code : 1000, reason.toString());
    }
  });
  upstream.on("unexpected-response", (request, response) => {
    request.destroy();
    finish(BAD_GATEWAY, failure.refused(target, response.statusCode));
  });
  upstream.on("error", (error: Error & { code?: string }) => {
    finish(BAD_GATEWAY, failure.unreachable(target, error));
  });
}

function isHello(frame: Frame): boolean {
  if (frame.isBinary) return false;
  try {
    const parsed: unknown = JSON.parse(bytes(frame.data).toString("utf8"));
    return typeof parsed === "object" && parsed !== null && (parsed as { type?: unknown }).type === "hello";
  } catch {
    return false;
  }
}

/** Codes a peer may send in a close frame (1005, 1006 and 1015 are only ever reported). */
function sendable(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

function clip(reason: string): string {
  const bytes = Buffer.from(reason, "utf8");
  if (bytes.length <= REASON_BYTES) return reason;
  // Cut on a character boundary: the decoder drops a partial last character.
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes.subarray(0, REASON_BYTES - 3)).replace(/\uFFFD$/, "") + "...";
}
