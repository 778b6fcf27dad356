/**
 * A work queue of keys, as client-go's: a key waiting is queued once however often it is
 * added, a key is never processed by two workers at once (re-adds while it runs are kept for
 * after), and a failed key comes back after an exponential delay.
 */
import type { Logger } from 'pino';

export interface WorkQueueOptions {
  /** Processes one key; throwing means "retry later". */
  sync(key: string): Promise<void>;
  logger: Logger;
  workers?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private active = 0;
  private stopped = false;

  constructor(private readonly o: WorkQueueOptions) {}

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
    const at = Date.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
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
    for (const d of this.delayed.values()) clearTimeout(d.timer);
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
