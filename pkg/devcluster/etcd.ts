/**
 * Runs etcd (Debian's /usr/bin/etcd, v3.4) as child processes, for the dev cluster and the test
 * harness: a single member (startEtcd), or a cluster of members on this machine whose members can
 * be killed and restarted one by one (startEtcdCluster).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { settlesWithin, sleep } from '../util/async';
import { freePorts } from '../util/net';

export interface StartEtcdOptions {
  /** Where etcd keeps its data; created by etcd when missing. Reusing it restarts the same member. */
  dataDir: string;
  /** Client port; a free one when omitted. */
  clientPort?: number;
  /** Peer port; a free one when omitted. */
  peerPort?: number;
  /** Address to listen on and advertise; must be reachable by clients. Default 127.0.0.1. */
  host?: string;
  /** Backend size quota in bytes. Default 2 GiB. */
  quotaBackendBytes?: number;
  /** Receives each line etcd prints (it logs JSON lines to stderr). */
  log?: (line: string) => void;
  /** Serve clients over TLS with this certificate (files, PEM); `ca` is what clients verify it with. */
  tls?: { cert: string; key: string; ca: string };
  /**
   * Be a member of a cluster rather than a cluster of one. Its peer port must then be the one
   * `initialCluster` gives it. A member of a new cluster becomes healthy only once a quorum of
   * members runs: start them together. @default a single member named `shoal`
   */
  member?: EtcdMemberOptions;
}

/** One member of a multi-member etcd cluster (etcd's --name, --initial-cluster, ...). */
export interface EtcdMemberOptions {
  /** This member's name; one of initialCluster's. */
  name: string;
  /** Every member, `name=peerURL` joined by commas, e.g. `m0=http://127.0.0.1:2380,m1=...`. */
  initialCluster: string;
  /** `new` to bootstrap; `existing` to join a running cluster. A restart on its data dir ignores it. @default 'new' */
  initialClusterState?: 'new' | 'existing';
  /** Tells clusters apart on one network. @default 'shoal' */
  initialClusterToken?: string;
}

/** A running etcd. */
export interface EtcdProcess {
  /** Client URL, e.g. http://127.0.0.1:2379 (https:// with tls). */
  endpoint: string;
  clientPort: number;
  pid: number;
  /** SIGTERM, then SIGKILL after 5 s. Idempotent; resolves once the process has exited. */
  stop(): Promise<void>;
  /** Sends `signal` (a crash: SIGKILL) and resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const DEFAULT_QUOTA_BYTES = 2 * 1024 ** 3;
const HEALTH_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL_LINES = 40;
const PORT_ATTEMPTS = 3;

/**
 * Starts etcd and resolves once GET /health reports healthy (20 s timeout).
 * Throws when the binary is missing, or when etcd exits or stays unhealthy (the error
 * message carries the tail of etcd's output); a failed etcd is killed before throwing.
 */
export async function startEtcd(opts: StartEtcdOptions): Promise<EtcdProcess> {
  const bin = resolveEtcdBinary();
  for (let attempt = 1; ; attempt++) {
    const ports = await choosePorts(opts);
    try {
      return await launch(bin, opts, ports);
    } catch (err) {
      // Free ports are only free "a moment ago"; another process may take one before etcd binds.
      const portsWereOurs = opts.clientPort === undefined || opts.peerPort === undefined;
      if (!(err instanceof PortInUseError && portsWereOurs && attempt < PORT_ATTEMPTS)) throw err;
    }
  }
}

/** The etcd binary: $SHOAL_ETCD_BIN, else `etcd` on PATH. Throws with install advice when missing. */
export function resolveEtcdBinary(): string {
  const fromEnv = process.env.SHOAL_ETCD_BIN;
  const candidates = fromEnv
    ? [fromEnv]
    : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'etcd'));
  const found = candidates.find(isExecutable);
  if (found) return found;
  const lookedFor = fromEnv ?? 'etcd on PATH';
  throw new Error(`etcd binary not found (looked for ${lookedFor}); install it with hack/install-deps.sh`);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

interface Ports {
  client: number;
  peer: number;
}

async function choosePorts(opts: StartEtcdOptions): Promise<Ports> {
  const taken = [opts.clientPort, opts.peerPort].filter((p): p is number => p !== undefined);
  const spare = (await freePorts(2)).filter((p) => !taken.includes(p));
  return { client: opts.clientPort ?? spare.shift()!, peer: opts.peerPort ?? spare.shift()! };
}

class PortInUseError extends Error {}

