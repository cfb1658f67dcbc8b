import { describe, expect, it } from "vitest";
import {
  Onset,
  VoiceSession,
  phaseOf,
  type Flags,
  type MicrophoneLike,
  type PlayerLike,
  type SocketLike,
} from "./voice";

class FakeSocket implements SocketLike {
  readyState = 0;
  binaryType: BinaryType = "blob";
  sent: (string | ArrayBuffer)[] = [];
  closed: number[] = [];
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;

  send(data: string | ArrayBuffer): void {
    this.sent.push(data);
  }
  close(code = 1000): void {
    this.closed.push(code);
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({} as Event);
  }
  server(message: object | ArrayBuffer): void {
    const data = message instanceof ArrayBuffer ? message : JSON.stringify(message);
    this.onmessage?.({ data } as MessageEvent);
  }
  drop(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason } as CloseEvent);
  }
  texts(): Record<string, unknown>[] {
    return this.sent.filter((m) => typeof m === "string").map((m) => JSON.parse(m as string));
  }
  frames(): number {
    return this.sent.filter((m) => m instanceof ArrayBuffer).length;
  }
}

class FakeMicrophone implements MicrophoneLike {
  open = false;
  refuse: Error | null = null;
  onFrame: (frame: ArrayBuffer) => void = () => {};
  start(): Promise<void> {
    if (this.refuse) return Promise.reject(this.refuse);
    this.open = true;
    return Promise.resolve();
  }
  stop(): void {
    this.open = false;
  }
  speak(loudness = 0): void {
    this.onFrame(new Int16Array(640).fill(Math.round(loudness * 32767)).buffer);
  }
}

class FakePlayer implements PlayerLike {
  playing = false;
  played = 0;
  onIdle: () => void = () => {};
  play(pcm: ArrayBuffer, sampleRate: number): number {
    this.playing = true;
    this.played += pcm.byteLength;
    return pcm.byteLength / 2 / sampleRate;
  }
  stop(): void {
    this.playing = false;
  }
  finish(): void {
    this.playing = false;
    this.onIdle();
  }
}

