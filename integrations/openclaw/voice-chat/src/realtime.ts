/**
 * The realtime voice provider `blitz-voice`: OpenClaw's own talk mode reaching blitz's voice
 * session. A talk client that OpenClaw relays (`talk.session.create` with `mode: "realtime"`,
 * `transport: "gateway-relay"`, `brain: "agent-consult"`, then `talk.session.appendAudio` with
 * base64 PCM16 mono 24 kHz) gets a session of this provider when `talk.realtime.provider` is
 * `blitz-voice`: each session is one socket on the daemon's `GET /api/voice` (daemon-voice.ts),
 * opened with the hello `{"format":"pcm16","sample_rate":24000}`, so the talk audio goes on as
 * it is and blitz's answers come back in the format the talk client plays.
 *
 * blitz is the brain: it hears, decides and answers itself (README "Voice"), so OpenClaw's
 * agent-consult tools are not called. What the daemon says becomes the provider callbacks:
 *
 * | daemon                | provider contract                                             |
 * | --------------------- | ------------------------------------------------------------- |
 * | `ready`               | `onReady()`                                                   |
 * | `heard`               | `onTranscript("user", text, true)`                            |
 * | `say` K               | `onEvent(response.created blitz-K)`, `onTranscript("assistant", text, true)` |
 * | binary audio          | `onAudio(pcm16 24 kHz)`                                       |
 * | `said` K              | `onResponseDone({status: "completed", responseId: blitz-K})`  |
 * | `stopped` K           | `onClearAudio("barge-in")`, `onResponseDone({status: "cancelled"})` |
 * | `error`, `event`, `confirm` | `onEvent` (diagnostic); each is spoken by the `say` after it |
 * | a close               | `onClose`; a failure first `onError` with what went wrong     |
 *
 * And the other way: `sendAudio` is binary frames of 100 ms (`TALK_FRAME`), `handleBargeIn` is
 * `stop`, `close` closes the socket. There is no `sendUserMessage`: what OpenClaw would have a
 * realtime model say (its own voice controls, greetings) is not a command for blitz.
 *
 * The daemon down, refusing the token, or gone: `connect()` rejects (or `onError` then
 * `onClose("error")` once connected) with an error that says which, with an HTTP-like `status`
 * (401 for the token, 503 for the daemon) that OpenClaw turns into its own words for the talk
 * client ("authentication failed", "unavailable"); the full message goes to the gateway's log.
 * Never the token.
 */

import type { OpenClawPluginApi } from "openclaw/plugin-sdk/plugin-entry";
import { WebSocket } from "openclaw/plugin-sdk/websocket-runtime";

import type { Daemon } from "./daemon-voice.js";
import { bytes, failure, openVoiceSession, pcmHello, voiceUrl } from "./daemon-voice.js";

type Registration = Parameters<OpenClawPluginApi["registerRealtimeVoiceProvider"]>[0];
/** OpenClaw's `RealtimeVoiceProviderPlugin` (the SDK exports it only through the register call). */
export type RealtimeVoiceProvider = Exclude<Registration, (...args: never[]) => unknown>;
export type BridgeRequest = Parameters<RealtimeVoiceProvider["createBridge"]>[0];
export type RealtimeBridge = ReturnType<RealtimeVoiceProvider["createBridge"]>;

export const REALTIME_PROVIDER = "blitz-voice";
/** OpenClaw's talk audio (`REALTIME_VOICE_AUDIO_FORMAT_PCM16_24KHZ`), and blitz's speech. */
export const TALK_RATE = 24_000;
const PCM16_24K = { encoding: "pcm16", sampleRateHz: TALK_RATE, channels: 1 } as const;
/** Bytes of talk audio per frame to the daemon: 100 ms, as a microphone sends it (a talk
 * client may append seconds at once; the daemon takes at most 64 KiB a frame). */
export const TALK_FRAME = (TALK_RATE * 2) / 10;

export interface RealtimeSettings {
  readonly daemon: Daemon | null;
  /** Milliseconds the daemon gets to answer the upgrade and say `ready`. */
  readonly connectTimeoutMs: number;
  readonly log?: (message: string) => void;
}

