/**
 * Issue 12 (parts 7 and 8) end to end, as a user runs it: `shoal dev` (real etcd, apiserver,
 * controller-manager) plus agents started like `shoal-agent`, driven by the compiled CLI.
 *
 * - An App with an HTTP readiness check (busybox httpd on $PORT0, process runtime) rolls out:
 *   its tasks become ready once the check passes and `shoal rollout status` succeeds after a
 *   config change (before, no task was ever ready and every rollout ended in
 *   ProgressDeadlineExceeded).
 * - An App whose image is missing on its (Docker) agent ends each task in ERROR; launches back
 *   off like any failure (before: ~34 launches a second), and `shoal describe app` names the
 *   missing image. Skipped, saying why, where no Docker daemon can start.
 *
 * Needs `npm run build` (make test does it).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { App, Task } from '../../pkg/api/types.generated';
import { EtcdStore } from '../../pkg/store/etcd';
import { freePorts } from '../../pkg/util/net';
import { runShoal, SHOAL_MAIN, type CliResult } from '../harness/cli';
import { dockerUnavailableReason } from '../harness/docker';
import { capture, killProcessesUnder, processesWith, stopProc } from '../harness/procs';
import { devAgentFlags } from '../../pkg/devcluster/cluster';
import { devEtcdConnection } from '../harness/dev';

const run = promisify(execFile);
const ROOT = join(__dirname, '../..');
const AGENT = join(ROOT, 'dist/cmd/agent/main.js');
/** In every task's command line, so leftover processes can be found. */
const MARK = `shoal-e2e-ready-${process.pid}`;
const TERMINAL = ['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST'];

let dir: string;
let env: NodeJS.ProcessEnv;
let etcdPort: number;
let dev: ChildProcess;
const logs = new Map<string, string>();
/** The Docker agent's node name: unique, so the containers it leaves are this run's. */
const DOCKER_NODE = `docker-e2e-${process.pid}`;
const agents = new Map<string, ChildProcess>();

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

const live = (ts: Task[]) => ts.filter((t) => !TERMINAL.includes(t.status?.state ?? ''));

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

