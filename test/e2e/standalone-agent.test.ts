/**
 * The binaries as an operator runs them, each its own process on its own ports: shoal-apiserver
 * (with --agent-token-file), shoal-controller-manager and a standalone shoal-agent (process
 * runtime, --log-token-file with the same token) on the test etcd, under a prefix of their own.
 * An App printing numbered lines is applied and its task's output read with `shoal logs` and
 * `shoal logs -f`. (A standalone agent once answered every log request 503 "the agent is
 * starting": its binary never handed the agent to its HTTP server.) Needs `npm run build`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dump } from 'js-yaml';
import { Agent } from 'undici';
import type { Task } from '../../pkg/api/types.generated';
import { freePorts } from '../../pkg/util/net';
import { runShoal, SHOAL_MAIN, type CliResult } from '../harness/cli';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { operatorFiles, type TestPki } from '../harness/pki';

const run = promisify(execFile);
const DIST = join(__dirname, '../../dist/cmd');
const BIN = { apiserver: join(DIST, 'apiserver/main.js'), cm: join(DIST, 'controller-manager/main.js'), agent: join(DIST, 'agent/main.js') };
const ADMIN = 'admin-token-0123456789abcdef';
const AGENT_TOKEN = 'agent-token-0123456789abcdef';
const NODE = 'standalone-1';
/** In the task's command line, so a leftover process can be found. */
const MARK = `shoal-e2e-standalone-${process.pid}`;

let dir: string;
let env: NodeJS.ProcessEnv;
let agentPort: number;
let metricsPort: number;
let pki: TestPki;
const procs = new Map<string, ChildProcess>();
const output = new Map<string, string>();

function shoal(...args: string[]): Promise<CliResult> {
  return runShoal(env, ...args);
}

