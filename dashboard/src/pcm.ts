/**
 * Raw audio as the voice socket carries it: 16-bit mono little-endian PCM. The microphone's
 * float samples at the audio device's rate are resampled to 16 kHz here (in the capture
 * worklet), and the spoken answers' PCM is turned back into floats for Web Audio.
 */

/** The rate the voice socket's microphone audio is sent at. */
export const SEND_RATE = 16000;

/** Float samples in [-1, 1] as 16-bit PCM (clipped). */
export function floatToPcm16(samples: Float32Array): Int16Array<ArrayBuffer> {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const x = Math.max(-1, Math.min(1, samples[i]));
    out[i] = x < 0 ? Math.round(x * 0x8000) : Math.round(x * 0x7fff);
  }
  return out;
}

/** Little-endian 16-bit PCM bytes as float samples in [-1, 1); an odd last byte is ignored. */
export function pcm16ToFloat(bytes: ArrayBuffer): Float32Array<ArrayBuffer> {
  const view = new DataView(bytes);
  const out = new Float32Array(Math.floor(bytes.byteLength / 2));
  for (let i = 0; i < out.length; i++) out[i] = view.getInt16(i * 2, true) / 0x8000;
  return out;
}

/** The root mean square of 16-bit samples, as a fraction of full scale. */
export function rms(samples: Int16Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return Math.sqrt(sum / samples.length) / 0x8000;
}

/**
 * A streaming resampler of mono float audio. Going down (48 kHz to 16 kHz), each output sample
 * is the mean of the input samples it spans: a box filter, enough against aliasing for speech
 * that a speech-to-text model hears. Going up, it interpolates linearly. Its state carries over
 * between calls, so blocks of any size give the same samples as one long block.
 */
export class Resampler {
  private readonly step: number;
  private sum = 0;
  private count = 0;
  /** Down: input samples still needed for the next output. Up: the next output's position
   * between the previous input sample (0) and the next (1). */
  private position: number;
  private previous = 0;
  private started = false;

  constructor(
    readonly from: number,
    readonly to: number = SEND_RATE,
  ) {
    if (!(from > 0 && to > 0)) throw new Error(`bad sample rates ${from} -> ${to}`);
    this.step = from / to;
    this.position = this.step >= 1 ? this.step : 0;
  }

  push(input: Float32Array): Float32Array {
    return this.step >= 1 ? this.down(input) : this.up(input);
  }

  private down(input: Float32Array): Float32Array {
    const out: number[] = [];
    for (let i = 0; i < input.length; i++) {
      this.sum += input[i];
      this.count++;
      this.position -= 1;
      if (this.position <= 0) {
        out.push(this.sum / this.count);
        this.sum = 0;
        this.count = 0;
        this.position += this.step; // the fraction left over carries into the next output
      }
    }
    return Float32Array.from(out);
  }

  private up(input: Float32Array): Float32Array {
    const out: number[] = [];
    for (let i = 0; i < input.length; i++) {
      const current = input[i];
      if (!this.started) {
        this.previous = current;
        this.started = true;
        continue;
      }
      // Outputs from the previous input sample (at 0) up to this one (at 1, output next time).
      while (this.position < 1) {
        out.push(this.previous + (current - this.previous) * this.position);
        this.position += this.step;
      }
      this.position -= 1;
      this.previous = current;
    }
    return Float32Array.from(out);
  }
}

/**
 * Cuts a stream of samples into frames of a fixed length (the last, partial frame waits for
 * more), so that the socket gets small frames of equal size whatever block size the audio
 * device delivers.
 */
export class Framer {
  private buffer: Int16Array<ArrayBuffer>;
  private filled = 0;

  constructor(readonly size: number) {
    this.buffer = new Int16Array(size);
  }

  push(samples: Int16Array): Int16Array<ArrayBuffer>[] {
    const frames: Int16Array<ArrayBuffer>[] = [];
    let offset = 0;
    while (offset < samples.length) {
      const take = Math.min(this.size - this.filled, samples.length - offset);
      this.buffer.set(samples.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === this.size) {
        frames.push(this.buffer);
        this.buffer = new Int16Array(this.size);
        this.filled = 0;
      }
    }
    return frames;
  }
}