async function startAgent(name: string, runtime: 'process' | 'docker', listen: number, hostPorts: number[]): Promise<void> {
  const proc = spawn('node', [AGENT,
    ...await devAgentFlags(dir, name), '--hostname', `host-${name}`,
    '--runtime', runtime, '--data-dir', join(dir, name), '--listen', String(listen),
    '--cpus', '2', '--mem', '2048', '--ports', hostPorts.map((p) => `${p}-${p}`).join(','), '--lease-ttl', '3',
  ], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  capture(logs, name, proc);
  agents.set(name, proc);
}

function applyFile(name: string, yaml: string): Promise<string> {
  const file = join(dir, name);
  writeFileSync(file, yaml);
  return ok('apply', '-f', file);
}

beforeAll(async () => {
  if (!existsSync(SHOAL_MAIN)) throw new Error(`${SHOAL_MAIN} is missing: run \`npm run build\` (make test does)`);
  dir = mkdtempSync(join(tmpdir(), 'shoal-e2e-ready-'));
  chmodSync(dir, 0o711); // agents' data dirs are inside: process tasks' users must get through
  const ports = await freePorts(2 + 2 * 9);
  const [apiPort, ePort] = ports;
  etcdPort = ePort!;
  env = { ...process.env, SHOAL_CONFIG: join(dir, 'config.yaml'), HOME: dir };
  dev = spawn('node', [SHOAL_MAIN, 'dev', '--data-dir', dir, '--api-port', String(apiPort), '--etcd-port', String(etcdPort), '--no-scheduler-api', '--agents', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  capture(logs, 'dev', dev);
  await waitFor('config.yaml', async () => existsSync(join(dir, 'config.yaml')));
  for (let i = 0; i < 2; i++) {
    const mine = ports.slice(2 + i * 9, 2 + (i + 1) * 9);
    await startAgent(`agent-${i}`, 'process', mine[0]!, mine.slice(1));
  }
  await waitFor('2 Ready nodes', async () => (await ok('get', 'nodes')).split('\n').filter((l) => /\sReady\s/.test(l)).length === 2);
}, 60_000);

afterAll(async () => {
  for (const proc of agents.values()) await stopProc(proc);
  // Containers outlive their agent (a restarted agent adopts them): a failed test must not leave any.
  if (!dockerUnavailableReason()) {
    const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=shoal.node=${DOCKER_NODE}`]).catch(() => ({ stdout: '' }));
    if (stdout.trim()) await run('docker', ['rm', '-f', ...stdout.trim().split('\n')]).catch(() => undefined);
  }
  if (dev) await stopProc(dev, 'SIGINT');
  for (const pid of await processesWith(MARK)) process.kill(Number(pid), 'SIGKILL');
  killProcessesUnder(dir); // task processes whose command line lost the mark (exec)
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

/**
 * busybox httpd on the task's host port; /ready appears 2 s after the start, so each new task
 * answers 404 there first and is ready only once its check sees 200. (Only the writer of /ready
 * goes to the background: with `a && b & exec httpd`, the mkdir of www raced httpd's chdir into
 * it, and under load httpd lost and exited 1, relaunched on backoff until the deadline.)
 */
function readyManifest(version: string): string {
  return `apiVersion: shoal/v1
kind: App
metadata:
  name: ready
spec:
  instances: 2
  cmd: 'mkdir -p www && echo "${version}" > www/index.html && (sleep 2 && echo ok > www/ready &) && exec busybox httpd -f -p $PORT0 -h www # ${MARK}'
  env:
    VERSION: "${version}"
  resources: {cpus: 0.1, mem: 16}
  ports:
    - name: http
  readinessChecks:
    - protocol: HTTP
      portName: http
      path: /ready
      intervalSeconds: 1
      timeoutSeconds: 1
      httpStatusCodesForReady: [200]
      preserveLastResponse: true
  upgradeStrategy: {minimumHealthCapacity: 1, maximumOverCapacity: 0.5}
  progressDeadlineSeconds: 40
  taskKillGracePeriodSeconds: 1
`;
}

/** `shoal rollout status app NAME` with a longer limit than runShoal's 20 s. */
async function rolloutStatus(name: string): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run('node', [SHOAL_MAIN, 'rollout', 'status', 'app', name, '--timeout', '80s'], { env, timeout: 90_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('an App with an HTTP readiness check', () => {
  it('rollsOutOnceItsTasksAreReady', async () => {
    await applyFile('ready-v1.yaml', readyManifest('v1'));
    const first = await rolloutStatus('ready');
    expect(`${first.stdout}${first.stderr}`).toMatch(/successfully rolled out/);
    expect(first.code).toBe(0);
    const v1 = live(await tasks('ready'));
    expect(v1).toHaveLength(2);
    for (const t of v1) {
      expect(t.status).toMatchObject({ state: 'RUNNING', ready: true });
      expect(t.status.readinessCheckResults?.[0]).toMatchObject({ name: 'readinessCheck', ready: true, lastResponse: { status: 200 } });
    }

    // A config change: a rolling upgrade that waits for each new task's readiness.
    await applyFile('ready-v2.yaml', readyManifest('v2'));
    const second = await rolloutStatus('ready');
    if (second.code !== 0) {
      const why = `${(await shoal('describe', 'app', 'ready')).stdout}\n${(await shoal('get', 'tasks', '-o', 'wide')).stdout}\n--- dev log tail:\n${(logs.get('dev') ?? '').slice(-6000)}`;
      throw new Error(`rollout of v2 failed: ${second.stdout}${second.stderr}\n${why}`);
    }
    expect(`${second.stdout}${second.stderr}`).toMatch(/successfully rolled out/);
    expect(second.code).toBe(0);
    const a = await app('ready');
    expect(a.status.deployment).toMatchObject({ state: 'Succeeded', targetVersion: a.metadata.generation });
    expect(a.status.availableInstances).toBe(2);
    expect(a.status.tasksHealthy).toBe(0); // no health checks: Marathon's tasksHealthy counts none
    const v2 = live(await tasks('ready'));
    expect(v2).toHaveLength(2);
    for (const t of v2) {
      expect(t.spec.env?.VERSION).toBe('v2');
      expect(t.status.ready).toBe(true);
      expect((await (await fetch(`http://127.0.0.1:${t.status.hostPorts![0]}/`)).text()).trim()).toBe('v2');
    }
    expect(await ok('delete', 'app', 'ready')).toMatch(/deleted/);
    await waitFor('ready gone', async () => (await tasks('ready')).length === 0);
  }, 200_000);
});

const noDocker = dockerUnavailableReason();
if (noDocker) console.warn(`missing-image e2e test SKIPPED: no Docker daemon (${noDocker})`);
(noDocker ? describe.skip : describe)(`an App whose image is missing on the Docker runtime${noDocker ? ` (skipped: ${noDocker})` : ''}`, () => {
  it('backsOffItsLaunchesAndDescribeNamesTheImage', async () => {
    const ports = await freePorts(3);
    await startAgent(DOCKER_NODE, 'docker', ports[0]!, ports.slice(1));
    await waitFor('the docker agent Ready', async () => new RegExp(`${DOCKER_NODE}\\s+Ready`).test(await ok('get', 'nodes')));

    // Every Task ever created for the App, seen in etcd (terminal ones are garbage-collected beyond 5).
    const store = new EtcdStore(devEtcdConnection(dir));
    const created = new Map<string, number>();
    const watch = await store.watch('/shoal/registry/tasks/default/nope-', {
      afterRevision: 0,
      onEvents: (events) => {
        for (const e of events) if (e.type === 'put' && e.createRevision === e.modRevision) created.set(e.key, Date.now());
      },
      onError: () => undefined,
    });
    try {
      // Marathon's default backoff, with the ERROR floor: 10 s, then 20 s between launches: 2 (or 3) in 20 s.
      await applyFile('nope.yaml', `apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: nope\nspec:\n  instances: 1\n` +
        `  container: {image: 'shoal/nope:latest'}\n  resources: {cpus: 0.1, mem: 16}\n`);
      const startedAt = Date.now();
      await waitFor('a task in ERROR', async () => (await tasks('nope')).some((t) => t.status?.state === 'ERROR'), 20_000);
      await new Promise((r) => setTimeout(r, Math.max(0, startedAt + 20_000 - Date.now())));
      const launches = created.size;
      expect(launches).toBeGreaterThanOrEqual(2);
      expect(launches).toBeLessThanOrEqual(6);
      // The first relaunch waits the ERROR floor (10 s), and the gaps grow.
      const at = [...created.values()].sort((x, y) => x - y);
      expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(9_000);
      if (at.length >= 3) expect(at[2]! - at[1]!).toBeGreaterThan(at[1]! - at[0]!);

      const errored = (await tasks('nope')).filter((t) => t.status?.state === 'ERROR');
      expect(errored[0]!.status).toMatchObject({ reason: 'ImageNotPresent', message: expect.stringContaining(`image shoal/nope:latest not present on node ${DOCKER_NODE}`) });
      const a = await app('nope');
      expect(a.status.lastFailure).toMatchObject({ state: 'ERROR', reason: 'ImageNotPresent', message: expect.stringMatching(/shoal\/nope:latest/) });
      expect(a.status.pendingReason).toMatch(/backing off after \d+ failed task\(s\)/);
      const described = await ok('describe', 'app', 'nope');
      expect(described).toMatch(/Last Failure:/);
      expect(described).toContain(`image shoal/nope:latest not present on node ${DOCKER_NODE}`);
    } finally {
      await watch.cancel();
      await store.close();
    }
    await ok('delete', 'app', 'nope');
    await waitFor('nope gone', async () => (await tasks('nope')).length === 0);
    await stopProc(agents.get(DOCKER_NODE)!);
  }, 120_000);
});
