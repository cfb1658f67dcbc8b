/**
 * Re-reads from the API driven by events: a burst of triggers runs the job once, never two runs
 * at the same time, and a trigger during a run runs it once more afterwards. So the last answer
 * shown is always one read after the last event, and answers never arrive out of order.
 */
export class Coalescer {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;
  private dirty = false;
  private stopped = false;

  constructor(
    private readonly job: () => Promise<void>,
    private readonly delay = 120,
  ) {}

  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    if (this.timer !== null) return;
    this.timer = setTimeout(() => void this.run(), this.delay);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private async run(): Promise<void> {
    this.timer = null;
    this.running = true;
    this.dirty = false;
    try {
      await this.job();
    } catch {
      // the job reports its own errors; a failed read must not stop later ones
    } finally {
      this.running = false;
      if (this.dirty) {
        this.dirty = false;
        this.trigger();
      }
    }
  }
}
