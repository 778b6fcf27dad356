/**
 * An external Mesos framework end to end, with the binaries as an operator runs them:
 * shoal-apiserver, two shoal-controller-managers serving the Mesos v1 scheduler API
 * (--scheduler-api-listen; the standby answers 307) and three process agents. The example
 * framework (examples/batch-runner, a separate process using pkg/client/mesos-scheduler.ts) runs
 * 20 commands to completion; then, in a second run, the leading controller-manager is SIGKILLed
 * mid-run: the framework reconnects to the new leader, reconciles, and finishes with no task
 * launched twice. Needs `npm run build` (which builds examples/ too).
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Task } from '../../pkg/api/types.generated';
import { freePorts } from '../../pkg/util/net';
import { runShoal, SHOAL_MAIN } from '../harness/cli';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { operatorFiles, type TestPki } from '../harness/pki';
import { issueCertificate } from '../../pkg/util/pki';
import { killProcessesUnder, ProcGroup } from '../harness/procs';
import { waitFor as waitUntil } from '../harness/wait';

const DIST = join(__dirname, '../../dist');
const BIN = {
  apiserver: join(DIST, 'cmd/apiserver/main.js'), cm: join(DIST, 'cmd/controller-manager/main.js'), agent: join(DIST, 'cmd/agent/main.js'),
  runner: join(DIST, 'examples/batch-runner/main.js'),
};
const ADMIN = 'admin-token-0123456789abcdef';
const AGENT_TOKEN = 'agent-token-0123456789abcdef';

let dir: string;
let env: NodeJS.ProcessEnv;
let etcd: string[];
const apiPorts = new Map<string, number>();
let pki: TestPki;
const group = new ProcGroup(() => env);
const { procs, output } = group;

const start = (name: string, bin: string, args: string[]) => group.start(name, bin, args);
const tails = () => group.tails(3000);
const alive = (name: string) => group.alive(name);

function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  return waitUntil(what, fn, ms, async () => tails());
}

/** The controller-manager that leads now (the last one to have started its controllers and still alive). */
function leader(): string | undefined {
  const leading = [...procs.keys()].filter((n) => n.startsWith('cm-') && alive(n) && /controllers started/.test(output.get(n)!.split('\n').slice(-400).join('\n')));
  return leading[leading.length - 1];
}

function startCm(name: string, port = apiPorts.get(name)!): void {
  apiPorts.set(name, port);
  const cert = issueCertificate(pki.ca, join(dir, 'pki'), 'scheduler-api', { commonName: 'shoal-scheduler-api', hosts: ['127.0.0.1'] });
  start(name, BIN.cm, [...etcd, '--identity', name, '--leader-lease', '2', '--allocation-interval', '200',
    '--scheduler-api-listen', `127.0.0.1:${port}`, '--scheduler-api-heartbeat', '1',
    '--scheduler-api-tls-cert-file', cert.cert, '--scheduler-api-tls-private-key-file', cert.key]);
}

async function shoalTasks(): Promise<Task[]> {
  const r = await runShoal(env, 'get', 'tasks', '-o', 'json');
  if (r.code !== 0) throw new Error(`shoal get tasks: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { items: Task[] }).items;
}

/** Framework task ids (cmd-<line>-<attempt>) found in each Shoal task. */
function frameworkIds(tasks: Task[], prefixRe: RegExp): string[] {
  return tasks.flatMap((t) => [...new Set(JSON.stringify(t).match(prefixRe) ?? [])]);
}

/** `skip` comment lines first: line numbers (and task ids) start at skip + 1, apart from other runs'. */
function runner(name: string, commands: string[], masters: string[], skip = 0, cpus = '0.1'): { proc: ChildProcess; exited: Promise<number | null> } {
  const file = join(dir, `${name}.txt`);
  writeFileSync(file, `${[...Array.from({ length: skip }, (_, i) => `# ${i}`), ...commands].join('\n')}\n`);
  const proc = start(name, BIN.runner, [
    '--master', masters.join(','), '--ca', pki.ca.cert, '--commands', file, '--role', 'batch', '--cpus', cpus, '--mem', '16',
    '--retries', '2', '--failover-timeout', '60', '--name', name,
  ]);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, exited };
}

async function exitWithin(p: Promise<number | null>, ms: number, name: string): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${name} did not exit in ${ms} ms\n${tails()}`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** LAUNCH lines of a runner's output: task id → how many times it was launched. */
function launches(name: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const [, id] of output.get(name)!.matchAll(/ (cmd-\d+-\d+) LAUNCH /g)) m.set(id!, (m.get(id!) ?? 0) + 1);
  return m;
}

beforeAll(async () => {
  for (const bin of [SHOAL_MAIN, ...Object.values(BIN)]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` (make test does)`);
  }
  dir = mkdtempSync(join(tmpdir(), 'shoal-e2e-mesos-'));
  chmodSync(dir, 0o711); // agents' data dirs are inside: process tasks' users must get through
  const [apiPort, sA, sB, a1, a2, a3] = await freePorts(6);
  apiPorts.set('cm-a', sA!);
  apiPorts.set('cm-b', sB!);
  etcd = ['--etcd-endpoints', testEtcdEndpoint(), '--etcd-prefix', uniquePrefix().slice(0, -1)];
  const files = operatorFiles(dir, apiPort!, { admin: ADMIN, agent: AGENT_TOKEN });
  ({ pki, env } = files);
  start('apiserver', BIN.apiserver, [...etcd, ...files.apiserverArgs]);
  startCm('cm-a');
  await waitFor('cm-a leading', async () => output.get('cm-a')!.includes('controllers started'));
  startCm('cm-b');
  [a1, a2, a3].forEach((port, i) => start(`agent-${i + 1}`, BIN.agent, [
    ...etcd, '--node-name', `mesos-${i + 1}`, '--hostname', '127.0.0.1', '--runtime', 'process', '--data-dir', join(dir, `agent-${i + 1}`),
    '--listen', String(port), '--log-token-file', join(dir, 'agent-token'), '--cpus', '1', '--mem', '512', '--lease-ttl', '3',
    ...pki.agentFlags(`mesos-${i + 1}`),
  ]));
  await waitFor('three Ready nodes', async () => ((await runShoal(env, 'get', 'nodes')).stdout.match(/\sReady\s/g) ?? []).length === 3);
}, 60_000);

