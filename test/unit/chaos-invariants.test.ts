/** The fault suite's invariants (test/chaos/invariants.ts) and its schedule, as tables. */
import { planSchedule, FAULT_KINDS, SMOKE_FAULT_KINDS } from '../chaos/chaos';
import { CapacitySampler, capacityCeiling, finalAppCheck, matchOneToOne, staleWindowViolations, taskDirName, type ProcessView, type RecordView, type TaskView } from '../chaos/invariants';

const task = (name: string, state = 'RUNNING', node = 'n1', version = 'v2'): TaskView => ({ namespace: 'default', name, uid: `${name}0000-1111`, node, state, app: 'web', version });
const rec = (t: TaskView, alive = true, node = t.node): RecordView => ({ node, namespace: 'default', dir: taskDirName(t.name, t.uid), pid: 100, alive });
const proc = (t: TaskView, node = t.node): ProcessView => ({ pid: 100, node, namespace: 'default', dir: taskDirName(t.name, t.uid) });

describe('matchOneToOne', () => {
  const a = task('a');
  const b = task('b');
  const dead = task('c', 'KILLED');
  it.each<[string, TaskView[], RecordView[], ProcessView[], RegExp[]]>([
    ['matches', [a, b, dead], [rec(a), rec(b), rec(dead, false)], [proc(a), proc(b)], []],
    ['lost: no record, no process', [a, b], [rec(a)], [proc(a)], [/lost: task default\/b is RUNNING on n1 in etcd but its agent runs no such task/, /lost: task default\/b .* has no process/]],
    ['doubled records', [a], [rec(a), rec(a)], [proc(a)], [/doubled: task default\/a has 2 live records/]],
    ['orphan: terminal in etcd, still running', [dead], [rec(dead)], [proc(dead)], [/orphan: n1\/default\/c-c0000111 runs/]],
    ['orphan process without record', [a], [rec(a)], [proc(a), proc(b)], [/orphan process: n1\/default\/b-b0000111/]],
    ['on another node is not it', [a], [rec(a, true, 'n2')], [proc(a, 'n2')], [/lost/, /lost/, /orphan: n2/]],
  ])('%s', (_, tasks, records, procs, want) => {
    const r = matchOneToOne(tasks, records, procs);
    expect(r.ok).toBe(want.length === 0);
    expect(r.problems).toHaveLength(want.length);
    want.forEach((w, i) => expect(r.problems[i]).toMatch(w));
  });
});

describe('finalAppCheck', () => {
  it.each<[string, TaskView[], boolean]>([
    ['all at the version', [task('a'), task('b'), task('x', 'KILLED', 'n1', 'v1')], true],
    ['one short', [task('a')], false],
    ['an old one left', [task('a'), task('b'), task('x', 'RUNNING', 'n1', 'v1')], false],
    ['one not running yet', [task('a'), task('b', 'STAGING')], false],
  ])('%s', (_, tasks, ok) => expect(finalAppCheck(tasks, 'web', 2, 'v2').ok).toBe(ok));
});

