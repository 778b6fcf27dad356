/**
 * The task status relay: the pure decision (a table), then the relay on the memory store with
 * an agent's reports, node lifecycle's marks and a concurrent writer.
 */
import { Agent } from '../../pkg/agent/agent';
import { STATUS_REVISION_ANNOTATION, type TaskStatusReport } from '../../pkg/api/tasks';
import type { Task } from '../../pkg/api/types.generated';
import { admit } from '../../pkg/api/validation';
import { EventRecorder } from '../../pkg/client/events';
import { clusterInformers } from '../../pkg/client/informers';
import type { TermContext } from '../../pkg/controllers/context';
import { NodeLifecycleController } from '../../pkg/controllers/nodelifecycle';
import { relayStep, type RelayInput } from '../../pkg/controllers/taskstatus/decide';
import { TaskStatusRelay, TaskStatusRelayMetrics } from '../../pkg/controllers/taskstatus/relay';
import { Registry } from 'prom-client';
import { FakeRuntime } from '../../pkg/runtime/fake';
import { MemoryStore } from '../../pkg/store/memory';
import { MAX_TXN_BYTES } from '../../pkg/store/validate';
import { agentLeaseKey, assignmentKey, decodeKeyValue, encodeObject, leaderKey, taskStatusKey } from '../../pkg/store/objects';
import { FakeClock, settle } from '../../pkg/util/clock';
import { silentLogger } from '../../pkg/util/log';

const P = '/shoal';
const log = silentLogger();
const T0 = Date.UTC(2026, 0, 1);

function task(name: string, o: { node?: string; state?: string; revision?: number; annotations?: Record<string, string> } = {}): Task {
  const r = admit({
    apiVersion: 'shoal/v1', kind: 'Task',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, ...(o.annotations ? { annotations: o.annotations } : {}) },
    spec: { nodeName: o.node ?? 'n1', cmd: 'true' },
    status: { state: o.state ?? 'STAGING', stagedAt: 't0' },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.causes));
  const t = r.object as Task;
  t.metadata.resourceVersion = String(o.revision ?? 5);
  return t;
}

const report = (r: Partial<TaskStatusReport> & { status: Record<string, unknown> }, uid = 'uid-web') => JSON.stringify({ uid, ...r });
const input = (o: Partial<RelayInput>): RelayInput => ({ task: task('web'), node: 'n1', value: report({ status: { state: 'RUNNING', startedAt: 't1' } }), revision: 10, ...o });

