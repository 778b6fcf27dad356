/**
 * Apps end to end, as a user runs them: `shoal dev` (real etcd, apiserver, controller-manager)
 * plus three `shoal-agent` processes on the process runtime, driven by the compiled CLI. An HTTP
 * service (busybox httpd, HTTP health checks) is applied, scaled, upgraded while its healthy
 * instances are sampled, survives an agent SIGKILL, explains a constraint no agent meets, and
 * leaves no process behind when deleted. Where Docker runs, the web example does the same in
 * containers. Needs `npm run build` (make test does it).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { App, Task } from '../../pkg/api/types.generated';
import { freePorts } from '../../pkg/util/net';
import { runShoal, SHOAL_MAIN, type CliResult } from '../harness/cli';
import { dockerUnavailableReason } from '../harness/docker';
import { capture, killProcessesUnder, processesWith, stopProc } from '../harness/procs';
import { devAgentFlags } from '../../pkg/devcluster/cluster';

const run = promisify(execFile);
const ROOT = join(__dirname, '../..');
const SHOAL = SHOAL_MAIN;
const AGENT = join(ROOT, 'dist/cmd/agent/main.js');
/** In every task's command line, so leftover processes can be found. */
const MARK = `shoal-e2e-${process.pid}`;

let dir: string;
let env: NodeJS.ProcessEnv;
let etcdPort: number;
let dev: ChildProcess;
const logs = new Map<string, string>();
const agents = new Map<string, { proc: ChildProcess; args: string[] }>();

function shoal(...args: string[]): Promise<CliResult> {
  return runShoal(env, ...args);
}