function start(name: string, bin: string, args: string[]): void {
  const proc = spawn('node', [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  output.set(name, '');
  const add = (d: Buffer) => output.set(name, (output.get(name)! + d.toString()).slice(-100_000));
  proc.stdout!.on('data', add);
  proc.stderr!.on('data', add);
  procs.set(name, proc);
}

async function stop(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  await exited;
}

function tails(): string {
  return [...output].map(([name, text]) => `--- ${name}:\n${text.slice(-2000)}`).join('\n');
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    const v = await fn().catch((e: Error) => ((last = e.message), undefined));
    if (v) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what} (${last})\n${tails()}`);
}

async function tasks(): Promise<Task[]> {
  const r = await shoal('get', 'tasks', '-l', 'shoal.dev/app=counter', '-o', 'json');
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { items: Task[] }).items;
}

/** The highest "line N" in `text`, 0 without one. */
function lastLine(text: string): number {
  return Math.max(0, ...[...text.matchAll(/^line (\d+)$/gm)].map((m) => Number(m[1])));
}

beforeAll(async () => {
  for (const bin of [SHOAL_MAIN, ...Object.values(BIN)]) if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` (make test does)`);
  dir = mkdtempSync(join(tmpdir(), 'shoal-e2e-standalone-'));
  chmodSync(dir, 0o711); // agents' data dirs are inside: process tasks' users must get through
  const [apiPort, mPort, aPort, hostPort] = await freePorts(4);
  [metricsPort, agentPort] = [mPort!, aPort!];
  const etcd = ['--etcd-endpoints', testEtcdEndpoint(), '--etcd-prefix', uniquePrefix().slice(0, -1)];
  const files = operatorFiles(dir, apiPort!, { admin: ADMIN, agent: AGENT_TOKEN });
  ({ pki, env } = files);
  start('apiserver', BIN.apiserver, [...etcd, ...files.apiserverArgs]);
  start('controller-manager', BIN.cm, [...etcd, '--identity', 'e2e', '--metrics-port', String(metricsPort)]);
  start('agent', BIN.agent, [
    ...etcd, '--node-name', NODE, '--hostname', '127.0.0.1', '--runtime', 'process', '--data-dir', join(dir, 'agent'),
    '--listen', String(agentPort), '--log-token-file', join(dir, 'agent-token'), '--cpus', '1', '--mem', '512', '--ports', `${hostPort}-${hostPort}`, '--lease-ttl', '3',
    ...pki.agentFlags(NODE),
  ]);
  await waitFor('the agent\'s Node Ready', async () => /^standalone-1\s+Ready\s/m.test((await shoal('get', 'nodes')).stdout));
}, 60_000);

afterAll(async () => {
  if (env) {
    await shoal('delete', 'app', 'counter');
    await waitFor('no tasks left running', async () => (await tasks()).every((t) => ['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST'].includes(t.status?.state ?? '')), 15_000).catch(() => undefined);
  }
  for (const proc of [...procs.values()].reverse()) await stop(proc);
  const { stdout } = await run('ps', ['-eo', 'pid=,args=']);
  for (const line of stdout.split('\n').filter((l) => l.includes(MARK) && !l.includes('ps -eo'))) process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

it('servesTheControllerManagersMetrics', async () => {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(res.status).toBe(200);
  expect(await res.text()).toMatch(/^process_cpu_seconds_total /m);
});

it('readsAndFollowsATasksOutputThroughTheApiserverFromAStandaloneAgent', async () => {
  const manifest = join(dir, 'counter.yaml');
  writeFileSync(manifest, dump({
    apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'counter' },
    spec: { cmd: `: ${MARK}; i=0; while true; do i=$((i+1)); echo "line $i"; sleep 0.2; done`, resources: { cpus: 0.1, mem: 32 } },
  }));
  expect(await shoal('apply', '-f', manifest)).toMatchObject({ code: 0, stdout: 'app/counter created\n' });
  const task = await waitFor('a RUNNING task', async () => (await tasks()).find((t) => t.status?.state === 'RUNNING'));
  const name = task.metadata.name;

  // The agent itself, asked with the agent token: it knows the task (no "the agent is starting").
  const dispatcher = new Agent({ connect: { ca: readFileSync(pki.ca.cert) } });
  const direct = await fetch(`https://127.0.0.1:${agentPort}/v1/tasks/default/${name}/log?tail=1`, { headers: { authorization: `Bearer ${AGENT_TOKEN}` }, dispatcher } as RequestInit);
  expect({ status: direct.status, body: await direct.text() }).toMatchObject({ status: 200, body: expect.stringMatching(/^line \d+\n$/) });

  // `shoal logs TASK`: everything so far, from line 1.
  const logs = await waitFor('a few lines', async () => {
    const r = await shoal('logs', name);
    if (r.code !== 0) throw new Error(`shoal logs exited ${r.code}: ${r.stderr}`);
    return lastLine(r.stdout) >= 3 && r;
  });
  expect(logs.stdout).toMatch(/^line 1\nline 2\nline 3\n/);
  expect(logs.stderr).toBe('');

  // `shoal logs -f TASK`: once it streams, a line written later must reach it.
  const follower = spawn('node', [SHOAL_MAIN, 'logs', '-f', '--tail', '1', name], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let followed = '';
  follower.stdout.on('data', (d) => (followed += d));
  follower.stderr.on('data', (d) => (followed += d));
  try {
    await waitFor('the follower\'s first line', async () => lastLine(followed) > 0, 15_000);
    const r = await shoal('logs', name);
    const written = lastLine(r.stdout); // the last line written while the follower was streaming
    expect(written).toBeGreaterThan(0);
    await waitFor(`a line after line ${written} in the follower`, async () => lastLine(followed) > written, 15_000);
    expect(followed).toMatch(/^line \d+\n(line \d+\n)*$/);
  } finally {
    const exited = new Promise<number | null>((r) => follower.once('exit', (code) => r(code)));
    follower.kill('SIGINT');
    expect(await exited).toBe(0);
  }
}, 60_000);
