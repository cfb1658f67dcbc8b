/**
 * The voice session with the daemon (`GET /api/voice`, a WebSocket; its messages in
 * voiceProtocol.ts): the conversation's transcript, the panel's state, and the session itself,
 * which joins the socket, the microphone and the player of answers. It reconnects after the
 * socket drops (the network, the daemon restarting), but not after a close that says trying
 * again will not help (FINAL_CLOSES: a refused token, a message refused, the daemon unable to
 * hold a session): then it shows why and waits for the person to reconnect by hand.
 *
 * It knows the browser's audio only through the two small interfaces below, so it runs the
 * same with the real microphone and player (voiceAudio.ts) and with the unit tests' fakes.
 */
import { SEND_RATE, rms } from "./pcm";
import { FINAL_CLOSES, POLICY_VIOLATION, parseServerMessage } from "./voiceProtocol";
import type { ClientMessage, Endpoint, SayId, ServerMessage } from "./voiceProtocol";

// -- the transcript and the panel's state ---------------------------------------------------

export interface Entry {
  n: number;
  who: "you" | "blitz" | "event" | "error";
  text: string;
  /** An event's kind (`goal.succeeded`...). */
  kind?: string;
  /** The answer this entry is (its `say` id), and the seconds of its speech received. */
  say?: SayId;
  seconds?: number;
  /** A yes/no question. */
  question?: boolean;
  /** The answer was cut off before its end. */
  cut?: boolean;
}

export type Phase =
  | "off"
  | "connecting"
  | "reconnecting"
  | "signed-out"
  | "closed"
  | "mic-refused"
  | "listening"
  | "speaking"
  | "thinking"
  | "error"
  | "ready";

/** What the phase follows from. */
export interface Flags {
  started: boolean;
  connected: boolean;
  /** The socket dropped before (so this is a reconnection). */
  dropped: boolean;
  signedOut: boolean;
  /** The daemon closed the session with a code that says trying again will not help. */
  closed: boolean;
  micRefused: boolean;
  pressing: boolean;
  handsFree: boolean;
  speaking: boolean;
  thinking: boolean;
  error: boolean;
}

/** The one state the panel shows, most pressing first. */
export function phaseOf(f: Flags): Phase {
  if (!f.started) return "off";
  if (f.signedOut) return "signed-out";
  if (f.closed) return "closed";
  if (!f.connected) return f.dropped ? "reconnecting" : "connecting";
  if (f.micRefused) return "mic-refused";
  if (f.pressing) return "listening";
  if (f.speaking) return "speaking";
  if (f.thinking) return "thinking";
  if (f.error) return "error";
  return f.handsFree ? "listening" : "ready";
}

export interface VoiceView {
  phase: Phase;
  /** Why, for the phases that need it (the error, the refusal). */
  detail: string;
  entries: Entry[];
  /** The yes/no question waiting for an answer ("" when none). */
  confirm: string;
  handsFree: boolean;
}

/** How many transcript entries the panel keeps. */
export const KEEP = 200;

/**
 * Detects the start of speech in the microphone's frames while an answer plays (hands-free
 * barge-in): `frames` loud frames in a row. The browser's echo cancellation keeps the answer
 * itself out of the microphone.
 */
export class Onset {
  private loud = 0;

  constructor(
    readonly threshold = 0.03,
    readonly frames = 3,
  ) {}

  push(frame: Int16Array): boolean {
    this.loud = rms(frame) >= this.threshold ? this.loud + 1 : 0;
    return this.loud >= this.frames;
  }

  reset(): void {
    this.loud = 0;
  }
}

// -- the session ---------------------------------------------------------------------------

