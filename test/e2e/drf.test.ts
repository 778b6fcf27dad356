/**
 * DRF end to end: demands that arrive together are shared by Dominant Resource Fairness. The
 * DRF paper's example as a user runs it: `shoal dev` (real etcd, apiserver, controller-manager)
 * plus one `shoal-agent` on the hollow runtime (runs nothing, reports RUNNING) offering 9 cpus
 * and 18432 MiB; two Apps in ONE `shoal apply -f` file, role a with tasks <1 cpu, 4096 MiB> and
 * role b with <3 cpus, 1024 MiB>, each wanting 10 instances — far more than fits. Progressive
 * filling ends at a 3 tasks (mem 12/18 = .667), b 2 (cpus 6/9 = .667), whichever App the
 * controller sees first: the two revives must reach the allocator in the same round (the
 * master's batch window), or the first role alone takes what fits. Three times, with fresh
 * Apps. Needs `npm run build` (make test does it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Task } from '../../pkg/api/types.generated';
import { freePorts } from '../../pkg/util/net';
import { runShoal, SHOAL_MAIN, type CliResult } from '../harness/cli';
import { devAgentFlags } from '../../pkg/devcluster/cluster';

const AGENT = join(__dirname, '../../dist/cmd/agent/main.js');
const CPUS = 9;
const MEM = 18 * 1024;
const A = { cpus: 1, mem: 4096 };
const B = { cpus: 3, mem: 1024 };
/** Running tasks unchanged this long (several allocation intervals and batch windows) count as stable. */
const STABLE_MS = 4_000;

let dir: string;
let env: NodeJS.ProcessEnv;
const procs: ChildProcess[] = [];
const logs = new Map<string, string>();

function shoal(...args: string[]): Promise<CliResult> {
  return runShoal(env, ...args);
}

async function ok(...args: string[]): Promise<string> {
  const r = await shoal(...args);
  if (r.code !== 0) throw new Error(`shoal ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function allTasks(): Promise<Task[]> {
  return (JSON.parse(await ok('get', 'tasks', '-o', 'json')) as { items: Task[] }).items;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    const v = await fn().catch((e: Error) => ((last = e.message), undefined));
    if (v) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  const summary = await shoal('get', 'tasks', '-o', 'wide');
  const tails = [...logs].map(([name, log]) => `--- ${name} log tail:\n${log.slice(-3000)}`).join('\n');
  throw new Error(`timed out waiting for ${what} (${String(last ?? '')})\n${summary.stdout}\n${tails}`);
}

function start(name: string, args: string[]): ChildProcess {
  const proc = spawn('node', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  logs.set(name, '');
  const add = (d: Buffer) => logs.set(name, (logs.get(name) + d.toString()).slice(-200_000));
  proc.stdout?.on('data', add);
  proc.stderr?.on('data', add);
  procs.push(proc);
  return proc;
}

async function stop(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  await exited;
}

beforeAll(async () => {
  if (!existsSync(SHOAL_MAIN)) throw new Error(`${SHOAL_MAIN} is missing: run \`npm run build\` (make test does)`);
  dir = mkdtempSync(join(tmpdir(), 'shoal-e2e-drf-'));
  const [apiPort, etcdPort, agentPort, hostPort] = await freePorts(4);
  env = { ...process.env, SHOAL_CONFIG: join(dir, 'config.yaml'), HOME: dir };
  start('dev', [SHOAL_MAIN, 'dev', '--data-dir', dir, '--api-port', String(apiPort), '--etcd-port', String(etcdPort), '--no-scheduler-api', '--agents', '0']);
  await waitFor('config.yaml', async () => existsSync(join(dir, 'config.yaml')));
  start('agent', [
    AGENT, ...await devAgentFlags(dir, 'drf-0'), '--hostname', 'drf-0',
    '--runtime', 'hollow', '--data-dir', join(dir, 'agent'), '--listen', String(agentPort),
    '--cpus', String(CPUS), '--mem', String(MEM), '--ports', `${hostPort}-${hostPort}`,
  ]);
  await waitFor('a Ready node', async () => /\sReady\s/.test(await ok('get', 'nodes')));
}, 60_000);

afterAll(async () => {
  for (const proc of procs.reverse()) await stop(proc, 'SIGINT');
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** Both Apps in one multi-document manifest: one `apply`, so their demands arrive together. */
function manifest(): string {
  const app = (name: string, role: string, r: { cpus: number; mem: number }) =>
    `apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: ${name}\nspec:\n  role: ${role}\n  instances: 10\n  cmd: sleep 3600\n  resources: {cpus: ${r.cpus}, mem: ${r.mem}}\n`;
  return `${app('drf-a', 'a', A)}---\n${app('drf-b', 'b', B)}`;
}

const isLive = (t: Task) => !['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST'].includes(t.status?.state ?? '');
const fits = (need: { cpus: number; mem: number }, used: { cpus: number; mem: number }) => used.cpus + need.cpus <= CPUS && used.mem + need.mem <= MEM;

/** Per role, the RUNNING tasks, once the agent has no room for either task and nothing changed for {@link STABLE_MS}. */
async function fullAndStable(): Promise<Record<string, number>> {
  let last = '';
  let since = Date.now();
  return waitFor('the agent full and stable', async () => {
    const live = (await allTasks()).filter(isLive);
    const used = live.reduce((u, t) => ({ cpus: u.cpus + t.spec.resources.cpus, mem: u.mem + t.spec.resources.mem }), { cpus: 0, mem: 0 });
    const view = live.map((t) => `${t.metadata.name}:${t.status?.state}`).sort().join(',');
    if (view !== last) [last, since] = [view, Date.now()];
    const full = !fits(A, used) && !fits(B, used) && live.every((t) => t.status?.state === 'RUNNING');
    if (!full || Date.now() - since < STABLE_MS) return undefined;
    const byRole: Record<string, number> = {};
    for (const t of live) byRole[t.spec.role] = (byRole[t.spec.role] ?? 0) + 1;
    return byRole;
  }, 60_000);
}

describe('DRF between two roles whose Apps are applied together', () => {
  // Without the master's batch window (a round triggered by a revive waits a moment) the first
  // App's role is offered the agent alone and every run ends at a 4, b 1.
  it('endsAtTheDrfPaperSplitEveryTime', async () => {
    const file = join(dir, 'drf.yaml');
    writeFileSync(file, manifest());
    const splits: Array<Record<string, number>> = [];
    for (let i = 0; i < 3; i++) {
      await ok('apply', '-f', file);
      splits.push(await fullAndStable());
      await ok('delete', '-f', file);
      await waitFor('every task gone', async () => (await allTasks()).length === 0);
    }
    // Compared all at once, so a failure reports the split of every run.
    expect(splits).toEqual([{ a: 3, b: 2 }, { a: 3, b: 2 }, { a: 3, b: 2 }]);
  }, 300_000);
});
