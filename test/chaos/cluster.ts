/**
 * The cluster the fault suite breaks: its own 3-member etcd, one shoal-apiserver (HTTPS), two
 * shoal-controller-managers (one leads) and three shoal-agents on the process runtime, all the
 * compiled binaries (`dist/cmd/...`) as child processes with their output appended to
 * `<dir>/logs/<name>.log` across restarts. Every component can be SIGKILLed, restarted, SIGSTOPped
 * and SIGCONTed by name. Snapshots read etcd directly (not through the apiserver, which may be
 * down), the agents' task records and /proc.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { dump } from 'js-yaml';
import { startEtcdCluster, type EtcdCluster } from '../../pkg/devcluster/etcd';
import { EtcdStore } from '../../pkg/store/etcd';
import { freePorts } from '../../pkg/util/net';
import { operatorFiles } from '../harness/pki';
import { killProcessesUnder } from '../harness/procs';
import type { ProcessView, RecordView, TaskView } from './invariants';

/** The repository root: the first ancestor with a package.json (this file runs from test/ under jest, from dist-bench/ under make chaos). */
function repoRoot(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${__dirname}`);
  }
}
const ROOT = repoRoot();
const DIST = join(ROOT, 'dist/cmd');
export const BIN = {
  apiserver: join(DIST, 'apiserver/main.js'),
  cm: join(DIST, 'controller-manager/main.js'),
  agent: join(DIST, 'agent/main.js'),
  shoal: join(DIST, 'shoal/main.js'),
};
const ADMIN = 'chaos-admin-token-0123456789abcdef';
const AGENT_TOKEN = 'chaos-agent-token-0123456789abcdef';
export const PREFIX = '/chaos';
/** Leader lease of the controller-managers, seconds: a stale-leader pause lasts longer than this. */
export const LEADER_LEASE_S = 5;
/** Agents' lease TTL, seconds: a restart within it keeps the node. */
export const AGENT_LEASE_S = 6;
export const AGENTS = ['chaos-1', 'chaos-2', 'chaos-3'];
export const CONTROLLER_MANAGERS = ['cm-a', 'cm-b'];

/** One component: a node script with fixed arguments, restartable. */
export class Component {
  private proc?: ChildProcess;
  starts = 0;
  stopped = false;

  constructor(readonly name: string, private readonly script: string, private readonly args: string[], readonly logFile: string, private readonly env: NodeJS.ProcessEnv) {}

  start(): void {
    if (this.alive()) throw new Error(`${this.name} already runs (pid ${this.proc!.pid})`);
    const fd = openSync(this.logFile, 'a');
    writeFileSync(fd, `\n=== chaos: start #${++this.starts} of ${this.name} at ${new Date().toISOString()}\n`);
    const proc = spawn(process.execPath, [this.script, ...this.args], { stdio: ['ignore', fd, fd], env: this.env });
    closeSync(fd);
    this.proc = proc;
    this.stopped = false;
  }

  get pid(): number | undefined {
    return this.alive() ? this.proc!.pid : undefined;
  }

  alive(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Sends a signal; SIGKILL resolves once the process is gone. */
  async signal(sig: NodeJS.Signals): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.alive()) return;
    this.stopped = sig === 'SIGSTOP';
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill(sig);
    if (sig === 'SIGKILL') await gone;
  }

  /** SIGKILL (continued first if stopped), then start again. */
  async restart(): Promise<void> {
    if (this.stopped) await this.signal('SIGCONT');
    await this.signal('SIGKILL');
    this.start();
  }

  /** SIGTERM (continued first), SIGKILL after 5 s. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.alive()) return;
    proc.kill('SIGCONT');
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }

  /** Its whole log file. */
  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Byte length of its log now (to search only what comes after). */
  logSize(): number {
    try {
      return statSync(this.logFile).size;
    } catch {
      return 0;
    }
  }

  tail(chars = 3000): string {
    return this.log().slice(-chars);
  }
}

export interface LeaderInfo {
  identity: string;
  modRevision: number;
}

/** A started chaos cluster; {@link ChaosCluster.start} makes one. */
export class ChaosCluster {
  readonly components = new Map<string, Component>();
  readonly env: NodeJS.ProcessEnv;

  private constructor(readonly dir: string, readonly etcd: EtcdCluster, readonly client: Etcd3, readonly store: EtcdStore, env: NodeJS.ProcessEnv) {
    this.env = env;
  }

