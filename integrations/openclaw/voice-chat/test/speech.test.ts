/**
 * The speech and transcription providers against the real bundled speech server
 * (`blitz speech serve`: Piper behind the Kokoro-compatible API, Whisper tiny.en behind the
 * Whisper-compatible one), started once by pytest (tests/speech_service.py), and against
 * servers that are down, slow or refuse.
 */

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

import type { OpenClawConfig } from "openclaw/plugin-sdk/plugin-entry";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

import { SpeechServiceError } from "../src/speech.js";
import { deadPort, load, required, telephony, transcriber, words } from "./host.js";

const url = required("BLITZ_SPEECH_URL");
const key = required("BLITZ_SPEECH_KEY");
const cfg = {} as OpenClawConfig;
// The models share two cores with the rest of the run: a speech call may take a while.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });
const SENTENCE = "Approve the plan. Then cancel the second task.";

function synthesize(pluginConfig: Record<string, unknown>, text: string, timeoutMs = 60_000) {
  const { speech } = load(pluginConfig);
  return speech.synthesize({ text, cfg, providerConfig: {}, target: "audio-file", timeoutMs });
}

async function failure(promise: Promise<unknown>): Promise<SpeechServiceError> {
  const error: unknown = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(SpeechServiceError);
  return error as SpeechServiceError;
}

describe("the round trip through the bundled speech server", () => {
  it("speaks a sentence and hears the same words back", async () => {
    const plugin = load({ speechUrl: url, speechApiKey: key });
    expect(plugin.speech.isConfigured({ providerConfig: {}, timeoutMs: 1000 })).toBe(true);
    const spoken = await plugin.speech.synthesize({
      text: SENTENCE,
      cfg,
      providerConfig: {},
      target: "audio-file",
      timeoutMs: 60_000,
    });
    expect(spoken.outputFormat).toBe("wav");
    expect(spoken.audioBuffer.subarray(0, 4).toString("ascii")).toBe("RIFF");
    const heard = await transcriber(plugin)({
      buffer: spoken.audioBuffer,
      fileName: "sentence.wav",
      mime: "audio/wav",
      apiKey: "",
      timeoutMs: 60_000,
    });
    expect(words(heard.text)).toEqual(words(SENTENCE));
    expect(heard.model).toBe("whisper-1");
  });

  it("makes raw 24 kHz pcm for telephony", async () => {
    const pcm = await telephony(load({ speechUrl: url, speechApiKey: key }))({ text: "Done.", cfg, providerConfig: {}, timeoutMs: 60_000 });
    expect(pcm.outputFormat).toBe("pcm");
    expect(pcm.sampleRate).toBe(24_000);
    expect(pcm.audioBuffer.length % 2).toBe(0);
    expect(pcm.audioBuffer.length).toBeGreaterThan(24_000 * 2 * 0.2); // a fifth of a second at least
  });
});

describe("a speech service that fails", () => {
  let stalled: ReturnType<typeof createServer>;
  let stalledUrl = "";

  beforeAll(async () => {
    // Takes the request and never answers.
    stalled = createServer(() => undefined);
    await new Promise<void>((resolve) => stalled.listen(0, "127.0.0.1", resolve));
    stalledUrl = `http://127.0.0.1:${(stalled.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => {
    stalled.closeAllConnections();
    await new Promise<void>((resolve) => stalled.close(() => { resolve(); }));
  });

  it("down: says it cannot reach it, and where", async () => {
    const port = await deadPort();
    const error = await failure(synthesize({ speechUrl: `http://127.0.0.1:${port}/v1`, speechApiKey: key }, "hello"));
    expect(error.failure).toBe("unreachable");
    expect(error.message).toBe(
      `cannot reach the speech service at http://127.0.0.1:${port}/v1/audio/speech (speechUrl): ECONNREFUSED`,
    );
  });

  it("slow: gives up at the timeout and says so", async () => {
    const error = await failure(synthesize({ speechUrl: stalledUrl }, "hello", 300));
    expect(error.failure).toBe("timeout");
    expect(error.message).toContain(`the speech service at ${stalledUrl}/audio/speech did not answer within 0.3s`);
  });

  it("slow transcription: the same", async () => {
    const error = await failure(
      transcriber(load({ transcriptionUrl: stalledUrl }))({ buffer: Buffer.alloc(10), fileName: "a.wav", apiKey: "", timeoutMs: 300 }),
    );
    expect(error.failure).toBe("timeout");
    expect(error.message).toContain("(transcriptionUrl; timeoutMs sets the limit)");
  });

  it("a wrong key: refused, the setting named, the key never shown", async () => {
    const wrong = "not-the-key-4f1d2c";
    const error = await failure(synthesize({ speechUrl: url, speechApiKey: wrong }, "hello"));
    expect(error.failure).toBe("unauthorized");
    expect(error.status).toBe(401);
    expect(error.message).toMatch(/refused the key \(401: .*\); set speechApiKey$/);
    expect(error.message).not.toContain(wrong);
    expect(error.message).not.toContain(key);
  });

  it("an unknown voice or model: refused with the server's words and the setting", async () => {
    const voice = await failure(synthesize({ speechUrl: url, speechApiKey: key, speechVoice: "af_heart" }, "hi"));
    expect(voice.failure).toBe("refused");
    expect(voice.message).toMatch(/af_heart.*\(speechVoice\)$/);
    const model = await failure(
      transcriber(load({ speechUrl: url, speechApiKey: key, transcriptionModel: "large-v9" }))({ buffer: Buffer.alloc(10), fileName: "a.wav", apiKey: "", timeoutMs: 30_000 }),
    );
    expect(model.message).toMatch(/large-v9.*\(transcriptionModel\)$/);
  });

  it("audio it cannot decode: refused, and says why", async () => {
    const error = await failure(
      transcriber(load({ speechUrl: url, speechApiKey: key }))({
        buffer: Buffer.from("this is not audio at all"),
        fileName: "noise.wav",
        apiKey: "",
        timeoutMs: 30_000,
      }),
    );
    expect(error.failure).toBe("refused");
    expect(error.status).toBe(400);
  });

  it("not configured: the provider says so", () => {
    const { speech } = load({});
    expect(speech.isConfigured({ providerConfig: {}, timeoutMs: 1000 })).toBe(false);
  });
});
