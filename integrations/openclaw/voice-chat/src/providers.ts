/**
 * The plugin's speech and transcription providers, as OpenClaw's plugin SDK wants them. Their
 * settings are the plugin's own (`plugins.entries["voice-chat"].config`); a
 * `tts.providers["blitz-speech"]` block may override the model and the voice.
 */

import type { MediaUnderstandingProviderPlugin, SpeechProviderPlugin } from "openclaw/plugin-sdk/plugin-entry";

import type { VoiceChatConfig } from "./config.js";
import { synthesize, transcribe } from "./speech.js";

export const SPEECH_PROVIDER = "blitz-speech";
export const TRANSCRIPTION_PROVIDER = "blitz-transcription";
/** The rate of `pcm` from OpenAI's speech API, Kokoro-FastAPI and blitz's bundled server. */
export const PCM_RATE = 24_000;

type SynthesisRequest = Parameters<SpeechProviderPlugin["synthesize"]>[0];
type TranscriptionRequest = Parameters<NonNullable<MediaUnderstandingProviderPlugin["transcribeAudio"]>>[0];

function override(providerConfig: Record<string, unknown>, key: "model" | "voice"): string | undefined {
  const value = providerConfig[key];
  return typeof value === "string" && value.trim() ? value.trim() : undefined;
}

export function speechProvider(config: VoiceChatConfig): SpeechProviderPlugin {
  const service = (req: { providerConfig: Record<string, unknown> }) => {
    if (!config.speech) throw new Error("voice-chat: speechUrl is not set in the plugin's config");
    return {
      ...config.speech,
      model: override(req.providerConfig, "model") ?? config.speech.model,
      voice: override(req.providerConfig, "voice") ?? config.speech.voice,
    };
  };
  return {
    id: SPEECH_PROVIDER,
    label: "blitz speech (Kokoro-compatible)",
    defaultTimeoutMs: config.speech?.timeoutMs ?? 30_000,
    ...(config.speech ? { defaultModel: config.speech.model, voices: [config.speech.voice] } : {}),
    isConfigured: () => config.speech !== null,
    resolveConfig: (ctx) => {
      const providers = ctx.rawConfig["providers"];
      const own = typeof providers === "object" && providers !== null ? (providers as Record<string, unknown>)[SPEECH_PROVIDER] : undefined;
      return typeof own === "object" && own !== null ? (own as Record<string, unknown>) : {};
    },
    synthesize: async (req: SynthesisRequest) => {
      // WAV for every target: every OpenAI-shaped server makes it, and any player plays it.
      const audioBuffer = await synthesize(service(req), req.text, "wav", req.timeoutMs);
      return { audioBuffer, outputFormat: "wav", fileExtension: ".wav", voiceCompatible: false };
    },
    synthesizeTelephony: async (req) => {
      const audioBuffer = await synthesize(service(req), req.text, "pcm", req.timeoutMs);
      return { audioBuffer, outputFormat: "pcm", sampleRate: PCM_RATE };
    },
  };
}

export function transcriptionProvider(config: VoiceChatConfig): MediaUnderstandingProviderPlugin {
  return {
    id: TRANSCRIPTION_PROVIDER,
    capabilities: ["audio"],
    defaultModels: { audio: config.transcription?.model ?? "whisper-1" },
    // The key is the plugin's own setting, sent by transcribe(): OpenClaw resolves none.
    resolveAuth: () => ({ kind: "none", source: "voice-chat plugin config" }),
    transcribeAudio: async (req: TranscriptionRequest) => {
      if (!config.transcription) {
        throw new Error("voice-chat: transcriptionUrl (or speechUrl) is not set in the plugin's config");
      }
      const service = req.model ? { ...config.transcription, model: req.model } : config.transcription;
      const text = await transcribe(
        service,
        {
          audio: req.buffer,
          fileName: req.fileName,
          ...(req.mime ? { mime: req.mime } : {}),
          ...(req.language ? { language: req.language } : {}),
          ...(req.prompt ? { prompt: req.prompt } : {}),
        },
        req.timeoutMs,
      );
      return { text, model: service.model };
    },
  };
}
