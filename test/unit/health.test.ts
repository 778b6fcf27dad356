/**
 * The agent's health and readiness checks: the pure decisions (HealthState, ReadinessState), the
 * probers against real local servers (their timeouts on a FakeClock), and the HealthMonitor's
 * schedule stepped on a FakeClock with fake probers: no test waits on a wall-clock timer.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReadinessCheckResult, TaskSpec } from '../../pkg/api/types.generated';
import {
  HealthMonitor, HealthState, MAX_READINESS_BODY, ReadinessState, checkHostPort, defaultReadinessProber, overallHealth, probeCommand, probeHttp, probeReadiness, probeTcp,
  readinessWithDefaults, withDefaults, type ProbeResult, type ReadinessProbeResult, type Verdict,
} from '../../pkg/agent/health';
import { FakeClock, settle } from '../../pkg/util/clock';

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
  const requested: string[] = [];
  /** Resolves once the server got a request for `url` (the probe is in flight). */
  const waitForRequest = async (url: string) => {
    while (!requested.includes(url)) await new Promise((r) => setImmediate(r));
  };
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      requested.push(req.url ?? '');
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
    const clock = new FakeClock(T0);
    let result: ProbeResult | undefined;
    void probeHttp('127.0.0.1', port, '/hang', 300, clock).then((r) => (result = r));
    await waitForRequest('/hang');
    clock.step(299);
    await settle();
    expect(result).toBeUndefined();
    clock.step(1);
    await settle();
    expect(result).toEqual({ ok: false, reason: `HTTP GET http://127.0.0.1:${port}/hang timed out after 0.3s` });
  });

  it('TCP and COMMAND: the timeout runs on the clock too', async () => {
    const clock = new FakeClock(T0);
    let result: ProbeResult | undefined;
    // A runtime that never answers: the guard 1 s after the command's own timeout ends the probe.
    void probeCommand({ exec: () => new Promise(() => undefined) }, { namespace: 'default', name: 't' }, 'sleep 9', 2, clock).then((r) => (result = r));
    clock.step(2999);
    await settle();
    expect(result).toBeUndefined();
    clock.step(1);
    await settle();
    expect(result).toEqual({ ok: false, reason: 'command timed out after 2s' });
    expect(clock.pending()).toBe(0);
    expect(await probeTcp('127.0.0.1', port, 1000, clock)).toMatchObject({ ok: true });
    expect(clock.pending()).toBe(0); // its timer cleared
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

  it('reports each change of the overall health of a task with several checks, and stops', async () => {
    const clock = new FakeClock(T0);
    const results: Record<string, boolean> = { HTTP: true, TCP: true };
    const changes: Array<[boolean, string]> = [];
    const probes: string[] = [];
    const m = new HealthMonitor({ clock, prober: async (_r, _s, c) => (probes.push(c.protocol), results[c.protocol] ? ok : bad(`${c.protocol} down`)), onChange: (_r, h, msg) => changes.push([h, msg]) });
    m.start(ref, spec([{ ...check, protocol: 'HTTP' }, { ...check, protocol: 'TCP' }]), clock.now());
    await clock.stepAsync(10);
    expect(changes).toEqual([[true, 'all 2 health checks passed']]);
    results.TCP = false;
    await clock.stepAsync(1000);
    expect(changes).toHaveLength(1); // one failure of two
    await clock.stepAsync(1000);
    expect(changes[1]).toEqual([false, 'health check 1 (TCP) failed 2 times in a row: TCP down']);
    await clock.stepAsync(3000);
    expect(changes).toHaveLength(2); // no repeats while unchanged
    results.TCP = true;
    await clock.stepAsync(1000);
    expect(changes[2]).toEqual([true, 'all 2 health checks passed']);
    expect(m.watched()).toEqual(['default/t']);
    m.stop('default/t');
    const n = probes.length;
    await clock.stepAsync(5000);
    expect(probes.length).toBe(n);
    expect(m.watched()).toEqual([]);
    expect(clock.pending()).toBe(0);
  });

  it('waits delaySeconds before the first probe; a task without checks is not watched', async () => {
    const clock = new FakeClock(T0);
    const probes: number[] = [];
    const m = new HealthMonitor({ clock, prober: async () => (probes.push(clock.now() - T0), ok), onChange: () => undefined });
    m.start(ref, spec([{ ...check, delaySeconds: 3, intervalSeconds: 2 }]), T0);
    await clock.stepAsync(7100);
    expect(probes).toEqual([3000, 5000, 7000]);
    m.start({ ...ref, name: 'none' }, spec([]), T0);
    expect(m.watched()).toEqual(['default/t']);
    m.stopAll();
    expect(clock.pending()).toBe(0);
  });

  it('measures the interval from the start of the previous probe (a slow probe does not stretch it)', async () => {
    const clock = new FakeClock(T0);
    const probes: number[] = [];
    // Each probe takes 400 ms (its answer comes on the clock).
    const m = new HealthMonitor({ clock, prober: () => (probes.push(clock.now() - T0), clock.sleep(400).then(() => ok)), onChange: () => undefined });
    m.start(ref, spec([{ ...check, intervalSeconds: 1 }]), T0);
    await clock.stepAsync(3100);
    expect(probes).toEqual([0, 1000, 2000, 3000]);
    m.stopAll();
  });
});