afterAll(async () => {
  if (process.env.SHOAL_E2E_DUMP) process.stderr.write(`${[...output].map(([n, t]) => `--- ${n}:\n${n.startsWith('batch') ? t : t.slice(-1500)}`).join('\n')}\n`);
  await group.stopAll();
  if (dir) {
    killProcessesUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

it('runs 20 commands to completion through a standby (307), each launched once, then tears down', async () => {
  const standby = leader() === 'cm-a' ? 'cm-b' : 'cm-a';
  const url = (cm: string) => `https://127.0.0.1:${apiPorts.get(cm)}`;
  const commands = Array.from({ length: 20 }, (_, i) => `echo line ${i + 1}; sleep 0.3`);
  // The standby first: SUBSCRIBE is redirected to the leader.
  const r = runner('batch-20', commands, [url(standby), url(leader()!)]);
  expect(await exitWithin(r.exited, 120_000, 'batch-20')).toBe(0);
  const out = output.get('batch-20')!;
  expect(out).toMatch(new RegExp(`subscribed as framework \\S+ at https://127\\.0\\.0\\.1:${apiPorts.get(leader()!)}/api/v1/scheduler`));
  expect(out).toMatch(/all 20 commands finished; tearing down/);
  for (let n = 1; n <= 20; n++) expect(out).toMatch(new RegExp(` cmd-${n}-1 TASK_FINISHED`));
  const l = launches('batch-20');
  expect([...l.values()].every((c) => c === 1)).toBe(true);
  expect(l.size).toBe(20);
  // Shoal tasks: each framework task id once.
  const ids = frameworkIds(await shoalTasks(), /cmd-\d+-\d+/g);
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids.length).toBeGreaterThanOrEqual(0); // finished tasks may already be garbage-collected
  expect(existsSync(join(dir, 'batch-20.txt.state.json'))).toBe(false);
}, 150_000);

it('survives a SIGKILLed leader mid-run: reconnects, reconciles and finishes with no task launched twice', async () => {
  const first = leader()!;
  const other = first === 'cm-a' ? 'cm-b' : 'cm-a';
  const url = (cm: string) => `https://127.0.0.1:${apiPorts.get(cm)}`;
  const commands = Array.from({ length: 20 }, (_, i) => `sleep 2; echo long ${i + 1}`);
  // 0.25 cpus each: 12 fit on the 3 agents, so the other 8 are launched after the failover.
  const r = runner('batch-failover', commands, [url(first), url(other)], 100, '0.25');
  await waitFor('some tasks running', async () => ((output.get('batch-failover') ?? '').match(/TASK_RUNNING/g) ?? []).length >= 5, 60_000);
  procs.get(first)!.kill('SIGKILL');
  await waitFor(`${other} leading`, async () => leader() === other, 30_000);
  // The killed one comes back as a standby (its API answers 307 from now on).
  startCm(`${first}-again`, apiPorts.get(first));
  expect(await exitWithin(r.exited, 180_000, 'batch-failover')).toBe(0);
  const out = output.get('batch-failover')!;
  expect(out).toMatch(/disconnected \(/);
  expect(out).toMatch(/re-subscribed as framework/);
  expect(out).toMatch(/all 20 commands finished; tearing down/);
  // No task id launched twice; each line finished exactly once.
  const l = launches('batch-failover');
  expect([...l].filter(([, c]) => c > 1)).toEqual([]);
  for (let n = 101; n <= 120; n++) {
    expect((out.match(new RegExp(` cmd-${n}-\\d+ TASK_FINISHED`, 'g')) ?? []).length).toBe(1);
  }
  const ids = frameworkIds(await shoalTasks(), /cmd-1\d\d-\d+/g);
  expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
}, 240_000);
