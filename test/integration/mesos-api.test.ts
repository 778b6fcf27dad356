/**
 * The Mesos scheduler API over a real etcd, with two controller-managers (one leads, the other
 * redirects) and an in-process agent on the hollow runtime: authentication and the principal's
 * roles, refused ACCEPTs that launch nothing and return their offers, failover within the
 * timeout (the tasks keep running, unacknowledged updates come again), the failover timeout
 * killing the tasks, a leader change keeping the framework and its tasks, and TEARDOWN.
 */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { Agent } from '../../pkg/agent/agent';
import { lookupKind } from '../../pkg/api/kinds';
import type { Framework, Task } from '../../pkg/api/types.generated';
import { Registry } from '../../pkg/apiserver/registry';
import { startControllerManager, type ControllerManagerHandle } from '../../pkg/controllers/start';
import { RecordIODecoder } from '../../pkg/master/mesos/recordio';
import { EtcdStore } from '../../pkg/store/etcd';
import { decodeKeyValue } from '../../pkg/store/objects';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { until } from '../harness/wait';

const log = silentLogger();
const ADMIN = 'admin-token-0123456789abcdef';
const BATCH = 'batch-token-0123456789abcdef';
const OTHER = 'other-token-0123456789abcdef';
let store: EtcdStore;
let dir: string;
let prefix: string;
let agent: Agent;
const cms: ControllerManagerHandle[] = [];

type Ev = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A subscription: its events as they come, its stream id, and a way to drop it. */
interface Sub {
  streamId: string;
  frameworkId: string;
  events: Ev[];
  closed: Promise<void>;
  abort(): void;
}

function basic(user: string, secret: string): string {
  return `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;
}

async function subscribe(port: number, info: Record<string, unknown>, auth = basic('batch', BATCH)): Promise<Sub> {
  const ctl = new AbortController();
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/scheduler`, {
    method: 'POST', signal: ctl.signal,
    headers: { 'content-type': 'application/json', accept: 'application/json', authorization: auth },
    body: JSON.stringify({ type: 'SUBSCRIBE', subscribe: { framework_info: { user: 'test', name: 'itest', roles: ['batch'], capabilities: [{ type: 'MULTI_ROLE' }], failover_timeout: 3, ...info } } }),
  });
  if (res.status !== 200) throw new Error(`SUBSCRIBE ${res.status}: ${await res.text()}`);
  const events: Ev[] = [];
  const decoder = new RecordIODecoder();
  const reader = res.body!.getReader();
  const closed = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        events.push(...(decoder.push(Buffer.from(value)) as Ev[]));
      }
    } catch {
      // aborted
    }
  })();
  await until('SUBSCRIBED', async () => events.some((e) => e.type === 'SUBSCRIBED'));
  const frameworkId = events.find((e) => e.type === 'SUBSCRIBED')!.subscribed.framework_id.value as string;
  return { streamId: res.headers.get('mesos-stream-id')!, frameworkId, events, closed, abort: () => ctl.abort() };
}

