/**
 * The plugin's settings, read once from `plugins.entries["voice-chat"].config` (OpenClaw has
 * validated them against the manifest's `configSchema`; this gives them types and defaults).
 * Keys and the daemon's token live only here and in the requests that need them: no message
 * built from a setting ever includes one.
 */

/** One OpenAI-shaped speech service: `url` is its API's base (`.../v1`). */
export interface SpeechService {
  readonly url: string;
  readonly apiKey: string;
  readonly model: string;
  readonly timeoutMs: number;
  /** The setting that names this service, for messages that say what to fix. */
  readonly setting: "speechUrl" | "transcriptionUrl";
}

export interface VoiceChatConfig {
  /** Kokoro-compatible `POST /v1/audio/speech`; `null` when `speechUrl` is not set. */
  readonly speech: (SpeechService & { readonly voice: string }) | null;
  /** Whisper-compatible `POST /v1/audio/transcriptions`; `null` when neither URL is set. */
  readonly transcription: SpeechService | null;
  /** blitz's daemon; `null` when `daemonUrl` is not set (the bridge then refuses clearly). */
  readonly daemon: { readonly url: string; readonly token: string } | null;
  readonly voicePath: string;
  readonly sampleRate: number;
}

export const DEFAULTS = {
  speechModel: "kokoro",
  speechVoice: "joe",
  transcriptionModel: "whisper-1",
  timeoutMs: 30_000,
  voicePath: "/blitz/voice",
  sampleRate: 24_000,
} as const;

/** The sample rates blitz's `/api/voice` accepts for pcm16. */
export const SAMPLE_RATES: readonly number[] = [8000, 16000, 24000, 44100, 48000];

export class ConfigError extends Error {
  override name = "ConfigError";
}

function text(raw: Record<string, unknown>, key: string): string {
  const value = raw[key];
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") throw new ConfigError(`voice-chat: ${key} must be a string`);
  return value.trim();
}

function integer(raw: Record<string, unknown>, key: string, fallback: number): number {
  const value = raw[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new ConfigError(`voice-chat: ${key} must be a positive integer`);
  }
  return value;
}

function httpUrl(value: string, key: string): string {
  if (!value) return "";
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(`voice-chat: ${key} is not a URL: ${JSON.stringify(value)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new ConfigError(`voice-chat: ${key} must be an http(s) URL, not ${parsed.protocol}`);
  }
  if (parsed.username || parsed.password) {
    throw new ConfigError(`voice-chat: ${key} must not carry credentials; use its key setting`);
  }
  return value.replace(/\/+$/, "");
}

/** Typed settings from the plugin's raw config (`api.pluginConfig`). */
export function readConfig(pluginConfig: Record<string, unknown> | undefined): VoiceChatConfig {
  const raw = pluginConfig ?? {};
  const timeoutMs = integer(raw, "timeoutMs", DEFAULTS.timeoutMs);
  const speechUrl = httpUrl(text(raw, "speechUrl"), "speechUrl");
  const speechApiKey = text(raw, "speechApiKey");
  const transcriptionUrl = httpUrl(text(raw, "transcriptionUrl"), "transcriptionUrl");
  const daemonUrl = httpUrl(text(raw, "daemonUrl"), "daemonUrl");
  const voicePath = text(raw, "voicePath") || DEFAULTS.voicePath;
  if (!voicePath.startsWith("/")) throw new ConfigError("voice-chat: voicePath must start with /");
  const sampleRate = integer(raw, "sampleRate", DEFAULTS.sampleRate);
  if (!SAMPLE_RATES.includes(sampleRate)) {
    throw new ConfigError(`voice-chat: sampleRate must be one of ${SAMPLE_RATES.join(", ")}`);
  }
  const transcriptionBase = transcriptionUrl || speechUrl;
  return {
    speech: speechUrl
      ? {
          url: speechUrl,
          apiKey: speechApiKey,
          model: text(raw, "speechModel") || DEFAULTS.speechModel,
          voice: text(raw, "speechVoice") || DEFAULTS.speechVoice,
          timeoutMs,
          setting: "speechUrl",
        }
      : null,
    transcription: transcriptionBase
      ? {
          url: transcriptionBase,
          // Another server never gets the speech server's key.
          apiKey:
            text(raw, "transcriptionApiKey") || (transcriptionBase === speechUrl ? speechApiKey : ""),
          model: text(raw, "transcriptionModel") || DEFAULTS.transcriptionModel,
          timeoutMs,
          setting: transcriptionUrl ? "transcriptionUrl" : "speechUrl",
        }
      : null,
    daemon: daemonUrl ? { url: daemonUrl, token: text(raw, "daemonToken") } : null,
    voicePath,
    sampleRate,
  };
}
