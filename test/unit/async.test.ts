/** Promise helpers: mapLimit and Limiter keep their concurrency bound and their order. */
import { Limiter, mapLimit } from '../../pkg/util/async';

const tick = () => new Promise((r) => setTimeout(r, 1));

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
  it('keeps results in input order with at most `limit` in flight', async () => {
    let active = 0;
    let peak = 0;
    const out = await mapLimit([3, 1, 2, 5, 4], 2, async (x) => {
      peak = Math.max(peak, ++active);
      await new Promise((r) => setTimeout(r, x));
      active--;
      return x * 2;
    });
    expect(out).toEqual([6, 2, 4, 10, 8]);
    expect(peak).toBe(2);
  });
});