describe('ReadinessState', () => {
  const notYet: ReadinessProbeResult = { ready: false, message: 'HTTP GET http://127.0.0.1:1/ready returned 503 (ready: 200)', response: { status: 503, contentType: 'text/plain', body: 'warming up' } };
  const yes: ReadinessProbeResult = { ready: true, message: 'HTTP GET http://127.0.0.1:1/ready returned 200', response: { status: 200, body: 'ok' } };

  it('isReadyFromTheFirstPassingProbeOnAndForGood', () => {
    const s = new ReadinessState(readinessWithDefaults({}));
    expect([s.ready, s.result()]).toEqual([false, undefined]);
    s.record(notYet);
    expect([s.ready, s.result()]).toEqual([false, { name: 'readinessCheck', ready: false, message: notYet.message }]);
    s.record(yes);
    s.record(notYet); // ignored: readiness is only about the start
    expect([s.ready, s.result()]).toEqual([true, { name: 'readinessCheck', ready: true, message: yes.message }]);
  });

  it('keepsTheLastResponseOnlyWithPreserveLastResponse', () => {
    const s = new ReadinessState(readinessWithDefaults({ name: 'warm', preserveLastResponse: true }));
    s.record(notYet);
    expect(s.result()).toEqual({ name: 'warm', ready: false, message: notYet.message, lastResponse: { status: 503, contentType: 'text/plain', body: 'warming up' } });
  });

  it('fillsMarathonsDefaults', () => {
    expect(readinessWithDefaults({ path: '/r', portName: 'http' })).toEqual({
      name: 'readinessCheck', protocol: 'HTTP', path: '/r', portName: 'http', intervalSeconds: 30, timeoutSeconds: 10, httpStatusCodesForReady: [200], preserveLastResponse: false,
    });
  });
});

