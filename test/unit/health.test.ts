import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { TaskSpec } from '../../pkg/api/types.generated';
import { HealthMonitor, HealthState, checkHostPort, overallHealth, probeCommand, probeHttp, probeTcp, withDefaults, type ProbeResult, type Verdict } from '../../pkg/agent/health';

const T0 = 1_000_000;
const ok: ProbeResult = { ok: true };
const bad = (reason = 'boom'): ProbeResult => ({ ok: false, reason });

describe('HealthState', () => {
  // Each step: [seconds after start, probe ok?, expected verdict after it].
  const cases: Array<{ name: string; check: Parameters<typeof withDefaults>[0]; steps: Array<[number, boolean, Verdict]> }> = [
    { name: 'failures in the grace period do not count', check: { gracePeriodSeconds: 10, maxConsecutiveFailures: 1 }, steps: [[1, false, 'unknown'], [5, false, 'unknown'], [9, false, 'unknown'], [10, false, 'unhealthy']] },
    { name: 'a success ends the grace period early', check: { gracePeriodSeconds: 100, maxConsecutiveFailures: 2 }, steps: [[1, true, 'healthy'], [2, false, 'healthy'], [3, false, 'unhealthy']] },
    { name: 'unhealthy after maxConsecutiveFailures', check: { gracePeriodSeconds: 0, maxConsecutiveFailures: 3 }, steps: [[1, false, 'unknown'], [2, false, 'unknown'], [3, false, 'unhealthy'], [4, false, 'unhealthy']] },
    { name: 'a success resets the count', check: { gracePeriodSeconds: 0, maxConsecutiveFailures: 2 }, steps: [[1, true, 'healthy'], [2, false, 'healthy'], [3, true, 'healthy'], [4, false, 'healthy'], [5, false, 'unhealthy'], [6, true, 'healthy']] },
    { name: 'max 0 never turns unhealthy', check: { gracePeriodSeconds: 0, maxConsecutiveFailures: 0 }, steps: [[1, true, 'healthy'], [2, false, 'healthy'], [3, false, 'healthy'], [400, false, 'healthy']] },
    { name: 'defaults: 300 s grace, 3 failures', check: {}, steps: [[15, false, 'unknown'], [299, false, 'unknown'], [300, false, 'unknown'], [360, false, 'unknown'], [420, false, 'unhealthy']] },
  ];
  it.each(cases)('$name', ({ check, steps }) => {
    const s = new HealthState(withDefaults(check), T0);
    for (const [sec, pass, want] of steps) expect([sec, s.record(pass ? ok : bad(`fail@${sec}`), T0 + sec * 1000)]).toEqual([sec, want]);
  });

  it('keeps the last counted failure reason and the first probe time', () => {
    const s = new HealthState(withDefaults({ gracePeriodSeconds: 0, maxConsecutiveFailures: 2, delaySeconds: 7 }), T0);
    expect(s.firstProbeAt()).toBe(T0 + 7000);
    s.record(bad('first'), T0 + 1);
    s.record(bad('second'), T0 + 2);
    expect(s.lastFailureReason).toBe('second');
    expect(s.consecutiveFailures).toBe(2);
  });
});

describe('overallHealth', () => {
  it.each<[Verdict[], boolean | undefined]>([
    [[], undefined],
    [['healthy'], true],
    [['healthy', 'healthy'], true],
    [['healthy', 'unknown'], undefined],
    [['healthy', 'unhealthy'], false],
    [['unknown', 'unhealthy'], false],
    [['unknown'], undefined],
  ])('%j → %s', (v, want) => expect(overallHealth(v)).toBe(want));
});

describe('checkHostPort', () => {
  const spec = { ports: [{ hostPort: 31000, name: 'a', protocol: 'tcp' as const }, { hostPort: 31001, name: 'b', protocol: 'tcp' as const }] };
  it('finds by index (0 by default) and by name', () => {
    expect(checkHostPort(withDefaults({}), spec)).toBe(31000);
    expect(checkHostPort(withDefaults({ portIndex: 1 }), spec)).toBe(31001);
    expect(checkHostPort(withDefaults({ portName: 'b' }), spec)).toBe(31001);
    expect(checkHostPort(withDefaults({ portIndex: 5 }), spec)).toMatch(/no port at index 5/);
    expect(checkHostPort(withDefaults({ portName: 'zz' }), spec)).toMatch(/no port named zz/);
  });
});

