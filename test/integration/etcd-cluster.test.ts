/**
 * etcd as a cluster (issue 16 item 6): apiserver, controller-manager and three process agents,
 * each with its own connection to all three members of a real 3-member etcd.
 *
 * - One member killed (SIGKILL, a follower): every write of a fresh client succeeds (etcd3 picks a
 *   host at random per call: the dead one's breaker must open at its first refused connection);
 *   apply, scheduling and status keep working; the member restarted on its data dir rejoins.
 *   (Killing the raft leader is not "no effect": writes made during the ~1 s election time out
 *   after 7 s with a 503, as etcd's own clients see.)
 * - Two members killed (quorum lost): the API answers 503 "etcd is unavailable (no quorum?)" with
 *   Retry-After within a bounded time (not 500, not a hang); the controller-manager loses its
 *   leadership (so its fenced writes stop); agents keep their task processes and keep retrying.
 * - Quorum restored: the API answers, the controller-manager leads again and everything
 *   converges with nothing lost: the same task processes, none doubled, apply works.
 *
 * The three tests run in order and share the cluster.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { startAgent, type AgentHandle } from '../../pkg/agent/start';
import { APP_LABEL } from '../../pkg/api/apps';
import type { App, Task } from '../../pkg/api/types.generated';
import { TokenAuthenticator } from '../../pkg/apiserver/auth';
import { startApiServer, type ApiServerHandle } from '../../pkg/apiserver/start';
import { startControllerManager, type ControllerManagerHandle } from '../../pkg/controllers/start';
import { startEtcdCluster, type EtcdCluster, type EtcdClusterMember } from '../../pkg/devcluster/etcd';
import { EtcdStore } from '../../pkg/store/etcd';
import { killProcessesUnder } from '../harness/procs';
import { until, waitFor } from '../harness/wait';

const ADMIN = 'admin-token-0123456789abcdef';
const NODES = ['ec-1', 'ec-2', 'ec-3'];
/** What a client may wait for a 503 while etcd has no quorum (etcd itself gives up on a request after 7 s). */
const UNAVAILABLE_WITHIN_MS = 20_000;
const TERMINAL = new Set(['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST']);

let dir: string;
let etcd: EtcdCluster;
let api: ApiServerHandle;
let cm: ControllerManagerHandle;
const agents: AgentHandle[] = [];
/** Every log line of every component, as parsed JSON (pino). */
const logs: Array<{ component: string; msg: string; [k: string]: unknown }> = [];

function logger(component: string): pino.Logger {
  return pino({ level: 'info', base: { component } }, { write: (line: string) => void logs.push(JSON.parse(line)) });
}

function logged(component: string, msg: string): number {
  return logs.filter((l) => l.component === component && l.msg === msg).length;
}

interface Reply {
  status: number;
  body: { message?: string; code?: number; reason?: string; [k: string]: unknown };
  retryAfter: string | null;
  ms: number;
}

/** One API request; a client-side limit turns a hang into a failure that says so. */
async function call(method: string, path: string, body?: unknown): Promise<Reply> {
  const started = Date.now();
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined && { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {}, retryAfter: res.headers.get('retry-after'), ms: Date.now() - started };
}

function app(name: string, instances: number): App {
  return {
    apiVersion: 'shoal/v1', kind: 'App', metadata: { name, namespace: 'default' },
    spec: { instances, cmd: 'sleep 3600', resources: { cpus: 0.1, mem: 16 } },
  } as App;
}

/** The App's tasks that are not terminal, through the API. */
async function liveTasks(appName: string): Promise<Task[]> {
  const res = await call('GET', `/api/v1/namespaces/default/tasks?labelSelector=${encodeURIComponent(`${APP_LABEL}=${appName}`)}`);
  if (res.status !== 200) throw new Error(`listing tasks: ${res.status} ${res.body.message}`);
  return (res.body.items as Task[]).filter((t) => !TERMINAL.has(t.status?.state ?? ''));
}

