/**
 * API server under an open-loop load: a real etcd and `dist/cmd/apiserver/main.js` as a child
 * process; this process sends requests on a fixed schedule (--rate per second for --duration
 * seconds) whether or not earlier ones were answered, and measures every latency from the time
 * the request was SCHEDULED, so a slow server cannot hide its queue (no coordinated omission).
 * Half the requests mutate (create an App, merge-patch its spec.instances, delete one), half read
 * (get one App, list a namespace of 100 Apps). No controller runs: deleted Apps keep their
 * finalizer, so deleting stays a write of the App (deletionTimestamp) as the apiserver does it. Then an overload phase (--overload-rate, default 10×,
 * for --overload-duration seconds) checks that excess load is answered with 429, not timeouts.
 * `--profile` runs the apiserver under `node --cpu-prof` and prints where its CPU time went.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { etcdBaselines } from './baselines';
import { counterValue, Api, appManifest, bucketQuantile, bucketsBetween, cleanupAll, cpuSeconds, etcdDbBytes, histogramBuckets, httpGet, log, onCleanup, percentile, peakRss, round, startApiServer, startBenchEtcd, tempDir, type BenchOptions, type Child, type Figures, type Scenario } from './lib';

const NS = 'bench';
/** LISTs read this namespace of PRELOAD Apps: deleted Apps in NS linger (the finalizer waits for an App controller, none runs here). */
const LIST_NS = 'bench-list';
const PRELOAD = 100;
const TIMEOUT_MS = 10_000;
const APP_SPEC = { cmd: 'sleep 3600', resources: { cpus: 0.1, mem: 32 } };

type OpName = 'create' | 'patch' | 'delete' | 'get' | 'list';
/** Half mutating, half reading; creates and deletes balance so the namespace keeps its size. */
const MIX: Array<[OpName, number]> = [['create', 0.15], ['patch', 0.2], ['delete', 0.15], ['get', 0.3], ['list', 0.2]];
const MUTATING = new Set<OpName>(['create', 'patch', 'delete']);

interface Sample {
  op: OpName;
  /** From scheduled send to the end of the answer. */
  ms: number;
  /** HTTP status; 0 = no answer (timeout or connection error). */
  status: number;
  timedOut: boolean;
}

/** Which Apps exist and which have requests in flight (only idle ones are deleted, so nothing races a delete). */
class AppPool {
  private readonly live: string[] = [];
  private readonly busy = new Map<string, number>();
  private seq = 0;

  add(name: string): void {
    this.live.push(name);
  }
  newName(): string {
    return `app-${(this.seq++).toString(36)}`;
  }
  /** A random existing App, marked busy until release(). */
  take(): string | undefined {
    if (!this.live.length) return undefined;
    const name = this.live[Math.floor(Math.random() * this.live.length)];
    this.busy.set(name, (this.busy.get(name) ?? 0) + 1);
    return name;
  }
  release(name: string): void {
    const n = (this.busy.get(name) ?? 1) - 1;
    if (n <= 0) this.busy.delete(name);
    else this.busy.set(name, n);
  }
  /** Removes and returns a random idle App, to delete. */
  takeForDelete(): string | undefined {
    for (let tries = 0; tries < 8 && this.live.length; tries++) {
      const i = Math.floor(Math.random() * this.live.length);
      if (this.busy.has(this.live[i])) continue;
      const [name] = this.live.splice(i, 1);
      return name;
    }
    return undefined;
  }
}

function pickOp(): OpName {
  let r = Math.random();
  for (const [op, w] of MIX) if ((r -= w) < 0) return op;
  return 'get';
}

interface Phase {
  samples: Sample[];
  sent: number;
  seconds: number;
}

/** Sends `rate` requests per second for `seconds`, on schedule; resolves once every one is answered or timed out. */
async function openLoop(url: string, token: string, agent: http.Agent, pool: AppPool, rate: number, seconds: number): Promise<Phase> {
  const samples: Sample[] = [];
  const pending = new Set<Promise<void>>();
  const total = Math.max(1, Math.round(rate * seconds));
  const interval = 1000 / rate;
  const t0 = performance.now();
  let i = 0;
  while (i < total) {
    const now = performance.now();
    for (; i < total && t0 + i * interval <= now; i++) {
      const p: Promise<void> = fire(url, token, agent, pool, t0 + i * interval).then((s) => {
        samples.push(s);
        pending.delete(p);
      });
      pending.add(p);
    }
    await new Promise<void>((resolve) => setTimeout(resolve, 1));
  }
  const sendSeconds = (performance.now() - t0) / 1000;
  await Promise.all(pending);
  return { samples, sent: total, seconds: Math.max(seconds, sendSeconds) };
}

