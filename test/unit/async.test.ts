/** Promise helpers: mapLimit and Limiter keep their concurrency bound and their order; sleep and settlesWithin run on a clock. */
import { Limiter, mapLimit, settlesWithin, sleep } from '../../pkg/util/async';
import { FakeClock, settle } from '../../pkg/util/clock';

/** Lets other callers in: a turn of the event loop, not a timer. */
const tick = () => new Promise((r) => setImmediate(r));

describe('Limiter', () => {
  it('runs at most `limit` calls at once across callers, the rest in arrival order', async () => {
    const limiter = new Limiter(2);
    let active = 0;
    let peak = 0;
    const started: number[] = [];
    const job = (i: number) => limiter.run(async () => {
      started.push(i);
      peak = Math.max(peak, ++active);
      await tick();
      active--;
      return i * 10;
    });
    const results = await Promise.all([job(0), job(1), job(2), job(3), job(4)]);
    expect(results).toEqual([0, 10, 20, 30, 40]);
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4]);
  });

  it('frees the slot of a call that throws', async () => {
    const limiter = new Limiter(1);
    await expect(limiter.run(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    await expect(limiter.run(async () => 'next')).resolves.toBe('next');
  });
});

describe('mapLimit', () => {
  it('keeps results in input order with at most `limit` in flight, each next item taken by the first worker free', async () => {
    const clock = new FakeClock(0);
    let active = 0;
    let peak = 0;
    const startedAt: number[] = [];
    let out: number[] | undefined;
    void mapLimit([3, 1, 2, 5, 4], 2, async (x, i) => {
      startedAt[i] = clock.now();
      peak = Math.max(peak, ++active);
      await clock.sleep(x); // item x takes x ms
      active--;
      return x * 2;
    }).then((r) => (out = r));
    await clock.stepAsync(7);
    expect(out).toBeUndefined();
    await clock.stepAsync(1);
    expect(out).toEqual([6, 2, 4, 10, 8]);
    expect(startedAt).toEqual([0, 0, 1, 3, 3]);
    expect(peak).toBe(2);
  });
});

describe('sleep and settlesWithin on a clock', () => {
  it('sleep resolves once its clock has moved `ms`', async () => {
    const clock = new FakeClock(0);
    let done = false;
    void sleep(100, clock).then(() => (done = true));
    await clock.stepAsync(99);
    expect(done).toBe(false);
    await clock.stepAsync(1);
    expect(done).toBe(true);
  });

  it('settlesWithin: true when the promise settles (either way) in time, false at the timeout; no timer left behind', async () => {
    const clock = new FakeClock(0);
    expect(await settlesWithin(Promise.reject(new Error('x')), 50, clock)).toBe(true);
    expect(clock.pending()).toBe(0);
    let result: boolean | undefined;
    void settlesWithin(new Promise(() => undefined), 50, clock).then((r) => (result = r));
    await clock.stepAsync(49);
    expect(result).toBeUndefined();
    await clock.stepAsync(1);
    expect(result).toBe(false);
    expect(clock.pending()).toBe(0);
    let resolve!: () => void;
    void settlesWithin(new Promise<void>((r) => (resolve = r)), 50, clock).then((r) => (result = r));
    await clock.stepAsync(30);
    resolve();
    await settle();
    expect(result).toBe(true);
    expect(clock.pending()).toBe(0);
  });
});
