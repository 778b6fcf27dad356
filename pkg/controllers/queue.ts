/**
 * A work queue of keys, as client-go's: a key waiting is queued once however often it is
 * added, a key is never processed by two workers at once (re-adds while it runs are kept for
 * after), and a failed key comes back after an exponential delay.
 */
import type { Logger } from 'pino';
import { realClock, type Clock, type TimerHandle } from '../util/clock';

export interface WorkQueueOptions {
  /** Processes one key; throwing means "retry later". */
  sync(key: string): Promise<void>;
  logger: Logger;
  workers?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Time of delayed adds and retries. @default realClock */
  clock?: Clock;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: TimerHandle }>();
  private readonly clock: Clock;
  private active = 0;
  private stopped = false;

  constructor(private readonly o: WorkQueueOptions) {
    this.clock = o.clock ?? realClock;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /**
   * Adds the key after a delay (retries, timed re-checks, coalescing bursts of events). One timer
   * per key, the earliest: a sync sees the whole current state and re-arms any later check it
   * still needs, so a later timer for the same key adds nothing.
   */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    const at = this.clock.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) this.clock.clearTimeout(pending.timer);
    const timer = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  depth(): number {
    return this.queue.length;
  }

  stop(): void {
    this.stopped = true;
    for (const d of this.delayed.values()) this.clock.clearTimeout(d.timer);
    this.delayed.clear();
  }

  private pump(): void {
    while (!this.stopped && this.active < (this.o.workers ?? 4) && this.queue.length) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      this.running.add(key);
      this.active++;
      void this.process(key);
    }
  }

  private async process(key: string): Promise<void> {
    try {
      await this.o.sync(key);
      this.failures.delete(key);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = Math.min((this.o.baseDelayMs ?? 100) * 2 ** (n - 1), this.o.maxDelayMs ?? 30_000);
      this.o.logger.warn({ key, attempt: n, retryInMs: delay, err: (err as Error).message }, 'sync failed; will retry');
      this.addAfter(key, delay);
    } finally {
      this.running.delete(key);
      this.active--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
