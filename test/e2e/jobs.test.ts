/**
 * Jobs end to end, with the binaries as an operator runs them: shoal-apiserver, two
 * shoal-controller-managers (one leads; the other takes over when it is killed) and three
 * shoal-agents on the process runtime with 1 cpu each, on the test etcd under a prefix of their
 * own. Through the CLI: an ISO 8601 interval job runs on time and its schedule lag is reported;
 * Forbid skips while a long run is active and Replace kills it; a failing job is retried exactly
 * `retries` times; A → (B, C) → D runs in order with D once, though B is retried; the leader is
 * SIGKILLed between two fire times and no time is run twice or skipped; a gang of 4 on room for 3
 * starts nothing and says why, then starts whole when a fourth agent joins. Needs `npm run build`.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dump } from 'js-yaml';
import type { Job, JobRun, Task } from '../../pkg/api/types.generated';
import { freePorts } from '../../pkg/util/net';
import { runShoal, SHOAL_MAIN, type CliResult } from '../harness/cli';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { operatorFiles, type TestPki } from '../harness/pki';
import { dockerUnavailableReason } from '../harness/docker';
import { killProcessesUnder, ProcGroup } from '../harness/procs';
import { waitFor as waitUntil } from '../harness/wait';

const DIST = join(__dirname, '../../dist/cmd');
const BIN = { apiserver: join(DIST, 'apiserver/main.js'), cm: join(DIST, 'controller-manager/main.js'), agent: join(DIST, 'agent/main.js') };
const ADMIN = 'admin-token-0123456789abcdef';
const AGENT_TOKEN = 'agent-token-0123456789abcdef';

let dir: string;
let env: NodeJS.ProcessEnv;
let etcd: string[];
let pki: TestPki;
const metricsPorts = new Map<string, number>();
const group = new ProcGroup(() => env);
const { procs, output } = group;

function shoal(...args: string[]): Promise<CliResult> {
  return runShoal(env, ...args);
}

async function ok(...args: string[]): Promise<string> {
  const r = await shoal(...args);
  if (r.code !== 0) throw new Error(`shoal ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const start = (name: string, bin: string, args: string[]) => group.start(name, bin, args);

function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  return waitUntil(what, fn, ms, async () => `${(await shoal('get', 'jobruns', '-o', 'wide')).stdout}\n${group.tails()}`);
}

async function runsOf(job: string): Promise<JobRun[]> {
  const items = (JSON.parse(await ok('get', 'jobruns', '-l', `shoal.dev/job=${job}`, '-o', 'json')) as { items: JobRun[] }).items;
  return items.sort((a, b) => Date.parse(a.spec.scheduledTime) - Date.parse(b.spec.scheduledTime));
}

async function tasksOf(run: string): Promise<Task[]> {
  return (JSON.parse(await ok('get', 'tasks', '-l', `shoal.dev/jobrun=${run}`, '-o', 'json')) as { items: Task[] }).items;
}

async function getJob(name: string): Promise<Job> {
  return JSON.parse(await ok('get', 'job', name, '-o', 'json')) as Job;
}

function apply(name: string, docs: object[]): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, docs.map((d) => dump(d)).join('---\n'));
  return ok('apply', '-f', file);
}

function job(name: string, spec: Record<string, unknown>): object {
  return { apiVersion: 'shoal/v1', kind: 'Job', metadata: { name }, spec: { resources: { cpus: 0.1, mem: 16 }, ...spec } };
}

async function deleteJobs(...names: string[]): Promise<void> {
  for (const n of names) await ok('delete', 'job', n);
  await waitFor('their runs and tasks gone', async () => {
    const runs = (JSON.parse(await ok('get', 'jobruns', '-o', 'json')) as { items: JobRun[] }).items.filter((r) => names.includes(r.spec.job));
    const tasks = (JSON.parse(await ok('get', 'tasks', '-o', 'json')) as { items: Task[] }).items.filter((t) => names.includes(t.metadata.labels?.['shoal.dev/job'] ?? ''));
    return runs.length === 0 && tasks.length === 0;
  });
}

function ms(t: string | undefined): number {
  return Date.parse(t ?? '');
}

function startAgent(i: number, port: number): void {
  start(`agent-${i}`, BIN.agent, [
    ...etcd, '--node-name', `jobs-${i}`, '--hostname', '127.0.0.1', '--runtime', 'process', '--data-dir', join(dir, `agent-${i}`),
    '--listen', String(port), '--log-token-file', join(dir, 'agent-token'), '--cpus', '1', '--mem', '512', '--lease-ttl', '3',
    ...pki.agentFlags(`jobs-${i}`),
  ]);
}

let spareAgentPort: number;
let dockerAgentPort: number;

beforeAll(async () => {
  for (const bin of [SHOAL_MAIN, ...Object.values(BIN)]) if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` (make test does)`);
  dir = mkdtempSync(join(tmpdir(), 'shoal-e2e-jobs-'));
  chmodSync(dir, 0o711); // agents' data dirs are inside: process tasks' users must get through
  const [apiPort, mA, mB, a1, a2, a3, a4, a5] = await freePorts(8);
  spareAgentPort = a4!;
  dockerAgentPort = a5!;
  etcd = ['--etcd-endpoints', testEtcdEndpoint(), '--etcd-prefix', uniquePrefix().slice(0, -1)];
  const files = operatorFiles(dir, apiPort!, { admin: ADMIN, agent: AGENT_TOKEN });
  ({ pki, env } = files);
  start('apiserver', BIN.apiserver, [...etcd, ...files.apiserverArgs]);
  const cmArgs = ['--leader-lease', '2', '--allocation-interval', '200'];
  start('cm-a', BIN.cm, [...etcd, '--identity', 'cm-a', '--metrics-port', String(mA), ...cmArgs]);
  metricsPorts.set('cm-a', mA!);
  await waitFor('cm-a leading', async () => output.get('cm-a')!.includes('controllers started'));
  start('cm-b', BIN.cm, [...etcd, '--identity', 'cm-b', '--metrics-port', String(mB), ...cmArgs]);
  metricsPorts.set('cm-b', mB!);
  [a1, a2, a3].forEach((p, i) => startAgent(i + 1, p!));
  await waitFor('three Ready nodes', async () => ((await ok('get', 'nodes')).match(/\sReady\s/g) ?? []).length === 3);
}, 60_000);

afterAll(async () => {
  await group.stopAll();
  if (dir) {
    killProcessesUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

// A failed test leaves its jobs behind; the next one must start on an empty cluster (the gang test
// counts free cpus), so whatever is left is deleted after each.
afterEach(async () => {
  const left = (JSON.parse(await ok('get', 'jobs', '-o', 'json')) as { items: Job[] }).items.map((j) => j.metadata.name);
  if (left.length) await deleteJobs(...left);
}, 60_000);

/** The controller-manager that leads now. */
function leader(): string {
  const leading = [...procs.keys()].filter((n) => n.startsWith('cm-') && group.alive(n) && output.get(n)!.includes('controllers started'));
  return leading[leading.length - 1]!;
}

