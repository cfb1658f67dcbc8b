/**
 * The `voice-chat` OpenClaw plugin: OpenClaw speaks and listens through blitz's speech
 * servers (or any Kokoro- and Whisper-compatible ones), and a talk client reaches blitz's voice
 * session through the gateway.
 *
 * - speech provider `blitz-speech`: text to speech by `POST /v1/audio/speech`;
 * - media-understanding provider `blitz-transcription`: audio to text by
 *   `POST /v1/audio/transcriptions`;
 * - route `voicePath` (default `/blitz/voice`, gateway auth): a WebSocket bridged to the
 *   daemon's `GET /api/voice` (see bridge.ts);
 * - realtime voice provider `blitz-voice`: OpenClaw's talk mode (its gateway relay,
 *   `talk.realtime.provider: "blitz-voice"`) talking to the daemon's voice session (see
 *   realtime.ts).
 */

import { definePluginEntry } from "openclaw/plugin-sdk/plugin-entry";
import type { OpenClawPluginApi } from "openclaw/plugin-sdk/plugin-entry";

import { createVoiceBridge } from "./bridge.js";
import { readConfig } from "./config.js";
import { speechProvider, transcriptionProvider } from "./providers.js";
import { realtimeVoiceProvider } from "./realtime.js";

export { readConfig } from "./config.js";
export { SpeechServiceError } from "./speech.js";
export { REALTIME_PROVIDER, VoiceSessionError } from "./realtime.js";

export function register(api: OpenClawPluginApi): void {
  const config = readConfig(api.pluginConfig);
  api.registerSpeechProvider(speechProvider(config));
  api.registerMediaUnderstandingProvider(transcriptionProvider(config));
  api.registerRealtimeVoiceProvider(
    realtimeVoiceProvider({
      daemon: config.daemon,
      connectTimeoutMs: 10_000,
      log: (message) => { api.logger.warn(message); },
    }),
  );
  const bridge = createVoiceBridge({
    daemon: config.daemon,
    sampleRate: config.sampleRate,
    connectTimeoutMs: 10_000,
    log: (message) => { api.logger.info(message); },
  });
  api.registerHttpRoute({
    path: config.voicePath,
    auth: "gateway",
    match: "exact",
    handler: (_req, res) => {
      res.statusCode = 426;
      res.setHeader("Upgrade", "websocket");
      res.setHeader("Content-Type", "text/plain; charset=utf-8");
      res.end("a WebSocket route: blitz's voice session (docs/api.md, Voice)\n");
      return true;
    },
    handleUpgrade: (req, socket, head) => bridge.handleUpgrade(req, socket, head),
  });
}

export default definePluginEntry({
  id: "voice-chat",
  name: "blitz voice chat",
  description:
    "Speech through Kokoro- and Whisper-compatible servers, and OpenClaw's talk mode and a WebSocket bridge to blitz's voice session",
  register,
});