function session() {
  const sockets: FakeSocket[] = [];
  const waits: { ms: number; run: () => void }[] = [];
  const microphone = new FakeMicrophone();
  const player = new FakePlayer();
  const voice = new VoiceSession({
    url: "ws://daemon/api/voice",
    connect: () => {
      const socket = new FakeSocket();
      sockets.push(socket);
      return socket;
    },
    microphone,
    player,
    later: (ms, run) => {
      waits.push({ ms, run });
      return () => {};
    },
  });
  voice.start();
  const socket = () => sockets[sockets.length - 1];
  const ready = () => {
    socket().open();
    socket().server({ type: "ready", speech: { format: "pcm16", sample_rate: 22050 } });
  };
  return { voice, sockets, socket, waits, microphone, player, ready };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("the phase", () => {
  const base: Flags = {
    started: true,
    connected: true,
    dropped: false,
    signedOut: false,
    closed: false,
    micRefused: false,
    pressing: false,
    handsFree: false,
    speaking: false,
    thinking: false,
    error: false,
  };
  it("shows the most pressing state", () => {
    expect(phaseOf(base)).toBe("ready");
    expect(phaseOf({ ...base, handsFree: true })).toBe("listening");
    expect(phaseOf({ ...base, speaking: true, thinking: true })).toBe("speaking");
    expect(phaseOf({ ...base, pressing: true, speaking: true })).toBe("listening");
    expect(phaseOf({ ...base, connected: false })).toBe("connecting");
    expect(phaseOf({ ...base, connected: false, dropped: true })).toBe("reconnecting");
    expect(phaseOf({ ...base, connected: false, signedOut: true })).toBe("signed-out");
    expect(phaseOf({ ...base, connected: false, closed: true })).toBe("closed");
    expect(phaseOf({ ...base, micRefused: true, pressing: true })).toBe("mic-refused");
    expect(phaseOf({ ...base, error: true })).toBe("error");
  });
});

describe("Onset", () => {
  it("needs several loud frames in a row", () => {
    const onset = new Onset(0.03, 3);
    const loud = new Int16Array(10).fill(5000);
    const quiet = new Int16Array(10).fill(10);
    expect([onset.push(loud), onset.push(loud), onset.push(quiet), onset.push(loud)]).toEqual([
      false,
      false,
      false,
      false,
    ]);
    expect([onset.push(loud), onset.push(loud)]).toEqual([false, true]);
  });
});

describe("VoiceSession", () => {
  it("says hello first and is ready when the daemon is", () => {
    const s = session();
    expect(s.voice.view.phase).toBe("connecting");
    s.ready();
    expect(s.socket().texts()[0]).toEqual({ type: "hello", format: "pcm16", sample_rate: 16000, endpoint: "client" });
    expect(s.socket().binaryType).toBe("arraybuffer");
    expect(s.voice.view.phase).toBe("ready");
  });

  it("streams the microphone only while push-to-talk is held, then ends the utterance", async () => {
    const s = session();
    s.ready();
    s.microphone.speak(0.2); // not pressed: nothing goes out
    s.voice.press();
    await tick();
    expect(s.voice.view.phase).toBe("listening");
    expect(s.microphone.open).toBe(true);
    s.microphone.speak(0.2);
    s.microphone.speak(0.2);
    s.voice.release();
    s.microphone.speak(0.2);
    expect(s.socket().frames()).toBe(2);
    expect(s.socket().texts().at(-1)).toEqual({ type: "end" });
    expect(s.microphone.open).toBe(false);
    expect(s.voice.view.phase).toBe("thinking");
    s.socket().server({ type: "heard", text: "start a goal on calc" });
    expect(s.voice.view.entries.map((e) => [e.who, e.text])).toEqual([["you", "start a goal on calc"]]);
  });

  it("waits for nothing after a release when the daemon already answered while it was held", async () => {
    const s = session();
    s.ready();
    s.voice.press();
    await tick();
    s.microphone.speak(0.2);
    s.socket().server({ type: "heard", text: "status" });
    s.socket().server({ type: "say", id: 1, text: "Nothing is running.", sample_rate: 16000 });
    s.socket().server(new ArrayBuffer(3200));
    s.socket().server({ type: "said", id: 1 });
    s.voice.release();
    expect(s.socket().texts().at(-1)).toEqual({ type: "end" });
    s.player.finish();
    expect(s.voice.view.phase).toBe("ready");
  });

  it("cuts off an answer still playing after the daemon sent all of it", () => {
    const s = session();
    s.ready();
    s.socket().server({ type: "say", id: 6, text: "Started.", sample_rate: 16000 });
    s.socket().server(new ArrayBuffer(3200));
    s.socket().server({ type: "said", id: 6 });
    s.voice.press();
    expect(s.player.playing).toBe(false);
    expect(s.socket().texts().at(-1)).toEqual({ type: "stop" });
    expect(s.voice.view.entries[0]).toMatchObject({ say: 6, cut: true });
  });

  it("sends no end for a press that carried no audio", () => {
    const s = session();
    s.ready();
    s.voice.press();
    s.voice.release();
    expect(s.socket().texts().map((m) => m.type)).toEqual(["hello"]);
    expect(s.voice.view.phase).toBe("ready");
  });

  it("plays an answer as its frames arrive and counts its seconds", () => {
    const s = session();
    s.ready();
    s.socket().server({ type: "say", id: 1, text: "Starting a goal. Shall I?", sample_rate: 16000 });
    expect(s.voice.view.phase).toBe("speaking");
    s.socket().server(new ArrayBuffer(16000)); // half a second at 16 kHz
    s.socket().server(new ArrayBuffer(16000));
    s.socket().server({ type: "said", id: 1 });
    expect(s.player.played).toBe(32000);
    expect(s.voice.view.entries[0]).toMatchObject({ who: "blitz", say: 1, seconds: 1 });
    expect(s.voice.view.phase).toBe("speaking"); // still playing what was queued
    s.player.finish();
    expect(s.voice.view.phase).toBe("ready");
  });

  it("shows a question with its spoken words once, and answers it with yes", () => {
    const s = session();
    s.ready();
    s.socket().server({ type: "confirm", text: "Start a goal on calc?" });
    s.socket().server({ type: "say", id: 2, text: "Start a goal on calc?", sample_rate: 16000 });
    expect(s.voice.view.confirm).toBe("Start a goal on calc?");
    expect(s.voice.view.entries).toHaveLength(1);
    expect(s.voice.view.entries[0]).toMatchObject({ question: true, say: 2 });
    s.socket().server(new ArrayBuffer(3200));
    s.voice.answer(true);
    const types = s.socket().texts().map((m) => m.type);
    expect(types.slice(-2)).toEqual(["stop", "text"]); // the question was still being spoken
    expect(s.socket().texts().at(-1)).toEqual({ type: "text", text: "yes" });
    expect(s.voice.view.confirm).toBe("");
    expect(s.player.playing).toBe(false);
  });

  it("barges in: pressing while an answer plays silences it and drops the rest of it", () => {
    const s = session();
    s.ready();
    s.socket().server({ type: "say", id: 4, text: "a long answer", sample_rate: 16000 });
    s.socket().server(new ArrayBuffer(3200));
    s.voice.press();
    expect(s.player.playing).toBe(false);
    expect(s.socket().texts().at(-1)).toEqual({ type: "stop" });
    expect(s.voice.view.entries[0]).toMatchObject({ cut: true });
    s.socket().server(new ArrayBuffer(3200)); // already on its way: not played
    expect(s.player.played).toBe(3200);
    s.socket().server({ type: "stopped", id: 4 });
    expect(s.voice.view.entries[0]).toMatchObject({ cut: true });
    expect(s.voice.view.phase).toBe("listening");
  });

  it("hands-free streams all the time and barges in when the person speaks over an answer", async () => {
    const s = session();
    s.ready();
    s.voice.setHandsFree(true);
    expect(s.socket().texts().at(-1)).toEqual({ type: "endpoint", endpoint: "vad" });
    await tick();
    expect(s.voice.view.phase).toBe("listening");
    s.microphone.speak(0);
    expect(s.socket().frames()).toBe(1);
    s.socket().server({ type: "say", id: 5, text: "the goal finished", sample_rate: 16000 });
    s.socket().server(new ArrayBuffer(3200));
    s.microphone.speak(0.001); // quiet: the answer goes on
    s.microphone.speak(0.3);
    s.microphone.speak(0.3);
    expect(s.player.playing).toBe(true);
    s.microphone.speak(0.3);
    expect(s.player.playing).toBe(false);
    expect(s.socket().texts().at(-1)).toEqual({ type: "stop" });
    expect(s.socket().frames()).toBe(5);
    s.voice.setHandsFree(false);
    expect(s.microphone.open).toBe(false);
    expect(s.socket().texts().at(-1)).toEqual({ type: "endpoint", endpoint: "client" });
  });

  it("says hello with the VAD ending utterances when it reconnects hands-free", async () => {
    const s = session();
    s.ready();
    s.voice.setHandsFree(true);
    await tick();
    s.socket().drop(1001, "blitz is shutting down");
    s.waits[0].run();
    s.socket().open();
    expect(s.socket().texts()[0]).toEqual({ type: "hello", format: "pcm16", sample_rate: 16000, endpoint: "vad" });
  });

  it("says when the microphone is refused", async () => {
    const s = session();
    s.ready();
    s.microphone.refuse = Object.assign(new Error("the microphone was refused"), { refused: true });
    s.voice.press();
    await tick();
    expect(s.voice.view.phase).toBe("mic-refused");
    expect(s.voice.view.detail).toBe("the microphone was refused");
  });

  it("keeps a spoken error as one entry", () => {
    const s = session();
    s.ready();
    s.socket().server({ type: "error", message: "No project is called calp." });
    s.socket().server({ type: "say", id: 7, text: "No project is called calp.", sample_rate: 24000 });
    s.socket().server({ type: "say", id: 8, text: "No project is called calp.", sample_rate: 24000 });
    expect(s.voice.view.entries.map((e) => [e.who, e.say])).toEqual([
      ["error", 7],
      ["blitz", 8],
    ]);
  });

  it("shows the daemon's errors and goes on", () => {
    const s = session();
    s.ready();
    s.socket().server({ type: "error", message: "speech-to-text is down" });
    expect(s.voice.view.phase).toBe("error");
    expect(s.voice.view.detail).toBe("speech-to-text is down");
    expect(s.voice.view.entries.at(-1)).toMatchObject({ who: "error" });
    s.voice.sendText("status");
    expect(s.voice.view.phase).toBe("thinking");
  });

  it("reconnects after a drop, waiting longer each time, but not after a refused token", () => {
    const s = session();
    s.ready();
    s.socket().drop(1006);
    expect(s.voice.view.phase).toBe("reconnecting");
    expect(s.waits.map((w) => w.ms)).toEqual([1000]);
    s.waits[0].run();
    expect(s.sockets).toHaveLength(2);
    s.socket().drop(1006);
    expect(s.waits.map((w) => w.ms)).toEqual([1000, 2000]);
    s.waits[1].run();
    s.ready();
    expect(s.voice.view.phase).toBe("ready");
    s.socket().drop(1008, "not signed in");
    expect(s.voice.view.phase).toBe("signed-out");
    expect(s.voice.view.detail).toBe("not signed in");
    expect(s.waits).toHaveLength(2);
  });

  it.each([1003, 1007, 1009, 1011])(
    "stops after a close %i that says trying again will not help, until reconnected by hand",
    (code) => {
      const s = session();
      s.ready();
      s.voice.setHandsFree(true);
      s.socket().drop(code, "voice needs pip install 'blitz[voice]'");
      expect(s.voice.view.phase).toBe("closed");
      expect(s.voice.view.detail).toBe(`blitz closed the voice session (${code}): voice needs pip install 'blitz[voice]'`);
      expect(s.waits).toHaveLength(0);
      expect(s.microphone.open).toBe(false);
      expect(s.voice.view.handsFree).toBe(false);
      s.voice.reconnect();
      expect(s.sockets).toHaveLength(2);
      expect(s.voice.view.phase).toBe("connecting");
      s.ready();
      expect(s.voice.view.phase).toBe("ready");
      expect(s.voice.view.detail).toBe("");
    },
  );

  it.each([1006, 1001, 1000, 1012])("reconnects by itself after a close %i", (code) => {
    const s = session();
    s.ready();
    s.socket().drop(code);
    expect(s.voice.view.phase).toBe("reconnecting");
    expect(s.waits).toHaveLength(1);
    s.voice.reconnect(); // nothing to do by hand: it is reconnecting already
    expect(s.sockets).toHaveLength(1);
  });

  it("reconnects by hand after a refused token", () => {
    const s = session();
    s.ready();
    s.socket().drop(1008, "token invalid");
    expect(s.voice.view.phase).toBe("signed-out");
    s.voice.reconnect();
    s.ready();
    expect(s.voice.view.phase).toBe("ready");
  });

  it("closes for good", () => {
    const s = session();
    s.ready();
    const socket = s.socket();
    s.voice.close();
    expect(socket.closed).toEqual([1000]);
    expect(s.voice.view.phase).toBe("off");
    expect(s.waits).toHaveLength(0);
  });
});