export interface SocketLike {
  readonly readyState: number;
  binaryType: BinaryType;
  send(data: string | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
}

export interface MicrophoneLike {
  readonly open: boolean;
  onFrame: (frame: ArrayBuffer) => void;
  start(): Promise<void>;
  stop(): void;
}

export interface PlayerLike {
  readonly playing: boolean;
  onIdle: () => void;
  play(pcm: ArrayBuffer, sampleRate: number): number;
  stop(): void;
}

export interface SessionParts {
  url: string;
  connect: (url: string) => SocketLike;
  microphone: MicrophoneLike;
  player: PlayerLike;
  /** Waits before reconnecting (setTimeout in the page); returns how to cancel the wait. */
  later?: (ms: number, run: () => void) => () => void;
}

const OPEN = 1;
const FIRST_RETRY = 1000;
const LAST_RETRY = 15000;

/** The browser's side of one voice conversation; `onChange` gets every new view. */
export class VoiceSession {
  onChange: (view: VoiceView) => void = () => {};
  view: VoiceView = { phase: "off", detail: "", entries: [], confirm: "", handsFree: false };

  private readonly parts: Required<SessionParts>;
  private socket: SocketLike | null = null;
  private flags: Flags = {
    started: false,
    connected: false,
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
  private detail = "";
  private entries: Entry[] = [];
  private confirm = "";
  private counter = 0;
  private retry = FIRST_RETRY;
  private cancelRetry: () => void = () => {};
  /** The answer whose audio is arriving, and whether it is silenced (cut off by the person). */
  private say: { id: SayId; rate: number; muted: boolean; done: boolean } | null = null;
  /** The answer whose audio the player has (it may still play after its `said`). */
  private playing: SayId | null = null;
  private sentThisPress = 0;
  /** The daemon answered while the button was still held (its VAD ended the utterance). */
  private answeredThisPress = false;
  private readonly onset = new Onset();

  constructor(parts: SessionParts) {
    this.parts = {
      later: (ms, run) => {
        const timer = setTimeout(run, ms);
        return () => clearTimeout(timer);
      },
      ...parts,
    };
    this.parts.microphone.onFrame = (frame) => this.frame(frame);
    this.parts.player.onIdle = () => {
      if (!this.say) this.set({ speaking: false });
    };
  }

  /** Opens the socket (once; later calls do nothing). */
  start(): void {
    if (this.flags.started) return;
    this.set({ started: true });
    this.connect();
  }

  /** Ends the session for good: socket closed, microphone released, playback silenced. */
  close(): void {
    this.cancelRetry();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close(1000, "closed by the person");
    }
    this.parts.microphone.stop();
    this.parts.player.stop();
    this.say = null;
    this.set({ started: false, connected: false, pressing: false, handsFree: false, speaking: false });
  }

  /** Reconnects by hand after the daemon closed the session for good (or refused the token). */
  reconnect(): void {
    if (!this.flags.started || this.socket || !(this.flags.signedOut || this.flags.closed)) return;
    this.cancelRetry();
    this.retry = FIRST_RETRY;
    this.detail = "";
    this.set({ signedOut: false, closed: false, dropped: false });
    this.connect();
  }

  /** Push-to-talk pressed: cut off any answer, open the microphone, stream while held. */
  press(): void {
    if (this.flags.pressing || !this.flags.connected) return;
    this.interrupt();
    this.sentThisPress = 0;
    this.answeredThisPress = false;
    this.set({ pressing: true, error: false, micRefused: false });
    this.openMicrophone();
  }

  /** Push-to-talk released: the utterance is over now. */
  release(): void {
    if (!this.flags.pressing) return;
    const spoke = this.sentThisPress > 0;
    if (spoke) this.send({ type: "end" });
    if (!this.flags.handsFree) this.parts.microphone.stop();
    // Already answered: the daemon has nothing left to hear, so there is nothing to wait for.
    const waiting = spoke && !this.answeredThisPress;
    this.set({ pressing: false, thinking: this.flags.thinking || waiting });
  }