/** A failure of blitz's voice session; `status` is how OpenClaw classifies it (401, 503...). */
export class VoiceSessionError extends Error {
  override name = "VoiceSessionError";
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export function realtimeVoiceProvider(settings: RealtimeSettings): RealtimeVoiceProvider {
  return {
    id: REALTIME_PROVIDER,
    label: "blitz voice session",
    defaultModel: "blitz",
    models: ["blitz"],
    capabilities: {
      transports: ["gateway-relay"],
      inputAudioFormats: [PCM16_24K],
      outputAudioFormats: [PCM16_24K],
      // blitz's VAD hears speech over an answer and stops it (`stopped`); `stop` stops it too.
      supportsBargeIn: true,
      handlesInputAudioBargeIn: true,
      // `supportsToolCalls` stays unset: `false` lets the relay answer a spoken "status" or
      // "cancel" itself, about OpenClaw's own agent runs, over blitz's answer (its control
      // owner then calls `sendUserMessage` with its own words). blitz calls no tools.
    },
    isConfigured: () => settings.daemon !== null,
    createBridge: (req) => new VoiceSessionBridge(settings, req),
  };
}

type Phase = "new" | "connecting" | "open" | "closed";

/** One talk session: one socket on the daemon's voice session. */
class VoiceSessionBridge implements RealtimeBridge {
  readonly supportsToolResultSuppression = false;
  #phase: Phase = "new";
  #socket: WebSocket | undefined;
  #target = "";
  /** The `say` whose audio is coming (its id), until its `said` or `stopped`. */
  #speaking: number | undefined;
  #failed = false;
  /** While connecting: how `close()` ends the wait for `ready`. */
  #abandon: (() => void) | undefined;

  constructor(
    private readonly settings: RealtimeSettings,
    private readonly req: BridgeRequest,
  ) {}