  /**
   * Starts etcd (`etcdMembers` members, default 3) and every component, and waits until one
   * controller-manager leads and three nodes are Ready.
   */
  static async start(opts: { keep?: boolean; etcdMembers?: number } = {}): Promise<ChaosCluster> {
    for (const bin of Object.values(BIN)) if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\``);
    const dir = mkdtempSync(join(tmpdir(), 'shoal-chaos-'));
    chmodSync(dir, 0o711); // agents' data dirs are inside: process tasks' users must get through
    mkdirSync(join(dir, 'logs'));
    const etcd = await startEtcdCluster({ dir: join(dir, 'etcd'), size: opts.etcdMembers ?? 3, log: (member, line) => writeFileSync(join(dir, 'logs', `etcd-${member}.log`), `${line}\n`, { flag: 'a' }) });
    const client = new Etcd3({ hosts: etcd.endpoints });
    const store = new EtcdStore({ endpoints: etcd.endpoints });
    const env: NodeJS.ProcessEnv = { ...process.env, SHOAL_CONFIG: join(dir, 'config.yaml'), HOME: dir, SHOAL_LOG_LEVEL: 'info' };
    const c = new ChaosCluster(dir, etcd, client, store, env);
    c.keep = opts.keep ?? false;
    try {
      await c.startComponents();
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  private keep = false;

  private async startComponents(): Promise<void> {
    const [apiPort, mA, mB, ...agentPorts] = await freePorts(2 + CONTROLLER_MANAGERS.length + AGENTS.length);
    const files = operatorFiles(this.dir, apiPort!, { admin: ADMIN, agent: AGENT_TOKEN });
    const pki = files.pki;
    const etcd = ['--etcd-endpoints', this.etcd.endpoints.join(','), '--etcd-prefix', PREFIX];
    const add = (name: string, script: string, args: string[]) => this.components.set(name, new Component(name, script, args, join(this.dir, 'logs', `${name}.log`), this.env));
    add('apiserver', BIN.apiserver, [...etcd, ...files.apiserverArgs]);
    CONTROLLER_MANAGERS.forEach((name, i) =>
      add(name, BIN.cm, [...etcd, '--identity', name, '--metrics-port', String([mA, mB][i]), '--leader-lease', String(LEADER_LEASE_S), '--allocation-interval', '200']),
    );
    AGENTS.forEach((node, i) =>
      add(node, BIN.agent, [
        ...etcd, '--node-name', node, '--hostname', '127.0.0.1', '--runtime', 'process', '--data-dir', this.agentDir(node),
        '--listen', String(agentPorts[i]), '--log-token-file', files.agentTokenFile, '--cpus', '2', '--mem', '1024', '--lease-ttl', String(AGENT_LEASE_S),
        ...pki.agentFlags(node),
      ]),
    );
    for (const comp of this.components.values()) comp.start();
    await this.waitFor('a leading controller-manager and 3 Ready nodes', 60_000, async () => (await this.leader()) && (await this.readyNodes()).length === AGENTS.length);
  }

  agentDir(node: string): string {
    return join(this.dir, 'agents', node);
  }

  get(name: string): Component {
    const c = this.components.get(name);
    if (!c) throw new Error(`no component ${name}`);
    return c;
  }

  /** The leader key's holder, if any. */
  async leader(): Promise<LeaderInfo | undefined> {
    const kv = await this.store.get(`${PREFIX}/leader/controller-manager`);
    if (!kv) return undefined;
    return { identity: (JSON.parse(kv.value) as { identity: string }).identity, modRevision: kv.modRevision };
  }

  /** Nodes whose agent lease key exists. */
  async readyNodes(): Promise<string[]> {
    const leases = await this.store.list(`${PREFIX}/leases/nodes/`);
    return leases.items.map((kv) => kv.key.slice(`${PREFIX}/leases/nodes/`.length));
  }

  /** Every Task in etcd. */
  async tasks(): Promise<TaskView[]> {
    const { items } = await this.store.list(`${PREFIX}/registry/tasks/`);
    return items.map((kv) => taskView(kv.value));
  }

  /** Every task record in the agents' data dirs, with whether its process is alive. */
  records(): RecordView[] {
    const out: RecordView[] = [];
    for (const node of AGENTS) {
      const root = join(this.agentDir(node), 'tasks');
      for (const namespace of dirs(root)) {
        for (const dir of dirs(join(root, namespace))) {
          let rec: { pid: number; startTime?: string };
          try {
            rec = JSON.parse(readFileSync(join(root, namespace, dir, 'task.json'), 'utf8')) as typeof rec;
          } catch {
            continue; // no record (yet, or any more)
          }
          out.push({ node, namespace, dir, pid: rec.pid, alive: processAlive(rec.pid, rec.startTime) });
        }
      }
    }
    return out;
  }

  /** Every process whose cwd is inside an agent's task dir (the task's processes, however they were exec'd). */
  processes(): ProcessView[] {
    const out: ProcessView[] = [];
    const roots = AGENTS.map((node) => ({ node, root: `${join(this.agentDir(node), 'tasks')}/` }));
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let cwd: string;
      try {
        cwd = readlinkSync(`/proc/${entry}/cwd`);
      } catch {
        continue; // gone, or a zombie
      }
      const r = roots.find((x) => cwd.startsWith(x.root));
      if (!r) continue;
      const [namespace, dir] = cwd.slice(r.root.length).split('/');
      if (namespace && dir) out.push({ pid: Number(entry), node: r.node, namespace, dir });
    }
    return out;
  }

