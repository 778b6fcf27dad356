/**
 * Agent behaviour on the in-memory store with a fake runtime: relist after compaction, tasks
 * ending by themselves, start failures, lease loss, and the status reports it writes under its
 * own key range (the controller-manager's relay, tested in taskstatus-relay.test.ts, folds them
 * into Tasks; here nothing does, so the Tasks stay as bound).
 */
import { Agent } from '../../pkg/agent/agent';
import { StatusReporter } from '../../pkg/agent/status';
import { parseTaskStatusReport, type TaskStatusReport } from '../../pkg/api/tasks';
import { lookupKind } from '../../pkg/api/kinds';
import type { Node, Task } from '../../pkg/api/types.generated';
import { admit } from '../../pkg/api/validation';
import { FakeRuntime } from '../../pkg/runtime/fake';
import { UnavailableError } from '../../pkg/store/errors';
import { MemoryStore } from '../../pkg/store/memory';
import { agentLeaseKey, assignmentKey, decodeKeyValue, encodeObject, objectKey, taskStatusKey, taskStatusPrefix } from '../../pkg/store/objects';
import { silentLogger } from '../../pkg/util/log';
import { MAX_TXN_BYTES } from '../../pkg/store/validate';
import { FakeClock, settle } from '../../pkg/util/clock';

const TASKS = lookupKind('task')!;
const NODES = lookupKind('node')!;
const P = '/shoal';
const log = silentLogger();
const capacity = { cpus: 2, mem: 1024, disk: 0, ports: [] };

const T0 = Date.UTC(2026, 0, 1);
let store: MemoryStore;
let runtime: FakeRuntime;
let agents: Agent[];
/** The agents' and reporters' clock: their retries wait on it, their timestamps come from it. */
let clock: FakeClock;

beforeEach(() => {
  clock = new FakeClock(T0);
  store = new MemoryStore({ clock }); // lease TTLs run on the test's clock too
  runtime = new FakeRuntime();
  agents = [];
});
afterEach(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await store.close();
  jest.restoreAllMocks();
});

async function startAgent(): Promise<Agent> {
  const a = new Agent({ store, prefix: P, nodeName: 'n1', capacity, runtime, leaseTtlSeconds: 5, logger: log, clock });
  agents.push(a);
  await a.start();
  return a;
}

function task(name: string, env?: Record<string, string>): Task {
  const r = admit({ apiVersion: 'shoal/v1', kind: 'Task', metadata: { name, namespace: 'default', uid: `uid-${name}` }, spec: { nodeName: 'n1', cmd: 'true', ...(env ? { env } : {}) }, status: { state: 'STAGING' } });
  if (!r.ok) throw new Error(JSON.stringify(r.causes));
  return r.object as Task;
}

/** Task + assignment (the same value) in one revision, as the binder writes them (synchronously applied by the memory store). */
function bind(name: string, env?: Record<string, string>): Promise<number | undefined> {
  const value = encodeObject(task(name, env));
  return store.txn([], [
    { op: 'put', key: objectKey(P, TASKS, 'default', name), value },
    { op: 'put', key: assignmentKey(P, 'n1', 'default', name), value },
  ]);
}

/** Store calls from now on: reads of Task keys, and txns writing this agent's status reports. */
function storeCalls(): { taskReads: () => number; reportWrites: () => number } {
  const isTask = (k: string) => k.startsWith(`${P}/registry/tasks/`);
  const get = jest.spyOn(store, 'get');
  const getMany = jest.spyOn(store, 'getMany');
  const txn = jest.spyOn(store, 'txn');
  return {
    taskReads: () => get.mock.calls.filter(([k]) => isTask(k)).length + getMany.mock.calls.filter(([ks]) => ks.some(isTask)).length,
    reportWrites: () => txn.mock.calls.filter(([, ops]) => ops.some((o) => o.key.startsWith(taskStatusPrefix(P, 'n1')))).length,
  };
}

/** What agent n1 last reported of a task (undefined: nothing). */
async function report(name: string): Promise<(TaskStatusReport & { modRevision: number }) | undefined> {
  const kv = await store.get(taskStatusKey(P, 'n1', 'default', name));
  const r = kv && parseTaskStatusReport(kv.value);
  return r && { ...r, modRevision: kv.modRevision };
}

