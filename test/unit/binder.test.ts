import { Binder, type BindItem } from '../../pkg/master/binder';
import { MemoryStore } from '../../pkg/store/memory';
import { agentLeaseKey, assignmentKey, decodeKeyValue, leaderKey } from '../../pkg/store/objects';
import type { Task } from '../../pkg/api/types.generated';
import { FakeClock } from '../../pkg/util/clock';
import { silentLogger } from '../../pkg/util/log';
import { MAX_TXN_BYTES, chunkTxn } from '../../pkg/store/validate';

const P = '/shoal';

async function setup() {
  const store = new MemoryStore();
  const fence = { key: leaderKey(P), modRevision: await store.create(leaderKey(P), 'cm-a') };
  const leases: Record<string, number> = {};
  for (const n of ['n1', 'n2']) leases[n] = await store.create(agentLeaseKey(P, n), '{}');
  return { store, fence, leases, binder: new Binder(store, P, silentLogger(), new FakeClock(Date.parse('2026-01-01T00:00:00Z'))) };
}

const item = (agent: string, leaseRevision: number, name: string, extra: Partial<BindItem['request']> = {}): BindItem => ({
  agent, leaseRevision, frameworkId: 'fw',
  request: { offerId: 'o1', namespace: 'default', taskName: name, resources: { cpus: 0.5, mem: 64, disk: 0 }, ports: [31005], task: { spec: { cmd: 'sleep 1', ports: [{ name: 'http', hostPort: 0, protocol: 'tcp' }] } }, ...extra },
});