  /** Hands-free: the microphone streams all the time and the daemon finds the utterances. */
  setHandsFree(on: boolean): void {
    if (on === this.flags.handsFree) return;
    this.onset.reset();
    this.set({ handsFree: on, micRefused: false });
    this.send({ type: "endpoint", endpoint: this.endpoint() });
    if (on) this.openMicrophone();
    else if (!this.flags.pressing) this.parts.microphone.stop();
  }

  /** A typed command (or the answer to a question). */
  sendText(text: string): void {
    const words = text.trim();
    if (!words || !this.flags.connected) return;
    this.interrupt();
    this.send({ type: "text", text: words });
    this.confirm = "";
    this.add({ who: "you", text: words });
    this.set({ thinking: true, error: false });
  }

  answer(yes: boolean): void {
    this.sendText(yes ? "yes" : "no");
  }

  // -- inside --------------------------------------------------------------------------------

  private connect(): void {
    let socket: SocketLike;
    try {
      socket = this.parts.connect(this.parts.url);
    } catch (error) {
      this.dropped(`cannot open the voice socket: ${String(error)}`);
      return;
    }
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => {
      this.send({ type: "hello", format: "pcm16", sample_rate: SEND_RATE, endpoint: this.endpoint() });
    };
    socket.onmessage = (event: MessageEvent) => {
      if (typeof event.data === "string") {
        const message = parseServerMessage(event.data);
        if (message) this.receive(message);
      } else if (event.data instanceof ArrayBuffer) {
        this.audio(event.data);
      }
    };
    socket.onclose = (event: CloseEvent) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.parts.player.stop();
      this.say = null;
      if (FINAL_CLOSES.includes(event.code)) {
        this.parts.microphone.stop();
        const signedOut = event.code === POLICY_VIOLATION;
        this.detail = signedOut
          ? event.reason || "not signed in"
          : `blitz closed the voice session (${event.code}): ${event.reason || "no reason given"}`;
        this.set({
          connected: false,
          signedOut,
          closed: !signedOut,
          pressing: false,
          handsFree: false,
          speaking: false,
          thinking: false,
        });
        return;
      }
      this.dropped(event.reason || `the voice socket closed (${event.code})`);
    };
  }

  /** How the daemon is to end utterances: at its VAD's silence hands-free, else at `end`. */
  private endpoint(): Endpoint {
    return this.flags.handsFree ? "vad" : "client";
  }

  private dropped(why: string): void {
    this.detail = why;
    this.set({ connected: false, dropped: true, speaking: false, thinking: false });
    const wait = this.retry;
    this.retry = Math.min(this.retry * 2, LAST_RETRY);
    this.cancelRetry = this.parts.later(wait, () => {
      if (this.flags.started && !this.socket) this.connect();
    });
  }

  private receive(message: ServerMessage): void {
    if (this.flags.pressing && message.type !== "ready") this.answeredThisPress = true;
    switch (message.type) {
      case "ready":
        this.retry = FIRST_RETRY;
        this.detail = "";
        this.set({ connected: true, signedOut: false, closed: false });
        // A reconnection while hands-free: the microphone never stopped; keep streaming.
        return;
      case "heard":
        if (this.confirm) this.confirm = "";
        this.add({ who: "you", text: message.text });
        this.set({ thinking: true, error: false });
        return;
      case "say":
        this.say = { id: message.id, rate: message.sample_rate, muted: false, done: false };
        this.onset.reset();
        this.attachSay(message.id, message.text);
        this.set({ speaking: true, thinking: false });
        return;
      case "said":
        if (this.say && String(this.say.id) === String(message.id)) this.say = null;
        if (!this.parts.player.playing) this.set({ speaking: false });
        return;
      case "stopped":
        if (this.say && String(this.say.id) === String(message.id)) this.say = null;
        this.parts.player.stop();
        this.update((e) => e.say !== undefined && String(e.say) === String(message.id), { cut: true });
        this.set({ speaking: false });
        return;
      case "confirm":
        this.confirm = message.text;
        if (!this.mergeLast(message.text, { question: true })) {
          this.add({ who: "blitz", text: message.text, question: true });
        }
        this.set({ thinking: false });
        return;
      case "error":
        this.detail = message.message;
        this.add({ who: "error", text: message.message });
        this.set({ thinking: false, error: true });
        return;
      case "event":
        this.add({ who: "event", text: message.text, kind: message.kind });
        this.set({});
        return;
    }
  }

