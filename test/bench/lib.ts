/**
 * What the end-to-end benchmark scenarios share: a real etcd in a temporary directory, the
 * compiled components (`dist/cmd/...`) as child processes with their output in log files,
 * readiness waits, percentiles, Prometheus histograms, process RSS, etcd's database size, a
 * Task tracker on an etcd watch, and a teardown that runs even on failure or Ctrl-C.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { dump } from 'js-yaml';
import { startEtcd, type EtcdProcess } from '../../pkg/devcluster/etcd';
import { EtcdStore } from '../../pkg/store/etcd';
import type { Store, Watch, WatchEvent } from '../../pkg/store/types';
import { freePort } from '../../pkg/util/net';

export type Figure = number | string;
export type Figures = Record<string, Figure>;

/** Options every scenario gets from the command line (each uses what applies to it). */
export interface BenchOptions {
  agents?: number;
  tasks?: number;
  rate?: number;
  duration?: number;
  overloadRate?: number;
  overloadDuration?: number;
  concurrency?: number;
  /** api: the apiserver's --max-inflight (its default when unset). */
  maxInflight?: number;
  /** scheduling: one lease per hollow agent, or one shared by their host process. @default 'per-agent' */
  leaseMode?: 'per-agent' | 'shared';
  /** Seconds of each etcd baseline. @default 3 */
  baselineSeconds?: number;
  /** Print progress lines on stderr. */
  verbose?: boolean;
}

// ---------------------------------------------------------------- paths

/** The repository root: the first ancestor of this file with a package.json (works from dist-bench too). */
export function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error('no package.json above ' + __dirname);
  }
}

/** A compiled component, e.g. `dist/cmd/apiserver/main.js`; throws with advice when not built. */
export function builtScript(relative: string): string {
  const file = path.join(repoRoot(), relative);
  if (!fs.existsSync(file)) throw new Error(`${relative} not found: build first (npm run -s build${relative.startsWith('dist-bench') ? ' && npx tsc -p tsconfig.bench.json' : ''})`);
  return file;
}

// ---------------------------------------------------------------- teardown

const cleanups: Array<{ what: string; fn: () => Promise<void> | void }> = [];

/** Registers a cleanup; cleanups run last-registered first. */
export function onCleanup(what: string, fn: () => Promise<void> | void): void {
  cleanups.push({ what, fn });
}

/** Runs (and forgets) every registered cleanup; never throws. */
export async function cleanupAll(): Promise<void> {
  while (cleanups.length) {
    const c = cleanups.pop()!;
    try {
      await c.fn();
    } catch (err) {
      process.stderr.write(`bench: cleanup of ${c.what} failed: ${(err as Error).message}\n`);
    }
  }
}

/** Children alive right now: SIGKILLed synchronously if this process exits without cleaning up. */
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => liveChildren.forEach((c) => c.kill('SIGKILL')));

/**
 * A temporary directory, removed at cleanup. 0711: agents keep their tasks' work dirs inside, and
 * process tasks run as users of their own who must get through to them.
 */