it('runsAnIsoIntervalJobOnTimeAndReportsTheScheduleLag', async () => {
  await apply('tick', [job('tick', { schedule: 'R//PT3S', cmd: 'echo tick', successfulRunsHistoryLimit: 10 })]);
  const created = ms((await getJob('tick')).metadata.creationTimestamp);
  const runs = await waitFor('three succeeded runs', async () => {
    const rs = await runsOf('tick');
    return rs.filter((r) => r.status?.phase === 'Succeeded').length >= 3 && rs;
  }, 20_000);
  const first3 = runs.slice(0, 3);
  // Due at creation (an empty start), + 3 s, + 6 s; named after that time; each started within a couple of seconds of it.
  expect(first3.map((r) => ms(r.spec.scheduledTime) - created)).toEqual([0, 3000, 6000]);
  for (const r of first3) {
    expect(r.metadata.name).toBe(`tick-${Math.floor(ms(r.spec.scheduledTime) / 1000)}`);
    expect(r.spec.trigger).toBe('Schedule');
    const lag = ms(r.status?.startTime) - ms(r.spec.scheduledTime);
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThan(3000);
  }
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPorts.get(leader())}/metrics`)).text();
  expect(Number(/^shoal_job_schedule_lag_seconds_count (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(3);
  expect(metrics).toMatch(/^shoal_job_runs_total\{result="Succeeded"\} [3-9]/m);
  const status = (await getJob('tick')).status;
  expect(status.lastResult).toBe('Succeeded');
  expect(status.missed ?? 0).toBe(0);
  expect(ms(status.nextScheduleTime)).toBeGreaterThan(Date.now() - 1000);
  expect(await ok('logs', `jobrun/${first3[0]!.metadata.name}`)).toBe('tick\n');
  await deleteJobs('tick');
}, 60_000);

it('forbidSkipsWhileARunIsActiveAndReplaceKillsIt', async () => {
  const spec = { schedule: 'R//PT2S', cmd: 'sleep 60', taskKillGracePeriodSeconds: 0 };
  await apply('slow', [job('slow', { ...spec, concurrencyPolicy: 'Forbid' })]);
  const first = await waitFor('a running run', async () => (await runsOf('slow')).find((r) => r.status?.phase === 'Running'));
  await waitFor('two fire times skipped', async () => ((await getJob('slow')).status.skipped ?? 0) >= 2, 15_000);
  expect((await runsOf('slow')).map((r) => r.metadata.name)).toEqual([first.metadata.name]);
  expect(await ok('events')).toMatch(/RunSkipped.*still active \(concurrencyPolicy Forbid\)/);

  await apply('slow', [job('slow', { ...spec, concurrencyPolicy: 'Replace' })]);
  const replaced = await waitFor('the first run replaced', async () => (await runsOf('slow')).find((r) => r.metadata.name === first.metadata.name && r.status?.phase === 'Failed'));
  expect(replaced.status).toMatchObject({ reason: 'Replaced' });
  await waitFor('its task killed', async () => (await tasksOf(first.metadata.name)).every((t) => t.status?.state === 'KILLED'));
  await waitFor('a newer run running', async () => (await runsOf('slow')).some((r) => r.metadata.name !== first.metadata.name && r.status?.phase === 'Running'));
  await deleteJobs('slow');
}, 60_000);

it('retriesAFailingJobExactlyRetriesTimesAndFailsIt', async () => {
  await apply('flaky', [job('flaky', { cmd: 'echo oops >&2; exit 3', retries: 2, backoff: { seconds: 0.2 } })]);
  const run = await waitFor('the run failed', async () => (await runsOf('flaky')).find((r) => r.status?.phase === 'Failed'));
  expect(run.status).toMatchObject({ reason: 'RetriesExhausted', attempts: 3, failed: 3, succeeded: 0, lastFailure: { state: 'FAILED', exitCode: 3 } });
  expect((await tasksOf(run.metadata.name)).map((t) => t.status?.state)).toEqual(['FAILED', 'FAILED', 'FAILED']);
  await new Promise((r) => setTimeout(r, 1500)); // no fourth attempt comes later
  expect(await tasksOf(run.metadata.name)).toHaveLength(3);
  expect((await getJob('flaky')).status).toMatchObject({ lastResult: 'Failed', failed: 1 });
  await deleteJobs('flaky');
}, 60_000);

it('runsADependencyGraphInOrderWithTheJoinOnceThoughAParentIsRetried', async () => {
  const at = new Date(Date.now() + 3000).toISOString();
  // Each task runs as a uid of its own: the flag goes where any of them may write.
  const shared = join(dir, 'shared');
  mkdirSync(shared, { mode: 0o1777 });
  chmodSync(shared, 0o1777);
  const flag = join(shared, 'b-failed-once');
  // B fails its first task, then succeeds: D must wait for the retry and still run once.
  await apply('dag', [
    job('d', { parents: ['b', 'c'], cmd: 'echo d' }),
    job('b', { parents: ['a'], cmd: `if [ -f ${flag} ]; then echo b; else touch ${flag}; exit 1; fi`, backoff: { seconds: 0.2 } }),
    job('c', { parents: ['a'], cmd: 'sleep 1; echo c' }),
    job('a', { schedule: `R1/${at}/PT1M`, cmd: 'echo a' }),
  ]);
  const done = await waitFor('d succeeded', async () => {
    const d = (await runsOf('d')).find((r) => r.status?.phase === 'Succeeded');
    return d;
  }, 30_000);
  await new Promise((r) => setTimeout(r, 1500)); // and nothing more comes
  const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map(runsOf));
  expect([a, b, c, d].map((rs) => rs.length)).toEqual([1, 1, 1, 1]);
  expect(b[0]!.status).toMatchObject({ phase: 'Succeeded', attempts: 2, failed: 1 });
  expect(d[0]!.metadata.name).toBe(done.metadata.name);
  expect(d[0]!.spec).toMatchObject({ trigger: 'Parents', parentRuns: [b[0]!.metadata.name, c[0]!.metadata.name].sort() });
  // In order: each child starts after its parents completed.
  expect(ms(b[0]!.status?.startTime)).toBeGreaterThanOrEqual(ms(a[0]!.status?.completionTime));
  expect(ms(c[0]!.status?.startTime)).toBeGreaterThanOrEqual(ms(a[0]!.status?.completionTime));
  expect(ms(d[0]!.status?.startTime)).toBeGreaterThanOrEqual(Math.max(ms(b[0]!.status?.completionTime), ms(c[0]!.status?.completionTime)));
  await deleteJobs('d', 'b', 'c', 'a');
}, 60_000);

it('neitherRepeatsNorSkipsAFireTimeWhenTheLeaderIsKilled', async () => {
  await apply('every', [job('every', { schedule: 'R//PT5S', cmd: 'echo every', successfulRunsHistoryLimit: 20 })]);
  const created = ms((await getJob('every')).metadata.creationTimestamp);
  await waitFor('a first run', async () => (await runsOf('every')).length >= 1);
  const old = leader();
  procs.get(old)!.kill('SIGKILL');
  await new Promise((r) => procs.get(old)!.once('exit', r));
  // The kill comes just after a fire time; the standby leads within the lease (2 s), before the next one.
  const runs = await waitFor('three fire times after the kill', async () => {
    const rs = await runsOf('every');
    return rs.filter((r) => r.status?.phase === 'Succeeded').length >= 4 && rs;
  }, 30_000);
  expect(leader()).not.toBe(old);
  const ks = runs.map((r) => (ms(r.spec.scheduledTime) - created) / 5000);
  expect(ks).toEqual(ks.map((_, i) => i)); // every time once: 0, 1, 2, ... with no gap
  expect((await getJob('every')).status.missed ?? 0).toBe(0);
  await deleteJobs('every');
}, 60_000);

it('startsAGangWholeOrNotAtAllAndSaysWhy', async () => {
  await apply('mpi', [job('mpi', { cmd: 'sleep 2', parallelism: 4, completions: 4, gang: true, resources: { cpus: 1, mem: 64 } })]);
  const run = await waitFor('a pending run explaining the gang', async () => (await runsOf('mpi')).find((r) => /gang of 4.*3 fit now/.test(r.status?.message ?? '')), 15_000);
  expect(run.status.phase).toBe('Pending');
  expect(await tasksOf(run.metadata.name)).toEqual([]);
  expect(await ok('describe', 'jobrun', run.metadata.name)).toMatch(/gang of 4/);
  startAgent(4, spareAgentPort);
  const tasks = await waitFor('four tasks at once', async () => {
    const ts = await tasksOf(run.metadata.name);
    return ts.length === 4 && ts;
  }, 20_000);
  expect(new Set(tasks.map((t) => t.spec.nodeName)).size).toBe(4);
  const created = tasks.map((t) => ms(t.metadata.creationTimestamp));
  expect(Math.max(...created) - Math.min(...created)).toBeLessThan(1000); // one round, one accept
  await waitFor('the gang succeeded', async () => (await runsOf('mpi'))[0]?.status?.phase === 'Succeeded', 20_000);
  await deleteJobs('mpi');
}, 60_000);

const noDocker = dockerUnavailableReason();
(noDocker ? it.skip : it)(`runsAContainerJobOnADockerAgent${noDocker ? ` (skipped: ${noDocker})` : ''}`, async () => {
  // A container task can only go to an agent with the docker runtime: this one.
  start('docker-agent', BIN.agent, [
    ...etcd, '--node-name', 'jobs-docker', '--hostname', '127.0.0.1', '--runtime', 'docker', '--data-dir', join(dir, 'docker-agent'),
    '--listen', String(dockerAgentPort), '--log-token-file', join(dir, 'agent-token'), '--cpus', '1', '--mem', '512', '--lease-ttl', '3',
    ...pki.agentFlags('jobs-docker'),
  ]);
  await apply('boxed', [job('boxed', { container: { image: 'shoal/busybox:latest', command: ['/bin/busybox', 'sh', '-c', 'echo boxed; exit 0'] }, completions: 2, parallelism: 2 })]);
  const run = await waitFor('the container run succeeded', async () => (await runsOf('boxed')).find((r) => r.status?.phase === 'Succeeded'), 60_000);
  const tasks = await tasksOf(run.metadata.name);
  expect(tasks.map((t) => [t.spec.nodeName, t.status?.state, t.status?.exitCode])).toEqual([['jobs-docker', 'FINISHED', 0], ['jobs-docker', 'FINISHED', 0]]);
  expect(await ok('logs', `jobrun/${run.metadata.name}`)).toMatch(/==> task .* <==\nboxed\n[\s\S]*==> task .* <==\nboxed\n/);
  await deleteJobs('boxed');
  // The agent removes an ended task's container once its Task is deleted.
  await waitFor('no container of the run left', async () => (await promisify(execFile)('docker', ['ps', '-aq', '--filter', `label=shoal.owner=${run.metadata.name}`])).stdout.trim() === '', 30_000);
}, 120_000);
