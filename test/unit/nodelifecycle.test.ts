import { NotLeaderError } from '../../pkg/controllers/context';
import { EventRecorder } from '../../pkg/client/events';
import { clusterInformers } from '../../pkg/client/informers';
import { NodeLifecycleController } from '../../pkg/controllers/nodelifecycle';
import type { Node, Task } from '../../pkg/api/types.generated';
import { MemoryStore } from '../../pkg/store/memory';
import { agentLeaseKey, assignmentKey, decodeKeyValue, leaderKey } from '../../pkg/store/objects';
import { FakeClock, settle } from '../../pkg/util/clock';
import { silentLogger } from '../../pkg/util/log';
import type { TermContext } from '../../pkg/controllers/context';

const P = '/shoal';
const log = silentLogger();

const node = (name: string): Node => ({
  apiVersion: 'shoal/v1', kind: 'Node', metadata: { name, uid: `u-${name}`, generation: 1 }, spec: { unschedulable: false },
  status: { capacity: { cpus: 2, mem: 1024 }, conditions: [{ type: 'Ready', status: 'True', reason: 'AgentRegistered' }] },
});
const task = (name: string, nodeName: string, state: string): Task => ({
  apiVersion: 'shoal/v1', kind: 'Task', metadata: { name, namespace: 'default', uid: `u-${name}`, generation: 1 },
  spec: { nodeName, role: '*', cmd: 'x', resources: { cpus: 0.5, mem: 64, disk: 0 }, ports: [], healthChecks: [], readinessChecks: [], taskKillGracePeriodSeconds: 3 },
  status: { state: state as Task['status']['state'] },
});

const T0 = Date.UTC(2026, 0, 1);

async function cluster(withLease: boolean, lostTaskGraceSeconds?: number) {
  const clock = new FakeClock(T0);
  const store = new MemoryStore({ clock });
  const fence = { key: leaderKey(P), modRevision: await store.create(leaderKey(P), 'cm') };
  await store.create(`${P}/registry/nodes/n1`, JSON.stringify(node('n1')));
  if (withLease) await store.create(agentLeaseKey(P, 'n1'), '{}');
  for (const [name, state] of [['a', 'RUNNING'], ['b', 'STAGING'], ['c', 'FAILED']] as const) {
    await store.create(`${P}/registry/tasks/default/${name}`, JSON.stringify(task(name, 'n1', state)));
    await store.create(assignmentKey(P, 'n1', 'default', name), '{}');
  }
  // Another agent's task, and one that moved off n1 after the informers started (index update).
  await store.create(`${P}/registry/tasks/default/other`, JSON.stringify(task('other', 'n2', 'RUNNING')));
  await store.create(`${P}/registry/tasks/default/moved`, JSON.stringify(task('moved', 'n1', 'RUNNING')));
  const informers = clusterInformers(store, P, log, clock);
  await informers.start();
  const moved = (await store.get(`${P}/registry/tasks/default/moved`))!;
  await store.update(moved.key, JSON.stringify(task('moved', 'n2', 'RUNNING')), moved.modRevision);
  const frameworks = {} as TermContext['frameworks']; // node lifecycle writes to the registry only
  const ctl = new NodeLifecycleController({ store, prefix: P, informers, fence, logger: log, events: new EventRecorder(store, P, 'test', log, clock), frameworks, clock, lostTaskGraceSeconds });
  return { store, fence, informers, ctl, clock };
}

const stateOf = async (store: MemoryStore, name: string) => decodeKeyValue<Task>((await store.get(`${P}/registry/tasks/default/${name}`))!).status.state;

