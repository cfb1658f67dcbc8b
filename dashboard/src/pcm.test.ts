import { describe, expect, it } from "vitest";
import { Framer, Resampler, floatToPcm16, pcm16ToFloat, rms } from "./pcm";

function sine(rate: number, hz: number, seconds: number): Float32Array {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = 0.5 * Math.sin((2 * Math.PI * hz * i) / rate);
  return out;
}

/** The strength of `hz` in `samples` (one bin of a discrete Fourier transform). */
function strength(samples: Float32Array, rate: number, hz: number): number {
  let re = 0;
  let im = 0;
  for (let i = 0; i < samples.length; i++) {
    re += samples[i] * Math.cos((2 * Math.PI * hz * i) / rate);
    im += samples[i] * Math.sin((2 * Math.PI * hz * i) / rate);
  }
  return (2 * Math.hypot(re, im)) / samples.length;
}

describe("PCM16", () => {
  it("clips floats to 16 bits and reads them back little-endian", () => {
    const pcm = floatToPcm16(Float32Array.from([0, 1, -1, 2, -2, 0.5]));
    expect([...pcm]).toEqual([0, 32767, -32768, 32767, -32768, 16384]);
    const back = pcm16ToFloat(pcm.buffer);
    expect(back[2]).toBe(-1);
    expect(back[5]).toBeCloseTo(0.5, 4);
    const bytes = new Uint8Array(pcm.buffer);
    expect([bytes[2], bytes[3]]).toEqual([0xff, 0x7f]); // 32767, low byte first
  });

  it("measures loudness as a fraction of full scale", () => {
    expect(rms(new Int16Array(100))).toBe(0);
    expect(rms(Int16Array.from([16384, -16384]))).toBeCloseTo(0.5, 4);
  });
});

describe("Resampler", () => {
  it("takes 48 kHz to 16 kHz keeping a voice-band tone, one sample out for three in", () => {
    const input = sine(48000, 440, 1);
    const out = new Resampler(48000, 16000).push(input);
    expect(out.length).toBe(16000);
    expect(strength(out, 16000, 440)).toBeCloseTo(0.5, 1);
  });

  it("damps a tone above the new Nyquist frequency instead of folding it back loudly", () => {
    const out = new Resampler(48000, 16000).push(sine(48000, 15000, 1));
    // 15 kHz would alias to 1 kHz; the box filter leaves little of it.
    expect(strength(out, 16000, 1000)).toBeLessThan(0.15);
  });

  it("gives the same samples block by block as in one go, at a rate that does not divide", () => {
    const input = sine(44100, 300, 0.5);
    const whole = new Resampler(44100).push(input);
    const piecewise = new Resampler(44100);
    const parts: number[] = [];
    for (let i = 0; i < input.length; i += 128) parts.push(...piecewise.push(input.subarray(i, i + 128)));
    expect(parts.length).toBe(whole.length);
    expect(Math.abs(whole.length - 0.5 * 16000)).toBeLessThanOrEqual(1);
    parts.forEach((x, i) => expect(x).toBeCloseTo(whole[i], 6));
  });

  it("interpolates going up", () => {
    const out = new Resampler(8000, 16000).push(Float32Array.from([0, 1, 0, -1]));
    expect([...out]).toEqual([0, 0.5, 1, 0.5, 0, -0.5]);
  });
});

describe("Framer", () => {
  it("cuts samples into frames of one size and keeps the rest for later", () => {
    const framer = new Framer(4);
    expect(framer.push(Int16Array.from([1, 2, 3]))).toEqual([]);
    const frames = framer.push(Int16Array.from([4, 5, 6, 7, 8, 9]));
    expect(frames.map((f) => [...f])).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    expect(framer.push(Int16Array.from([10, 11, 12])).map((f) => [...f])).toEqual([[9, 10, 11, 12]]);
  });
});