async function ok(...args: string[]): Promise<string> {
  const r = await shoal(...args);
  if (r.code !== 0) throw new Error(`shoal ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function app(name: string): Promise<App> {
  return JSON.parse(await ok('get', 'app', name, '-o', 'json')) as App;
}

async function tasks(appName: string): Promise<Task[]> {
  return (JSON.parse(await ok('get', 'tasks', '-l', `shoal.dev/app=${appName}`, '-o', 'json')) as { items: Task[] }).items;
}

const live = (ts: Task[]) => ts.filter((t) => !['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST'].includes(t.status?.state ?? ''));
const healthy = (ts: Task[]) => ts.filter((t) => t.status?.state === 'RUNNING' && t.status.healthy === true);

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    const v = await fn().catch((e: Error) => ((last = e.message), undefined));
    if (v) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  const summary = await shoal('get', 'tasks', '-o', 'wide');
  throw new Error(`timed out waiting for ${what} (${String(last ?? '')})\n${summary.stdout}\n--- dev log tail:\n${(logs.get('dev') ?? '').slice(-3000)}`);
}

function startAgent(name: string, args: string[]): void {
  const proc = spawn('node', [AGENT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  capture(logs, name, proc);
  agents.set(name, { proc, args });
}

beforeAll(async () => {
  if (!existsSync(SHOAL)) throw new Error(`${SHOAL} is missing: run \`npm run build\` (make test does)`);
  dir = mkdtempSync(join(tmpdir(), 'shoal-e2e-apps-'));
  chmodSync(dir, 0o711); // agents' data dirs are inside: process tasks' users must get through
  const ports = await freePorts(2 + 3 + 3 * 8);
  const [apiPort, ePort] = ports;
  etcdPort = ePort!;
  env = { ...process.env, SHOAL_CONFIG: join(dir, 'config.yaml'), HOME: dir };
  dev = spawn('node', [SHOAL, 'dev', '--data-dir', dir, '--api-port', String(apiPort), '--etcd-port', String(etcdPort), '--no-scheduler-api', '--agents', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  capture(logs, 'dev', dev);
  await waitFor('config.yaml', async () => existsSync(join(dir, 'config.yaml')));
  for (let i = 0; i < 3; i++) {
    const hostPorts = ports.slice(5 + i * 8, 5 + (i + 1) * 8).map((p) => `${p}-${p}`).join(',');
    startAgent(`agent-${i}`, [
      ...await devAgentFlags(dir, `agent-${i}`), '--hostname', `host-${i}`,
      '--runtime', 'process', '--data-dir', join(dir, `agent-${i}`), '--listen', String(ports[2 + i]),
      '--cpus', '2', '--mem', '2048', '--ports', hostPorts, '--lease-ttl', '3',
    ]);
  }
  await waitFor('3 Ready nodes', async () => (await ok('get', 'nodes')).split('\n').filter((l) => /\sReady\s/.test(l)).length === 3);
}, 60_000);

afterAll(async () => {
  for (const { proc } of agents.values()) await stopProc(proc);
  if (dev) await stopProc(dev, 'SIGINT');
  for (const pid of await processesWith(MARK)) process.kill(Number(pid), 'SIGKILL');
  killProcessesUnder(dir); // task processes whose command line lost the mark (exec)
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** An HTTP service on the process runtime: busybox httpd on its host port, checked over HTTP. */
function webManifest(instances: number, version: string): string {
  return `apiVersion: shoal/v1
kind: App
metadata:
  name: web
spec:
  instances: ${instances}
  cmd: 'mkdir -p www && echo "${version}" > www/index.html && exec busybox httpd -f -p $PORT0 -h www # ${MARK}'
  env:
    VERSION: "${version}"
  resources:
    cpus: 0.1
    mem: 16
  ports:
    - name: http
  healthChecks:
    - protocol: HTTP
      portName: http
      path: /
      gracePeriodSeconds: 10
      delaySeconds: 0
      intervalSeconds: 1
      timeoutSeconds: 1
      maxConsecutiveFailures: 3
  upgradeStrategy:
    minimumHealthCapacity: 0.6
    maximumOverCapacity: 0.4
  taskKillGracePeriodSeconds: 1
`;
}

async function applyWeb(instances: number, version: string): Promise<void> {
  const file = join(dir, `web-${version}-${instances}.yaml`);
  writeFileSync(file, webManifest(instances, version));
  await ok('apply', '-f', file);
}

describe('an HTTP service on the process runtime', () => {
  it('runsScalesUpgradesSurvivesAnAgentAndLeavesNothingWhenDeleted', async () => {
    // 3 instances → one per agent, each answering HTTP on its host port.
    await applyWeb(3, 'v1');
    const three = await waitFor('3 healthy instances', async () => { const h = healthy(await tasks('web')); return h.length === 3 && h; });
    expect(new Set(three.map((t) => t.spec.nodeName))).toEqual(new Set(['agent-0', 'agent-1', 'agent-2']));
    const res = await fetch(`http://127.0.0.1:${three[0]!.status.hostPorts![0]}/`);
    expect((await res.text()).trim()).toBe('v1');

    // Scale to 5 keeps the first three.
    expect(await ok('scale', 'app', 'web', '--instances', '5')).toMatch(/scaled/);
    const five = await waitFor('5 healthy instances', async () => { const h = healthy(await tasks('web')); return h.length === 5 && h; });
    expect(five.map((t) => t.metadata.name)).toEqual(expect.arrayContaining(three.map((t) => t.metadata.name)));

    // A rolling upgrade never drops below minimumHealthCapacity × instances = 3 healthy.
    await applyWeb(5, 'v2');
    let minHealthy = Infinity;
    const upgraded = await waitFor('all 5 on v2', async () => {
      const ts = await tasks('web');
      minHealthy = Math.min(minHealthy, healthy(ts).length);
      const a = await app('web');
      const l = live(ts);
      return a.status.deployment?.state === 'Succeeded' && a.status.deployment.targetVersion === a.metadata.generation &&
        l.length === 5 && healthy(l).length === 5 && l.every((t) => t.spec.env?.VERSION === 'v2') && l;
    }, 60_000);
    expect(minHealthy).toBeGreaterThanOrEqual(3);
    expect((await (await fetch(`http://127.0.0.1:${upgraded[0]!.status.hostPorts![0]}/`)).text()).trim()).toBe('v2');

    // SIGKILL the agent with the most instances: replacements run on the others within 15 s.
    const counts = new Map<string, number>();
    for (const t of upgraded) counts.set(t.spec.nodeName!, (counts.get(t.spec.nodeName!) ?? 0) + 1);
    const victim = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
    await stopProc(agents.get(victim)!.proc, 'SIGKILL');
    const killedAt = Date.now();
    // Its tasks are UNREACHABLE (not LOST: the App's unreachableStrategy keeps them for 600 s);
    // replacements run on the others at once (inactiveAfterSeconds 0).
    await waitFor('5 RUNNING off the dead agent, its own UNREACHABLE', async () => {
      const l = live(await tasks('web'));
      const away = l.filter((t) => t.spec.nodeName === victim);
      const here = l.filter((t) => t.spec.nodeName !== victim);
      return here.length === 5 && here.every((t) => t.status.state === 'RUNNING') && away.every((t) => t.status.state === 'UNREACHABLE');
    }, 15_000);
    expect(Date.now() - killedAt).toBeLessThan(15_000);

    // The agent comes back within the expunge time: it adopts what it still runs, which is RUNNING
    // again, and the App, over its instances, kills the surplus (YoungestFirst: replacements).
    startAgent(victim, agents.get(victim)!.args);
    await waitFor('5 RUNNING again, nothing UNREACHABLE', async () => {
      const l = live(await tasks('web'));
      return l.length === 5 && l.every((t) => t.status.state === 'RUNNING');
    }, 30_000);

    // Delete: every task stopped, the App and its tasks removed, no process left.
    expect(await ok('delete', 'app', 'web')).toMatch(/deleted/);
    await waitFor('the app and its tasks gone', async () => (await shoal('get', 'app', 'web')).code !== 0 && (await tasks('web')).length === 0);
    await waitFor('no task process left', async () => (await processesWith(MARK)).length === 0, 20_000);
  }, 150_000);
});

describe('a constraint no agent meets', () => {
  it('runsWhatFitsAndExplainsThePendingInstance', async () => {
    const file = join(dir, 'uniq.yaml');
    writeFileSync(file, `apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: uniq\nspec:\n  instances: 4\n  cmd: 'exec sleep 600 # ${MARK}'\n  resources: {cpus: 0.1, mem: 16}\n  constraints: [[hostname, UNIQUE]]\n`);
    await ok('apply', '-f', file);
    await waitFor('3 running, a pending reason', async () => {
      const l = live(await tasks('uniq'));
      const a = await app('uniq');
      return l.length === 3 && l.every((t) => t.status.state === 'RUNNING') && /constraint UNIQUE hostname/.test(a.status.pendingReason ?? '');
    });
    const described = await ok('describe', 'app', 'uniq');
    expect(described).toMatch(/0\/3 agents available: 3 constraint UNIQUE hostname/);
    // Why placed: each task records the ranking that put it on its agent.
    const placed = await ok('describe', 'task', live(await tasks('uniq'))[0]!.metadata.name);
    expect(placed).toMatch(/Placed:\s+\d of \d offered agent\(s\) could run it; ranked first by SPREAD: \d task\(s\) of its owner there, free share [\d.]+/);
    await ok('delete', 'app', 'uniq');
    await waitFor('uniq gone', async () => (await tasks('uniq')).length === 0);
  }, 60_000);
});

describe('a full cluster', () => {
  it('explainsEveryPendingInstanceWithoutAnyOffer', async () => {
    // Fill every agent's cpus (2 each), so no agent has anything to offer; cordon one.
    const filler = join(dir, 'filler.yaml');
    writeFileSync(filler, `apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: filler\nspec:\n  instances: 3\n  cmd: 'exec sleep 600 # ${MARK}'\n  resources: {cpus: 2, mem: 16}\n`);
    await ok('apply', '-f', filler);
    await waitFor('the cluster full', async () => live(await tasks('filler')).filter((t) => t.status.state === 'RUNNING').length === 3);
    await ok('cordon', 'agent-2');
    const late = join(dir, 'late.yaml');
    writeFileSync(late, `apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: late\nspec:\n  instances: 2\n  cmd: 'exec sleep 600 # ${MARK}'\n  resources: {cpus: 0.5, mem: 16}\n`);
    await ok('apply', '-f', late);
    try {
      const a = await waitFor('a reason for the pending instances', async () => { const x = await app('late'); return (x.status.pending?.reasons?.length ?? 0) > 0 && x; });
      expect(a.status.pending).toMatchObject({ instances: 2, agents: 3, available: 0 });
      expect(a.status.pendingReason).toBe('0/3 agents available: 2 insufficient cpus, 1 agent unschedulable.');
      const described = await ok('describe', 'app', 'late');
      expect(described).toMatch(/Pending:\s+0\/3 agents available: 2 insufficient cpus, 1 agent unschedulable\./);
      expect(described).toMatch(/2\s+insufficient cpus\s+agent-0: insufficient cpus \(needs 0\.5, 0 free\); agent-1: insufficient cpus/);
      expect(described).toMatch(/1\s+agent unschedulable\s+agent-2: agent unschedulable \(cordoned\)/);
    } finally {
      await ok('uncordon', 'agent-2');
      await ok('delete', 'app', 'late');
      await ok('delete', 'app', 'filler');
    }
    await waitFor('filler and late gone', async () => (await tasks('filler')).length === 0 && (await tasks('late')).length === 0);
  }, 90_000);
});

describe('failing instances', () => {
  it('killsUnhealthyInstancesAFewAtATimeAndReplacesThem', async () => {
    // Health checks against a port nothing listens on: every instance turns unhealthy.
    const file = join(dir, 'sick.yaml');
    writeFileSync(file, `apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: sick\nspec:\n  instances: 4\n  cmd: 'exec sleep 600 # ${MARK}'\n` +
      `  resources: {cpus: 0.1, mem: 16}\n  ports: [{name: http}]\n  taskKillGracePeriodSeconds: 0\n` +
      `  healthChecks: [{protocol: HTTP, portName: http, delaySeconds: 0, gracePeriodSeconds: 0, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 2}]\n` +
      `  upgradeStrategy: {minimumHealthCapacity: 0.5, maximumOverCapacity: 0}\n`);
    await ok('apply', '-f', file);
    // The budget is the upgrade's: 4 − ceil(4 × 0.5) = 2 dying at once, never all four.
    let maxDying = 0;
    await waitFor('4 instances killed as unhealthy', async () => {
      const ts = await tasks('sick');
      maxDying = Math.max(maxDying, ts.filter((t) => t.status?.state === 'KILLING').length);
      return ts.filter((t) => t.status?.state === 'KILLED').length >= 4;
    }, 45_000);
    expect(maxDying).toBeLessThanOrEqual(2);
    const events = await ok('events');
    expect(events).toMatch(/KillingUnhealthy/);
    await ok('delete', 'app', 'sick');
    await waitFor('sick gone', async () => (await tasks('sick')).length === 0);
  }, 60_000);

  it('backsOffRelaunchingInstancesThatExit', async () => {
    const file = join(dir, 'crash.yaml');
    writeFileSync(file, `apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: crash\nspec:\n  instances: 1\n  cmd: 'exit 3 # ${MARK}'\n` +
      `  resources: {cpus: 0.1, mem: 16}\n  backoff: {seconds: 2, factor: 2, maxLaunchDelaySeconds: 60}\n`);
    await ok('apply', '-f', file);
    const a = await waitFor('a backoff reason', async () => { const x = await app('crash'); return /backing off after [2-9] failed/.test(x.status.pendingReason ?? '') && x; }, 30_000);
    expect(a.status.pendingReason).toMatch(/next launch in \d+s/);
    const failed = (await tasks('crash')).filter((t) => t.status?.state === 'FAILED');
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(failed[0]!.status.exitCode).toBe(3);
    // Launches are spaced by the growing delay: 2 s, then 4 s.
    const started = failed.map((t) => Date.parse(t.metadata.creationTimestamp!)).sort((x, y) => x - y);
    expect(started[1]! - started[0]!).toBeGreaterThanOrEqual(1900);
    await ok('delete', 'app', 'crash');
    await waitFor('crash gone', async () => (await tasks('crash')).length === 0);
  }, 60_000);
});

const noDocker = dockerUnavailableReason();
(noDocker ? describe.skip : describe)(`the web example on the Docker runtime${noDocker ? ` (skipped: ${noDocker})` : ''}`, () => {
  it('answersHttpOnItsHostPortAndLeavesNoContainer', async () => {
    const ports = await freePorts(4);
    startAgent('docker-agent', [
      ...await devAgentFlags(dir, 'docker-agent'), '--hostname', 'docker-host',
      '--runtime', 'docker', '--data-dir', join(dir, 'docker-agent'), '--listen', String(ports[0]),
      '--cpus', '2', '--mem', '2048', '--ports', ports.slice(1).map((p) => `${p}-${p}`).join(','), '--lease-ttl', '3',
    ]);
    await ok('apply', '-f', join(ROOT, 'manifests/examples/web.yaml'));
    const running = await waitFor('2 healthy containers', async () => { const h = healthy(await tasks('web')); return h.length === 2 && h; }, 60_000);
    for (const t of running) {
      expect(t.spec.nodeName).toBe('docker-agent');
      const res = await fetch(`http://127.0.0.1:${t.status.hostPorts![0]}/`);
      expect(res.status).toBeLessThan(400);
    }
    await ok('delete', 'app', 'web');
    await waitFor('web gone', async () => (await tasks('web')).length === 0, 30_000);
    // This test's containers only: a failed earlier run on the same machine may have left others.
    for (const t of running) {
      const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=shoal.task=${t.metadata.name}`]);
      expect(stdout.trim()).toBe('');
    }
    await stopProc(agents.get('docker-agent')!.proc);
  }, 120_000);
});
