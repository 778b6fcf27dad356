/** Retry pacing: the backoff's steps and jitter, and a sleep on a clock that an abort cuts short. */
import { backoffDelay, sleepUnlessAborted } from '../../pkg/util/backoff';
import { FakeClock } from '../../pkg/util/clock';

afterEach(() => jest.restoreAllMocks());

describe('backoffDelay', () => {
  it('doubles from minMs up to maxMs, with ±20 % jitter', () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    expect([0, 1, 2, 3, 4, 40].map((n) => backoffDelay(n))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
    jest.spyOn(Math, 'random').mockReturnValue(0);
    expect(backoffDelay(0, 500)).toBe(400);
    jest.spyOn(Math, 'random').mockReturnValue(1);
    expect(backoffDelay(0, 500)).toBe(600);
  });
});

describe('sleepUnlessAborted', () => {
  it('resolves true after a full sleep on its clock', async () => {
    const clock = new FakeClock(0);
    let result: boolean | undefined;
    void sleepUnlessAborted(100, new AbortController().signal, clock).then((r) => (result = r));
    await clock.stepAsync(99);
    expect(result).toBeUndefined();
    await clock.stepAsync(1);
    expect(result).toBe(true);
  });

  it('resolves false at once on abort, clearing its timer; false at once when already aborted', async () => {
    const clock = new FakeClock(0);
    const ac = new AbortController();
    const sleeping = sleepUnlessAborted(1e9, ac.signal, clock);
    expect(clock.pending()).toBe(1);
    ac.abort();
    expect(await sleeping).toBe(false);
    expect(clock.pending()).toBe(0);
    expect(await sleepUnlessAborted(100, ac.signal, clock)).toBe(false);
    expect(clock.pending()).toBe(0);
  });
});