async function call(port: number, sub: Sub, body: Record<string, unknown>, auth = basic('batch', BATCH)): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/scheduler`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'mesos-stream-id': sub.streamId, authorization: auth },
    body: JSON.stringify({ framework_id: { value: sub.frameworkId }, ...body }),
  });
  return { status: res.status, text: await res.text() };
}

async function offer(sub: Sub): Promise<Ev> {
  const seen = new Set<string>();
  return until('an offer', async () => {
    for (const e of sub.events) if (e.type === 'RESCIND') seen.add(e.rescind.offer_id.value);
    const offers = sub.events.filter((e) => e.type === 'OFFERS').flatMap((e) => e.offers.offers as Ev[]);
    return offers.reverse().find((o) => !seen.has(o.id.value) && !used.has(o.id.value));
  }, 10_000);
}
const used = new Set<string>();

function task(id: string, agentId: string, cpus = 0.5): Ev {
  return {
    name: id, task_id: { value: id }, agent_id: { value: agentId },
    resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: cpus } }, { name: 'mem', type: 'SCALAR', scalar: { value: 32 } }],
    command: { shell: true, value: 'sleep 3600' },
  };
}

async function launch(port: number, sub: Sub, ids: string[]): Promise<{ status: number; text: string }> {
  const o = await offer(sub);
  used.add(o.id.value);
  return call(port, sub, { type: 'ACCEPT', accept: { offer_ids: [o.id], operations: [{ type: 'LAUNCH', launch: { task_infos: ids.map((id) => task(id, o.agent_id.value)) } }] } });
}

function updates(sub: Sub, id: string): Ev[] {
  return sub.events.filter((e) => e.type === 'UPDATE' && e.update.status.task_id.value === id).map((e) => e.update.status);
}

async function tasks(): Promise<Task[]> {
  return (await store.list(`${prefix}/registry/tasks/`)).items.map((kv) => decodeKeyValue<Task>(kv));
}

async function frameworks(): Promise<Framework[]> {
  return (await store.list(`${prefix}/registry/frameworks/`)).items.map((kv) => decodeKeyValue<Framework>(kv));
}

function leader(): ControllerManagerHandle {
  return cms.find((c) => c.cm.isLeader())!;
}

beforeAll(async () => {
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
  prefix = uniquePrefix().slice(0, -1);
  dir = mkdtempSync(join(tmpdir(), 'shoal-mesos-'));
  writeFileSync(join(dir, 'tokens.yaml'), dump({
    users: [
      { name: 'admin', token: ADMIN, roles: [{ namespace: '*', role: 'admin' }] },
      { name: 'batch', token: BATCH, roles: [], frameworkRoles: ['batch'] },
      { name: 'other', token: OTHER, roles: [], frameworkRoles: ['other'] },
    ],
  }));
  agent = new Agent({ store, prefix, nodeName: 'n1', hostname: 'h1', logger: log, leaseTtlSeconds: 2, runtime: 'hollow', capacity: { cpus: 4, mem: 4096, disk: 1024, ports: [[31000, 31009]] } });
  await agent.start();
  for (const id of ['cm-a', 'cm-b']) {
    cms.push(await startControllerManager({
      store, prefix, identity: id, logger: log, leaderLeaseSeconds: 2, allocationIntervalMs: 100, batchWindowMs: 0,
      schedulerApi: { port: 0, tokenFile: join(dir, 'tokens.yaml'), heartbeatIntervalSeconds: 1 },
    }));
    if (id === 'cm-a') await until('cm-a leads', async () => cms[0]!.cm.isLeader());
  }
});

afterAll(async () => {
  for (const c of cms) await c.stop();
  await agent.stop({ revoke: true });
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

it('authenticatesWithBasicOrBearerAndChecksTheRolesOfThePrincipal', async () => {
  const port = leader().schedulerApiPort!;
  const post = (auth: string | undefined, roles: string[]) => fetch(`http://127.0.0.1:${port}/api/v1/scheduler`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
    body: JSON.stringify({ type: 'SUBSCRIBE', subscribe: { framework_info: { user: 'u', name: 'n', roles, capabilities: [{ type: 'MULTI_ROLE' }] } } }),
  });
  const none = await post(undefined, ['batch']);
  expect(none.status).toBe(401);
  expect(none.headers.get('www-authenticate')).toMatch(/^Basic/);
  expect((await post(basic('batch', OTHER), ['batch'])).status).toBe(401); // a real token, not this principal's
  const forbidden = await post(`Bearer ${OTHER}`, ['batch']);
  expect(forbidden.status).toBe(403);
  expect(await forbidden.text()).toMatch(/not authorized to register frameworks with role 'batch'/);
  const ok = await post(`Bearer ${BATCH}`, ['batch']);
  expect(ok.status).toBe(200);
  await ok.body!.cancel();
});