describe('readiness probes against real servers', () => {
  let server: http.Server;
  let port: number;
  let closedPort: number;
  const requested: string[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      requested.push(req.url ?? '');
      if (req.url === '/hang') return;
      if (req.url === '/big') return res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(MAX_READINESS_BODY * 3));
      res.writeHead(req.url === '/ready' ? 200 : req.url === '/warming' ? 503 : 404, { 'content-type': 'application/json' }).end('{"state":"warm"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    const tmp = net.createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    closedPort = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('isReadyOnlyOnTheListedStatusCodes', async () => {
    expect(await probeReadiness('HTTP', '127.0.0.1', port, '/ready', [200], 1000, false)).toEqual({
      ready: true, message: `HTTP GET http://127.0.0.1:${port}/ready returned 200`, response: { status: 200, contentType: 'application/json' },
    });
    expect(await probeReadiness('HTTP', '127.0.0.1', port, '/warming', [200], 1000, true)).toEqual({
      ready: false, message: `HTTP GET http://127.0.0.1:${port}/warming returned 503 (ready: 200)`, response: { status: 503, contentType: 'application/json', body: '{"state":"warm"}' },
    });
    expect((await probeReadiness('HTTP', '127.0.0.1', port, 'warming', [200, 503], 1000, false)).ready).toBe(true);
    const big = await probeReadiness('HTTP', '127.0.0.1', port, '/big', [200], 1000, true);
    expect(big.response?.body).toHaveLength(MAX_READINESS_BODY);
    const refused = await probeReadiness('HTTP', '127.0.0.1', closedPort, '/', [200], 1000, false);
    expect(refused).toMatchObject({ ready: false, message: expect.stringMatching(/^HTTP GET http:\/\/127\.0\.0\.1:\d+\/ failed: .*ECONNREFUSED/) });
  });

  it('abortsAHangingRequestAtItsTimeoutOnTheClock', async () => {
    const clock = new FakeClock(T0);
    let result: ReadinessProbeResult | undefined;
    void probeReadiness('HTTP', '127.0.0.1', port, '/hang', [200], 2000, false, clock).then((r) => (result = r));
    while (!requested.includes('/hang')) await new Promise((r) => setImmediate(r));
    clock.step(1999);
    await settle();
    expect(result).toBeUndefined();
    clock.step(1);
    await settle();
    expect(result).toEqual({ ready: false, message: `HTTP GET http://127.0.0.1:${port}/hang timed out after 2s` });
  });

  it('findsThePortByNameOrIndex', async () => {
    const spec = { ports: [{ hostPort: closedPort, protocol: 'tcp', name: 'admin' }, { hostPort: port, protocol: 'tcp', name: 'http' }] } as unknown as TaskSpec;
    const probe = defaultReadinessProber();
    const r = { namespace: 'default', name: 't', uid: 'u' };
    expect((await probe(r, spec, readinessWithDefaults({ portName: 'http', path: '/ready' }))).ready).toBe(true);
    expect((await probe(r, spec, readinessWithDefaults({ portIndex: 1, path: '/ready' }))).ready).toBe(true);
    expect(await probe(r, spec, readinessWithDefaults({ portName: 'nope' }))).toEqual({ ready: false, message: 'the task has no port named nope' });
  });

  const cert = makeCert();
  (cert ? it : it.skip)(`HTTPS: does not verify the task's certificate${cert ? '' : ' (skipped: no openssl)'}`, async () => {
    const tls = https.createServer({ key: cert!.key, cert: cert!.cert }, (_req, res) => res.writeHead(200).end('ok'));
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    try {
      const p = (tls.address() as AddressInfo).port;
      expect(await probeReadiness('HTTPS', '127.0.0.1', p, '/', [200], 2000, true)).toEqual({
        ready: true, message: `HTTPS GET https://127.0.0.1:${p}/ returned 200`, response: { status: 200, body: 'ok' },
      });
    } finally {
      tls.closeAllConnections();
      await new Promise((r) => tls.close(r));
    }
  });
});