describe('relayStep (pure)', () => {
  it('merges a report into the status (defaults only where missing) and stamps its revision', () => {
    const step = relayStep(input({ value: report({ status: { state: 'RUNNING', startedAt: 't1' }, defaults: { stagedAt: 'late', healthy: true } }) }));
    if (step.kind !== 'apply') throw new Error(step.kind);
    expect(step.task.status).toEqual({ state: 'RUNNING', stagedAt: 't0', startedAt: 't1', healthy: true });
    expect(step.task.metadata.annotations).toEqual({ [STATUS_REVISION_ANNOTATION]: '10' });
    expect(JSON.stringify(step.task.spec)).toBe(JSON.stringify(task('web').spec));
    expect([step.from, step.to]).toEqual(['STAGING', 'RUNNING']);
  });

  it.each<[string, Partial<RelayInput>, unknown]>([
    ['not a report', { value: '{"uid": 3}' }, { kind: 'drop', why: 'malformed' }],
    ['not JSON', { value: 'nope' }, { kind: 'drop', why: 'malformed' }],
    ['the Task is gone', { task: undefined }, { kind: 'drop', why: 'gone' }],
    ['another task of the same name', { value: report({ status: { state: 'RUNNING' } }, 'uid-old') }, { kind: 'drop', why: 'gone' }],
    ['a task bound to another node', { node: 'n2' }, { kind: 'drop', why: 'forged', message: 'agent n2 reported the status of a task bound to node n1' }],
    ['a state the API refuses', { value: report({ status: { state: 'PWNED' } }) }, { kind: 'drop', why: 'invalid', message: expect.stringContaining('status.state') }],
    ['a field the API refuses', { value: report({ status: { state: 'RUNNING', owner: 'me' } }) }, { kind: 'drop', why: 'invalid', message: expect.stringContaining('status') }],
    ['a report over 64 KiB', { value: report({ status: { state: 'RUNNING', message: 'x'.repeat(70_000) } }) }, { kind: 'drop', why: 'invalid', message: expect.stringContaining('at most 65536') }],
    ['a message that is not a string', { value: report({ status: { state: 'RUNNING', message: { a: 1 } } }) }, { kind: 'drop', why: 'invalid', message: expect.stringContaining('status.message') }],
    ['already reflected (revision ≤ the stamp)', { task: task('web', { annotations: { [STATUS_REVISION_ANNOTATION]: '10' } }) }, { kind: 'none' }],
    ['superseded by a node lifecycle mark', { task: task('web', { state: 'UNREACHABLE', annotations: { [STATUS_REVISION_ANNOTATION]: '12' } }) }, { kind: 'none' }],
    ['saying what the Task already says', { task: task('web', { state: 'RUNNING' }), value: report({ status: { state: 'RUNNING' } }) }, { kind: 'none' }],
    ['a terminal report of a terminal Task', { task: task('web', { state: 'LOST' }), value: report({ status: { state: 'KILLED' } }) }, { kind: 'none' }],
  ])('%s', (_what, o, want) => {
    expect(relayStep(input(o))).toEqual(want);
  });

  it('a task the registry ended but its agent says runs: stop it (nothing is written over the Task)', () => {
    expect(relayStep(input({ task: task('web', { state: 'LOST' }) }))).toEqual({ kind: 'stop' });
  });

  it('an UNREACHABLE task its agent reports again (a newer report) is RUNNING again', () => {
    const step = relayStep(input({ task: task('web', { state: 'UNREACHABLE', annotations: { [STATUS_REVISION_ANNOTATION]: '9' } }), value: report({ status: { state: 'RUNNING' } }) }));
    expect(step).toMatchObject({ kind: 'apply', from: 'UNREACHABLE', to: 'RUNNING' });
  });
});

