/**
 * Overload detection by event-loop lag. An in-flight limit alone does not keep a Node server
 * answering: past the CPU it has, requests wait unread in socket buffers, every one is late,
 * and clients time out instead of hearing "429, retry". A timer that should fire every
 * `intervalMs` measures how late it runs; while the lag is over `maxLagMs` the server answers
 * new requests with 429 at once (a few microseconds each) until it has caught up.
 */
export interface LagMonitorOptions {
  /** Lag above which the server sheds load. */
  maxLagMs: number;
  /** @default 20 */
  intervalMs?: number;
  /** Called with the decayed lag after every tick (a metric). */
  onSample?: (lagMs: number) => void;
  /** @default performance.now */
  now?: () => number;
}

export class LagMonitor {
  /** The latest measured lag, decayed: one slow tick counts, and fades after a few quick ones. */
  private lag = 0;
  private timer?: NodeJS.Timeout;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(private readonly o: LagMonitorOptions) {
    this.intervalMs = o.intervalMs ?? 20;
    this.now = o.now ?? (() => performance.now());
  }

  start(): void {
    if (this.timer || !(this.o.maxLagMs > 0)) return;
    let expected = this.now() + this.intervalMs;
    this.timer = setInterval(() => {
      const t = this.now();
      this.observe(Math.max(0, t - expected));
      expected = t + this.intervalMs;
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One tick's lateness (exposed for tests). */
  observe(lateMs: number): void {
    this.lag = Math.max(lateMs, this.lag / 2);
    this.o.onSample?.(this.lag);
  }

  lagMs(): number {
    return this.lag;
  }

  /** Whether new requests should be answered 429 now. */
  overloaded(): boolean {
    return this.o.maxLagMs > 0 && this.lag > this.o.maxLagMs;
  }
}