it('refusesBadAcceptsWithoutLaunchingAnythingAndAnotherPrincipalsCalls', async () => {
  const port = leader().schedulerApiPort!;
  const sub = await subscribe(port, { name: 'bad-input' });
  const o = await offer(sub);
  used.add(o.id.value);
  const accept = (infos: Ev[], offerIds = [o.id]) => call(port, sub, { type: 'ACCEPT', accept: { offer_ids: offerIds, operations: [{ type: 'LAUNCH', launch: { task_infos: infos } }] } });
  const before = (await tasks()).length;
  const big = await accept([task('too-big', o.agent_id.value, 64)]);
  expect(big.status).toBeGreaterThanOrEqual(400);
  expect(big.status).toBeLessThan(500);
  expect(big.text).toMatch(/cpus/);
  // The offer went back to the pool: a new one comes, and nothing was launched.
  const again = await offer(sub);
  used.add(again.id.value);
  expect((await accept([task('x', again.agent_id.value)], [{ value: 'no-such-offer' }])).status).toBe(409);
  const dup = await accept([task('d', again.agent_id.value), task('d', again.agent_id.value)], [again.id]);
  expect(dup.status).toBe(400);
  expect(dup.text).toMatch(/duplicate/i);
  expect((await tasks()).length).toBe(before);
  // Another principal cannot act for this framework, even with its stream id.
  expect((await call(port, sub, { type: 'REVIVE' }, `Bearer ${OTHER}`)).status).toBe(403);
  // 5 MB body.
  const huge = await fetch(`http://127.0.0.1:${port}/api/v1/scheduler`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${BATCH}` }, body: JSON.stringify({ type: 'SUBSCRIBE', pad: 'x'.repeat(5 * 1024 * 1024) }) }).catch(() => undefined);
  if (huge) expect(huge.status).toBe(413);
  expect((await call(port, sub, { type: 'TEARDOWN' })).status).toBe(202);
  await sub.closed;
});

it('keepsTasksRunningThroughAFailoverAndResendsUnacknowledgedUpdates', async () => {
  const port = leader().schedulerApiPort!;
  const sub = await subscribe(port, { name: 'failover', failover_timeout: 30 });
  expect((await launch(port, sub, ['f-1'])).status).toBe(202);
  const running = await until('TASK_RUNNING with a uuid', async () => updates(sub, 'f-1').find((s) => s.state === 'TASK_RUNNING'));
  expect(running.uuid).toEqual(expect.any(String));
  // The scheduler dies without acknowledging; it comes back as the same framework.
  sub.abort();
  await until('disconnected', async () => (await frameworks()).find((f) => f.metadata.name === sub.frameworkId)?.status?.state === 'disconnected');
  const again = await subscribe(port, { name: 'failover', id: { value: sub.frameworkId }, failover_timeout: 30 });
  expect(again.frameworkId).toBe(sub.frameworkId);
  const resent = await until('the unacknowledged update again', async () => updates(again, 'f-1').find((s) => s.uuid === running.uuid));
  expect((await call(port, again, { type: 'ACKNOWLEDGE', acknowledge: { agent_id: resent.agent_id, task_id: resent.task_id, uuid: resent.uuid } })).status).toBe(202);
  expect((await tasks()).find((t) => t.metadata.annotations?.['mesos.shoal.dev/task-id'] === 'f-1')?.status?.state).toBe('RUNNING');
  // Explicit reconciliation: the truth, without a uuid.
  expect((await call(port, again, { type: 'RECONCILE', reconcile: { tasks: [{ task_id: { value: 'f-1' } }, { task_id: { value: 'nope' } }] } })).status).toBe(202);
  const answers = await until('two answers', async () => {
    const r = [...updates(again, 'f-1'), ...updates(again, 'nope')].filter((s) => s.uuid === undefined);
    return r.length >= 2 && r;
  });
  expect(answers.map((s) => s.state).sort()).toEqual(['TASK_LOST', 'TASK_RUNNING']);
  // The old stream id no longer works.
  expect((await call(port, sub, { type: 'REVIVE' })).status).toBe(400);
  expect((await call(port, again, { type: 'TEARDOWN' })).status).toBe(202);
  // Killed, then (ended, its framework gone) collected.
  await until('its task killed', async () => ['KILLED', undefined].includes((await tasks()).find((t) => t.metadata.annotations?.['mesos.shoal.dev/task-id'] === 'f-1')?.status?.state));
});

it('killsTheTasksOfAFrameworkGonePastItsFailoverTimeout', async () => {
  const port = leader().schedulerApiPort!;
  const sub = await subscribe(port, { name: 'gone', failover_timeout: 2 });
  expect((await launch(port, sub, ['g-1', 'g-2'])).status).toBe(202);
  await until('both running', async () => ['g-1', 'g-2'].every((id) => updates(sub, id).some((s) => s.state === 'TASK_RUNNING')));
  const names = (await tasks()).filter((t) => t.metadata.labels?.['shoal.dev/framework'] === sub.frameworkId).map((t) => t.metadata.name);
  expect(names).toHaveLength(2);
  sub.abort();
  // Killed past the timeout; once ended, the removed framework's tasks are collected (within 10 s).
  const states = new Set<string>();
  await until('its tasks killed and collected, the framework removed', async () => {
    const ts = (await tasks()).filter((t) => names.includes(t.metadata.name));
    for (const t of ts) states.add(t.status?.state ?? '');
    return ts.length === 0 && !(await frameworks()).some((f) => f.metadata.name === sub.frameworkId);
  }, 20_000);
  expect([...states].filter((s) => !['RUNNING', 'KILLING', 'KILLED'].includes(s))).toEqual([]);
});

it('keepsFrameworksAndTasksThroughALeaderChangeAndRedirectsFromTheStandby', async () => {
  const old = leader();
  const standby = cms.find((c) => c !== old)!;
  const sub = await subscribe(old.schedulerApiPort!, { name: 'leader-change', failover_timeout: 60 });
  expect((await launch(old.schedulerApiPort!, sub, ['l-1'])).status).toBe(202);
  await until('running', async () => updates(sub, 'l-1').some((s) => s.state === 'TASK_RUNNING'));
  const redirect = await fetch(`http://127.0.0.1:${standby.schedulerApiPort}/api/v1/scheduler`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/json', authorization: `Bearer ${BATCH}` }, body: '{}' });
  expect(redirect.status).toBe(307);
  expect(redirect.headers.get('location')).toBe(`http://127.0.0.1:${old.schedulerApiPort}/api/v1/scheduler`);

  await old.stop();
  cms.splice(cms.indexOf(old), 1);
  await sub.closed;
  await until('the standby leads', async () => standby.cm.isLeader(), 15_000);
  const again = await subscribe(standby.schedulerApiPort!, { name: 'leader-change', id: { value: sub.frameworkId }, failover_timeout: 60 });
  expect((await call(standby.schedulerApiPort!, again, { type: 'RECONCILE', reconcile: { tasks: [] } })).status).toBe(202);
  const truth = await until('implicit reconciliation', async () => updates(again, 'l-1').find((s) => s.uuid === undefined));
  expect(truth.state).toBe('TASK_RUNNING');
  expect((await call(standby.schedulerApiPort!, again, { type: 'TEARDOWN' })).status).toBe(202);
});

it('sharesAnAgentByDrfBetweenAnAppsRoleAndAnExternalFrameworksRole', async () => {
  const port = leader().schedulerApiPort!;
  const sub = await subscribe(port, { name: 'drf', failover_timeout: 0 });
  // An App of role "web" wants 8 one-cpu instances; the framework (role "batch") launches one-cpu
  // tasks greedily on every offer. The agent has 4 cpus: DRF gives each role 2.
  await new Registry(store, prefix).create(lookupKind('app')!, 'default', {
    apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'web', namespace: 'default' },
    spec: { instances: 8, role: 'web', cmd: 'sleep 3600', resources: { cpus: 1, mem: 32 } },
  });
  const live = new Set<string>();
  let n = 0;
  let seen = 0;
  const running = async (pred: (t: Task) => boolean) => (await tasks()).filter((t) => pred(t) && t.status?.state === 'RUNNING').length;
  const ofFw = (t: Task) => t.metadata.labels?.['shoal.dev/framework'] === sub.frameworkId;
  const ofApp = (t: Task) => t.metadata.labels?.['shoal.dev/app'] === 'web';
  await until('2 tasks per role', async () => {
    for (; seen < sub.events.length; seen++) {
      const e = sub.events[seen]!;
      if (e.type === 'UPDATE' && /TASK_(DROPPED|LOST|KILLED|FAILED|FINISHED|ERROR|GONE)/.test(e.update.status.state)) live.delete(e.update.status.task_id.value);
      if (e.type !== 'OFFERS') continue;
      for (const o of e.offers.offers as Ev[]) {
        const cpus = (o.resources as Ev[]).find((r) => r.name === 'cpus')?.scalar.value ?? 0;
        const count = Math.min(Math.floor(cpus), 8 - live.size);
        const ids = Array.from({ length: count }, () => `drf-${n++}`);
        ids.forEach((id) => live.add(id));
        await call(port, sub, { type: 'ACCEPT', accept: { offer_ids: [o.id], operations: [{ type: 'LAUNCH', launch: { task_infos: ids.map((id) => task(id, o.agent_id.value, 1)) } }] } });
      }
    }
    return (await running(ofFw)) === 2 && (await running(ofApp)) === 2;
  }, 20_000);
  await new Promise((r) => setTimeout(r, 1000)); // and it holds
  expect(await running(ofFw)).toBe(2);
  expect(await running(ofApp)).toBe(2);
  await new Registry(store, prefix).delete({ kind: lookupKind('app')!, namespace: 'default', name: 'web' });
  expect((await call(port, sub, { type: 'TEARDOWN' })).status).toBe(202);
});

it('tellsSubscribedFrameworksOfAnAgentThatIsGone', async () => {
  const port = leader().schedulerApiPort!;
  const sub = await subscribe(port, { name: 'failure', failover_timeout: 0 });
  const gone = new Agent({ store, prefix, nodeName: 'n2', hostname: 'h2', logger: log, leaseTtlSeconds: 2, runtime: 'hollow', capacity: { cpus: 1, mem: 512, disk: 0, ports: [] } });
  await gone.start();
  await gone.stop({ revoke: true });
  const failure = await until('FAILURE for n2', async () => sub.events.find((e) => e.type === 'FAILURE'), 10_000);
  expect(failure.failure).toEqual({ agent_id: { value: 'n2' } });
  expect((await call(port, sub, { type: 'TEARDOWN' })).status).toBe(202);
});