/** Resolves with the App's tasks once exactly `n` are live, all RUNNING, and its status says so. */
async function converged(appName: string, n: number, ms = 30_000): Promise<Task[]> {
  return waitFor(`${appName}: ${n} tasks RUNNING and in its status`, async () => {
    const tasks = await liveTasks(appName);
    if (tasks.length !== n || !tasks.every((t) => t.status?.state === 'RUNNING')) return undefined;
    const res = await call('GET', `/api/v1/namespaces/default/apps/${appName}`);
    return res.status === 200 && (res.body as unknown as App).status?.tasksRunning === n && tasks;
  }, ms);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-etcd-cluster-'));
  chmodSync(dir, 0o711); // the agents' data dirs are inside: their tasks' users must get through
  etcd = await startEtcdCluster({ dir: join(dir, 'etcd') });
  const connection = { endpoints: etcd.endpoints };
  api = await startApiServer({
    etcd: connection, port: 0, logger: logger('apiserver'),
    authenticator: new TokenAuthenticator([{ name: 'admin', token: ADMIN, roles: [{ namespace: '*', role: 'admin' }] }]),
  });
  cm = await startControllerManager({ etcd: connection, identity: 'cm-1', logger: logger('controller-manager'), leaderLeaseSeconds: 2, allocationIntervalMs: 200, batchWindowMs: 0 });
  for (const node of NODES) {
    agents.push(await startAgent({
      etcd: connection, nodeName: node, hostname: node, dataDir: join(dir, node), runtime: 'process', cgroupParent: false,
      capacity: { cpus: 1, mem: 256, disk: 0, ports: [] }, listen: { port: 0, host: '127.0.0.1' }, leaseTtlSeconds: 3, logger: logger(node),
    }));
  }
  await Promise.all(agents.map((a) => a.ready));
  await until('the controller-manager leads', async () => cm.cm.isLeader(), 15_000);
}, 60_000);

