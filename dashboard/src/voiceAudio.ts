/**
 * The browser's audio for the voice panel: the microphone (getUserMedia into the capture
 * worklet, which sends 16 kHz PCM16 frames) and the player of spoken answers (each PCM chunk
 * scheduled with Web Audio right after the one before, as it arrives; stopped at once on
 * barge-in). One AudioContext serves both, made on the first press or click.
 */
import workletUrl from "./micWorklet?worker&url";
import { pcm16ToFloat } from "./pcm";

/** Seconds between a chunk's arrival and its start, when nothing is queued before it. */
export const LEAD = 0.05;

/** When the next chunk starts: right after what is queued, never in the past. */
export function nextStart(now: number, queuedUntil: number, lead = LEAD): number {
  return Math.max(queuedUntil, now + lead);
}

/** Why the microphone could not be opened, in a person's words. */
export class MicrophoneError extends Error {
  constructor(
    message: string,
    /** The person (or the browser's settings) refused it, rather than a missing device. */
    readonly refused: boolean,
  ) {
    super(message);
  }
}

let shared: AudioContext | null = null;
let workletLoaded: Promise<void> | null = null;

/** The page's one AudioContext, resumed (a browser starts it suspended until a gesture). */
export function audioContext(): AudioContext {
  if (!shared) shared = new AudioContext();
  if (shared.state === "suspended") void shared.resume();
  return shared;
}

function loadWorklet(context: AudioContext): Promise<void> {
  if (!workletLoaded) {
    workletLoaded = context.audioWorklet.addModule(workletUrl).catch((error: unknown) => {
      workletLoaded = null; // try again on the next press
      throw new MicrophoneError(`the audio worklet did not load: ${String(error)}`, false);
    });
  }
  return workletLoaded;
}

/** The microphone, opened on `start` and released on `stop` (its light goes off). */
export class Microphone {
  private stream: MediaStream | null = null;
  private source: MediaStreamAudioSourceNode | null = null;
  private node: AudioWorkletNode | null = null;
  private sink: GainNode | null = null;
  private opening: Promise<void> | null = null;
  /** Counts `stop` calls, so that an opening that `stop` overtook releases what it got. */
  private generation = 0;

  /** Called with each 16 kHz PCM16 frame the microphone gives. */
  onFrame: (frame: ArrayBuffer) => void = () => {};

  get open(): boolean {
    return this.stream !== null;
  }

  /** Opens the microphone; throws a MicrophoneError when it is refused or missing. */
  start(): Promise<void> {
    if (this.stream) return Promise.resolve();
    if (!this.opening) {
      this.opening = this.openMicrophone().finally(() => {
        this.opening = null;
      });
    }
    return this.opening;
  }

  private async openMicrophone(): Promise<void> {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new MicrophoneError("this page cannot use a microphone (it needs https or localhost)", false);
    }
    const generation = this.generation;
    const context = audioContext();
    // The worklet loads while the person answers the browser's question about the microphone.
    const worklet = loadWorklet(context);
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (error) {
      const name = error instanceof DOMException ? error.name : "";
      const refused = name === "NotAllowedError" || name === "SecurityError";
      const why = refused
        ? "the microphone was refused: allow it in the browser's site settings"
        : `no microphone: ${error instanceof Error ? error.message : String(error)}`;
      throw new MicrophoneError(why, refused);
    }
    await worklet;
    if (generation !== this.generation) {
      for (const track of stream.getTracks()) track.stop();
      return;
    }
    this.stream = stream;
    this.source = context.createMediaStreamSource(stream);
    this.node = new AudioWorkletNode(context, "blitz-mic", { numberOfOutputs: 1 });
    this.node.port.onmessage = (event: MessageEvent<ArrayBuffer>) => {
      if (this.stream) this.onFrame(event.data);
    };
    // A muted path to the speakers keeps the worklet in the graph the context renders.
    this.sink = context.createGain();
    this.sink.gain.value = 0;
    this.source.connect(this.node).connect(this.sink).connect(context.destination);
  }

  stop(): void {
    this.generation++;
    this.source?.disconnect();
    this.node?.disconnect();
    this.sink?.disconnect();
    if (this.node) this.node.port.onmessage = null;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    this.source = null;
    this.node = null;
    this.sink = null;
  }
}

/** Plays the spoken answers' PCM16 chunks back to back; `stop` silences them at once. */
export class Player {
  private readonly sources = new Set<AudioBufferSourceNode>();
  private queuedUntil = 0;

  /** Called when the last scheduled chunk has finished playing (not after `stop`). */
  onIdle: () => void = () => {};

  get playing(): boolean {
    return this.sources.size > 0;
  }

  /** Schedules one chunk of 16-bit mono PCM at `sampleRate`; returns its length in seconds. */
  play(pcm: ArrayBuffer, sampleRate: number): number {
    const samples = pcm16ToFloat(pcm);
    if (samples.length === 0) return 0;
    const context = audioContext();
    const buffer = context.createBuffer(1, samples.length, sampleRate);
    buffer.copyToChannel(samples, 0);
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(context.destination);
    const start = nextStart(context.currentTime, this.queuedUntil);
    source.start(start);
    this.queuedUntil = start + buffer.duration;
    this.sources.add(source);
    source.onended = () => {
      if (!this.sources.delete(source)) return;
      if (this.sources.size === 0) this.onIdle();
    };
    return buffer.duration;
  }

  stop(): void {
    const playing = [...this.sources];
    this.sources.clear();
    for (const source of playing) {
      source.onended = null;
      try {
        source.stop();
      } catch {
        // never started: nothing to silence
      }
      source.disconnect();
    }
    this.queuedUntil = 0;
  }
}
