/**
 * The one clock every component takes: the time now and timers. Production code uses
 * {@link realClock}; tests use {@link FakeClock} and step it, so a timer's effect is asserted
 * exactly instead of slept on.
 */

/** A scheduled callback; cancel it with {@link Clock.clearTimeout}. */
export interface TimerHandle {
  /** Lets the process exit while the timer is pending (no-op on a fake clock). */
  unref(): TimerHandle;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** `now()` as a Date. */
  date(): Date;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  /** Runs `fn` every `ms` until cleared with {@link clearInterval}. */
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
  /** Resolves after `ms` (at once when `signal` aborts). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * Node's longest timer. A longer delay is not an error there: Node warns and fires after 1 ms, so
 * a user's `intervalSeconds: 2592000` (30 days) would run a health check every millisecond.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer of any length: a chain of Node timers of at most MAX_TIMER_MS. */
class LongTimer implements TimerHandle {
  private timer?: NodeJS.Timeout;
  private unrefed = false;
  private cancelled = false;

  constructor(private readonly fn: () => void, ms: number, private readonly every?: number) {
    this.arm(ms);
  }

  private arm(left: number): void {
    if (this.cancelled) return;
    const step = Math.min(left, MAX_TIMER_MS);
    this.timer = setTimeout(() => {
      if (left > MAX_TIMER_MS) return this.arm(left - MAX_TIMER_MS);
      if (this.every !== undefined) this.arm(this.every);
      this.fn();
    }, step);
    if (this.unrefed) this.timer.unref();
  }

  unref(): TimerHandle {
    this.unrefed = true;
    this.timer?.unref();
    return this;
  }

  cancel(): void {
    this.cancelled = true;
    clearTimeout(this.timer);
  }
}

function cancelTimer(h: TimerHandle | undefined, clear: (t: NodeJS.Timeout | undefined) => void): void {
  if (h instanceof LongTimer) h.cancel();
  else clear(h as NodeJS.Timeout | undefined);
}

/** Node's clock and timers (any delay: longer ones than Node's limit are chained). */
export const realClock: Clock = {
  now: () => Date.now(),
  date: () => new Date(),
  setTimeout: (fn, ms) => (ms > MAX_TIMER_MS ? new LongTimer(fn, ms) : setTimeout(fn, ms)),
  clearTimeout: (h) => cancelTimer(h, clearTimeout),
  setInterval: (fn, ms) => (ms > MAX_TIMER_MS ? new LongTimer(fn, ms, ms) : setInterval(fn, ms)),
  clearInterval: (h) => cancelTimer(h, clearInterval),
  sleep: (ms, signal) => sleepOn(realClock, ms, signal),
};

function sleepOn(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

interface FakeTimer extends TimerHandle {
  id: number;
  at: number;
  every?: number;
  fn: () => void;
}

/**
 * A clock that moves only when told. Timers fire in time order (then in the order they were
 * set) as {@link step} or {@link stepAsync} passes their time; a timer set by a firing timer
 * fires in the same step if its time is reached.
 */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, FakeTimer>();

  constructor(start: number | Date = Date.UTC(2026, 0, 1)) {
    this.t = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.t;
  }

  date(): Date {
    return new Date(this.t);
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, Math.max(1, ms));
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) this.timers.delete((handle as FakeTimer).id);
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.clearTimeout(handle);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  /** Timers not yet fired. */
  pending(): number {
    return this.timers.size;
  }

  /** When the next timer is due, if any. */
  nextAt(): number | undefined {
    return this.next()?.at;
  }

  /** Moves time forward by `ms`, firing every timer due on the way (synchronously). */
  step(ms: number): void {
    const until = this.t + ms;
    for (let timer = this.next(); timer && timer.at <= until; timer = this.next()) this.fire(timer);
    this.t = until;
  }

  /**
   * As {@link step}, but lets promises settle after each timer fires (and before the first), so
   * async work a timer starts runs before the next timer: the way to step code that awaits.
   */
  async stepAsync(ms: number): Promise<void> {
    const until = this.t + ms;
    await settle();
    for (let timer = this.next(); timer && timer.at <= until; timer = this.next()) {
      this.fire(timer);
      await settle();
    }
    this.t = until;
    await settle();
  }

  private add(fn: () => void, ms: number, every?: number): FakeTimer {
    const timer: FakeTimer = { id: ++this.seq, at: this.t + Math.max(0, ms || 0), every, fn, unref: () => timer };
    this.timers.set(timer.id, timer);
    return timer;
  }

  private next(): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.timers.values()) if (!best || t.at < best.at || (t.at === best.at && t.id < best.id)) best = t;
    return best;
  }

  private fire(timer: FakeTimer): void {
    this.t = Math.max(this.t, timer.at);
    if (timer.every) timer.at += timer.every;
    else this.timers.delete(timer.id);
    timer.fn();
  }
}

/** Lets pending promise callbacks (and what they chain) run. */
export async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
