/** The controllers' work queue: dedupe, one worker per key, delayed adds coalesced per key, retries. */
import { WorkQueue } from '../../pkg/controllers/queue';
import { silentLogger } from '../../pkg/util/log';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recorder(opts: { failFirst?: boolean; holdMs?: number; workers?: number } = {}) {
  const synced: Array<{ key: string; at: number }> = [];
  let running = 0;
  let maxRunning = 0;
  let failed = false;
  const queue = new WorkQueue({
    logger: silentLogger(),
    baseDelayMs: 20,
    workers: opts.workers ?? 4,
    sync: async (key) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      synced.push({ key, at: Date.now() });
      await sleep(opts.holdMs ?? 0);
      running--;
      if (opts.failFirst && !failed) {
        failed = true;
        throw new Error('first sync fails');
      }
    },
  });
  return { queue, synced, maxRunning: () => maxRunning };
}

describe('WorkQueue', () => {
  it('a key added many times while it waits is synced once', async () => {
    const { queue, synced } = recorder({ workers: 1, holdMs: 10 });
    queue.add('busy'); // the only worker is busy: what follows waits
    queue.add('a');
    queue.add('a');
    queue.add('b');
    queue.add('a');
    await sleep(80);
    expect(synced.map((s) => s.key)).toEqual(['busy', 'a', 'b']);
    queue.stop();
  });

  it('a key re-added while it runs is synced again afterwards, never by two workers at once', async () => {
    const { queue, synced, maxRunning } = recorder({ holdMs: 30 });
    queue.add('a');
    await sleep(5);
    queue.add('a');
    queue.add('a');
    await sleep(100);
    expect(synced.map((s) => s.key)).toEqual(['a', 'a']);
    expect(maxRunning()).toBe(1);
    queue.stop();
  });

  it('delayed adds of one key coalesce into one sync at the earliest time asked', async () => {
    const { queue, synced } = recorder();
    const t0 = Date.now();
    queue.addAfter('a', 60);
    queue.addAfter('a', 30); // earlier: replaces the 60 ms timer
    for (let i = 0; i < 50; i++) queue.addAfter('a', 40 + i); // later: nothing new
    await sleep(120);
    expect(synced.map((s) => s.key)).toEqual(['a']);
    expect(synced[0].at - t0).toBeGreaterThanOrEqual(25);
    expect(synced[0].at - t0).toBeLessThan(60);
    queue.stop();
  });

  it('a failed sync is retried after a delay', async () => {
    const { queue, synced } = recorder({ failFirst: true });
    queue.add('a');
    await sleep(100);
    expect(synced.map((s) => s.key)).toEqual(['a', 'a']);
    expect(synced[1].at - synced[0].at).toBeGreaterThanOrEqual(15);
    queue.stop();
  });

  it('stop() cancels delayed adds', async () => {
    const { queue, synced } = recorder();
    queue.addAfter('a', 10);
    queue.stop();
    await sleep(40);
    expect(synced).toEqual([]);
  });
});