describe('capacity', () => {
  it.each([
    [10, 0.2, 0.5, 12],
    [10, 0, 0.5, 10],
    [10, 0, 1, 11], // no room either way: one extra (reconcile.ts)
    [10, 0.7, 0, 17],
  ])('ceiling of %d at maximumOverCapacity %d, minimumHealthCapacity %d is %d', (n, over, min, want) => expect(capacityCeiling(n, over, min)).toBe(want));

  it('keepsTheMostLiveTasksAtOnceAndFlagsRevisionsOverTheCeiling', () => {
    const s = new CapacitySampler(2);
    s.apply(1, [{ name: 'a', state: 'RUNNING' }, { name: 'b', state: 'STAGING' }]);
    s.apply(2, [{ name: 'c', state: 'STAGING' }]);
    s.apply(3, [{ name: 'a', state: 'KILLED' }]);
    s.apply(4, [{ name: 'b' }]);
    expect({ max: s.maxLive, at: s.maxLiveAtRevision }).toEqual({ max: 3, at: 2 });
    expect(s.check().problems).toEqual(['over capacity at revision 2: 3 live tasks > 2 (a:RUNNING b:STAGING c:STAGING)']);
  });

  it('flagsATerminalTaskRunningAgainAndForgetsWhatARelistNoLongerHas', () => {
    const s = new CapacitySampler(5);
    s.apply(1, [{ name: 'a', state: 'LOST' }, { name: 'b', state: 'RUNNING' }]);
    s.resync(5, [{ name: 'a', state: 'RUNNING' }]);
    s.apply(6, [{ name: 'c', state: 'RUNNING' }]);
    expect(s.check().problems).toEqual(['resurrected at revision 5: a LOST → RUNNING']);
    expect(s.maxLive).toBe(2); // b is gone after the relist
  });
});

describe('staleWindowViolations', () => {
  const t = (state: string, spec = { nodeName: 'n1' }) => JSON.stringify({ metadata: { name: 'a' }, spec, status: { state } });
  it.each<[string, Parameters<typeof staleWindowViolations>[0][number], string | undefined]>([
    ['an agent reporting status', { type: 'put', key: '/registry/tasks/default/a', value: t('RUNNING'), prevValue: t('STARTING') }, undefined],
    ['an event', { type: 'put', key: '/registry/events/default/e1', value: '{}' }, undefined],
    ['an agent writing its ready node', { type: 'put', key: '/registry/nodes/n1', value: JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True' }] } }) }, undefined],
    ['a task created', { type: 'put', key: '/registry/tasks/default/a', value: t('STAGING') }, 'task created'],
    ['a task deleted', { type: 'delete', key: '/registry/tasks/default/a' }, 'task deleted'],
    ['a task marked lost', { type: 'put', key: '/registry/tasks/default/a', value: t('LOST'), prevValue: t('RUNNING') }, 'task marked LOST'],
    ['a task spec changed', { type: 'put', key: '/registry/tasks/default/a', value: t('RUNNING', { nodeName: 'n2' }), prevValue: t('RUNNING') }, 'task spec changed'],
    ['an assignment deleted (a kill)', { type: 'delete', key: '/assignments/n1/default/a' }, 'assignment written'],
    ['an App status', { type: 'put', key: '/registry/apps/default/web', value: '{}', prevValue: '{}' }, 'controller-owned object written'],
    ['a node marked not ready', { type: 'put', key: '/registry/nodes/n1', value: JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } }) }, 'node marked not ready'],
  ])('%s', (_, write, why) => expect(staleWindowViolations([write])).toEqual(why ? [`${write.type} ${write.key}: ${why}`] : []));
});

describe('planSchedule', () => {
  it('replaysTheSameScheduleForASeedAndHasEveryKind', () => {
    expect(planSchedule(7, 180, false)).toEqual(planSchedule(7, 180, false));
    expect(planSchedule(7, 180, false)).not.toEqual(planSchedule(8, 180, false));
    const full = planSchedule(7, 180, false);
    expect(new Set(full.faults.slice(0, FAULT_KINDS.length).map((f) => f.kind))).toEqual(new Set(FAULT_KINDS));
    expect(full.faults.every((f, i) => i === 0 || f.at > full.faults[i - 1]!.at)).toBe(true);
    expect(full.upgrades.map((u) => u.version)).toEqual(['v2', 'v3', 'v4', 'v5', 'v6', 'v7']);
  });

  it('smokeHasOneFaultOfEachKindAndTwoVersionChanges', () => {
    const smoke = planSchedule(3, 42, true);
    expect(smoke.faults.map((f) => f.kind).sort()).toEqual([...SMOKE_FAULT_KINDS].sort());
    expect(smoke.upgrades).toEqual([{ at: 0, version: 'v2' }, { at: 21, version: 'v3' }]);
  });
});