  /** Runs the shoal CLI; a non-zero exit is a result. */
  async shoal(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN.shoal, ...args], { env: this.env, timeout: 20_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  /** `shoal apply -f` of one manifest, retried while the apiserver is down or restarting (up to `ms`). */
  async apply(name: string, manifest: object, ms = 60_000): Promise<void> {
    const file = join(this.dir, `${name}.yaml`);
    writeFileSync(file, dump(manifest));
    let last = '';
    await this.waitFor(`shoal apply -f ${name}.yaml`, ms, async () => {
      const r = await this.shoal('apply', '-f', file);
      last = r.stderr;
      return r.code === 0;
    }).catch((err: Error) => {
      throw new Error(`${err.message}: ${last}`);
    });
  }

  /**
   * SIGKILLs one etcd member (a random one: follower or raft leader), leaves it down `downMs`, then
   * restarts it on its data dir and waits until it is healthy (rejoined). Two members always run.
   */
  async killEtcdMember(index: number, downMs: number): Promise<string> {
    const member = this.etcd.members[index % this.etcd.members.length]!;
    await member.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, downMs));
    await member.start();
    return member.name;
  }

  /** Compacts etcd's history up to its current revision (physical: waits until applied). */
  async compact(): Promise<number> {
    const revision = await this.store.revision();
    await this.client.kv.compact({ revision: String(revision), physical: true });
    return revision;
  }

  /** Polls `fn` (errors count as not yet) every 200 ms until truthy; throws after `ms`. */
  async waitFor<T>(what: string, ms: number, fn: () => Promise<T | undefined | false>): Promise<T> {
    const deadline = Date.now() + ms;
    let lastError = '';
    for (;;) {
      try {
        const v = await fn();
        if (v) return v;
      } catch (err) {
        lastError = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Stops every component, kills what their tasks left, stops etcd and removes the dir (unless kept). */
  async stop(): Promise<void> {
    for (const c of [...this.components.values()].reverse()) await c.stop().catch(() => undefined);
    killProcessesUnder(this.dir);
    await this.store.close().catch(() => undefined);
    this.client.close();
    await this.etcd.stop();
    if (!this.keep) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A stored Task as a {@link TaskView}. */
export function taskView(value: string): TaskView {
  const t = JSON.parse(value) as {
    metadata: { namespace?: string; name: string; uid: string; labels?: Record<string, string> };
    spec: { nodeName?: string; env?: Record<string, string> };
    status?: { state?: string };
  };
  return {
    namespace: t.metadata.namespace ?? 'default',
    name: t.metadata.name,
    uid: t.metadata.uid,
    node: t.spec.nodeName ?? '',
    state: t.status?.state ?? 'STAGING',
    app: t.metadata.labels?.['shoal.dev/app'],
    version: t.spec.env?.CHAOS_VERSION,
  };
}

function dirs(path: string): string[] {
  try {
    return readdirSync(path, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}

/** Whether `pid` runs and is the process that was recorded (same start time), not a zombie. */
function processAlive(pid: number, startTime?: string): boolean {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return f[0] !== 'Z' && (startTime === undefined || f[19] === startTime);
  } catch {
    return false;
  }
}
