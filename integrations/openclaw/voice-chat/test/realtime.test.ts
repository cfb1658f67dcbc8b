/**
 * The realtime voice provider `blitz-voice` against a real `blitz serve` (started once by
 * pytest, its speech services the bundled speech server), driven the way OpenClaw's gateway
 * relay drives a provider: `createBridge(callbacks)`, `connect()`, `sendAudio(pcm16 24 kHz)`,
 * `handleBargeIn()`, `close()`. The same provider inside a real gateway, reached by
 * `talk.session.*`, is tests/openclaw/test_voice_talk.py.
 */

import type { OpenClawConfig } from "openclaw/plugin-sdk/plugin-entry";
import { describe, expect, it, vi } from "vitest";

import type { BridgeRequest, RealtimeBridge } from "../src/realtime.js";
import { REALTIME_PROVIDER, TALK_RATE, VoiceSessionError } from "../src/realtime.js";
import { deadPort, load, required, telephony, words } from "./host.js";

const daemonUrl = required("BLITZ_URL");
const token = required("BLITZ_TOKEN");
const speechUrl = required("BLITZ_SPEECH_URL");
const speechKey = required("BLITZ_SPEECH_KEY");
const cfg = {} as OpenClawConfig;
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });
const WAIT_MS = 90_000;
const ASKED = "How is it going?";

type Call =
  | { kind: "ready" }
  | { kind: "transcript"; role: string; text: string; final: boolean }
  | { kind: "event"; type: string; responseId?: string; detail?: string }
  | { kind: "done"; status: string; responseId?: string }
  | { kind: "clear"; reason?: string }
  | { kind: "error"; error: Error }
  | { kind: "close"; reason: string };

/** A bridge of the plugin's provider with every callback recorded, as the relay wires them. */
function bridge(pluginConfig: Record<string, unknown>): { bridge: RealtimeBridge; calls: Call[]; audio: Buffer[]; logged: string[] } {
  const plugin = load(pluginConfig);
  const calls: Call[] = [];
  const audio: Buffer[] = [];
  const req: BridgeRequest = {
    providerConfig: {},
    audioFormat: { encoding: "pcm16", sampleRateHz: 24000, channels: 1 },
    onAudio: (chunk) => { audio.push(Buffer.from(chunk)); },
    onClearAudio: (reason) => { calls.push({ kind: "clear", ...(reason ? { reason } : {}) }); },
    onTranscript: (role, text, final) => { calls.push({ kind: "transcript", role, text, final }); },
    onEvent: (event) => {
      calls.push({ kind: "event", type: event.type, ...(event.responseId ? { responseId: event.responseId } : {}), ...(event.detail ? { detail: event.detail } : {}) });
    },
    onResponseDone: (outcome) => { calls.push({ kind: "done", status: outcome.status, ...(outcome.responseId ? { responseId: outcome.responseId } : {}) }); },
    onReady: () => { calls.push({ kind: "ready" }); },
    onError: (error) => { calls.push({ kind: "error", error }); },
    onClose: (reason) => { calls.push({ kind: "close", reason }); },
  };
  return { bridge: plugin.realtime.createBridge(req), calls, audio, logged: plugin.logged };
}