function etcdArgs(opts: StartEtcdOptions, host: string, ports: Ports): string[] {
  const clientUrl = `${opts.tls ? 'https' : 'http'}://${host}:${ports.client}`;
  const peerUrl = `http://${host}:${ports.peer}`;
  const m = opts.member;
  return [
    `--name=${m?.name ?? 'shoal'}`,
    `--data-dir=${opts.dataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=${m?.initialCluster ?? `shoal=${peerUrl}`}`,
    ...(m ? [`--initial-cluster-state=${m.initialClusterState ?? 'new'}`, `--initial-cluster-token=${m.initialClusterToken ?? 'shoal'}`] : []),
    // Without compaction the history grows until the quota is hit and etcd refuses writes.
    '--auto-compaction-mode=periodic',
    '--auto-compaction-retention=5m',
    `--quota-backend-bytes=${opts.quotaBackendBytes ?? DEFAULT_QUOTA_BYTES}`,
    // 3.4's default logger (capnslog) is deprecated and prints a warning about it.
    '--logger=zap',
    '--log-outputs=stderr',
    // Server TLS only: components prove who they are with their etcd user's password (a
    // --trusted-ca-file would make etcd 3.4 demand client certificates from every client).
    ...(opts.tls ? [`--cert-file=${opts.tls.cert}`, `--key-file=${opts.tls.key}`] : []),
  ];
}

async function launch(bin: string, opts: StartEtcdOptions, ports: Ports): Promise<EtcdProcess> {
  const host = opts.host ?? '127.0.0.1';
  const child = spawn(bin, etcdArgs(opts, host, ports), { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = trackChild(child);
  const output = captureOutput(child, opts.log);
  const stop = stopper(child, exited);
  const endpoint = `${opts.tls ? 'https' : 'http'}://${host}:${ports.client}`;
  const ca = opts.tls ? fs.readFileSync(opts.tls.ca) : undefined;
  try {
    await waitHealthy(endpoint, exited, output.serving, ca);
  } catch (err) {
    await stop();
    const tail = output.tail();
    const message = `${(err as Error).message}; last output of etcd:\n${tail}`;
    throw /address already in use/.test(tail) ? new PortInUseError(message) : new Error(message);
  }
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return { endpoint, clientPort: ports.client, pid: child.pid!, stop, kill };
}

/**
 * Keeps the last lines etcd printed (for error messages) and forwards every line to `log`.
 * `serving()` tells whether this etcd has said it serves clients.
 */
function captureOutput(child: ChildProcess, log?: (line: string) => void): { tail(): string; serving(): boolean } {
  const lines: string[] = [];
  let serving = false;
  for (const stream of [child.stdout!, child.stderr!]) {
    readline.createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      if (lines.length > OUTPUT_TAIL_LINES) lines.shift();
      serving ||= SERVING_CLIENTS.test(line);
      log?.(line);
    });
  }
  return { tail: () => lines.join('\n'), serving: () => serving };
}

/** etcd 3.4 (zap logger) prints this once it serves clients on a listener. */
const SERVING_CLIENTS = /"msg":"serving client traffic/;

/**
 * Polls /health until it says true and this etcd has said it serves clients; rejects when etcd
 * exits or the timeout passes. /health alone is not proof: when another etcd, started at the same
 * moment by another process, took the port first, this one fails to bind and exits, and the other
 * answers the health check.
 */
async function waitHealthy(endpoint: string, exited: Promise<string>, serving: () => boolean, ca?: Buffer): Promise<void> {
  let exitReason: string | undefined;
  void exited.then((reason) => (exitReason = reason));
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exitReason) throw new Error(`etcd ${exitReason} before becoming healthy`);
    if (serving() && (await isHealthy(endpoint, ca)) && !exitReason) return;
    await sleep(100);
  }
  throw new Error(`etcd at ${endpoint} was not healthy within ${HEALTH_TIMEOUT_MS / 1000} s`);
}

function isHealthy(endpoint: string, ca?: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const onResponse = (res: http.IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(res.statusCode === 200 && parseHealth(body)));
    };
    const req = ca ? https.get(`${endpoint}/health`, { timeout: 1000, ca }, onResponse) : http.get(`${endpoint}/health`, { timeout: 1000 }, onResponse);
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function parseHealth(body: string): boolean {
  try {
    const health = (JSON.parse(body) as { health?: unknown }).health;
    return health === true || health === 'true'; // etcd 3.4 sends the string "true"
  } catch {
    return false;
  }
}

/** Makes stop(): SIGTERM, SIGKILL after the grace period; the same promise for every call. */
function stopper(child: ChildProcess, exited: Promise<string>): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  const terminate = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    if (!(await settlesWithin(exited, STOP_GRACE_MS))) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  return () => (stopping ??= terminate());
}

/** Children still running; killed when this process exits so no etcd outlives it. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Registers the child for the exit hook; resolves with a description when it exits. */
function trackChild(child: ChildProcess): Promise<string> {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous; kill() is.
    process.on('exit', () => liveChildren.forEach((c) => c.kill('SIGKILL')));
  }
  liveChildren.add(child);
  return new Promise((resolve) => {
    const done = (reason: string) => {
      liveChildren.delete(child);
      resolve(reason);
    };
    child.once('exit', (code, signal) => done(signal ? `was killed by ${signal}` : `exited with code ${code}`));
    child.once('error', (err) => done(`failed to start (${err.message})`));
  });
}