export function tempDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `shoal-bench-${label}-`));
  fs.chmodSync(dir, 0o711);
  onCleanup(`temp dir ${dir}`, () => {
    if (process.env.BENCH_KEEP) process.stderr.write(`bench: kept ${dir} (BENCH_KEEP)\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

export const log = (verbose: boolean | undefined, msg: string): void => {
  if (verbose) process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
};

// ---------------------------------------------------------------- etcd

export interface BenchEtcd {
  endpoint: string;
  pid: number;
  /** A store on it for the bench process itself (closed at cleanup). */
  store: EtcdStore;
}

/** A fresh single-member etcd on free ports in `dir`, with periodic auto-compaction (as `shoal dev` runs it). */
export async function startBenchEtcd(dir: string): Promise<BenchEtcd> {
  const logFile = fs.createWriteStream(path.join(dir, 'etcd.log'));
  const etcd: EtcdProcess = await startEtcd({ dataDir: path.join(dir, 'etcd'), log: (line) => void (logFile.writableEnded || logFile.write(`${line}\n`)) });
  onCleanup('etcd log', () => new Promise<void>((resolve) => logFile.end(resolve)));
  onCleanup('etcd', () => etcd.stop());
  const store = new EtcdStore({ endpoints: [etcd.endpoint] });
  onCleanup('bench etcd client', () => store.close());
  return { endpoint: etcd.endpoint, pid: etcd.pid, store };
}

/** etcd's backend size (etcd_mvcc_db_total_size_in_bytes from its /metrics), in bytes. */
export async function etcdDbBytes(endpoint: string): Promise<number> {
  const text = (await httpGet(`${endpoint}/metrics`)).body;
  const m = /^etcd_mvcc_db_total_size_in_bytes\s+(\S+)/m.exec(text) ?? /^etcd_debugging_mvcc_db_total_size_in_bytes\s+(\S+)/m.exec(text);
  if (!m) throw new Error('etcd /metrics has no etcd_mvcc_db_total_size_in_bytes');
  return Number(m[1]);
}

/** etcd's own counters (from its /metrics): raft proposals committed, range requests, bytes sent to gRPC clients. */
export async function etcdCounters(endpoint: string): Promise<{ proposals: number; ranges: number; sentBytes: number }> {
  const text = (await httpGet(`${endpoint}/metrics`)).body;
  const sum = (name: string) => counterValue(text, name);
  return { proposals: sum('etcd_server_proposals_committed_total'), ranges: sum('etcd_mvcc_range_total'), sentBytes: sum('etcd_network_client_grpc_sent_bytes_total') };
}

// ---------------------------------------------------------------- child processes

export interface Child {
  name: string;
  pid: number;
  process: ChildProcess;
  logFile: string;
  /** Resolves with a description once the process has exited. */
  exited: Promise<string>;
  alive(): boolean;
  /** Sends a signal (e.g. SIGKILL for a crash). */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, SIGKILL after 5 s; resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
  /** The last lines of its output, for error messages. */
  tail(lines?: number): string;
}

/** Spawns `node script args...` with stdout and stderr in `<logDir>/<name>.log`; stopped at cleanup. */
export function spawnNode(name: string, script: string, args: string[], logDir: string, opts: { env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {}): Child {
  const logFile = path.join(logDir, `${name}.log`);
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), script, ...args], {
    stdio: ['ignore', fd, fd],
    env: { SHOAL_LOG_LEVEL: 'info', ...process.env, ...opts.env },
  });
  fs.closeSync(fd);
  liveChildren.add(child);
  let exitedWith: string | undefined;
  const exited = new Promise<string>((resolve) => {
    const done = (why: string) => {
      liveChildren.delete(child);
      exitedWith = why;
      resolve(why);
    };
    child.once('exit', (code, signal) => done(signal ? `killed by ${signal}` : `exited with code ${code}`));
    child.once('error', (err) => done(`failed to start (${err.message})`));
  });
  let stopping: Promise<void> | undefined;
  const c: Child = {
    name,
    pid: child.pid ?? -1,
    process: child,
    logFile,
    exited,
    alive: () => exitedWith === undefined,
    kill: (signal) => void (exitedWith === undefined && child.kill(signal)),
    stop: () =>
      (stopping ??= (async () => {
        if (exitedWith !== undefined) return;
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      })()),
    tail: (lines = 20) => {
      try {
        return fs.readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
  };
  onCleanup(name, () => c.stop());
  return c;
}

/** A component's log, line by line ([] when it has none). */
function logLines(child: Child): string[] {
  try {
    return fs.readFileSync(child.logFile, 'utf8').split('\n');
  } catch {
    return [];
  }
}

/** How many lines of a component's JSON log carry this message. */
export function logCount(child: Child, msg: string): number {
  const needle = `"msg":${JSON.stringify(msg)}`;
  return logLines(child).filter((line) => line.includes(needle)).length;
}

/** Distinct warning and error messages (pino level ≥ 40) in a component's JSON log, with counts. */
export function logProblems(child: Child, max = 5): string[] {
  const counts = new Map<string, number>();
  for (const line of logLines(child)) {
    if (!line.startsWith('{')) continue;
    try {
      const d = JSON.parse(line) as { level?: number; msg?: string; err?: string };
      if ((d.level ?? 0) < 40) continue;
      const key = `${d.msg}${d.err ? `: ${d.err}` : ''}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    } catch {
      // not a log line
    }
  }
  return [...counts.entries()].slice(0, max).map(([k, n]) => `${child.name}: ${k} (×${n})`);
}

