/** Retry pacing for background loops that must never give up (agents, watches, status writes). */
import { realClock, type Clock } from './clock';

/**
 * Exponential backoff with ±20 % jitter: `minMs`, 2×, 4×… capped at `maxMs`. The jitter keeps
 * thousands of agents that failed together (one etcd hiccup) from retrying in lockstep.
 */
export function backoffDelay(attempt: number, minMs = 1000, maxMs = 10_000): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/**
 * Sleeps `ms` on `clock` unless `signal` aborts first. Resolves true after a full sleep, false when aborted
 * (at once if already aborted); the timer is cleared on abort so nothing lingers after a stop.
 */
export function sleepUnlessAborted(ms: number, signal: AbortSignal, clock: Clock = realClock): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clock.clearTimeout(timer);
      resolve(false);
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Error message of anything thrown, for log lines. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
