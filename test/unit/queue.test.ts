/** The controllers' work queue: dedupe, one worker per key, delayed adds coalesced per key, retries. */
import { WorkQueue } from '../../pkg/controllers/queue';
import { FakeClock } from '../../pkg/util/clock';
import { silentLogger } from '../../pkg/util/log';

/** A queue on a fake clock whose syncs take `holdMs` of it; sync number n (from 0) fails when `fails(n)`. */
function recorder(opts: { fails?: (n: number) => boolean; holdMs?: number; workers?: number; maxDelayMs?: number } = {}) {
  const clock = new FakeClock(0);
  const synced: Array<{ key: string; at: number }> = [];
  let running = 0;
  let maxRunning = 0;
  const queue = new WorkQueue({
    logger: silentLogger(),
    baseDelayMs: 20,
    maxDelayMs: opts.maxDelayMs,
    workers: opts.workers ?? 4,
    clock,
    sync: async (key) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      const n = synced.push({ key, at: clock.now() }) - 1;
      if (opts.holdMs) await clock.sleep(opts.holdMs);
      running--;
      if (opts.fails?.(n)) throw new Error('sync fails');
    },
  });
  return { clock, queue, synced, maxRunning: () => maxRunning };
}

describe('WorkQueue', () => {
  it('a key added many times while it waits is synced once', async () => {
    const { clock, queue, synced } = recorder({ workers: 1, holdMs: 10 });
    queue.add('busy'); // the only worker is busy: what follows waits
    queue.add('a');
    queue.add('a');
    queue.add('b');
    queue.add('a');
    await clock.stepAsync(100);
    expect(synced).toEqual([{ key: 'busy', at: 0 }, { key: 'a', at: 10 }, { key: 'b', at: 20 }]);
    expect(clock.pending()).toBe(0);
    queue.stop();
  });

  it('a key re-added while it runs is synced again afterwards, never by two workers at once', async () => {
    const { clock, queue, synced, maxRunning } = recorder({ holdMs: 30 });
    queue.add('a');
    await clock.stepAsync(5);
    queue.add('a');
    queue.add('a');
    await clock.stepAsync(24);
    expect(synced).toEqual([{ key: 'a', at: 0 }]); // still running
    await clock.stepAsync(100);
    expect(synced).toEqual([{ key: 'a', at: 0 }, { key: 'a', at: 30 }]);
    expect(maxRunning()).toBe(1);
    queue.stop();
  });

  it('delayed adds of one key coalesce into one sync at the earliest time asked', async () => {
    const { clock, queue, synced } = recorder();
    queue.addAfter('a', 60);
    queue.addAfter('a', 30); // earlier: replaces the 60 ms timer
    for (let i = 0; i < 50; i++) queue.addAfter('a', 40 + i); // later: nothing new
    expect(clock.pending()).toBe(1);
    await clock.stepAsync(29);
    expect(synced).toEqual([]);
    await clock.stepAsync(1);
    expect(synced).toEqual([{ key: 'a', at: 30 }]);
    await clock.stepAsync(1000);
    expect(synced).toHaveLength(1);
    queue.stop();
  });

  it('a failed sync is retried after a delay that doubles with each failure, up to the maximum', async () => {
    const { clock, queue, synced } = recorder({ fails: (n) => n < 4, maxDelayMs: 50 });
    queue.add('a');
    await clock.stepAsync(19);
    expect(synced.map((s) => s.at)).toEqual([0]);
    await clock.stepAsync(1000);
    // 20, then 40, then 80 capped at 50, then 50; the fifth sync works and nothing follows.
    expect(synced.map((s) => s.at)).toEqual([0, 20, 60, 110, 160]);
    expect(clock.pending()).toBe(0);
    queue.stop();
  });

  it('a success resets the retry delay', async () => {
    const { clock, queue, synced } = recorder({ fails: (n) => n === 0 || n === 2 });
    queue.add('a');
    await clock.stepAsync(20); // failed at 0, retried (and worked) at 20
    queue.add('a'); // fails again: retried 20 ms later, not 40
    await clock.stepAsync(1000);
    expect(synced.map((s) => s.at)).toEqual([0, 20, 20, 40]);
    queue.stop();
  });

  it('stop() cancels delayed adds', async () => {
    const { clock, queue, synced } = recorder();
    queue.addAfter('a', 10);
    queue.stop();
    expect(clock.pending()).toBe(0);
    await clock.stepAsync(40);
    expect(synced).toEqual([]);
    queue.addAfter('b', 10); // ignored once stopped
    expect(clock.pending()).toBe(0);
  });
});