/** Polls `check` every `intervalMs` until it returns a value other than undefined/false; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined | false> | T | undefined | false, opts: { intervalMs?: number; children?: Child[]; rethrow?: boolean } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = opts.children?.find((c) => !c.alive());
    if (dead) throw new Error(`${dead.name} died while waiting for ${what}; its last output:\n${dead.tail()}`);
    let value: T | undefined | false;
    try {
      value = await check();
    } catch (err) {
      if (opts.rethrow) throw new Error(`${what}: ${(err as Error).message}`);
      value = undefined;
    }
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(opts.intervalMs ?? 100);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- components

export interface ApiServerChild {
  url: string;
  token: string;
  child: Child;
}

/** A token file with one admin (every namespace); returns the token. */
export function writeTokenFile(file: string): string {
  const token = randomBytes(24).toString('hex');
  fs.writeFileSync(file, dump({ users: [{ name: 'bench', token, roles: [{ namespace: '*', role: 'admin' }] }] }), { mode: 0o600 });
  return token;
}

/**
 * `dist/cmd/apiserver/main.js` on a free port; resolves once /readyz answers 200. Plain HTTP
 * (--insecure-http) on loopback: the bench measures the apiserver and etcd, as its earlier
 * figures did, not TLS handshakes.
 */
export async function startApiServer(etcd: BenchEtcd, dir: string, opts: { nodeArgs?: string[]; logLevel?: string; args?: string[] } = {}): Promise<ApiServerChild> {
  const tokenFile = path.join(dir, 'tokens.yaml');
  const token = writeTokenFile(tokenFile);
  const port = await freePort();
  const child = spawnNode('apiserver', builtScript('dist/cmd/apiserver/main.js'), ['--token-file', tokenFile, '--etcd-endpoints', etcd.endpoint, '--port', String(port), '--insecure-http', ...(opts.args ?? [])], dir, {
    nodeArgs: opts.nodeArgs,
    env: opts.logLevel ? { SHOAL_LOG_LEVEL: opts.logLevel } : undefined,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('apiserver /readyz', 20_000, async () => (await httpGet(`${url}/readyz`)).status === 200, { children: [child] });
  return { url, token, child };
}

export interface ControllerManagerChild {
  identity: string;
  metricsUrl: string;
  child: Child;
}

/** `dist/cmd/controller-manager/main.js` with its /metrics on a free port; resolves once /metrics answers. */
export async function startControllerManager(etcd: BenchEtcd, dir: string, identity: string, extraArgs: string[] = [], nodeArgs?: string[]): Promise<ControllerManagerChild> {
  const port = await freePort();
  const child = spawnNode(identity, builtScript('dist/cmd/controller-manager/main.js'), ['--etcd-endpoints', etcd.endpoint, '--identity', identity, '--metrics-port', String(port), ...extraArgs], dir, { nodeArgs });
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  await waitFor(`${identity} /metrics`, 20_000, async () => (await httpGet(metricsUrl)).status === 200, { children: [child] });
  return { identity, metricsUrl, child };
}

/** The controller-manager holding the leader key, by identity; undefined when none leads. */
export async function leaderIdentity(store: Store, prefix = '/shoal'): Promise<string | undefined> {
  const kv = await store.get(`${prefix}/leader/controller-manager`);
  return kv ? (JSON.parse(kv.value) as { identity?: string }).identity : undefined;
}

/** Whether an agent's lease key exists (it registered and is alive). */
export async function agentAlive(store: Store, node: string, prefix = '/shoal'): Promise<boolean> {
  return (await store.get(`${prefix}/leases/nodes/${node}`)) !== undefined;
}

export interface AgentChildOptions {
  node: string;
  runtime: 'docker' | 'process' | 'hollow';
  cpus: number;
  mem: number;
  ports: string;
  leaseTtlSeconds?: number;
}

/** One `dist/cmd/agent/main.js`; resolves once its lease key exists. */
export async function startAgent(etcd: BenchEtcd, dir: string, o: AgentChildOptions): Promise<Child> {
  const dataDir = path.join(dir, o.node);
  const listen = await freePort();
  const args = [
    '--etcd-endpoints', etcd.endpoint, '--node-name', o.node, '--runtime', o.runtime, '--data-dir', dataDir,
    '--cpus', String(o.cpus), '--mem', String(o.mem), '--disk', '1024', '--ports', o.ports,
    '--listen', String(listen), '--advertise-address', `127.0.0.1:${listen}`, '--hostname', o.node,
  ];
  if (o.leaseTtlSeconds) args.push('--lease-ttl', String(o.leaseTtlSeconds));
  const child = spawnNode(o.node, builtScript('dist/cmd/agent/main.js'), args, dir);
  await waitFor(`agent ${o.node} to register`, 30_000, () => agentAlive(etcd.store, o.node), { children: [child] });
  return child;
}

/** `hollow-agents.js` (an AgentHost of N hollow agents in one process); resolves once all N lease keys exist. */
export async function startHollowAgents(etcd: BenchEtcd, dir: string, o: { agents: number; cpus: number; mem: number; leaseMode?: 'shared' | 'per-agent' }): Promise<Child> {
  const script = builtScript(path.relative(repoRoot(), path.join(__dirname, 'hollow-agents.js')));
  const args = ['--etcd-endpoints', etcd.endpoint, '--agents', String(o.agents), '--cpus', String(o.cpus), '--mem', String(o.mem), '--lease-mode', o.leaseMode ?? 'per-agent'];
  const child = spawnNode('hollow-agents', script, args, dir, { env: { SHOAL_LOG_LEVEL: 'warn' } });
  const timeout = 60_000 + o.agents * 40;
  await waitFor(`${o.agents} hollow agents to register`, timeout, async () => (await etcd.store.list('/shoal/leases/nodes/hollow-')).items.length >= o.agents, { children: [child], intervalMs: 500 });
  return child;
}

// ---------------------------------------------------------------- measuring

/** Nearest-rank percentile of an ascending array; NaN for an empty one. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const round = (x: number, digits = 2): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** Resident set size of a process (VmRSS in /proc/<pid>/status), in MiB; NaN when gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? round(Number(m[1]) / 1024, 1) : NaN;
  } catch {
    return NaN;
  }
}

/** CPU time (user + system) a process has used so far, in seconds; NaN when gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

/** Samples a process's RSS every `ms` and keeps the peak (VmRSS; VmHWM would also do). */
export function peakRss(pid: number, ms = 500): { peakMiB(): number; stop(): void } {
  let peak = rssMiB(pid);
  const t = setInterval(() => {
    const now = rssMiB(pid);
    if (now > peak || Number.isNaN(peak)) peak = now;
  }, ms);
  t.unref();
  return { peakMiB: () => peak, stop: () => clearInterval(t) };
}

/** Cumulative bucket counts of a Prometheus histogram, summed over the label sets `labels` accepts. */
export function histogramBuckets(metricsText: string, name: string, labels: (labelText: string) => boolean = () => true): Map<number, number> {
  const buckets = new Map<number, number>();
  const re = new RegExp(`^${name}_bucket\\{([^}]*)\\}\\s+(\\S+)`, 'gm');
  for (let m = re.exec(metricsText); m; m = re.exec(metricsText)) {
    const le = /le="([^"]+)"/.exec(m[1])?.[1];
    if (le === undefined || !labels(m[1])) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + Number(m[2]));
  }
  return buckets;
}