/** The state agent n1 last reported for a task. */
async function state(name: string): Promise<string | undefined> {
  return (await report(name))?.status.state as string | undefined;
}

/** Reported states by name as last listed by listStates (a list: not counted as a read). */
const listed = new Map<string, string | undefined>();
async function listStates(): Promise<void> {
  listed.clear();
  for (const kv of (await store.list(taskStatusPrefix(P, 'n1'))).items) {
    listed.set(kv.key.split('/').pop()!, parseTaskStatusReport(kv.value)?.status.state as string | undefined);
  }
}

/**
 * Waits for what the memory store and the agent do without a timer (watch deliveries on
 * microtasks, status flushes on setImmediate): polls between rounds of settle(), never steps the
 * clock, so a check that needs a timer to fire fails here instead of passing late.
 */
async function until(what: string, check: () => Promise<boolean> | boolean, before?: () => Promise<void>): Promise<void> {
  for (let round = 0; (await before?.(), !(await check())); round++) {
    if (round === 50) throw new Error(`${what}: not reached without a timer`);
    await settle();
  }
}

describe('Agent on the memory store', () => {
  it('relists after its watch was compacted: starts what was assigned, kills what was unassigned meanwhile', async () => {
    const spy = jest.spyOn(store, 'list');
    const lists = () => spy.mock.calls.filter(([p]) => p.startsWith(`${P}/assignments/`)); // the reporter reads its own range back once too
    await startAgent();
    await bind('old');
    await until('old RUNNING', async () => (await state('old')) === 'RUNNING');
    expect(lists()).toHaveLength(1);
    // Three writes then a compaction in the same tick (the memory store applies writes at once
    // and delivers watch events on a later microtask): the watch is behind the compact revision.
    const base = await store.revision();
    void bind('a');
    void bind('b');
    void store.delete(assignmentKey(P, 'n1', 'default', 'old'));
    store.compact(base + 3);
    await until('a, b RUNNING and old KILLED', async () => (await state('a')) === 'RUNNING' && (await state('b')) === 'RUNNING' && (await state('old')) === 'KILLED');
    expect(runtime.runningKeys()).toEqual(['default/a', 'default/b']);
    expect(lists()).toEqual([[`${P}/assignments/n1/`], [`${P}/assignments/n1/`]]); // the relist
  });

  it('a task that exits is reported FINISHED or FAILED with its exit code and is not restarted while assigned', async () => {
    await startAgent();
    await bind('ok');
    await bind('bad');
    await until('both RUNNING', async () => (await state('ok')) === 'RUNNING' && (await state('bad')) === 'RUNNING');
    clock.step(5000);
    runtime.exit('default', 'ok', 0);
    runtime.exit('default', 'bad', 3);
    await until('terminal', async () => (await state('ok')) === 'FINISHED' && (await state('bad')) === 'FAILED');
    expect((await report('bad'))!.status).toMatchObject({ exitCode: 3, message: 'exited with code 3', startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:00:05.000Z' });
    // A relist (here: a compaction) must not start them again.
    const lists = jest.spyOn(store, 'list');
    const base = await store.revision();
    void store.create(`${P}/unrelated`, 'x');
    void store.create(`${P}/unrelated2`, 'x');
    store.compact(base + 2);
    await until('relisted', () => lists.mock.calls.length === 1);
    await settle(); // whatever the relist would start, it would have by now
    expect(runtime.calls.filter((c) => c.startsWith('start'))).toHaveLength(2);
    expect(clock.pending()).toBe(2); // the node lease's TTL and keep-alive timers only: no retry waiting
  });

  it('a task from a fresh assignment starts and reports RUNNING with one write, under its own range, and no read of any Task', async () => {
    await startAgent();
    const calls = storeCalls();
    const boundAt = await bind('web');
    await until('RUNNING', () => listed.get('web') === 'RUNNING', listStates);
    expect({ taskReads: calls.taskReads(), reportWrites: calls.reportWrites() }).toEqual({ taskReads: 0, reportWrites: 1 });
    expect(await report('web')).toMatchObject({ uid: 'uid-web', status: { state: 'RUNNING', startedAt: '2026-01-01T00:00:00.000Z' } });
    expect((await store.get(objectKey(P, TASKS, 'default', 'web')))!.modRevision).toBe(boundAt); // the agent writes no Task
  });

  it('a restarted agent reads back what it reported: a task that finished is not started again', async () => {
    const a = await startAgent();
    await bind('job');
    await until('RUNNING', async () => (await state('job')) === 'RUNNING');
    runtime.exit('default', 'job', 0);
    await until('FINISHED', async () => (await state('job')) === 'FINISHED');
    await a.stop({ revoke: false });
    runtime = new FakeRuntime(); // a new host: nothing of the old runtime is left to adopt
    await startAgent();
    await settle();
    expect(runtime.calls).toEqual([]);
    expect(clock.pending()).toBe(3); // the first agent's released lease (its TTL), the new one's TTL and keep-alive: no retry waiting
    expect(await state('job')).toBe('FINISHED');
  });

  it('a task the runtime cannot start is reported FAILED with the reason', async () => {
    runtime.failStart.set('default/web', 'image busybox:missing not found');
    await startAgent();
    await bind('web');
    await until('FAILED', async () => (await state('web')) === 'FAILED');
    expect((await report('web'))!.status).toMatchObject({ reason: 'StartFailed', message: 'image busybox:missing not found' });
  });

  it('a start that can never succeed (image absent) is reported ERROR, not FAILED', async () => {
    runtime.failStart.set('default/web', 'image shoal/missing:1 not present on node n1');
    runtime.failCode.set('default/web', 'ImageNotPresent');
    await startAgent();
    await bind('web');
    await until('ERROR', async () => (await state('web')) === 'ERROR');
    expect((await report('web'))!.status).toMatchObject({ reason: 'ImageNotPresent', message: 'image shoal/missing:1 not present on node n1' });
  });

  it('re-registers with a new lease when the lease expires behind it (a partition), keeping its tasks', async () => {
    const a = await startAgent();
    await bind('web');
    await until('RUNNING', async () => (await state('web')) === 'RUNNING');
    const old = a.leaseId;
    store.expireLeases(clock.now() + 60_000); // as if keep-alive had not reached etcd for a minute
    expect(await store.get(agentLeaseKey(P, 'n1'))).toBeUndefined();
    await until('re-registered', () => a.leaseId !== undefined && a.leaseId !== old);
    expect((await store.get(agentLeaseKey(P, 'n1')))?.lease).toBe(a.leaseId);
    const node = decodeKeyValue<Node>((await store.get(objectKey(P, NODES, undefined, 'n1')))!);
    expect(node.status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(runtime.calls).toEqual(['start default/web']);
  });

  it('says RUNNING again after re-registering (a new report: node lifecycle may have marked the old one superseded)', async () => {
    const a = await startAgent();
    await bind('web');
    await until('RUNNING', async () => (await state('web')) === 'RUNNING');
    const first = (await report('web'))!.modRevision;
    const old = a.leaseId;
    store.expireLeases(clock.now() + 60_000);
    await until('re-registered', () => a.leaseId !== undefined && a.leaseId !== old);
    await until('RUNNING said again', async () => (await report('web'))!.modRevision > first);
    expect(await state('web')).toBe('RUNNING');
    expect(runtime.calls).toEqual(['start default/web']); // never restarted
  });

  it('removes what an ended task left (its container or work dir) once it is unassigned', async () => {
    await startAgent();
    await bind('job');
    await until('RUNNING', async () => (await state('job')) === 'RUNNING');
    runtime.exit('default', 'job', 0);
    await until('FINISHED', async () => (await state('job')) === 'FINISHED');
    expect(runtime.calls).not.toContain('remove default/job'); // its logs are still wanted
    await store.delete(assignmentKey(P, 'n1', 'default', 'job'));
    await until('removed', async () => runtime.calls.includes('remove default/job'));
  });

  it.each([
    ['stop()', (a: Agent) => void a.stop(), 'revoke'],
    ['crash()', (a: Agent) => a.crash(), 'release'],
  ])('%s during the lease grant lets go of the late lease the same way (no lease kept alive forever)', async (_what, leave, how) => {
    let grant!: () => void;
    const gate = new Promise<void>((resolve) => (grant = resolve));
    const calls: string[] = [];
    const a = new Agent({
      store, prefix: P, nodeName: 'n1', capacity, runtime, logger: log, clock,
      leases: async (ttl, onLost) => {
        await gate;
        const lease = await store.lease(ttl, onLost);
        return { id: lease.id, revoke: () => (calls.push('revoke'), lease.revoke()), release: () => (calls.push('release'), lease.release()) };
      },
    });
    const started = a.start();
    await settle(); // start() waits on the gate
    leave(a);
    grant();
    await started;
    expect(calls).toEqual([how]);
    expect(await store.get(agentLeaseKey(P, 'n1'))).toBeUndefined();
  });

  it('retries a failed registration after a backoff on its clock; the Node carries the clock\'s time', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5); // backoff jitter ×1
    let grants = 0;
    const a = new Agent({
      store, prefix: P, nodeName: 'n1', capacity, runtime, logger: log, clock,
      leases: async (ttl, onLost) => {
        if (grants++ === 0) throw new UnavailableError('etcd is unreachable');
        return store.lease(ttl, onLost);
      },
    });
    agents.push(a);
    let started = false;
    const starting = a.start().then(() => (started = true));
    await until('the first registration failed', () => grants === 1 && clock.pending() === 1);
    expect(clock.nextAt()).toBe(T0 + 1000);
    await clock.stepAsync(999);
    expect([grants, a.leaseId]).toEqual([1, undefined]);
    await clock.stepAsync(1);
    await starting;
    expect([grants, started, a.leaseId !== undefined]).toEqual([2, true, true]);
    const node = decodeKeyValue<Node>((await store.get(objectKey(P, NODES, undefined, 'n1')))!);
    expect(node.metadata.creationTimestamp).toBe('2026-01-01T00:00:01.000Z');
    expect(node.status.lastHeartbeatTime).toBe('2026-01-01T00:00:01.000Z');
    expect(JSON.parse((await store.get(agentLeaseKey(P, 'n1')))!.value)).toEqual({ node: 'n1', startedAt: '2026-01-01T00:00:00.000Z' });
  });

  it('stop({revoke: false}) leaves the lease key to expire; crash() does too', async () => {
    const a = await startAgent();
    await a.stop({ revoke: false });
    expect((await store.get(agentLeaseKey(P, 'n1')))?.lease).toBeDefined();
    store.expireLeases(clock.now() + 60_000);
    expect(await store.get(agentLeaseKey(P, 'n1'))).toBeUndefined();
  });
});

describe('task status reports', () => {
  const ref = { namespace: 'default', name: 'web', uid: 'uid-web' };
  const reporterOf = (signal: AbortSignal) => new StatusReporter({ store, prefix: P, node: 'n1', logger: log, signal, clock });

  it('reports made together go out as one transaction of puts under the agent\'s own range, reading no Task', async () => {
    const refs = ['a', 'b', 'c'].map((n) => ({ namespace: 'default', name: n, uid: `uid-${n}` }));
    const abort = new AbortController();
    const reporter = reporterOf(abort.signal);
    const calls = storeCalls();
    const txn = jest.spyOn(store, 'txn');
    for (const r of refs) reporter.report(r, { state: 'RUNNING', startedAt: 't1' });
    await until('all RUNNING', async () => ['a', 'b', 'c'].every((n) => listed.get(n) === 'RUNNING'), listStates);
    expect({ taskReads: calls.taskReads(), reportWrites: calls.reportWrites() }).toEqual({ taskReads: 0, reportWrites: 1 });
    expect(txn.mock.calls[0][0]).toEqual([]); // no compares: only this agent writes its range
    abort.abort();
  });

  it('a report holds everything said of the task: newer fields win, defaults keep their first value; the same word twice is not written again unless forced', async () => {
    const abort = new AbortController();
    const reporter = reporterOf(abort.signal);
    reporter.report(ref, { state: 'STARTING' }, { stagedAt: 't0' });
    await until('STARTING', async () => (await state('web')) === 'STARTING');
    reporter.report(ref, { state: 'RUNNING', startedAt: 't1' }, { stagedAt: 't1' });
    await until('RUNNING', async () => (await state('web')) === 'RUNNING');
    expect(await report('web')).toMatchObject({ uid: 'uid-web', status: { state: 'RUNNING', startedAt: 't1' }, defaults: { stagedAt: 't0' } });
    const rev = (await report('web'))!.modRevision;
    reporter.report(ref, { state: 'RUNNING' });
    await settle();
    expect((await report('web'))!.modRevision).toBe(rev);
    reporter.report(ref, { state: 'RUNNING' }, {}, { force: true });
    await until('said again', async () => (await report('web'))!.modRevision > rev);
    // Another task of the same name (a new uid) starts from nothing.
    reporter.report({ ...ref, uid: 'uid-web-2' }, { state: 'STARTING' });
    await until('new uid', async () => (await report('web'))!.uid === 'uid-web-2');
    expect((await report('web'))!.status).toEqual({ state: 'STARTING' });
    abort.abort();
  });

  it('a new reporter (a restarted agent) reads its range back once: what it said before decides whether a task started', async () => {
    const first = new AbortController();
    const before = reporterOf(first.signal);
    before.report({ namespace: 'default', name: 'ran', uid: 'uid-ran' }, { state: 'RUNNING', startedAt: 't1' });
    before.report({ namespace: 'default', name: 'done', uid: 'uid-done' }, { state: 'FINISHED' });
    await until('written', async () => (await state('ran')) === 'RUNNING' && (await state('done')) === 'FINISHED');
    first.abort();
    const abort = new AbortController();
    const reporter = reporterOf(abort.signal);
    const lists = jest.spyOn(store, 'list');
    expect(await reporter.verdict({ namespace: 'default', name: 'ran', uid: 'uid-ran' })).toBe('started');
    expect(await reporter.verdict({ namespace: 'default', name: 'done', uid: 'uid-done' })).toBe('terminal');
    expect(await reporter.verdict({ namespace: 'default', name: 'ran', uid: 'another' })).toBe('live');
    expect(await reporter.verdict({ namespace: 'default', name: 'new', uid: 'uid-new' })).toBe('live');
    expect(lists).toHaveBeenCalledTimes(1);
    reporter.report({ namespace: 'default', name: 'ran', uid: 'uid-ran' }, { state: 'KILLED' });
    await until('KILLED', async () => (await state('ran')) === 'KILLED');
    expect((await report('ran'))!.status).toEqual({ state: 'KILLED', startedAt: 't1' }); // merged over what was read back
    abort.abort();
  });

  it('a report made while the reporter reads its range back is written too (not dropped with the batch it joined)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const realList = store.list.bind(store);
    jest.spyOn(store, 'list').mockImplementation(async (prefix) => {
      await gate;
      return realList(prefix);
    });
    const abort = new AbortController();
    const reporter = reporterOf(abort.signal);
    reporter.report(ref, { state: 'KILLING' });
    await settle(); // the flush is waiting on the read-back
    reporter.report(ref, { state: 'KILLED', finishedAt: 't2' });
    let settled = false;
    void reporter.whenSettled(ref).then(() => (settled = true));
    release();
    await until('settled', () => settled);
    expect((await report('web'))!.status).toEqual({ state: 'KILLED', finishedAt: 't2' });
    abort.abort();
  });

  it('a batch of large reports is split into transactions etcd accepts (1 MiB each at most)', async () => {
    const refs = [...Array(10).keys()].map((i) => ({ namespace: 'default', name: `big${i}`, uid: `uid-big${i}` }));
    const abort = new AbortController();
    const reporter = reporterOf(abort.signal);
    const txn = jest.spyOn(store, 'txn');
    for (const r of refs) reporter.report(r, { state: 'FAILED', message: 'x'.repeat(200_000) });
    await until('all FAILED', () => refs.every((r) => listed.get(r.name) === 'FAILED'), listStates);
    expect(txn.mock.calls.length).toBeGreaterThanOrEqual(2);
    for (const [, ops] of txn.mock.calls) expect(ops.reduce((n, o) => n + (o.op === 'put' ? o.value.length : 0), 0)).toBeLessThanOrEqual(MAX_TXN_BYTES);
    abort.abort();
  });

  /** The store's next txn fails as if etcd were unreachable; later ones go through. `calls` counts them all. */
  function txnUnavailableOnce(): { calls: number } {
    const realTxn = store.txn.bind(store);
    const counter = { calls: 0 };
    jest.spyOn(store, 'txn').mockImplementation(async (...args) => {
      if (counter.calls++ < 1) throw new UnavailableError('etcd is unreachable');
      return realTxn(...args);
    });
    return counter;
  }

  it('whenSettled waits until the last report is written, through retries, and not for reports of other tasks', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const txns = txnUnavailableOnce();
    const abort = new AbortController();
    const reporter = reporterOf(abort.signal);
    await reporter.whenSettled(ref); // nothing pending: at once
    reporter.report(ref, { state: 'KILLED', finishedAt: 't2' });
    let settled = false;
    void reporter.whenSettled(ref).then(() => (settled = true));
    await reporter.whenSettled({ namespace: 'default', name: 'other' }); // another task: at once
    await until('the first write failed', () => txns.calls === 1 && clock.pending() === 1);
    await settle();
    expect(settled).toBe(false); // the KILLED is not written yet
    await clock.stepAsync(500);
    await until('settled', () => settled);
    expect(await state('web')).toBe('KILLED');
    abort.abort();
  });

  it('the reporter retries until written when the store is unavailable, with the latest word', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5); // backoff jitter ×1
    const txns = txnUnavailableOnce();
    const abort = new AbortController();
    const reporter = reporterOf(abort.signal);
    reporter.report(ref, { state: 'RUNNING', startedAt: 't1' });
    await until('the first write failed', () => txns.calls === 1 && clock.pending() === 1);
    expect(clock.nextAt()).toBe(T0 + 500); // the backoff's first step, without jitter
    reporter.report(ref, { state: 'KILLED', finishedAt: 't2' }); // arrives while the first is backing off
    await clock.stepAsync(499);
    expect([txns.calls, await state('web')]).toEqual([1, undefined]);
    await clock.stepAsync(1);
    expect(await state('web')).toBe('KILLED');
    expect(txns.calls).toBe(2); // one write failed, one wrote both reports' fields
    expect((await report('web'))!.status).toEqual({ state: 'KILLED', startedAt: 't1', finishedAt: 't2' });
    abort.abort();
  });
});

