import { LagMonitor } from '../../pkg/apiserver/overload';

describe('LagMonitor', () => {
  it('reports overload from one late tick and recovers as quick ticks halve it', () => {
    const samples: number[] = [];
    const m = new LagMonitor({ maxLagMs: 100, onSample: (ms) => samples.push(ms) });
    expect(m.overloaded()).toBe(false);
    m.observe(400);
    expect(m.overloaded()).toBe(true);
    expect(m.lagMs()).toBe(400);
    m.observe(0); // 200
    m.observe(0); // 100: not above the limit
    expect(m.overloaded()).toBe(false);
    expect(samples).toEqual([400, 200, 100]);
  });

  it('keeps the larger of a new lateness and the decayed one', () => {
    const m = new LagMonitor({ maxLagMs: 100 });
    m.observe(300);
    m.observe(250);
    expect(m.lagMs()).toBe(250);
  });

  it('never sheds with a limit of 0', () => {
    const m = new LagMonitor({ maxLagMs: 0 });
    m.observe(10_000);
    expect(m.overloaded()).toBe(false);
  });

  it('measures how late its timer runs', async () => {
    let now = 0;
    const samples: number[] = [];
    const m = new LagMonitor({ maxLagMs: 100, intervalMs: 5, now: () => now, onSample: (ms) => samples.push(ms) });
    m.start();
    now = 505; // the first tick comes 500 ms after it was due
    await new Promise((r) => setTimeout(r, 20));
    m.stop();
    expect(samples[0]).toBe(500);
    expect(samples[1]).toBe(250); // on time from then on: halved each tick
  });
});