/** `after` minus `before`, bucket by bucket: the observations made between two scrapes. */
export function bucketsBetween(before: Map<number, number>, after: Map<number, number>): Map<number, number> {
  return new Map([...after].map(([bound, n]) => [bound, n - (before.get(bound) ?? 0)]));
}

/**
 * A quantile of histogram buckets, as the upper bound of the bucket it falls in (what
 * histogram_quantile would interpolate within); NaN when empty; the largest finite bound when it
 * falls in +Inf.
 */
export function bucketQuantile(buckets: Map<number, number>, q: number): number {
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (!total) return NaN;
  for (const [bound, count] of sorted) if (count >= q * total) return bound === Infinity ? sorted.at(-2)?.[0] ?? NaN : bound;
  return NaN;
}

/** A quantile of a Prometheus histogram in /metrics text (see bucketQuantile), in the metric's unit. */
export function histogramQuantile(metricsText: string, name: string, q: number, labels?: (labelText: string) => boolean): number {
  return bucketQuantile(histogramBuckets(metricsText, name, labels), q);
}

/** How many observations a Prometheus histogram holds (its _count, summed over label sets). */
export function histogramCount(metricsText: string, name: string): number {
  let total = 0;
  const re = new RegExp(`^${name}_count(?:\\{[^}]*\\})?\\s+(\\S+)`, 'gm');
  for (let m = re.exec(metricsText); m; m = re.exec(metricsText)) total += Number(m[1]);
  return total;
}