describe('NodeLifecycleController', () => {
  it('doesNothingWhileTheAgentsLeaseLives', async () => {
    const { store, ctl, informers } = await cluster(true);
    const before = await store.revision();
    await ctl.sync('n1');
    expect(await store.revision()).toBe(before);
    await informers.stop();
  });

  it('marksALostAgentsNodeUnknownAndItsLiveTasksLostAndUnassigned', async () => {
    const { store, ctl, informers } = await cluster(false);
    await ctl.sync('n1');
    const n = decodeKeyValue<Node>((await store.get(`${P}/registry/nodes/n1`))!);
    expect(n.status.conditions).toEqual([expect.objectContaining({ type: 'Ready', status: 'Unknown', reason: 'NodeLeaseExpired' })]);
    await settle(); // the informer catches up with the node write (the memory store delivers on a microtask)
    await ctl.sync('n1');
    expect([await stateOf(store, 'a'), await stateOf(store, 'b'), await stateOf(store, 'c')]).toEqual(['LOST', 'LOST', 'FAILED']);
    expect([await stateOf(store, 'other'), await stateOf(store, 'moved')]).toEqual(['RUNNING', 'RUNNING']);
    expect(await store.get(assignmentKey(P, 'n1', 'default', 'a'))).toBeUndefined();
    expect(await store.get(assignmentKey(P, 'n1', 'default', 'c'))).toBeDefined();
    const events = (await store.list(`${P}/registry/events/`)).items.map((kv) => JSON.parse(kv.value).reason);
    expect(events).toEqual(expect.arrayContaining(['NodeNotReady', 'TasksLost']));
    await informers.stop();
  });

  it('marksTheTasksLostOnlyOnceTheGracePeriodHasPassed', async () => {
    const { store, ctl, informers, clock } = await cluster(false, 30);
    await ctl.sync('n1'); // lost now: Ready=Unknown at once, the tasks at T0 + 30 s
    const n = decodeKeyValue<Node>((await store.get(`${P}/registry/nodes/n1`))!);
    expect(n.status.conditions).toEqual([expect.objectContaining({ status: 'Unknown', lastTransitionTime: '2026-01-01T00:00:00.000Z' })]);
    await clock.stepAsync(29_999);
    expect(await stateOf(store, 'a')).toBe('RUNNING');
    await clock.stepAsync(1);
    expect([await stateOf(store, 'a'), await stateOf(store, 'b'), await stateOf(store, 'c')]).toEqual(['LOST', 'LOST', 'FAILED']);
    const a = decodeKeyValue<Task>((await store.get(`${P}/registry/tasks/default/a`))!);
    expect(a.status).toMatchObject({ reason: 'AgentLost', finishedAt: '2026-01-01T00:00:30.000Z' });
    ctl.stop();
    await informers.stop();
  });

  it('forgetsTheGracePeriodOfAnAgentThatCameBack', async () => {
    const { store, ctl, informers, clock } = await cluster(false, 30);
    await ctl.sync('n1');
    await clock.stepAsync(10_000);
    await store.create(agentLeaseKey(P, 'n1'), '{}'); // re-registered
    await clock.stepAsync(20_000); // the timed re-check finds the lease
    expect(await stateOf(store, 'a')).toBe('RUNNING');
    await store.delete(agentLeaseKey(P, 'n1')); // lost again: a fresh grace period
    await ctl.sync('n1');
    await clock.stepAsync(29_999);
    expect(await stateOf(store, 'a')).toBe('RUNNING');
    await clock.stepAsync(1);
    expect(await stateOf(store, 'a')).toBe('LOST');
    ctl.stop();
    await informers.stop();
  });

  it('writesNothingOnceAnotherLeaderTookOver', async () => {
    const { store, fence, ctl, informers } = await cluster(false);
    await store.update(fence.key, 'cm-b', fence.modRevision);
    const before = (await store.list(`${P}/registry/`)).items.map((kv) => kv.modRevision);
    await expect(ctl.sync('n1')).rejects.toBeInstanceOf(NotLeaderError);
    expect((await store.list(`${P}/registry/`)).items.map((kv) => kv.modRevision)).toEqual(before);
    await informers.stop();
  });
});

describe('NodeLifecycleController: unreachable tasks', () => {
  it('keepsAnAppsTaskUnreachableWithItsAssignmentThenLosesItAfterExpunge', async () => {
    const { store, ctl, informers, clock } = await cluster(false);
    const withStrategy = { ...task('u', 'n1', 'RUNNING'), spec: { ...task('u', 'n1', 'RUNNING').spec, unreachableStrategy: { inactiveAfterSeconds: 0, expungeAfterSeconds: 60 } } };
    await store.create(`${P}/registry/tasks/default/u`, JSON.stringify(withStrategy));
    await store.create(assignmentKey(P, 'n1', 'default', 'u'), '{}');
    await settle();
    await ctl.sync('n1');
    await settle();
    await ctl.sync('n1');
    const u = decodeKeyValue<Task>((await store.get(`${P}/registry/tasks/default/u`))!);
    expect(u.status).toMatchObject({ state: 'UNREACHABLE', reason: 'AgentUnreachable', unreachableSince: new Date(T0).toISOString() });
    expect(await store.get(assignmentKey(P, 'n1', 'default', 'u'))).toBeDefined(); // kept: the agent may come back
    expect(await stateOf(store, 'a')).toBe('LOST'); // no strategy: lost at once, as before
    clock.step(59_000);
    await settle();
    await ctl.sync('n1');
    expect(await stateOf(store, 'u')).toBe('UNREACHABLE');
    clock.step(1_000);
    await settle();
    await ctl.sync('n1');
    expect(await stateOf(store, 'u')).toBe('LOST');
    expect(await store.get(assignmentKey(P, 'n1', 'default', 'u'))).toBeUndefined();
    await informers.stop();
  });
});