describe('host ports in use by another process (issue 16)', () => {
  /** Ports the fake probe says are held, per protocol. */
  let heldTcp: Set<number>;
  let heldUdp: Set<number>;
  let probes: string[];
  const probe = async (port: number, protocol: 'tcp' | 'udp') => {
    probes.push(`${protocol}/${port}`);
    return !(protocol === 'udp' ? heldUdp : heldTcp).has(port);
  };
  beforeEach(() => {
    heldTcp = new Set();
    heldUdp = new Set();
    probes = [];
  });

  async function startPortAgent(o: { sweepBatch?: number } = {}): Promise<Agent> {
    const a = new Agent({
      store, prefix: P, nodeName: 'n1', capacity: { ...capacity, ports: [[31000, 31002]] }, runtime, leaseTtlSeconds: 5, logger: log, clock,
      portProbe: probe, portProbeIntervalMs: 1000, portSweepBatch: o.sweepBatch ?? 0,
    });
    agents.push(a);
    await a.start();
    return a;
  }

  function bindWithPorts(name: string, ports: Array<{ hostPort: number; protocol?: 'tcp' | 'udp' }>): Promise<number | undefined> {
    const t = task(name);
    t.spec.ports = ports.map((p) => ({ protocol: 'tcp' as const, ...p }));
    const value = encodeObject(t);
    return store.txn([], [
      { op: 'put', key: objectKey(P, TASKS, 'default', name), value },
      { op: 'put', key: assignmentKey(P, 'n1', 'default', name), value },
    ]);
  }

  async function advertised(): Promise<number[][] | undefined> {
    const kv = await store.get(objectKey(P, NODES, undefined, 'n1'));
    return kv && decodeKeyValue<Node>(kv).status?.capacity?.ports;
  }

  it('does not start a task on a host port another process holds: FAILED, PortInUse, and the port is no longer advertised', async () => {
    heldTcp.add(31000);
    const a = await startPortAgent();
    expect(await advertised()).toEqual([[31000, 31002]]);
    await bindWithPorts('web', [{ hostPort: 31000 }]);
    await until('FAILED', async () => (await state('web')) === 'FAILED');
    expect((await report('web'))!.status).toMatchObject({ state: 'FAILED', reason: 'PortInUse', message: 'host port 31000 is in use on node n1 by another process' });
    expect(runtime.calls).toEqual([]); // never started
    expect(a.portsInUse()).toEqual([31000]);
    await until('31000 not advertised', async () => JSON.stringify(await advertised()) === JSON.stringify([[31001, 31002]]));
  });

  it('advertises the port again once the other process let go of it (the periodic re-probe)', async () => {
    heldTcp.add(31001);
    const a = await startPortAgent();
    await bindWithPorts('web', [{ hostPort: 31001 }]);
    await until('FAILED', async () => (await state('web')) === 'FAILED');
    await until('carved out', async () => JSON.stringify(await advertised()) === JSON.stringify([[31000, 31000], [31002, 31002]]));
    await clock.stepAsync(1000);
    expect(a.portsInUse()).toEqual([31001]); // still held: still out
    heldTcp.delete(31001);
    await clock.stepAsync(1000);
    expect(a.portsInUse()).toEqual([]);
    await until('advertised again', async () => JSON.stringify(await advertised()) === JSON.stringify([[31000, 31002]]));
  });

  it('starts a task whose ports are free, probing each (udp ports over both protocols)', async () => {
    await startPortAgent();
    await bindWithPorts('web', [{ hostPort: 31000 }, { hostPort: 31002, protocol: 'udp' }]);
    await until('RUNNING', async () => (await state('web')) === 'RUNNING');
    expect(probes).toEqual(['tcp/31000', 'tcp/31002', 'udp/31002']);
  });

  it('a udp port held over udp only is in use too', async () => {
    heldUdp.add(31002);
    await startPortAgent();
    await bindWithPorts('dns', [{ hostPort: 31002, protocol: 'udp' }]);
    await until('FAILED', async () => (await state('dns')) === 'FAILED');
    expect((await report('dns'))!.status).toMatchObject({ reason: 'PortInUse', message: 'host port 31002 is in use on node n1 by another process' });
  });

  it('the sweep finds a held port no task asked for, skipping the ports of its own tasks', async () => {
    const a = await startPortAgent({ sweepBatch: 3 });
    await bindWithPorts('web', [{ hostPort: 31000 }]);
    await until('RUNNING', async () => (await state('web')) === 'RUNNING');
    heldTcp.add(31000); // the agent's own task holds it
    heldTcp.add(31002); // something else
    probes = [];
    await clock.stepAsync(1000);
    expect(probes).toEqual(['tcp/31001', 'tcp/31002']);
    expect(a.portsInUse()).toEqual([31002]);
    await until('31002 not advertised', async () => JSON.stringify(await advertised()) === JSON.stringify([[31000, 31001]]));
  });

  it('a runtime start failing to bind (docker: address already in use) is PortInUse and the port is carved out', async () => {
    const a = await startPortAgent();
    runtime.failStart.set('default/web', 'driver failed programming external connectivity: listen tcp4 0.0.0.0:31001: bind: address already in use');
    // Taken between the probe and the start: the agent's probe after the failure sees it.
    const realStart = runtime.start.bind(runtime);
    jest.spyOn(runtime, 'start').mockImplementation((t, onExit) => {
      heldTcp.add(31001);
      return realStart(t, onExit);
    });
    await bindWithPorts('web', [{ hostPort: 31001 }]);
    await until('FAILED', async () => (await state('web')) === 'FAILED');
    expect((await report('web'))!.status).toMatchObject({ state: 'FAILED', reason: 'PortInUse' });
    expect(a.portsInUse()).toEqual([31001]);
  });

  it('probes nothing for a runtime that binds nothing (no probe given, fake runtime)', async () => {
    const a = await startAgent();
    await bind('web');
    await until('RUNNING', async () => (await state('web')) === 'RUNNING');
    expect(a.portsInUse()).toEqual([]);
    expect((a as unknown as { ports?: unknown }).ports).toBeUndefined(); // no watch, so no probe timer
  });
});
