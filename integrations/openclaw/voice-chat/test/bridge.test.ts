/**
 * The WebSocket route against a real `blitz serve` (started once by pytest, its speech
 * services the bundled speech server): a client on the plugin's route reaches the daemon's
 * `/api/voice`, a typed command is answered with a `say` and its audio; close codes and
 * reasons come through both ways; a daemon that is down gives a clear close reason.
 *
 * The route runs in a Node HTTP server that hands it its upgrades the way the gateway does
 * (`handleUpgrade(req, socket, head)`); the plugin loading in a real gateway is checked by
 * `openclaw plugins inspect` (tests/openclaw/test_voice_chat.py).
 */

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";

import type { OpenClawConfig } from "openclaw/plugin-sdk/plugin-entry";
import { WebSocket } from "openclaw/plugin-sdk/websocket-runtime";
import { afterEach, describe, expect, it, vi } from "vitest";

import { BAD_GATEWAY, MAX_WAITING, bytes } from "../src/bridge.js";
import { deadPort, load, required, serveRoute, telephony, words } from "./host.js";

const daemonUrl = required("BLITZ_URL");
const token = required("BLITZ_TOKEN");
const speechUrl = required("BLITZ_SPEECH_URL");
const speechKey = required("BLITZ_SPEECH_KEY");
const cfg = {} as OpenClawConfig;
// The models share two cores with the rest of the run: a speech call may take a while.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });
const SAID = "The goal finished and the pull request is open.";
const WAIT_MS = 90_000;

interface Received {
  texts: Record<string, unknown>[];
  audio: number;
  closed: Promise<{ code: number; reason: string }>;
}

const opened: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  for (const server of opened.splice(0)) await server.close();
});

async function connect(pluginConfig: Record<string, unknown>): Promise<{ socket: WebSocket; got: Received }> {
  const plugin = load(pluginConfig);
  const route = plugin.routes[0];
  if (!route) throw new Error("no route registered");
  expect(route.path).toBe("/blitz/voice");
  expect(route.auth).toBe("gateway");
  const server = await serveRoute(route);
  opened.push(server);
  const socket = new WebSocket(server.url);
  const got: Received = {
    texts: [],
    audio: 0,
    closed: new Promise((resolve) => {
      socket.on("close", (code, reason) => { resolve({ code, reason: reason.toString() }); });
    }),
  };
  socket.on("message", (data, isBinary) => {
    if (isBinary) got.audio += bytes(data).length;
    else got.texts.push(JSON.parse(bytes(data).toString("utf8")) as Record<string, unknown>);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => { resolve(); });
    socket.once("error", reject);
  });
  return { socket, got };
}

async function until(got: Received, type: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const found = got.texts.find((message) => message["type"] === type);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no ${type} in ${JSON.stringify(got.texts)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("the bridge to blitz's voice session", () => {
  it("carries a typed command to the daemon and its spoken answer back", async () => {
    const { socket, got } = await connect({ daemonUrl, daemonToken: token });
    socket.send(JSON.stringify({ type: "text", text: "how is it going?" }));
    const ready = await until(got, "ready");
    expect(ready["speech"]).toEqual({ format: "pcm16", sample_rate: 24000 });
    const say = await until(got, "say");
    expect(typeof say["text"]).toBe("string");
    expect(String(say["text"]).length).toBeGreaterThan(0);
    const said = await until(got, "said");
    expect(said["id"]).toBe(say["id"]);
    expect(got.audio).toBeGreaterThan(0); // the answer's speech came through as binary frames
    socket.close(1000, "bye");
    expect((await got.closed).code).toBe(1000);
  });

  it("sends a hello for OpenClaw's 24 kHz talk audio: 24 kHz speech without a hello is heard right", async () => {
    // The plugin's own telephony speech is pcm16 at 24 kHz, OpenClaw's talk format. Taken as
    // the daemon's default 16 kHz it would play at two thirds of its speed and be misheard.
    const pcm = await telephony(load({ speechUrl, speechApiKey: speechKey }))({ text: SAID, cfg, providerConfig: {}, timeoutMs: WAIT_MS });
    expect(pcm.sampleRate).toBe(24_000);
    const { socket, got } = await connect({ daemonUrl, daemonToken: token });
    const padded = Buffer.concat([pcm.audioBuffer, Buffer.alloc(24_000)]); // half a second of silence
    for (let at = 0; at < padded.length; at += 16 * 1024) socket.send(padded.subarray(at, at + 16 * 1024));
    socket.send(JSON.stringify({ type: "end" }));
    const heard = await until(got, "heard");
    expect(words(String(heard["text"]))).toEqual(words(SAID));
    socket.close(1000);
  });

  it("carries the daemon's own close code and reason for a protocol error (1007)", async () => {
    const { socket, got } = await connect({ daemonUrl, daemonToken: token });
    await until(got, "ready");
    socket.send(JSON.stringify({ type: "hello", format: "pcm16", sample_rate: 16000 }));
    const closed = await got.closed;
    expect(closed.code).toBe(1007);
    expect(closed.reason).toContain("hello comes first, once");
  });

  it("passes the client's own hello as the first frame", async () => {
    const { socket, got } = await connect({ daemonUrl, daemonToken: token });
    socket.send(JSON.stringify({ type: "hello", format: "webm" }));
    socket.send(JSON.stringify({ type: "text", text: "how is it going?" }));
    await until(got, "say");
    expect(got.texts.filter((message) => message["type"] === "error")).toEqual([]);
    socket.close(1000);
  });

  it("a wrong token: the daemon's 1008 and reason reach the client, the token does not", async () => {
    const wrong = "blitz_wrong_token_0b5e77";
    const { got } = await connect({ daemonUrl, daemonToken: wrong });
    const closed = await got.closed;
    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(/^token invalid/);
    expect(closed.reason).not.toContain(wrong);
  });

  it("the daemon down: closed with 1014 and a reason that says so", async () => {
    const port = await deadPort();
    const { got } = await connect({ daemonUrl: `http://127.0.0.1:${port}`, daemonToken: token });
    const closed = await got.closed;
    expect(closed.code).toBe(BAD_GATEWAY);
    expect(closed.reason).toBe(`cannot reach the blitz daemon at ws://127.0.0.1:${port}/api/voice: ECONNREFUSED`);
    expect(closed.reason).not.toContain(token);
  });

  it("a daemon that does not answer: what the client sends meanwhile is bounded (1009)", async () => {
    const silent = createServer();
    const held: Duplex[] = [];
    silent.on("upgrade", (_req, socket: Duplex) => held.push(socket)); // never answered
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    opened.push({
      close: () =>
        new Promise<void>((resolve) => {
          for (const socket of held) socket.destroy();
          silent.close(() => { resolve(); });
        }),
    });
    const port = (silent.address() as AddressInfo).port;
    const { socket, got } = await connect({ daemonUrl: `http://127.0.0.1:${port}`, daemonToken: token });
    const frame = Buffer.alloc(60 * 1024);
    for (let sent = 0; sent <= MAX_WAITING; sent += frame.length) socket.send(frame);
    const closed = await got.closed;
    expect(closed.code).toBe(1009);
    expect(closed.reason).toBe(`voice-chat: more than ${MAX_WAITING} bytes sent before the blitz daemon answered`);
  });

  it("no daemon configured: closed with 1011 and what to set", async () => {
    const { got } = await connect({});
    const closed = await got.closed;
    expect(closed).toEqual({ code: 1011, reason: "voice-chat: daemonUrl is not set in the plugin's config" });
  });
});