async function until<T extends Call>(calls: Call[], found: (call: Call) => call is T): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const call = calls.find(found);
    if (call) return call;
    if (Date.now() > deadline) throw new Error(`not seen in ${JSON.stringify(calls)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const isDone = (call: Call): call is Extract<Call, { kind: "done" }> => call.kind === "done";
const assistant = (call: Call): call is Extract<Call, { kind: "transcript" }> => call.kind === "transcript" && call.role === "assistant";

async function refusal(connecting: Promise<void>): Promise<VoiceSessionError> {
  const error: unknown = await connecting.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(VoiceSessionError);
  return error as VoiceSessionError;
}

describe("the realtime voice provider blitz-voice", () => {
  it("is registered for the gateway relay with OpenClaw's talk audio, configured by the daemon's URL", () => {
    const provider = load({ daemonUrl, daemonToken: token }).realtime;
    expect(provider.id).toBe(REALTIME_PROVIDER);
    const pcm = { encoding: "pcm16", sampleRateHz: TALK_RATE, channels: 1 };
    expect(provider.capabilities).toMatchObject({ transports: ["gateway-relay"], inputAudioFormats: [pcm], outputAudioFormats: [pcm] });
    expect(provider.isConfigured({ providerConfig: {} })).toBe(true);
    expect(load({}).realtime.isConfigured({ providerConfig: {} })).toBe(false);
  });

  it("a spoken command: blitz's transcript, its answer as text and 24 kHz speech, the end of the answer", async () => {
    const pcm = await telephony(load({ speechUrl, speechApiKey: speechKey }))({ text: ASKED, cfg, providerConfig: {}, timeoutMs: WAIT_MS });
    expect(pcm.sampleRate).toBe(TALK_RATE);
    const { bridge: session, calls, audio } = bridge({ daemonUrl, daemonToken: token });
    await session.connect();
    expect(session.isConnected()).toBe(true);
    expect(calls[0]).toEqual({ kind: "ready" });
    // As the relay appends it: two seconds a call (the provider splits them into 100 ms frames),
    // then the silence the VAD ends it on.
    const spoken = Buffer.concat([pcm.audioBuffer, Buffer.alloc(TALK_RATE * 2)]); // + 1 s of silence
    for (let at = 0; at < spoken.length; at += 96_000) session.sendAudio(spoken.subarray(at, at + 96_000));
    const done = await until(calls, isDone);
    const heard = calls.find((call) => call.kind === "transcript" && call.role === "user");
    expect(heard).toMatchObject({ final: true });
    expect(words(heard?.kind === "transcript" ? heard.text : "")).toEqual(words(ASKED));
    const answer = calls.find(assistant);
    expect(answer?.text).toMatch(/^(No goal is running\.|(One goal is|\d+ goals are) under way\.)/);
    const created = calls.find((call) => call.kind === "event" && call.type === "response.created");
    expect(created).toMatchObject({ responseId: done.responseId });
    expect(done.status).toBe("completed");
    expect(calls.indexOf(created ?? done)).toBeLessThan(calls.indexOf(answer ?? done));
    const bytes = audio.reduce((sum, chunk) => sum + chunk.length, 0);
    expect(bytes).toBeGreaterThan(TALK_RATE); // more than half a second of speech
    expect(bytes % 2).toBe(0);
    expect(calls.filter((call) => call.kind === "error")).toEqual([]);
    await session.close();
    expect(session.isConnected()).toBe(false);
    expect(calls.at(-1)).toEqual({ kind: "close", reason: "completed" });
  });

  it("barge-in: handleBargeIn stops blitz's answer; the audio is cleared and the answer cancelled", async () => {
    const pcm = await telephony(load({ speechUrl, speechApiKey: speechKey }))({ text: "Help.", cfg, providerConfig: {}, timeoutMs: WAIT_MS });
    const { bridge: session, calls, audio } = bridge({ daemonUrl, daemonToken: token });
    await session.connect();
    // Four seconds of silence before it in one call: over the daemon's 64 KiB a frame (1009 if
    // sent whole), so the provider splits it; the session stays open and hears what follows.
    session.sendAudio(Buffer.alloc(TALK_RATE * 2 * 4));
    session.sendAudio(Buffer.concat([pcm.audioBuffer, Buffer.alloc(TALK_RATE * 2)]));
    const deadline = Date.now() + WAIT_MS;
    while (audio.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(audio.length).toBeGreaterThan(0); // the help, a long answer read at the pace it plays
    session.handleBargeIn?.({ audioPlaybackActive: true });
    const done = await until(calls, isDone);
    expect(done.status).toBe("cancelled");
    expect(calls).toContainEqual({ kind: "clear", reason: "barge-in" });
    expect(calls.find(assistant)?.text).toMatch(/^You can say/);
    await session.close();
  });

  it("a wrong token: connect() fails with a 401-like error that never shows the token", async () => {
    const wrong = "blitz_wrong_token_7d1c44";
    const { bridge: session, calls, logged } = bridge({ daemonUrl, daemonToken: wrong });
    const error = await refusal(session.connect());
    expect(error.status).toBe(401);
    expect(error.message).toMatch(/closed the voice session \(1008: token invalid/);
    expect(error.message + logged.join("\n")).not.toContain(wrong);
    expect(session.isConnected()).toBe(false);
    expect(calls.filter((call) => call.kind === "ready")).toEqual([]);
  });

  it("closed before blitz is ready: connect() fails and nothing is reported", async () => {
    const { bridge: session, calls } = bridge({ daemonUrl, daemonToken: token });
    const connecting = session.connect();
    await session.close();
    await expect(connecting).rejects.toThrow("closed before blitz's voice session was ready");
    expect(session.isConnected()).toBe(false);
    expect(calls).toEqual([]);
  });

  it("the daemon down or not set: connect() fails with a 503-like error that says so", async () => {
    const port = await deadPort();
    const down = bridge({ daemonUrl: `http://127.0.0.1:${String(port)}`, daemonToken: token });
    const error = await refusal(down.bridge.connect());
    expect(error.status).toBe(503);
    expect(error.message).toBe(`cannot reach the blitz daemon at ws://127.0.0.1:${String(port)}/api/voice: ECONNREFUSED`);
    const unset = await refusal(bridge({}).bridge.connect());
    expect(unset.message).toBe("voice-chat: daemonUrl is not set in the plugin's config");
  });
});
