/**
 * The plugin registered the way OpenClaw's loader does it (`register(api)` with the plugin's
 * config as `api.pluginConfig`), with what it registers kept for the tests to call as the
 * gateway would. Loading into a real gateway is checked by `openclaw plugins inspect`
 * (tests/openclaw/test_voice_chat.py).
 */

import type { IncomingMessage } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";

import type {
  MediaUnderstandingProviderPlugin,
  OpenClawPluginApi,
  SpeechProviderPlugin,
} from "openclaw/plugin-sdk/plugin-entry";

import { register } from "../src/index.js";
import type { RealtimeVoiceProvider } from "../src/realtime.js";

type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => unknown;

/** The transcription call the plugin's media-understanding provider must have. */
export function transcriber(plugin: Registered): NonNullable<MediaUnderstandingProviderPlugin["transcribeAudio"]> {
  const call = plugin.transcription.transcribeAudio;
  if (!call) throw new Error("the transcription provider has no transcribeAudio");
  return call;
}

/** The telephony synthesis the plugin's speech provider must have. */
export function telephony(plugin: Registered): NonNullable<SpeechProviderPlugin["synthesizeTelephony"]> {
  const call = plugin.speech.synthesizeTelephony;
  if (!call) throw new Error("the speech provider has no synthesizeTelephony");
  return call;
}

export interface Registered {
  speech: SpeechProviderPlugin;
  transcription: MediaUnderstandingProviderPlugin;
  realtime: RealtimeVoiceProvider;
  routes: { path: string; auth: string; handleUpgrade?: UpgradeHandler }[];
  logged: string[];
}

export function load(pluginConfig: Record<string, unknown>): Registered {
  const found: Partial<Registered> & { routes: Registered["routes"]; logged: string[] } = {
    routes: [],
    logged: [],
  };
  const log = (message: string): void => {
    found.logged.push(message);
  };
  const api = {
    id: "voice-chat",
    pluginConfig,
    logger: { info: log, warn: log, error: log, debug: log },
    registerSpeechProvider: (provider: SpeechProviderPlugin) => {
      found.speech = provider;
    },
    registerMediaUnderstandingProvider: (provider: MediaUnderstandingProviderPlugin) => {
      found.transcription = provider;
    },
    registerRealtimeVoiceProvider: (provider: RealtimeVoiceProvider) => {
      found.realtime = provider;
    },
    registerHttpRoute: (route: Registered["routes"][number]) => {
      found.routes.push(route);
    },
  } as unknown as OpenClawPluginApi;
  register(api);
  if (!found.speech || !found.transcription || !found.realtime) throw new Error("the plugin registered no providers");
  return found as Registered;
}

/** An HTTP server on 127.0.0.1 that hands every upgrade on `path` to the route, as the
 * gateway's HTTP server does for a plugin route with `handleUpgrade`. */
export async function serveRoute(
  route: Registered["routes"][number],
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (new URL(req.url ?? "/", "http://x").pathname !== route.path || !route.handleUpgrade) {
      socket.destroy();
      return;
    }
    void route.handleUpgrade(req, socket, head);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}${route.path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => { resolve(); });
      }),
  };
}

/** A port nothing listens on (bound, then freed). */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => { resolve(); }));
  return port;
}

/** An environment variable the pytest side sets; missing, the test fails (never skips). */
export function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through pytest (tests/openclaw/)`);
  return value;
}

export function words(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9']+/g) ?? [];
}