/** Options of startEtcdCluster. */
export interface StartEtcdClusterOptions {
  /** Members. @default 3 */
  size?: number;
  /** Each member keeps its data in `<dir>/<member name>`. */
  dir: string;
  /** Address every member listens on and advertises. @default '127.0.0.1' */
  host?: string;
  /** Receives each line a member prints. */
  log?: (member: string, line: string) => void;
  /** Passed to each member. @default 2 GiB */
  quotaBackendBytes?: number;
}

/**
 * One member of a cluster started by startEtcdCluster. Its name, data dir and ports stay the same
 * across kill() and start(): a start after a kill is the same member rejoining (a crash and a
 * restart), not a new member.
 */
export class EtcdClusterMember {
  private proc?: EtcdProcess;
  private starting?: Promise<void>;

  constructor(readonly name: string, readonly endpoint: string, private readonly opts: StartEtcdOptions) {}

  /** Whether its process runs (from start() until kill() or stop()). */
  get running(): boolean {
    return this.proc !== undefined;
  }

  /** Its pid while running. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /**
   * Starts it (nothing when it runs) and resolves once it is healthy: it then has a leader, so a
   * quorum of members must be running or starting at the same time.
   */
  async start(): Promise<void> {
    if (this.proc) return;
    // One start at a time: a second call while one is under way waits for it (two would leave an
    // etcd process nobody stops).
    this.starting ??= startEtcd(this.opts).then((p) => void (this.proc = p)).finally(() => (this.starting = undefined));
    return this.starting;
  }

  /** A crash: SIGKILL (or `signal`), resolving once the process has exited. A start under way finishes first. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.starting?.catch(() => undefined);
    const proc = this.proc;
    this.proc = undefined;
    await proc?.kill(signal);
  }

  /** A clean stop (see EtcdProcess.stop). A start under way finishes first. */
  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const proc = this.proc;
    this.proc = undefined;
    await proc?.stop();
  }
}

/** A running etcd cluster of members on this machine. */
export interface EtcdCluster {
  /** Every member's client URL, in member order: what components connect to. */
  readonly endpoints: string[];
  readonly members: EtcdClusterMember[];
  /** The member that is raft leader now, as a running member sees it; undefined when none knows one. */
  leader(): Promise<EtcdClusterMember | undefined>;
  /** Stops every running member (SIGTERM, then SIGKILL); the data dirs stay (the caller owns `dir`). */
  stop(): Promise<void>;
}

/**
 * Starts an etcd cluster of `size` members (named m0, m1, ...) on free ports, all at once (a
 * member of a new cluster becomes healthy only once a quorum runs), and resolves once every
 * member is healthy. Kill and restart members through `members`. Auto-compaction and the quota
 * are as startEtcd's. When a member fails to start, the others are stopped before throwing.
 */
export async function startEtcdCluster(o: StartEtcdClusterOptions): Promise<EtcdCluster> {
  const size = o.size ?? 3;
  if (!Number.isInteger(size) || size < 1) throw new TypeError(`startEtcdCluster: size must be a positive integer, got ${size}`);
  const host = o.host ?? '127.0.0.1';
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(2 * size);
    const names = Array.from({ length: size }, (_, i) => `m${i}`);
    const initialCluster = names.map((n, i) => `${n}=http://${host}:${ports[2 * i + 1]}`).join(',');
    const members = names.map((name, i) => new EtcdClusterMember(name, `http://${host}:${ports[2 * i]}`, {
      dataDir: path.join(o.dir, name), host, clientPort: ports[2 * i], peerPort: ports[2 * i + 1],
      quotaBackendBytes: o.quotaBackendBytes, log: o.log && ((line) => o.log!(name, line)),
      member: { name, initialCluster, initialClusterState: 'new', initialClusterToken: `shoal-${ports[1]}` },
    }));
    const started = await Promise.allSettled(members.map((m) => m.start()));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed) {
      return {
        endpoints: members.map((m) => m.endpoint),
        members,
        leader: () => findLeader(members),
        stop: async () => void (await Promise.all(members.map((m) => m.stop()))),
      };
    }
    await Promise.all(members.map((m) => m.stop()));
    // Free ports are only free "a moment ago": start again on other ports, on fresh data dirs.
    const inUse = /address already in use/.test(String((failed.reason as Error)?.message));
    if (!inUse || attempt >= PORT_ATTEMPTS) throw failed.reason;
    for (const name of names) fs.rmSync(path.join(o.dir, name), { recursive: true, force: true });
  }
}

/** Asks the running members for their status (etcd's JSON gateway) until one names its leader. */
async function findLeader(members: EtcdClusterMember[]): Promise<EtcdClusterMember | undefined> {
  const ids = new Map<string, EtcdClusterMember>();
  let leader: string | undefined;
  for (const m of members.filter((x) => x.running)) {
    try {
      const res = await fetch(`${m.endpoint}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(2000) });
      const status = (await res.json()) as { header?: { member_id?: string }; leader?: string };
      if (status.header?.member_id) ids.set(status.header.member_id, m);
      if (status.leader && status.leader !== '0') leader ??= status.leader;
    } catch {
      // down or hung: ask the next
    }
  }
  return leader === undefined ? undefined : ids.get(leader);
}