describe('probers against real servers', () => {
  let server: http.Server;
  let port: number;
  let closedPort: number;
  const sockets = new Set<net.Socket>();
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/hang') return; // never answers
      if (req.url === '/redirect') return res.writeHead(302, { location: '/' }).end();
      res.statusCode = req.url === '/fail' ? 500 : 200;
      res.end('x');
    });
    server.on('connection', (s) => sockets.add(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    const tmp = net.createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    closedPort = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
  });
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await new Promise((r) => server.close(r));
  });

  it('HTTP: 2xx and 3xx healthy, 500 and refused unhealthy with the reason', async () => {
    expect(await probeHttp('127.0.0.1', port, '/', 1000)).toMatchObject({ ok: true });
    expect(await probeHttp('127.0.0.1', port, '/redirect', 1000)).toMatchObject({ ok: true });
    expect(await probeHttp('127.0.0.1', port, '/fail', 1000)).toEqual({ ok: false, reason: `HTTP GET http://127.0.0.1:${port}/fail returned 500` });
    expect((await probeHttp('127.0.0.1', closedPort, '/', 1000)).reason).toMatch(/failed: .*ECONNREFUSED/);
  });

  it('HTTP: a hanging request is aborted at the timeout', async () => {
    const t = Date.now();
    const r = await probeHttp('127.0.0.1', port, '/hang', 300);
    expect(r).toEqual({ ok: false, reason: `HTTP GET http://127.0.0.1:${port}/hang timed out after 0.3s` });
    expect(Date.now() - t).toBeLessThan(1500);
  });

  it('TCP: a listener is healthy, a closed port is not', async () => {
    expect(await probeTcp('127.0.0.1', port, 1000)).toMatchObject({ ok: true });
    expect((await probeTcp('127.0.0.1', closedPort, 1000)).reason).toMatch(/ECONNREFUSED/);
  });

  it('COMMAND: exit 0 healthy, else the code and output; no exec → unhealthy', async () => {
    const ref = { namespace: 'default', name: 't' };
    expect(await probeCommand({ exec: async () => ({ exitCode: 0, output: '' }) }, ref, 'true', 1)).toEqual({ ok: true });
    expect(await probeCommand({ exec: async () => ({ exitCode: 2, output: 'nope\n' }) }, ref, 'false', 1)).toEqual({ ok: false, reason: 'command exited with code 2: nope' });
    expect(await probeCommand({ exec: async () => ({ exitCode: 124, output: '', timedOut: true }) }, ref, 'sleep 9', 1)).toEqual({ ok: false, reason: 'command timed out after 1s' });
    expect(await probeCommand({}, ref, 'true', 1)).toEqual({ ok: false, reason: 'COMMAND checks need a runtime with exec' });
  });
});

describe('HealthMonitor', () => {
  const ref = { namespace: 'default', name: 't', uid: 'u1' };
  const spec = (checks: object[]): TaskSpec => ({ role: '*', resources: {}, ports: [{ hostPort: 1, protocol: 'tcp' }], healthChecks: checks, readinessChecks: [], taskKillGracePeriodSeconds: 0 }) as unknown as TaskSpec;
  const check = { intervalSeconds: 1, delaySeconds: 0, gracePeriodSeconds: 0, maxConsecutiveFailures: 2, timeoutSeconds: 1 };
  beforeEach(() => jest.useFakeTimers({ now: T0 }));
  afterEach(() => jest.useRealTimers());

  it('reports each change of the overall health of a task with several checks, and stops', async () => {
    const results: Record<string, boolean> = { HTTP: true, TCP: true };
    const changes: Array<[boolean, string]> = [];
    const probes: string[] = [];
    const m = new HealthMonitor({ prober: async (_r, _s, c) => (probes.push(c.protocol), results[c.protocol] ? ok : bad(`${c.protocol} down`)), onChange: (_r, h, msg) => changes.push([h, msg]) });
    m.start(ref, spec([{ ...check, protocol: 'HTTP' }, { ...check, protocol: 'TCP' }]), Date.now());
    await jest.advanceTimersByTimeAsync(10);
    expect(changes).toEqual([[true, 'all 2 health checks passed']]);
    results.TCP = false;
    await jest.advanceTimersByTimeAsync(1000);
    expect(changes).toHaveLength(1); // one failure of two
    await jest.advanceTimersByTimeAsync(1000);
    expect(changes[1]).toEqual([false, 'health check 1 (TCP) failed 2 times in a row: TCP down']);
    await jest.advanceTimersByTimeAsync(3000);
    expect(changes).toHaveLength(2); // no repeats while unchanged
    results.TCP = true;
    await jest.advanceTimersByTimeAsync(1000);
    expect(changes[2]).toEqual([true, 'all 2 health checks passed']);
    expect(m.watched()).toEqual(['default/t']);
    m.stop('default/t');
    const n = probes.length;
    await jest.advanceTimersByTimeAsync(5000);
    expect(probes.length).toBe(n);
    expect(m.watched()).toEqual([]);
  });

  it('waits delaySeconds before the first probe; a task without checks is not watched', async () => {
    const probes: number[] = [];
    const m = new HealthMonitor({ prober: async () => (probes.push(Date.now() - T0), ok), onChange: () => undefined });
    m.start(ref, spec([{ ...check, delaySeconds: 3, intervalSeconds: 2 }]), T0);
    await jest.advanceTimersByTimeAsync(7100);
    expect(probes).toEqual([3000, 5000, 7000]);
    m.start({ ...ref, name: 'none' }, spec([]), T0);
    expect(m.watched()).toEqual(['default/t']);
    m.stopAll();
  });
});