afterAll(async () => {
  // Members first: a component stopping against a dead etcd must not hold up the rest.
  await Promise.all(etcd?.members.map((m) => m.start().catch(() => undefined)) ?? []);
  for (const a of agents) await a.stop({ revoke: true }).catch(() => undefined);
  await cm?.stop().catch(() => undefined);
  await api?.stop().catch(() => undefined);
  await etcd?.stop();
  if (dir) {
    killProcessesUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

let pids: Map<string, number>;
/** The member killed first (a follower), which survives the loss of quorum. */
let survivor: EtcdClusterMember;

test('one member killed: apply, scheduling and status keep working; the member rejoins', async () => {
  const leader = await until('a raft leader', () => etcd.leader(), 10_000);
  survivor = etcd.members.find((m) => m !== leader)!;
  await survivor.kill(); // SIGKILL
  // A write sent on a connection at the moment the member died fails ("Connection dropped": it may
  // have been applied, so it is not sent again); the claim is about writes after the death is seen.
  const probe = new EtcdStore({ endpoints: [survivor.endpoint] });
  await until('this process to see the member gone', () => probe.get('/probe').then(() => false, (e: Error) => /No connection established/.test(e.message)), 10_000);
  await probe.close();

  // Fresh clients, their breakers closed: without the breaker opening at once, ~1 write in 27 failed.
  const clients = Array.from({ length: 8 }, () => new EtcdStore({ endpoints: etcd.endpoints }));
  try {
    const failed: string[] = [];
    await Promise.all(clients.map(async (c, i) => {
      for (let k = 0; k < 8; k++) await c.create(`/etcd-cluster-test/${i}-${k}`, 'x').catch((e: Error) => failed.push(e.message));
    }));
    expect(failed).toEqual([]);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }

  const created = await call('POST', '/api/v1/namespaces/default/apps', app('web', 2));
  expect({ status: created.status, message: created.body.message }).toEqual({ status: 201, message: undefined });
  await converged('web', 2);
  const scaled = await call('PATCH', '/api/v1/namespaces/default/apps/web', { spec: { instances: 3 } });
  expect({ status: scaled.status, message: scaled.body.message }).toEqual({ status: 200, message: undefined });
  const tasks = await converged('web', 3);
  expect(new Set(tasks.map((t) => t.spec.nodeName)).size).toBeGreaterThan(1);
  pids = new Map(tasks.map((t) => [t.metadata.name, t.status!.pid!]));

  await survivor.start(); // the same member, on its data dir and ports
  const health = await (await fetch(`${survivor.endpoint}/health`)).json();
  expect(health).toMatchObject({ health: 'true' });
}, 60_000);

test('quorum lost: the API answers 503 in bounded time, the controller-manager stops leading, agents keep their tasks', async () => {
  const lostBefore = logged('controller-manager', 'lost leadership');
  const lost = etcd.members.filter((m) => m !== survivor);
  await Promise.all(lost.map((m) => m.kill()));

  for (const [method, path, body] of [
    ['GET', '/api/v1/namespaces/default/apps/web'],
    ['GET', '/api/v1/namespaces/default/tasks'],
    ['POST', '/api/v1/namespaces/default/apps', app('later', 1)],
  ] as const) {
    const res = await call(method, path, body);
    if (process.env.SHOAL_TEST_VERBOSE) console.log(method, path, res.status, res.ms, res.body.message);
    expect({ method, path, status: res.status, reason: res.body.reason }).toEqual({ method, path, status: 503, reason: 'ServiceUnavailable' });
    expect(res.body.message).toMatch(/^etcd is unavailable \(no quorum\?\): .+; retry/);
    expect(Number(res.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(res.ms).toBeLessThan(UNAVAILABLE_WITHIN_MS);
  }

  // A client whose connections are fresh (no breaker open yet) reaches the member that is still up,
  // which holds each request until it gives up (7 s): one such wait, not one per retry.
  const fresh = await startApiServer({
    etcd: { endpoints: etcd.endpoints }, port: 0, logger: logger('apiserver-2'),
    authenticator: new TokenAuthenticator([{ name: 'admin', token: ADMIN, roles: [{ namespace: '*', role: 'admin' }] }]),
  });
  try {
    const started = Date.now();
    const res = await fetch(`${fresh.url}/api/v1/namespaces/default/apps/web`, { headers: { authorization: `Bearer ${ADMIN}` }, signal: AbortSignal.timeout(60_000) });
    const body = (await res.json()) as { message: string };
    if (process.env.SHOAL_TEST_VERBOSE) console.log('fresh GET', res.status, Date.now() - started, body.message);
    expect({ status: res.status, message: body.message }).toEqual({ status: 503, message: expect.stringMatching(/^etcd is unavailable \(no quorum\?\): /) });
    expect(Date.now() - started).toBeLessThan(15_000);
  } finally {
    await fresh.stop();
  }

  await until('the controller-manager to lose its leadership', async () => !cm.cm.isLeader() && logged('controller-manager', 'lost leadership') > lostBefore, 20_000);
  await until('every agent to notice its lease is gone and retry', async () => NODES.every((n) => logged(n, 'lease lost; re-registering') > 0), 20_000);
  // The agents kept their tasks: the same processes run, and each agent still holds its own.
  for (const [name, pid] of pids) expect({ name, alive: alive(pid) }).toEqual({ name, alive: true });
  const held = agents.flatMap((a) => a.agent.runningTasks()).sort();
  expect(held).toEqual([...pids.keys()].map((n) => `default/${n}`).sort());
  expect(cm.cm.isLeader()).toBe(false);
}, 60_000);

test('quorum restored: the API answers, the leader is back, everything converges with nothing lost', async () => {
  const becameBefore = logged('controller-manager', 'became leader');
  await Promise.all(etcd.members.filter((m) => m !== survivor).map((m) => m.start()));

  await waitFor('the API to answer', async () => (await call('GET', '/api/v1/namespaces/default/apps/web')).status === 200, 20_000);
  await until('the controller-manager to lead again', async () => cm.cm.isLeader() && logged('controller-manager', 'became leader') > becameBefore, 20_000);
  const tasks = await converged('web', 3);
  // The same tasks, the same processes: none lost, none doubled, none restarted.
  expect(new Map(tasks.map((t) => [t.metadata.name, t.status!.pid!]))).toEqual(pids);
  for (const pid of pids.values()) expect(alive(pid)).toBe(true);
  // (The create answered 503 may or may not have landed, as with any timed-out write: not checked.)
  expect((await call('POST', '/api/v1/namespaces/default/apps', app('after', 1))).status).toBe(201);
  await converged('after', 1);
  await until('every node Ready', async () => {
    const res = await call('GET', '/api/v1/nodes');
    const nodes = res.body.items as Array<{ metadata: { name: string }; status?: { conditions?: Array<{ type: string; status: string }> } }>;
    return NODES.every((n) => nodes?.find((x) => x.metadata.name === n)?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  }, 20_000);
}, 60_000);