describe('TaskStatusRelay on the memory store', () => {
  let store: MemoryStore;
  let clock: FakeClock;
  let stops: Array<() => Promise<void>>;

  beforeEach(() => {
    clock = new FakeClock(T0);
    store = new MemoryStore({ clock });
    stops = [];
  });
  afterEach(async () => {
    for (const stop of stops.reverse()) await stop();
    await store.close();
    jest.restoreAllMocks();
  });

  async function term(): Promise<TermContext> {
    const fence = { key: leaderKey(P), modRevision: await store.create(leaderKey(P), 'cm') };
    const informers = clusterInformers(store, P, log, clock);
    await informers.start();
    stops.push(() => informers.stop());
    return { store, prefix: P, informers, fence, logger: log, events: new EventRecorder(store, P, 'test', log, clock), frameworks: {} as TermContext['frameworks'], clock };
  }

  async function startRelay(ctx: TermContext, metrics?: TaskStatusRelayMetrics): Promise<TaskStatusRelay> {
    const relay = new TaskStatusRelay({ ...ctx, metrics });
    relay.start();
    stops.push(async () => relay.stop());
    return relay;
  }

  const taskKey = (name: string) => `${P}/registry/tasks/default/${name}`;
  const bind = (t: Task) => store.txn([], [
    { op: 'put', key: taskKey(t.metadata.name), value: encodeObject(t) },
    { op: 'put', key: assignmentKey(P, t.spec.nodeName!, 'default', t.metadata.name), value: encodeObject(t) },
  ]);
  const stored = async (name: string) => {
    const kv = await store.get(taskKey(name));
    return kv && decodeKeyValue<Task>(kv);
  };
  async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
    for (let round = 0; !(await check()); round++) {
      if (round === 50) throw new Error(`${what}: not reached without a timer`);
      await settle();
    }
  }

  it('folds an agent\'s reports into its Task, one stamped write per report; the Task\'s spec is untouched', async () => {
    await bind(task('web'));
    await startRelay(await term());
    const agent = new Agent({ store, prefix: P, nodeName: 'n1', capacity: { cpus: 2, mem: 1024, disk: 0, ports: [] }, runtime: new FakeRuntime(), leaseTtlSeconds: 5, logger: log, clock });
    stops.push(() => agent.stop());
    await agent.start();
    await until('RUNNING', async () => (await stored('web'))?.status.state === 'RUNNING');
    const t = (await stored('web'))!;
    expect(t.status).toMatchObject({ state: 'RUNNING', stagedAt: 't0', startedAt: '2026-01-01T00:00:00.000Z' });
    const reportKv = (await store.get(taskStatusKey(P, 'n1', 'default', 'web')))!;
    expect(t.metadata.annotations?.[STATUS_REVISION_ANNOTATION]).toBe(String(reportKv.modRevision));
    expect(JSON.stringify(t.spec)).toBe(JSON.stringify(task('web').spec));
  });

  it('refuses a report about another node\'s task: the Task is untouched, the report deleted, a Warning event on the reporting node', async () => {
    await bind(task('web', { node: 'n2' }));
    const registry = new Registry();
    await startRelay(await term(), new TaskStatusRelayMetrics(registry));
    const before = (await store.get(taskKey('web')))!.modRevision;
    await store.create(taskStatusKey(P, 'n1', 'default', 'web'), report({ status: { state: 'FAILED' } }));
    await until('report deleted', async () => (await store.get(taskStatusKey(P, 'n1', 'default', 'web'))) === undefined);
    expect((await store.get(taskKey('web')))!.modRevision).toBe(before);
    await until('event', async () => (await store.list(`${P}/registry/events/`)).items.length > 0);
    const event = JSON.parse((await store.list(`${P}/registry/events/`)).items[0].value);
    expect(event).toMatchObject({ type: 'Warning', reason: 'ForgedTaskStatus', involvedObject: { kind: 'Node', name: 'n1' } });
    expect(await registry.getSingleMetricAsString('shoal_task_status_reports_total')).toContain('shoal_task_status_reports_total{outcome="forged"} 1');
  });

  it('deletes the reports of a Task once it is deleted', async () => {
    await bind(task('web'));
    await store.create(taskStatusKey(P, 'n1', 'default', 'web'), report({ status: { state: 'RUNNING' } }));
    await startRelay(await term());
    await until('RUNNING', async () => (await stored('web'))?.status.state === 'RUNNING');
    await store.delete(taskKey('web'));
    await until('report deleted', async () => (await store.get(taskStatusKey(P, 'n1', 'default', 'web'))) === undefined);
  });

  it('a task the registry ended that its agent still reports running: its assignment is deleted (so the agent stops it)', async () => {
    await bind(task('web', { state: 'LOST' }));
    await startRelay(await term());
    await store.create(taskStatusKey(P, 'n1', 'default', 'web'), report({ status: { state: 'RUNNING' } }));
    const before = (await store.get(taskKey('web')))!.modRevision;
    await until('unassigned', async () => (await store.get(assignmentKey(P, 'n1', 'default', 'web'))) === undefined);
    expect((await store.get(taskKey('web')))!.modRevision).toBe(before);
  });

  it('a report written before node lifecycle marked the task UNREACHABLE is not applied over the mark, at any later term; a newer one is', async () => {
    const t = task('web', { state: 'RUNNING' });
    await bind(t);
    await store.create(`${P}/registry/nodes/n1`, JSON.stringify({ apiVersion: 'shoal/v1', kind: 'Node', metadata: { name: 'n1', uid: 'u-n1' }, spec: {}, status: { conditions: [{ type: 'Ready', status: 'True' }] } }));
    // The agent's last word before it was lost (the relay not running: a leader change).
    await store.create(taskStatusKey(P, 'n1', 'default', 'web'), report({ status: { state: 'RUNNING', healthy: true } }));
    const ctx = await term();
    const app = { ...t, spec: { ...t.spec, unreachableStrategy: { inactiveAfterSeconds: 300, expungeAfterSeconds: 600 } } } as Task;
    const cur = (await store.get(taskKey('web')))!;
    await store.update(taskKey('web'), encodeObject(app), cur.modRevision);
    await settle();
    const lifecycle = new NodeLifecycleController({ ...ctx });
    await lifecycle.sync('n1'); // the lease key is absent: the node is lost
    await settle();
    await lifecycle.sync('n1');
    await until('UNREACHABLE', async () => (await stored('web'))?.status.state === 'UNREACHABLE');
    await startRelay(ctx); // a new term's relay sees the old report
    await settle();
    expect((await stored('web'))!.status).toMatchObject({ state: 'UNREACHABLE' });
    expect((await stored('web'))!.status.healthy).toBeUndefined();
    // The agent comes back and says RUNNING again: a newer report.
    await store.create(agentLeaseKey(P, 'n1'), '{}');
    await store.txn([], [{ op: 'put', key: taskStatusKey(P, 'n1', 'default', 'web'), value: report({ status: { state: 'RUNNING', healthy: true } }) }]);
    await until('RUNNING again', async () => (await stored('web'))?.status.state === 'RUNNING');
  });

  it('large Tasks are written in as many transactions as etcd accepts (1 MiB each at most)', async () => {
    const env = Object.fromEntries([0, 1, 2].map((i) => [`BIG_${i}`, 'x'.repeat(65_000)])); // ~200 KB per Task
    const names = [...Array(10).keys()].map((i) => `big${i}`);
    for (const name of names) {
      const t = task(name);
      t.spec.env = env;
      await bind(t);
    }
    await startRelay(await term());
    const txn = jest.spyOn(store, 'txn');
    await store.txn([], names.map((n) => ({ op: 'put' as const, key: taskStatusKey(P, 'n1', 'default', n), value: report({ status: { state: 'RUNNING' } }, `uid-${n}`) })));
    await until('all RUNNING', async () => (await Promise.all(names.map(stored))).every((t) => t?.status.state === 'RUNNING'));
    const relayTxns = txn.mock.calls.slice(1);
    expect(relayTxns.length).toBeGreaterThanOrEqual(2);
    for (const [, ops] of relayTxns) expect(ops.reduce((n, o) => n + (o.op === 'put' ? o.value.length : 0), 0)).toBeLessThanOrEqual(MAX_TXN_BYTES);
  });

  it('a Task written by someone else after it was seen: the batch is read again in one round trip and written, keeping the other change', async () => {
    for (const name of ['a', 'b']) await bind(task(name));
    const ctx = await term();
    const relay = new TaskStatusRelay(ctx);
    stops.push(async () => relay.stop());
    // b changes after the informer saw it; the relay decides on the informer's view first.
    const getMany = jest.spyOn(store, 'getMany');
    const txn = jest.spyOn(store, 'txn');
    const cur = (await store.get(taskKey('b')))!;
    const other = decodeKeyValue<Task>(cur);
    other.metadata.labels = { touched: 'yes' };
    const realGet = ctx.informers.tasks.get.bind(ctx.informers.tasks);
    const stale = realGet(taskKey('b'));
    jest.spyOn(ctx.informers.tasks, 'get').mockImplementation((k: string) => (k === taskKey('b') ? stale : realGet(k)));
    await store.update(cur.key, encodeObject(other), cur.modRevision);
    await store.txn([], ['a', 'b'].map((n) => ({ op: 'put' as const, key: taskStatusKey(P, 'n1', 'default', n), value: report({ status: { state: 'RUNNING' } }, `uid-${n}`) })));
    txn.mockClear();
    relay.start();
    await until('both RUNNING', async () => (await stored('a'))?.status.state === 'RUNNING' && (await stored('b'))?.status.state === 'RUNNING');
    expect(txn).toHaveBeenCalledTimes(2); // the failed compare, then the write
    expect(getMany).toHaveBeenCalledTimes(1);
    expect((await stored('b'))!.metadata.labels).toEqual({ touched: 'yes' });
  });
});