/** A Prometheus counter's (or gauge's) value in /metrics text, summed over the label sets whose text includes `labelText`. */
export function counterValue(metricsText: string, name: string, labelText = ''): number {
  let total = 0;
  const re = new RegExp(`^${name}(?:\\{([^}]*)\\})?\\s+(\\S+)`, 'gm');
  for (let m = re.exec(metricsText); m; m = re.exec(metricsText)) if ((m[1] ?? '').includes(labelText)) total += Number(m[2]);
  return total;
}

// ---------------------------------------------------------------- HTTP

export interface HttpAnswer {
  status: number;
  body: string;
}

/** A plain GET with a 5 s timeout (readiness, metrics); status 0 when it failed. */
export function httpGet(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<HttpAnswer> {
  return new Promise((resolve) => {
    const req = http.get(url, { headers, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
  });
}

/** A small client of the Shoal API for setting scenarios up (not for the measured load). */
export class Api {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(readonly url: string, readonly token: string) {
    onCleanup('api client', () => this.agent.destroy());
  }

  request(method: string, p: string, body?: unknown, contentType = 'application/json'): Promise<HttpAnswer> {
    const data = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(`${this.url}${p}`, {
        method, agent: this.agent, timeout: 30_000,
        headers: { authorization: `Bearer ${this.token}`, ...(data ? { 'content-type': contentType, 'content-length': Buffer.byteLength(data) } : {}) },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer within 30 s`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  /** Like request(), but throws unless the status is 2xx. */
  async must(method: string, p: string, body?: unknown, contentType?: string): Promise<unknown> {
    const res = await this.request(method, p, body, contentType);
    if (res.status < 200 || res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${res.body.slice(0, 300)}`);
    return res.body ? JSON.parse(res.body) : undefined;
  }
}

/** An App manifest. */
export function appManifest(name: string, instances: number, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'shoal/v1', kind: 'App', metadata: { name, labels: { bench: 'true' } }, spec: { instances, ...spec } };
}

// ---------------------------------------------------------------- tasks

const STALL_MS = 60_000;

export const TERMINAL = new Set(['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST']);

export interface TrackedTask {
  namespace: string;
  name: string;
  app?: string;
  node?: string;
  state?: string;
  startedAt?: string;
  /** Process runtime: the task's process group. */
  pid?: number;
  creationTimestamp?: string;
  /** Date.now() when the tracker first saw it bound (created: tasks are created bound). */
  seenBoundAt?: number;
  /** Date.now() when the tracker first saw it RUNNING. */
  seenRunningAt?: number;
}

interface TaskObject {
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; creationTimestamp?: string };
  spec?: { nodeName?: string };
  status?: { state?: string; startedAt?: string; pid?: number };
}

/**
 * Every Task of the cluster as seen through ONE etcd watch on the tasks prefix (cheaper than the
 * API's NDJSON watch): bound and running counts, and when each task was first seen in each.
 */
export class TaskTracker {
  readonly tasks = new Map<string, TrackedTask>();
  /** Every status.pid ever seen (process runtime), also of tasks since deleted. */
  readonly pids = new Set<number>();
  bound = 0;
  running = 0;
  private watch?: Watch;
  private listeners: Array<() => void> = [];

  private constructor(private readonly prefix: string) {}

  static async start(store: Store, prefix = '/shoal'): Promise<TaskTracker> {
    const t = new TaskTracker(prefix);
    const key = `${prefix}/registry/tasks/`;
    const list = await store.list(key);
    for (const kv of list.items) t.apply({ type: 'put', key: kv.key, value: kv.value, modRevision: kv.modRevision, createRevision: kv.createRevision });
    t.watch = await store.watch(key, {
      afterRevision: list.revision,
      onEvents: (evs) => {
        for (const e of evs) t.apply(e);
        t.listeners.forEach((l) => l());
      },
      onError: (err) => process.stderr.write(`bench: task watch ended: ${err.message}\n`),
    });
    onCleanup('task watch', () => t.stop());
    return t;
  }

  async stop(): Promise<void> {
    await this.watch?.cancel();
    this.watch = undefined;
  }

  /** Tasks of one App. */
  ofApp(app: string): TrackedTask[] {
    return [...this.tasks.values()].filter((t) => t.app === app);
  }

  /** Resolves when `cond` holds (checked after every batch of events and every 200 ms); throws after `timeoutMs`. */
  async until(what: string, timeoutMs: number, cond: () => boolean, children: Child[] = [], verbose?: boolean): Promise<void> {
    const progress = setInterval(() => log(verbose, `waiting for ${what}: ${this.tasks.size} tasks, ${this.bound} bound, ${this.running} running`), 5000);
    // No change for STALL_MS: nothing is happening any more, fail now rather than at the deadline.
    let seen = '';
    let changedAt = Date.now();
    try {
      await waitFor(what, timeoutMs, () => {
        const now = `${this.tasks.size}/${this.bound}/${this.running}`;
        if (now !== seen) [seen, changedAt] = [now, Date.now()];
        else if (Date.now() - changedAt > STALL_MS) throw new Error(`no progress for ${STALL_MS / 1000} s`);
        return cond();
      }, { children, intervalMs: 200, rethrow: true });
    } catch (err) {
      throw new Error(`${(err as Error).message} (${this.tasks.size} tasks, ${this.bound} bound, ${this.running} running)`);
    } finally {
      clearInterval(progress);
    }
  }

  private apply(e: WatchEvent): void {
    const id = e.key.slice(`${this.prefix}/registry/tasks/`.length);
    const old = this.tasks.get(id);
    if (e.type === 'delete') {
      if (old) {
        if (old.node) this.bound--;
        if (old.state === 'RUNNING') this.running--;
        this.tasks.delete(id);
      }
      return;
    }
    const obj = JSON.parse(e.value) as TaskObject;
    const now = Date.now();
    const t: TrackedTask = old ?? { namespace: obj.metadata.namespace ?? '', name: obj.metadata.name };
    const wasBound = !!t.node;
    const wasRunning = t.state === 'RUNNING';
    t.app = obj.metadata.labels?.['shoal.dev/app'];
    t.node = obj.spec?.nodeName;
    t.state = obj.status?.state;
    t.startedAt = obj.status?.startedAt ?? t.startedAt;
    t.pid = obj.status?.pid ?? t.pid;
    if (t.pid) this.pids.add(t.pid);
    t.creationTimestamp = obj.metadata.creationTimestamp;
    if (t.node && !wasBound) {
      this.bound++;
      t.seenBoundAt ??= now;
    } else if (!t.node && wasBound) this.bound--;
    if (t.state === 'RUNNING' && !wasRunning) {
      this.running++;
      t.seenRunningAt ??= now;
    } else if (t.state !== 'RUNNING' && wasRunning) this.running--;
    this.tasks.set(id, t);
  }
}

// ---------------------------------------------------------------- scenarios

/** One benchmark scenario as run.ts knows it. */
export interface Scenario {
  /** One line saying what was measured, for tables (may use the figures, e.g. sizes). */
  describe(figures: Figures): string;
  /** Figures shown in the README table (all are in the JSON and results/README.md). */
  headline: string[];
  /** Target per figure, shown next to it, e.g. `≤ 25`. */
  targets?: Record<string, string>;
  run(o: BenchOptions): Promise<Figures>;
}
