import { FakeClock, MAX_TIMER_MS, realClock } from '../../pkg/util/clock';

describe('FakeClock', () => {
  test('fires timers in time order as it steps, and only when due', () => {
    const clock = new FakeClock(1000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@300'), 300);
    clock.setTimeout(() => fired.push('a@100'), 100);
    const cancelled = clock.setTimeout(() => fired.push('never'), 200);
    clock.clearTimeout(cancelled);
    clock.step(99);
    expect(fired).toEqual([]);
    clock.step(1);
    expect(fired).toEqual(['a@100']);
    expect(clock.now()).toBe(1100);
    clock.step(500);
    expect(fired).toEqual(['a@100', 'b@300']);
    expect(clock.now()).toBe(1600);
    expect(clock.pending()).toBe(0);
  });

  test('intervals fire once per period until cleared; a timer set while firing fires in the same step when due', () => {
    const clock = new FakeClock(0);
    let ticks = 0;
    const h = clock.setInterval(() => ticks++, 100);
    clock.step(350);
    expect(ticks).toBe(3);
    clock.clearInterval(h);
    clock.step(1000);
    expect(ticks).toBe(3);
    const seen: number[] = [];
    clock.setTimeout(() => clock.setTimeout(() => seen.push(clock.now()), 10), 10);
    clock.step(25);
    expect(seen).toEqual([1370]);
  });

  test('sleep resolves when stepped past, or at once on abort', async () => {
    const clock = new FakeClock(0);
    let done = false;
    const p = clock.sleep(50).then(() => (done = true));
    await clock.stepAsync(49);
    expect(done).toBe(false);
    await clock.stepAsync(1);
    await p;
    expect(done).toBe(true);
    const ac = new AbortController();
    const q = clock.sleep(1e9, ac.signal);
    ac.abort();
    await q;
    expect(clock.pending()).toBe(0);
  });
});

describe('realClock', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('a timer longer than Node allows (24.8 days) fires when due, not at once', () => {
    const fired: number[] = [];
    const start = Date.now();
    realClock.setTimeout(() => fired.push(Date.now() - start), 30 * 86_400_000).unref();
    jest.advanceTimersByTime(1000);
    expect(fired).toEqual([]);
    jest.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).toEqual([]);
    jest.advanceTimersByTime(30 * 86_400_000 - MAX_TIMER_MS - 1000);
    expect(fired).toEqual([30 * 86_400_000]);
  });

  test('a long timer is cancelled by clearTimeout, at any link of its chain; a long interval repeats every period', () => {
    let fired = 0;
    const h = realClock.setTimeout(() => fired++, MAX_TIMER_MS * 2);
    jest.advanceTimersByTime(MAX_TIMER_MS + 5);
    realClock.clearTimeout(h);
    jest.advanceTimersByTime(MAX_TIMER_MS * 2);
    expect(fired).toBe(0);
    let ticks = 0;
    const every = MAX_TIMER_MS + 1000;
    const i = realClock.setInterval(() => ticks++, every);
    jest.advanceTimersByTime(every * 3 - 1);
    expect(ticks).toBe(2);
    jest.advanceTimersByTime(1);
    expect(ticks).toBe(3);
    realClock.clearInterval(i);
    jest.advanceTimersByTime(every * 3);
    expect(ticks).toBe(3);
  });
});