  /** An answer's text: a new entry, or the question, error or event just shown if it says the
   * same (the daemon speaks those too). */
  private attachSay(say: SayId, text: string): void {
    if (!this.mergeLast(text, { say, seconds: 0 })) this.add({ who: "blitz", text, say, seconds: 0 });
  }

  private mergeLast(text: string, change: Partial<Entry>): boolean {
    const last = this.entries[this.entries.length - 1];
    if (!last || last.who === "you" || last.say !== undefined || last.text !== text) return false;
    this.entries = [...this.entries.slice(0, -1), { ...last, ...change }];
    return true;
  }

  private audio(pcm: ArrayBuffer): void {
    const say = this.say;
    if (!say || say.muted) return;
    const seconds = this.parts.player.play(pcm, say.rate);
    this.playing = say.id;
    this.update((e) => e.say !== undefined && String(e.say) === String(say.id), {}, seconds);
    this.set({ speaking: true });
  }

  private frame(frame: ArrayBuffer): void {
    const streaming = this.flags.pressing || this.flags.handsFree;
    if (!streaming || !this.socket || this.socket.readyState !== OPEN || !this.flags.connected) return;
    if (this.flags.handsFree && this.flags.speaking && this.onset.push(new Int16Array(frame))) {
      this.interrupt();
      this.set({});
    }
    this.socket.send(frame);
    if (this.flags.pressing) this.sentThisPress++;
  }

  /** Barge-in: silence the answer now and tell the daemon to stop it. */
  private interrupt(): void {
    const speaking = this.parts.player.playing || this.say !== null;
    if (!speaking) return;
    const cut = this.say?.id ?? (this.parts.player.playing ? this.playing : null);
    this.parts.player.stop();
    if (this.say) this.say.muted = true;
    if (cut !== null) this.update((e) => e.say !== undefined && String(e.say) === String(cut), { cut: true });
    this.send({ type: "stop" });
    this.onset.reset();
    this.flags.speaking = false;
  }

  private openMicrophone(): void {
    this.parts.microphone.start().catch((error: unknown) => {
      const refused = (error as { refused?: unknown } | null)?.refused === true;
      this.detail = error instanceof Error ? error.message : String(error);
      this.add({ who: "error", text: this.detail });
      this.set({ pressing: false, handsFree: false, micRefused: refused, error: !refused });
    });
  }

  private send(message: ClientMessage): void {
    if (this.socket && this.socket.readyState === OPEN) this.socket.send(JSON.stringify(message));
  }

  private add(entry: Omit<Entry, "n">): void {
    this.entries = [...this.entries.slice(-(KEEP - 1)), { ...entry, n: ++this.counter }];
  }

  private update(match: (e: Entry) => boolean, change: Partial<Entry>, addSeconds = 0): void {
    this.entries = this.entries.map((e) =>
      match(e) ? { ...e, ...change, seconds: (e.seconds ?? 0) + addSeconds } : e,
    );
  }

  private set(change: Partial<Flags>): void {
    this.flags = { ...this.flags, ...change };
    const phase = phaseOf(this.flags);
    const detail = phase === "signed-out" || phase === "closed" || phase === "mic-refused" ||
      phase === "error" || phase === "reconnecting" ? this.detail : "";
    this.view = { phase, detail, entries: this.entries, confirm: this.confirm, handsFree: this.flags.handsFree };
    this.onChange(this.view);
  }
}