/** One request of the mix, scheduled at `scheduled` (performance.now() time). */
function fire(url: string, token: string, agent: http.Agent, pool: AppPool, scheduled: number): Promise<Sample> {
  let op = pickOp();
  let name: string | undefined;
  if (op === 'patch' || op === 'get') name = pool.take();
  else if (op === 'delete') name = pool.takeForDelete();
  if ((op === 'patch' || op === 'get' || op === 'delete') && !name) op = 'create';
  if (op === 'create') name = pool.newName();
  const base = `${url}/api/v1/namespaces/${NS}/apps`;
  let method = 'GET';
  let target = `${base}/${name}`;
  let body: string | undefined;
  let contentType = 'application/json';
  switch (op) {
    case 'create':
      method = 'POST';
      target = base;
      body = JSON.stringify(appManifest(name!, 1, APP_SPEC));
      break;
    case 'patch':
      method = 'PATCH';
      body = JSON.stringify({ spec: { instances: 1 + Math.floor(Math.random() * 5) } });
      contentType = 'application/merge-patch+json';
      break;
    case 'delete':
      method = 'DELETE';
      break;
    case 'list':
      target = `${url}/api/v1/namespaces/${LIST_NS}/apps`;
      break;
  }
  return new Promise((resolve) => {
    let settled = false;
    const finish = (status: number, timedOut = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (op === 'create' && status === 201) pool.add(name!);
      if ((op === 'patch' || op === 'get') && name) pool.release(name);
      resolve({ op, ms: performance.now() - scheduled, status, timedOut });
    };
    const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${token}` };
    if (body) Object.assign(headers, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    const req = http.request(target, { method, agent, headers }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => finish(res.statusCode ?? 0));
      res.on('error', () => finish(0));
    });
    const timer = setTimeout(() => {
      finish(0, true);
      req.destroy();
    }, Math.max(1, scheduled + TIMEOUT_MS - performance.now()));
    req.on('error', () => finish(0));
    req.end(body);
  });
}

function latencies(samples: Sample[], pred: (s: Sample) => boolean): number[] {
  return samples.filter((s) => s.status > 0 && pred(s)).map((s) => s.ms).sort((a, b) => a - b);
}

/** Stops a child run under --cpu-prof, prints the top of its profile, copies the profile to `out`. */
export async function reportProfile(what: string, child: Child, profDir: string, out?: string): Promise<void> {
  await child.stop();
  const file = fs.existsSync(profDir) ? fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile')) : undefined;
  if (!file) return void process.stderr.write(`${what} wrote no CPU profile\n`);
  const lines = profileSummary(path.join(profDir, file));
  process.stderr.write(`${what} CPU profile (self time, top ${lines.length}):\n${lines.join('\n')}\n`);
  if (out) fs.copyFileSync(path.join(profDir, file), out);
}

/**
 * The top `n` functions of a .cpuprofile by self time, then Shoal's own functions (dist/pkg) by
 * inclusive time (time in them or anything they called), as lines.
 */
export function profileSummary(file: string, n = 25): string[] {
  interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((nd) => [nd.id, nd]));
  const parent = new Map<number, number>();
  for (const nd of prof.nodes) for (const c of nd.children ?? []) parent.set(c, nd.id);
  const name = (nd: Node) => {
    const url = nd.callFrame.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, 'node_modules/').replace(/.*\/dist\//, 'dist/');
    return `${nd.callFrame.functionName || '(anonymous)'} ${url}${url ? `:${nd.callFrame.lineNumber + 1}` : ''}`;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    total += dt;
    const nd = byId.get(id)!;
    self.set(name(nd), (self.get(name(nd)) ?? 0) + dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)!;
      if (!frame.callFrame.url.includes('/dist/pkg/')) continue;
      const key = name(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
    }
  });
  const fmt = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  return [`${(total / 1e6).toFixed(1)} s profiled; self time:`, ...fmt(self), 'Shoal functions (dist/pkg) by inclusive time:', ...fmt(inclusive)];
}

async function run(o: BenchOptions & { profile?: boolean; profileOut?: string }): Promise<Figures> {
  const rate = o.rate ?? 200;
  const duration = o.duration ?? 30;
  const overloadRate = o.overloadRate ?? rate * 10;
  const overloadDuration = o.overloadDuration ?? 10;
  try {
    const dir = tempDir('api');
    const etcd = await startBenchEtcd(dir);
    const profDir = path.join(dir, 'prof');
    const server = await startApiServer(etcd, dir, {
      nodeArgs: o.profile ? ['--cpu-prof', '--cpu-prof-dir', profDir] : undefined,
      args: o.maxInflight ? ['--max-inflight', String(o.maxInflight)] : undefined,
    });
    const rss = peakRss(server.child.pid);
    onCleanup('rss sampler', () => rss.stop());
    const api = new Api(server.url, server.token);
    const pool = new AppPool();
    for (let i = 0; i < PRELOAD; i++) {
      const name = pool.newName();
      await api.must('POST', `/api/v1/namespaces/${NS}/apps`, appManifest(name, 1, APP_SPEC));
      pool.add(name);
      await api.must('POST', `/api/v1/namespaces/${LIST_NS}/apps`, appManifest(name, 1, APP_SPEC));
    }
    const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
    onCleanup('load agent', () => agent.destroy());
    // Warm up (JIT, connections) at the target rate for 2 s, unmeasured.
    await openLoop(server.url, server.token, agent, pool, rate, Math.min(2, duration / 5));
    log(o.verbose, `${rate}/s for ${duration} s`);
    const metricsBefore = (await httpGet(`${server.url}/metrics`)).body;
    const etcdMetricsBefore = (await httpGet(`${etcd.endpoint}/metrics`)).body;
    const cpuBefore = { api: cpuSeconds(server.child.pid), etcd: cpuSeconds(etcd.pid), bench: process.cpuUsage() };
    const steady = await openLoop(server.url, server.token, agent, pool, rate, duration);
    const cpuPercent = (before: number, after: number) => round((100 * (after - before)) / steady.seconds, 1);
    const benchCpu = process.cpuUsage(cpuBefore.bench);
    const cpu = { api: cpuPercent(cpuBefore.api, cpuSeconds(server.child.pid)), etcd: cpuPercent(cpuBefore.etcd, cpuSeconds(etcd.pid)), bench: cpuPercent(0, (benchCpu.user + benchCpu.system) / 1e6) };
    const metricsAfter = (await httpGet(`${server.url}/metrics`)).body;
    const etcdMetricsAfter = (await httpGet(`${etcd.endpoint}/metrics`)).body;
    const etcdBetween = (name: string) => bucketsBetween(histogramBuckets(etcdMetricsBefore, name), histogramBuckets(etcdMetricsAfter, name));
    // The server's own view of the steady phase: request handling and etcd round trips.
    const between = (name: string, labels: (l: string) => boolean) => bucketsBetween(histogramBuckets(metricsBefore, name, labels), histogramBuckets(metricsAfter, name, labels));
    const serverMutating = between('shoal_apiserver_request_duration_seconds', (l) => /verb="(create|update|patch|delete)"/.test(l));
    const etcdWrites = between('shoal_etcd_request_duration_seconds', (l) => /operation="(create|update|delete|txn)"/.test(l));
    const etcdReads = between('shoal_etcd_request_duration_seconds', (l) => /operation="(get|list)"/.test(l));
    log(o.verbose, `overload: ${overloadRate}/s for ${overloadDuration} s`);
    const overCpuBefore = { api: cpuSeconds(server.child.pid), etcd: cpuSeconds(etcd.pid), bench: process.cpuUsage() };
    const overStart = performance.now();
    const over = await openLoop(server.url, server.token, agent, pool, overloadRate, overloadDuration);
    const overSeconds = (performance.now() - overStart) / 1000; // until the last answer or timeout
    const overBenchCpu = process.cpuUsage(overCpuBefore.bench);
    const overPercent = (before: number, after: number) => round((100 * (after - before)) / overSeconds, 1);
    const overCpu = { api: overPercent(overCpuBefore.api, cpuSeconds(server.child.pid)), etcd: overPercent(overCpuBefore.etcd, cpuSeconds(etcd.pid)), bench: overPercent(0, (overBenchCpu.user + overBenchCpu.system) / 1e6) };
    const metricsOver = (await httpGet(`${server.url}/metrics`)).body;
    const shed = counterValue(metricsOver, 'shoal_apiserver_rejected_requests_total') - counterValue(metricsAfter, 'shoal_apiserver_rejected_requests_total');
    const dbBytes = await etcdDbBytes(etcd.endpoint);
    log(o.verbose, 'etcd baselines');
    const baselines = await etcdBaselines(etcd.endpoint, o.baselineSeconds ?? 3);
    const s = steady.samples;
    const mut = latencies(s, (x) => MUTATING.has(x.op));
    const read = latencies(s, (x) => !MUTATING.has(x.op));
    const overAll = latencies(over.samples, () => true);
    const figures: Figures = {
      ratePerSecond: round(steady.sent / steady.seconds, 1),
      durationSeconds: duration,
      requests: s.length,
      mutatingRequests: s.filter((x) => MUTATING.has(x.op)).length,
      mutatingP50Ms: round(percentile(mut, 50)),
      mutatingP99Ms: round(percentile(mut, 99)),
      readP50Ms: round(percentile(read, 50)),
      readP99Ms: round(percentile(read, 99)),
      maxMs: round(percentile(latencies(s, () => true), 100)),
      errors5xx: s.filter((x) => x.status >= 500).length,
      errors503: s.filter((x) => x.status === 503).length,
      errors4xxOther: s.filter((x) => x.status >= 400 && x.status < 500 && x.status !== 429).length,
      rejected429AtRate: s.filter((x) => x.status === 429).length,
      timeouts: s.filter((x) => x.timedOut).length,
      connectionErrors: s.filter((x) => x.status === 0 && !x.timedOut).length,
      // Bucket upper bounds of the apiserver's own histograms over the steady phase.
      serverMutatingP99Ms: round(bucketQuantile(serverMutating, 0.99) * 1000),
      etcdWriteP50Ms: round(bucketQuantile(etcdWrites, 0.5) * 1000),
      etcdWriteP99Ms: round(bucketQuantile(etcdWrites, 0.99) * 1000),
      etcdReadP99Ms: round(bucketQuantile(etcdReads, 0.99) * 1000),
      // etcd's own disk latency over the steady phase (bucket upper bounds): fsync of its WAL, commit of its backend.
      etcdWalFsyncP99Ms: round(bucketQuantile(etcdBetween('etcd_disk_wal_fsync_duration_seconds'), 0.99) * 1000),
      etcdBackendCommitP99Ms: round(bucketQuantile(etcdBetween('etcd_disk_backend_commit_duration_seconds'), 0.99) * 1000),
      // CPU used during the steady phase, % of one core (the machine has os.cpus().length).
      apiserverCpuPercent: cpu.api,
      etcdCpuPercent: cpu.etcd,
      loadGeneratorCpuPercent: cpu.bench,
      overloadRatePerSecond: round(over.sent / over.seconds, 1),
      // 429s the server counted (the rest of rejected429 were lost before it read them, if any), and CPU during the overload, % of one core.
      overloadServerRejected: shed,
      overloadApiserverCpuPercent: overCpu.api,
      overloadEtcdCpuPercent: overCpu.etcd,
      overloadLoadGeneratorCpuPercent: overCpu.bench,
      overloadOkPerSecond: round(over.samples.filter((x) => x.status >= 200 && x.status < 300).length / over.seconds, 1),
      rejected429: over.samples.filter((x) => x.status === 429).length,
      overloadErrors5xx: over.samples.filter((x) => x.status >= 500).length,
      overloadTimeouts: over.samples.filter((x) => x.timedOut).length,
      overloadConnectionErrors: over.samples.filter((x) => x.status === 0 && !x.timedOut).length,
      overload500: over.samples.filter((x) => x.status === 500).length,
      overload503: over.samples.filter((x) => x.status === 503).length,
      overload504: over.samples.filter((x) => x.status === 504).length,
      overloadP99Ms: round(percentile(overAll, 99)),
      apiserverPeakRssMiB: rss.peakMiB(),
      etcdDbMiB: round(dbBytes / 2 ** 20, 1),
      ...baselines,
    };
    if (o.profile) await reportProfile('apiserver', server.child, profDir, o.profileOut);
    return figures;
  } finally {
    await cleanupAll();
  }
}

export const api: Scenario = {
  describe: (f) => `api: open loop, ${f.ratePerSecond}/s for ${f.durationSeconds} s (half mutating), then ${f.overloadRatePerSecond}/s`,
  headline: ['ratePerSecond', 'mutatingP50Ms', 'mutatingP99Ms', 'readP99Ms', 'errors5xx', 'timeouts', 'overloadRatePerSecond', 'rejected429', 'overloadTimeouts', 'overloadP99Ms', 'etcdSequentialPutsPerSecond', 'etcdConcurrentPutsPerSecond'],
  targets: { mutatingP99Ms: '≤ 25', errors5xx: '0', timeouts: '0', overloadTimeouts: '0 (429s instead)', overloadErrors5xx: '0' },
  run,
};
