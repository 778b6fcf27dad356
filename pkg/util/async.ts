/** Promise helpers. */
import { realClock, type Clock, type TimerHandle } from './clock';

/** Resolves after `ms` milliseconds of `clock`. */
export function sleep(ms: number, clock: Clock = realClock): Promise<void> {
  return clock.sleep(ms);
}

/**
 * Whether `promise` settles (either way) within `ms` of `clock`. The timer is cleared afterwards so a
 * pending timeout never keeps the process alive.
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number, clock: Clock = realClock): Promise<boolean> {
  let timer: TimerHandle | undefined;
  const timeout = new Promise<false>((resolve) => (timer = clock.setTimeout(() => resolve(false), ms)));
  const settled = promise.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clock.clearTimeout(timer);
  }
}

/** `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return out;
}

/**
 * At most `limit` calls in flight across every caller; the others wait in arrival order. For a
 * resource several independent flows share (e.g. etcd write transactions of overlapping rounds).
 */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes on: `active` stays
      else this.active--;
    }
  }
}