/** A self-signed certificate made with openssl, or undefined without it. */
function makeCert(): { key: Buffer; cert: Buffer } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-health-cert-'));
  try {
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { encoding: 'utf8' });
    if (r.status !== 0) return undefined;
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('HealthMonitor readiness', () => {
  const ref = { namespace: 'default', name: 't', uid: 'u1' };
  const rc = { intervalSeconds: 2, timeoutSeconds: 1 };
  const spec = (readinessChecks: object[], healthChecks: object[] = []): TaskSpec =>
    ({ role: '*', resources: {}, ports: [{ hostPort: 1, protocol: 'tcp' }], healthChecks, readinessChecks, taskKillGracePeriodSeconds: 0 }) as unknown as TaskSpec;
  const answer = (ready: boolean, status: number): ReadinessProbeResult => ({ ready, message: `HTTP GET http://127.0.0.1:1/ returned ${status}`, response: { status } });

  function monitor(clock: FakeClock, answers: Record<string, ReadinessProbeResult>) {
    const probes: Array<[string, number]> = [];
    const reports: Array<[boolean, ReadinessCheckResult[]]> = [];
    const m = new HealthMonitor({
      clock, prober: async () => ok, onChange: () => undefined,
      readinessProber: async (_r, _s, c) => (probes.push([c.name, clock.now() - T0]), answers[c.name]!),
      onReadiness: (_r, ready, results) => reports.push([ready, results]),
    });
    return { m, probes, reports };
  }

  it('probesAtOnceThenEveryIntervalUntilReadyReportingOnlyChanges', async () => {
    const clock = new FakeClock(T0);
    const answers = { readinessCheck: answer(false, 503) };
    const { m, probes, reports } = monitor(clock, answers);
    m.start(ref, spec([{ ...rc }]), T0);
    expect(m.watched()).toEqual(['default/t']); // readiness checks alone are watched
    await clock.stepAsync(0);
    expect(probes).toEqual([['readinessCheck', 0]]);
    expect(reports).toEqual([[false, [{ name: 'readinessCheck', ready: false, message: 'HTTP GET http://127.0.0.1:1/ returned 503' }]]]);
    await clock.stepAsync(4000);
    expect(probes.map(([, at]) => at)).toEqual([0, 2000, 4000]);
    expect(reports).toHaveLength(1); // the same result is not reported again
    answers.readinessCheck = answer(true, 200);
    await clock.stepAsync(2000);
    expect(reports[1]).toEqual([true, [{ name: 'readinessCheck', ready: true, message: 'HTTP GET http://127.0.0.1:1/ returned 200' }]]);
    await clock.stepAsync(20_000);
    expect(probes).toHaveLength(4); // ready: no more probes
    expect(reports).toHaveLength(2);
    expect(clock.pending()).toBe(0);
    m.stopAll();
  });

  it('isReadyOnceEveryCheckPassedAndKeepsTheLastResponseWhenAsked', async () => {
    const clock = new FakeClock(T0);
    const answers = { a: answer(true, 200), b: answer(false, 404) };
    const { m, reports } = monitor(clock, answers);
    m.start(ref, spec([{ ...rc, name: 'a' }, { ...rc, name: 'b', preserveLastResponse: true }]), T0);
    await clock.stepAsync(0);
    expect(reports.at(-1)).toEqual([false, [
      { name: 'a', ready: true, message: 'HTTP GET http://127.0.0.1:1/ returned 200' },
      { name: 'b', ready: false, message: 'HTTP GET http://127.0.0.1:1/ returned 404', lastResponse: { status: 404 } },
    ]]);
    answers.b = answer(true, 200);
    await clock.stepAsync(2000);
    expect(reports.at(-1)![0]).toBe(true);
    m.stopAll();
  });

  it('stopsProbingAStoppedTask', async () => {
    const clock = new FakeClock(T0);
    const { m, probes, reports } = monitor(clock, { readinessCheck: answer(false, 503) });
    m.start(ref, spec([{ ...rc }], [{ intervalSeconds: 1, delaySeconds: 0, gracePeriodSeconds: 0, maxConsecutiveFailures: 1, timeoutSeconds: 1 }]), T0);
    await clock.stepAsync(2000);
    m.stop('default/t');
    const n = probes.length;
    await clock.stepAsync(10_000);
    expect(probes).toHaveLength(n);
    expect(reports).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });
});