  connect(): Promise<void> {
    if (this.#phase !== "new") return Promise.reject(new Error("blitz-voice: connect() called twice"));
    const daemon = this.settings.daemon;
    if (!daemon) {
      this.#phase = "closed";
      return Promise.reject(new VoiceSessionError(failure.unset, 503));
    }
    this.#phase = "connecting";
    this.#target = voiceUrl(daemon.url);
    const socket = openVoiceSession(daemon, this.settings.connectTimeoutMs);
    this.#socket = socket;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        refuse(new VoiceSessionError(`the blitz daemon at ${this.#target} did not say ready`, 504));
      }, this.settings.connectTimeoutMs);
      const refuse = (error: Error): void => {
        clearTimeout(timer);
        this.#abandon = undefined;
        if (this.#phase !== "connecting") return;
        this.#phase = "closed";
        this.#log(`voice session refused: ${error.message}`);
        socket.removeAllListeners();
        socket.on("error", () => undefined);
        if (socket.readyState === WebSocket.OPEN) socket.close(1000);
        else socket.terminate();
        reject(error);
      };
      this.#abandon = () => {
        refuse(new Error("blitz-voice: the talk session closed before blitz's voice session was ready"));
      };
      socket.on("open", () => {
        socket.send(pcmHello(TALK_RATE));
      });
      socket.on("unexpected-response", (request, response) => {
        request.destroy();
        const status = response.statusCode ?? 0;
        refuse(new VoiceSessionError(failure.refused(this.#target, status), status === 401 || status === 403 ? 401 : 503));
      });
      socket.on("error", (error: Error & { code?: string }) => {
        if (this.#phase === "connecting") refuse(new VoiceSessionError(failure.unreachable(this.#target, error), 503));
        else this.#fail(new VoiceSessionError(failure.unreachable(this.#target, error), 503));
      });
      socket.on("close", (code, reason) => {
        const said = reason.toString();
        if (this.#phase === "connecting") {
          // 1008: the daemon took the socket, then refused the token.
          const status = code === 1008 ? 401 : 503;
          refuse(new VoiceSessionError(`the blitz daemon at ${this.#target} closed the voice session (${code}${said ? `: ${said}` : ""})`, status));
          return;
        }
        this.#closed(code, said);
      });
      socket.on("message", (data, isBinary) => {
        if (isBinary) {
          if (this.#speaking !== undefined) this.req.onAudio(bytes(data));
          return;
        }
        const message = parse(bytes(data).toString("utf8"));
        if (message?.type === "ready" && this.#phase === "connecting") {
          clearTimeout(timer);
          this.#abandon = undefined;
          this.#phase = "open";
          resolve();
          this.req.onReady?.();
          return;
        }
        if (message) this.#handle(message);
      });
    });
  }

  #handle(message: DaemonMessage): void {
    const req = this.req;
    switch (message.type) {
      case "heard":
        req.onTranscript?.("user", text(message), true);
        return;
      case "say": {
        const id = Number(message.id);
        // The daemon says one answer at a time; should one start before the last's `said`,
        // the last is over (the relay fails a session whose answers overlap).
        if (this.#speaking !== undefined) this.#finish(this.#speaking, false);
        this.#speaking = id;
        req.onEvent?.({ direction: "server", type: "response.created", responseId: responseId(id) });
        req.onTranscript?.("assistant", text(message), true);
        return;
      }
      case "said":
        this.#finish(Number(message.id), false);
        return;
      case "stopped":
        this.#finish(Number(message.id), true);
        return;
      default:
        // error, event, confirm: each is spoken by the `say` after it.
        req.onEvent?.({ direction: "server", type: `blitz.${message.type}`, detail: text(message) });
    }
  }

  #finish(id: number, cut: boolean): void {
    if (this.#speaking !== id) return;
    this.#speaking = undefined;
    if (cut) this.req.onClearAudio("barge-in");
    this.req.onResponseDone?.(
      cut ? { status: "cancelled", responseId: responseId(id), reason: "barge-in" } : { status: "completed", responseId: responseId(id) },
    );
  }

  #fail(error: VoiceSessionError): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#log(`voice session failed: ${error.message}`);
    this.req.onError?.(error);
  }

  /** The daemon closed the session (our own `close()` stops listening first). */
  #closed(code: number, reason: string): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.#speaking = undefined;
    if (code === 1006) this.#fail(new VoiceSessionError(failure.dropped(this.#target), 503));
    else if (code !== 1000) {
      const status = code === 1008 ? 401 : 503;
      this.#fail(new VoiceSessionError(`blitz's voice session closed (${String(code)}${reason ? `: ${reason}` : ""})`, status));
    }
    this.req.onClose?.(this.#failed ? "error" : "completed");
  }

  sendAudio(audio: Buffer): void {
    const socket = this.#socket;
    if (this.#phase !== "open" || !socket) return;
    for (let at = 0; at < audio.byteLength; at += TALK_FRAME) {
      socket.send(audio.subarray(at, Math.min(at + TALK_FRAME, audio.byteLength)), { binary: true });
    }
  }

  setMediaTimestamp(): void {
    // blitz paces its own answers; a talk client's media clock changes nothing there.
  }

  handleBargeIn(): void {
    if (this.#phase === "open" && this.#speaking !== undefined) this.#socket?.send(JSON.stringify({ type: "stop" }));
  }

  submitToolResult(): Promise<void> {
    return Promise.reject(new Error("blitz-voice calls no tools: blitz answers by itself"));
  }

  acknowledgeMark(): void {
    // No marks are emitted: `said` ends an answer.
  }

  close(): void {
    if (this.#phase === "connecting") {
      this.#abandon?.(); // rejects connect(), closes the socket
      return;
    }
    const socket = this.#socket;
    const phase = this.#phase;
    this.#phase = "closed";
    this.#speaking = undefined;
    if (!socket || phase === "closed") return;
    socket.removeAllListeners();
    socket.on("error", () => undefined);
    if (socket.readyState === WebSocket.OPEN) socket.close(1000, "talk session closed");
    else socket.terminate();
    if (phase === "open") this.req.onClose?.("completed");
  }

  isConnected(): boolean {
    return this.#phase === "open";
  }

  #log(message: string): void {
    this.settings.log?.(`blitz-voice: ${message}`);
  }
}

interface DaemonMessage {
  readonly type: string;
  readonly [key: string]: unknown;
}

function parse(frame: string): DaemonMessage | undefined {
  try {
    const value: unknown = JSON.parse(frame);
    if (typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string") {
      return value as DaemonMessage;
    }
  } catch {
    // not JSON: the daemon sends none such
  }
  return undefined;
}

function text(message: DaemonMessage): string {
  const value = message.text ?? message.message;
  return typeof value === "string" ? value : "";
}

function responseId(id: number): string {
  return `blitz-${String(id)}`;
}
