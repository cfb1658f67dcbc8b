/**
 * The microphone's AudioWorklet: it runs on the audio thread, resamples what the microphone
 * hears to 16 kHz, and posts it to the page as 16-bit PCM frames of a fixed size (40 ms), each
 * an ArrayBuffer handed over without a copy. Built by Vite as a file of its own (`?worker&url`).
 */
import { Framer, Resampler, SEND_RATE, floatToPcm16 } from "./pcm";

// The AudioWorkletGlobalScope's names, which TypeScript's DOM library does not declare.
declare const sampleRate: number;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}
declare function registerProcessor(name: string, processor: new () => AudioWorkletProcessor): void;

/** Samples in one frame sent: 40 ms at 16 kHz, 1280 bytes. */
const FRAME = (SEND_RATE / 1000) * 40;

class MicProcessor extends AudioWorkletProcessor {
  private readonly resampler = new Resampler(sampleRate, SEND_RATE);
  private readonly framer = new Framer(FRAME);

  process(inputs: Float32Array[][]): boolean {
    const channel = inputs[0]?.[0];
    if (channel && channel.length) {
      for (const frame of this.framer.push(floatToPcm16(this.resampler.push(channel)))) {
        this.port.postMessage(frame.buffer, [frame.buffer]);
      }
    }
    return true;
  }
}

registerProcessor("blitz-mic", MicProcessor);