describe('Binder', () => {
  it('writesABoundStagingTaskAndItsAssignmentTogether', async () => {
    const { store, fence, leases, binder } = await setup();
    const [r] = await binder.bind([item('n1', leases.n1, 't1')], fence);
    expect(r.ok).toBe(true);
    const task = decodeKeyValue<Task>((await store.get(`${P}/registry/tasks/default/t1`))!);
    expect(task.spec).toMatchObject({ nodeName: 'n1', cmd: 'sleep 1', resources: { cpus: 0.5, mem: 64, disk: 0 }, ports: [{ name: 'http', hostPort: 31005, protocol: 'tcp' }] });
    expect(task.status).toMatchObject({ state: 'STAGING', stagedAt: '2026-01-01T00:00:00.000Z', hostPorts: [31005] });
    expect(task.metadata.labels).toEqual({ 'shoal.dev/framework': 'fw' });
    // The assignment is the Task's value, byte for byte, at the same revision (its agent's compare base).
    const taskKv = (await store.get(`${P}/registry/tasks/default/t1`))!;
    const assignmentKv = (await store.get(assignmentKey(P, 'n1', 'default', 't1')))!;
    expect(assignmentKv.value).toBe(taskKv.value);
    expect(assignmentKv.modRevision).toBe(taskKv.modRevision);
  });

  it('accountsTheTaskToTheFrameworksRoleWhateverTheTemplateSays', async () => {
    const { store, fence, leases, binder } = await setup();
    await binder.bind([
      { ...item('n1', leases.n1, 't1'), role: 'batch' },
      { ...item('n1', leases.n1, 't2', { task: { spec: { cmd: 'sleep 1', role: 'other' } } }), role: 'batch' },
      item('n1', leases.n1, 't3'), // no role given: the template's (default *)
    ], fence);
    const roleOf = async (name: string) => decodeKeyValue<Task>((await store.get(`${P}/registry/tasks/default/${name}`))!).spec.role;
    expect([await roleOf('t1'), await roleOf('t2'), await roleOf('t3')]).toEqual(['batch', 'batch', '*']);
  });

  it('refusesEveryLaunchWhenTheFenceIsStale', async () => {
    const { store, fence, leases, binder } = await setup();
    await store.update(fence.key, 'cm-b', fence.modRevision); // another leader's term
    const results = await binder.bind([item('n1', leases.n1, 't1'), item('n2', leases.n2, 't2')], fence);
    expect(results.map((r) => r.reason)).toEqual(['NotLeader', 'NotLeader']);
    expect((await store.list(`${P}/registry/`)).items).toHaveLength(0);
    expect((await store.list(`${P}/assignments/`)).items).toHaveLength(0);
  });

  it('refusesLaunchesOnAReRegisteredAgentAndBindsTheRest', async () => {
    const { store, fence, leases, binder } = await setup();
    await store.delete(agentLeaseKey(P, 'n1'));
    await store.create(agentLeaseKey(P, 'n1'), '{}'); // a new registration: new revision
    const results = await binder.bind([item('n1', leases.n1, 't1'), item('n2', leases.n2, 't2')], fence);
    expect(results.map((r) => r.reason ?? 'ok')).toEqual(['AgentLost', 'ok']);
    expect(await store.get(`${P}/registry/tasks/default/t1`)).toBeUndefined();
    expect(await store.get(assignmentKey(P, 'n1', 'default', 't1'))).toBeUndefined();
    expect(await store.get(`${P}/registry/tasks/default/t2`)).toBeDefined();
  });

  it('neverOverwritesAnExistingTask', async () => {
    const { store, fence, leases, binder } = await setup();
    await binder.bind([item('n1', leases.n1, 't1')], fence);
    const before = (await store.get(`${P}/registry/tasks/default/t1`))!.modRevision;
    const [r] = await binder.bind([item('n2', leases.n2, 't1')], fence);
    expect(r).toMatchObject({ ok: false, reason: 'BindFailed' });
    expect((await store.get(`${P}/registry/tasks/default/t1`))!.modRevision).toBe(before);
    expect(await store.get(assignmentKey(P, 'n2', 'default', 't1'))).toBeUndefined();
  });

  it('splitsLargeBindsIntoTransactionsWithinEtcdsOpLimit', async () => {
    const { store, fence, leases, binder } = await setup();
    const txn = jest.spyOn(store, 'txn');
    const items = [...Array(150).keys()].map((i) => item(i % 2 ? 'n1' : 'n2', i % 2 ? leases.n1 : leases.n2, `t${i}`));
    const results = await binder.bind(items, fence);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(txn).toHaveBeenCalledTimes(3);
    for (const [compares, ops] of txn.mock.calls) {
      expect(ops.length).toBeLessThanOrEqual(128);
      expect(compares.length).toBeLessThanOrEqual(128);
    }
  });

  it('splitsBindsOfLargeTasksIntoTransactionsWithinEtcdsRequestSize', async () => {
    const { store, fence, leases, binder } = await setup();
    const txn = jest.spyOn(store, 'txn');
    const env = Object.fromEntries([0, 1, 2].map((i) => [`BIG_${i}`, 'x'.repeat(65_000)])); // each launch writes ~400 KB (Task + assignment)
    const items = [...Array(10).keys()].map((i) => item('n1', leases.n1, `t${i}`, { task: { spec: { cmd: 'sleep 1', env } } }));
    const results = await binder.bind(items, fence);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(txn.mock.calls.length).toBeGreaterThanOrEqual(4);
    for (const [, ops] of txn.mock.calls) {
      const bytes = ops.reduce((n, o) => n + o.key.length + (o.op === 'put' ? o.value.length : 0), 0);
      expect(bytes).toBeLessThanOrEqual(MAX_TXN_BYTES);
    }
  });

  it('refusesAnInvalidTaskWithoutWriting', async () => {
    const { store, fence, leases, binder } = await setup();
    const [r] = await binder.bind([item('n1', leases.n1, 'Bad_Name')], fence);
    expect(r).toMatchObject({ ok: false, reason: 'BindFailed' });
    expect((await store.list(`${P}/registry/`)).items).toHaveLength(0);
  });
});

describe('chunkTxn', () => {
  it('keeps order and cuts at the count or the byte limit, whichever comes first', () => {
    const sizes = [1, 1, 1, 1, 1];
    expect(chunkTxn(sizes, (n) => n, 2, 100)).toEqual([[1, 1], [1, 1], [1]]);
    expect(chunkTxn([60, 30, 20, 90, 5], (n) => n, 10, 100)).toEqual([[60, 30], [20], [90, 5]]);
  });

  it('puts an item over the byte limit in a chunk of its own, and makes no empty chunks', () => {
    expect(chunkTxn([10, 500, 10], (n) => n, 10, 100)).toEqual([[10], [500], [10]]);
    expect(chunkTxn([], (n: number) => n)).toEqual([]);
  });
});
