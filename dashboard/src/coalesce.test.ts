import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Coalescer } from "./coalesce";

describe("Coalescer", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("runs once for a burst of triggers", async () => {
    const job = vi.fn(async () => {});
    const c = new Coalescer(job, 100);
    for (let i = 0; i < 10; i++) c.trigger();
    await vi.advanceTimersByTimeAsync(150);
    expect(job).toHaveBeenCalledTimes(1);
  });

  it("runs again after a trigger that came during a run, never two at once", async () => {
    let release: () => void = () => {};
    let running = 0;
    let most = 0;
    const job = vi.fn(async () => {
      running += 1;
      most = Math.max(most, running);
      await new Promise<void>((resolve) => (release = resolve));
      running -= 1;
    });
    const c = new Coalescer(job, 10);
    c.trigger();
    await vi.advanceTimersByTimeAsync(20);
    c.trigger();
    c.trigger();
    await vi.advanceTimersByTimeAsync(20);
    expect(job).toHaveBeenCalledTimes(1);
    release();
    await vi.advanceTimersByTimeAsync(20);
    expect(job).toHaveBeenCalledTimes(2);
    release();
    await vi.advanceTimersByTimeAsync(20);
    expect(job).toHaveBeenCalledTimes(2);
    expect(most).toBe(1);
  });

  it("keeps going after a failed run and does nothing once stopped", async () => {
    const job = vi.fn(async () => {
      throw new Error("boom");
    });
    const c = new Coalescer(job, 10);
    c.trigger();
    await vi.advanceTimersByTimeAsync(20);
    c.trigger();
    await vi.advanceTimersByTimeAsync(20);
    expect(job).toHaveBeenCalledTimes(2);
    c.trigger();
    c.stop();
    await vi.advanceTimersByTimeAsync(20);
    expect(job).toHaveBeenCalledTimes(2);
  });
});
