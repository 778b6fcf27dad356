/**
 * Pure tests of App status: deployments driven through a sequence of plans on a fake clock
 * (start, progress, success, progress deadline), conditions, why-pending, and the launch backoff's
 * failure bookkeeping (nextFailures, seedFailures).
 */
import type { App, AppStatus, Deployment, Task, TaskFailure } from '../../pkg/api/types.generated';
import { admit, formatCauses } from '../../pkg/api/validation';
import type { AppCounts, AppPlan } from '../../pkg/controllers/apps/reconcile';
import {
  appStatus, BACKOFF_RESET_MS, countsAsFailure, deadlineAt, failureMessage, isProgressOnly, lastFailureOf, nextFailures, seedFailures, type Failures, type StatusEvent,
} from '../../pkg/controllers/apps/status';
import { jsonEqual } from '../../pkg/util/json';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (s: number): string => new Date(T0 + s * 1000).toISOString();
const UID = 'abcdef0123456789';

function mkApp(spec: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): App {
  const r = admit({ apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'web', namespace: 'default', uid: UID, generation: 1, ...meta }, spec: { cmd: 'httpd', instances: 3, progressDeadlineSeconds: 60, ...spec } });
  if (!r.ok) throw new Error(formatCauses(r.causes));
  return r.object as App;
}

interface PlanOpts { updated?: number; total?: number; done?: boolean; step?: AppPlan['deployment']['step']; available?: number; gen?: number }
function mkPlan(a: App, o: PlanOpts = {}): AppPlan {
  const total = o.total ?? a.spec.instances;
  const updated = o.updated ?? 0;
  const available = o.available ?? updated;
  const counts: AppCounts = { desired: a.spec.instances, running: available, healthy: available, staged: 0, unhealthy: 0, updated, available };
  return {
    launch: 0, kill: [],
    deployment: { targetVersion: a.metadata.generation ?? 1, step: o.step ?? (o.done ? 'Steady' : 'ScaleUp'), progress: { updated, total }, done: o.done ?? false },
    counts,
  };
}

/** A controller in miniature: feeds each status back into the App, as the controller writes it. */
class Sim {
  app: App;
  constructor(spec: Record<string, unknown> = {}, meta: Record<string, unknown> = {}) {
    this.app = mkApp(spec, meta);
  }
  step(s: number, o: PlanOpts & { pending?: string; instances?: number } = {}): { status: AppStatus; events: StatusEvent[] } {
    if (o.gen !== undefined) this.app.metadata.generation = o.gen;
    if (o.instances !== undefined) this.app.spec.instances = o.instances;
    const out = appStatus({ app: this.app, plan: mkPlan(this.app, o), now: T0 + s * 1000, ...(o.pending ? { pendingReason: o.pending } : {}) });
    this.app = { ...this.app, status: out.status };
    return out;
  }
}

/** One call: seconds, plan, and what the deployment should look like after it. */
interface Step extends PlanOpts {
  t: number;
  state: 'Running' | 'Succeeded' | 'Failed';
  events: string[];
  /** Seconds since T0. */
  progressAt?: number;
  startedAt?: number;
  finishedAt?: number | null;
  id?: string;
  progressing?: [string, string];
}

const sequences: Array<[string, Step[]]> = [
  ['rolloutStartsProgressesAndSucceedsOnce', [
    { t: 0, updated: 0, state: 'Running', events: ['DeploymentStarted'], progressAt: 0, startedAt: 0, id: 'abcdef01-1', finishedAt: null, progressing: ['True', 'NewVersionProgressing'] },
    { t: 10, updated: 0, state: 'Running', events: [], progressAt: 0, startedAt: 0 },
    { t: 20, updated: 1, state: 'Running', events: [], progressAt: 20 },
    { t: 30, updated: 1, state: 'Running', events: [], progressAt: 20 },
    { t: 40, updated: 2, state: 'Running', events: [], progressAt: 40 },
    { t: 50, updated: 3, done: true, state: 'Succeeded', events: ['DeploymentSucceeded'], progressAt: 50, finishedAt: 50, progressing: ['True', 'NewVersionAvailable'] },
    { t: 60, updated: 3, done: true, state: 'Succeeded', events: [], progressAt: 50, finishedAt: 50, id: 'abcdef01-1' },
    { t: 500, updated: 3, done: true, state: 'Succeeded', events: [], progressAt: 50, finishedAt: 50 },
  ]],
  ['startsAndSucceedsInOneCall', [
    { t: 0, updated: 3, done: true, state: 'Succeeded', events: ['DeploymentStarted', 'DeploymentSucceeded'], progressAt: 0, finishedAt: 0 },
    { t: 5, updated: 3, done: true, state: 'Succeeded', events: [] },
  ]],
  ['aChangedTotalIsProgress', [
    { t: 0, updated: 0, total: 3, state: 'Running', events: ['DeploymentStarted'], progressAt: 0 },
    { t: 30, updated: 0, total: 5, state: 'Running', events: [], progressAt: 30 },
    { t: 40, updated: 0, total: 5, state: 'Running', events: [], progressAt: 30 },
    { t: 50, updated: 0, total: 2, state: 'Running', events: [], progressAt: 50 },
  ]],
  ['fewerUpdatedIsNoProgress', [
    { t: 0, updated: 2, state: 'Running', events: ['DeploymentStarted'], progressAt: 0 },
    { t: 10, updated: 1, state: 'Running', events: [], progressAt: 0 },
    { t: 20, updated: 0, state: 'Running', events: [], progressAt: 0 },
    { t: 30, updated: 1, state: 'Running', events: [], progressAt: 30 },
  ]],
  ['missesTheProgressDeadlineOnceThenRecovers', [
    { t: 0, updated: 0, state: 'Running', events: ['DeploymentStarted'], progressAt: 0 },
    { t: 60, updated: 0, state: 'Running', events: [], progressAt: 0 },
    { t: 61, updated: 0, state: 'Failed', events: ['DeploymentFailed'], progressAt: 0, progressing: ['False', 'ProgressDeadlineExceeded'] },
    { t: 90, updated: 0, state: 'Failed', events: [], progressAt: 0, progressing: ['False', 'ProgressDeadlineExceeded'] },
    { t: 100, updated: 1, state: 'Running', events: ['DeploymentProgressing'], progressAt: 100, progressing: ['True', 'NewVersionProgressing'] },
    { t: 160, updated: 1, state: 'Running', events: [], progressAt: 100 },
    { t: 161, updated: 1, state: 'Failed', events: ['DeploymentFailed'], progressAt: 100 },
    { t: 200, updated: 3, done: true, state: 'Succeeded', events: ['DeploymentSucceeded'], progressAt: 200, finishedAt: 200 },
  ]],
  ['aFailedDeploymentCanSucceedWithoutRunningFirst', [
    { t: 0, updated: 1, state: 'Running', events: ['DeploymentStarted'] },
    { t: 100, updated: 1, state: 'Failed', events: ['DeploymentFailed'] },
    { t: 101, updated: 1, available: 3, done: true, state: 'Succeeded', events: ['DeploymentSucceeded'], progressAt: 0, finishedAt: 101 },
  ]],
  ['aSucceededDeploymentStaysSucceededWhenAnInstanceFails', [
    { t: 0, updated: 3, done: true, state: 'Succeeded', events: ['DeploymentStarted', 'DeploymentSucceeded'] },
    { t: 10, updated: 2, state: 'Succeeded', events: [], finishedAt: 0 },
    { t: 1000, updated: 2, state: 'Succeeded', events: [], finishedAt: 0 },
  ]],
  ['aNewGenerationStartsANewDeployment', [
    { t: 0, updated: 3, done: true, state: 'Succeeded', events: ['DeploymentStarted', 'DeploymentSucceeded'], id: 'abcdef01-1' },
    { t: 10, gen: 2, updated: 0, state: 'Running', events: ['DeploymentStarted'], id: 'abcdef01-2', startedAt: 10, progressAt: 10, finishedAt: null },
    { t: 20, gen: 2, updated: 3, done: true, state: 'Succeeded', events: ['DeploymentSucceeded'], id: 'abcdef01-2', startedAt: 10, finishedAt: 20 },
    { t: 30, gen: 3, updated: 3, done: true, state: 'Succeeded', events: ['DeploymentStarted', 'DeploymentSucceeded'], id: 'abcdef01-3', startedAt: 30 },
  ]],
  ['aNewGenerationClearsAFailure', [
    { t: 0, updated: 0, state: 'Running', events: ['DeploymentStarted'] },
    { t: 61, updated: 0, state: 'Failed', events: ['DeploymentFailed'] },
    { t: 70, gen: 2, updated: 0, state: 'Running', events: ['DeploymentStarted'], id: 'abcdef01-2', progressAt: 70 },
  ]],
];

describe('appStatus deployments', () => {
  it.each(sequences)('%s', (_name, steps) => {
    const sim = new Sim();
    for (const s of steps) {
      const { status, events } = sim.step(s.t, s);
      const d = status.deployment!;
      const where = `t=${s.t}`;
      expect({ where, state: d.state, events: events.map((e) => e.reason) }).toEqual({ where, state: s.state, events: s.events });
      for (const e of events) expect(e.type).toBe(e.reason === 'DeploymentFailed' ? 'Warning' : 'Normal');
      expect(d.targetVersion).toBe(sim.app.metadata.generation);
      expect(d.updated).toBe(s.updated ?? 0);
      expect(d.total).toBe(s.total ?? 3);
      expect(d.step).toBe(s.done ? 'Steady' : 'ScaleUp');
      if (s.progressAt !== undefined) expect({ where, lastProgressAt: d.lastProgressAt }).toEqual({ where, lastProgressAt: at(s.progressAt) });
      if (s.startedAt !== undefined) expect(d.startedAt).toBe(at(s.startedAt));
      if (s.finishedAt === null) expect(d.finishedAt).toBeUndefined();
      else if (s.finishedAt !== undefined) expect(d.finishedAt).toBe(at(s.finishedAt));
      if (s.id) expect(d.id).toBe(s.id);
      if (s.progressing) {
        const c = status.conditions!.find((x) => x.type === 'Progressing')!;
        expect([c.status, c.reason]).toEqual(s.progressing);
      }
      expect(status.observedGeneration).toBe(sim.app.metadata.generation);
    }
  });

  it('reportsMessagesOfEachState', () => {
    const sim = new Sim({ instances: 4 });
    const started = sim.step(0, { updated: 1 });
    expect(started.events[0]).toEqual({ type: 'Normal', reason: 'DeploymentStarted', message: 'rolling out version 1: 4 instance(s)' });
    expect(started.status.deployment!.message).toBe('1 of 4 updated instances available');
    const failed = sim.step(61, { updated: 1 });
    expect(failed.events).toEqual([{ type: 'Warning', reason: 'DeploymentFailed', message: 'no progress for 60s: 1/4 instances of version 1 available' }]);
    expect(failed.status.conditions!.find((c) => c.type === 'Progressing')).toEqual({
      type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: failed.status.deployment!.message, lastTransitionTime: at(61),
    });
    const again = sim.step(62, { updated: 2 });
    expect(again.events).toEqual([{ type: 'Normal', reason: 'DeploymentProgressing', message: 'progressing again: 2/4' }]);
    const done = sim.step(63, { updated: 4, done: true });
    expect(done.events).toEqual([{ type: 'Normal', reason: 'DeploymentSucceeded', message: 'version 1 available: 4/4' }]);
    expect(done.status.deployment!.message).toBe('version 1 available: 4/4');
  });

  it('anIdenticalCallChangesNothing', () => {
    const sim = new Sim();
    sim.step(0, { updated: 0 });
    const first = sim.step(10, { updated: 3, done: true });
    expect(first.events.map((e) => e.reason)).toEqual(['DeploymentSucceeded']);
    for (const t of [10, 11, 5000]) {
      const again = appStatus({ app: sim.app, plan: mkPlan(sim.app, { updated: 3, done: true }), now: T0 + t * 1000 });
      expect(again.events).toEqual([]);
      expect(jsonEqual(again.status, first.status)).toBe(true);
    }
  });

  it('aRunningDeploymentIsStableWithinTheDeadline', () => {
    const sim = new Sim();
    const first = sim.step(0, { updated: 1 });
    const again = sim.step(30, { updated: 1 });
    expect(again.events).toEqual([]);
    expect(jsonEqual(again.status, first.status)).toBe(true);
  });

  it('neverFailsADeploymentOfADeletedApp', () => {
    const sim = new Sim({}, { deletionTimestamp: at(0) });
    expect(sim.step(0, { updated: 0, step: 'Deleting' }).status.deployment!.state).toBe('Running');
    const late = sim.step(10_000, { updated: 0, step: 'Deleting' });
    expect(late.status.deployment!.state).toBe('Running');
    expect(late.events).toEqual([]);
  });

  it('startsFromAnAppWithoutStatus', () => {
    const a = mkApp();
    delete (a as { status?: unknown }).status;
    const { status, events } = appStatus({ app: a, plan: mkPlan(a, { updated: 1, available: 2 }), now: T0 });
    expect(events.map((e) => e.reason)).toEqual(['DeploymentStarted']);
    expect(status).toMatchObject({
      observedGeneration: 1, instances: 3, tasksStaged: 0, tasksRunning: 2, tasksHealthy: 2, tasksUnhealthy: 0, updatedInstances: 1, availableInstances: 2,
    });
    expect(status).not.toHaveProperty('pendingReason');
  });

  it('usesAppAsTheIdPrefixWithoutUid', () => {
    const a = mkApp({}, { uid: undefined, generation: 5 });
    delete a.metadata.uid;
    expect(appStatus({ app: a, plan: mkPlan(a), now: T0 }).status.deployment!.id).toBe('app-5');
  });
});

describe('deadlineAt', () => {
  it.each<[string, Deployment | undefined, number | undefined]>([
    ['running: last progress + deadline + 1 ms', { state: 'Running', startedAt: at(0), lastProgressAt: at(30) }, T0 + 90_001],
    ['running without progress: from the start', { state: 'Running', startedAt: at(10) }, T0 + 70_001],
    ['succeeded', { state: 'Succeeded', startedAt: at(0), lastProgressAt: at(0) }, undefined],
    ['failed', { state: 'Failed', startedAt: at(0), lastProgressAt: at(0) }, undefined],
    ['none', undefined, undefined],
  ])('%s', (_n, d, want) => {
    expect(deadlineAt(mkApp(), d)).toBe(want);
  });

  it('isExactlyWhenTheDeploymentFails', () => {
    const sim = new Sim();
    const { status } = sim.step(0, { updated: 1 });
    const due = deadlineAt(sim.app, status.deployment)!;
    expect(appStatus({ app: sim.app, plan: mkPlan(sim.app, { updated: 1 }), now: due - 1 }).status.deployment!.state).toBe('Running');
    expect(appStatus({ app: sim.app, plan: mkPlan(sim.app, { updated: 1 }), now: due }).status.deployment!.state).toBe('Failed');
  });
});

describe('appStatus conditions', () => {
  // instances 4, minimumHealthCapacity 0.5: at least 2 available.
  it.each<[number, 'True' | 'False', string]>([
    [0, 'False', 'MinimumHealthCapacityUnmet'],
    [1, 'False', 'MinimumHealthCapacityUnmet'],
    [2, 'True', 'MinimumHealthCapacity'],
    [3, 'True', 'MinimumHealthCapacity'],
    [4, 'True', 'MinimumHealthCapacity'],
  ])('available %i of 4 → Available %s', (available, want, reason) => {
    const a = mkApp({ instances: 4, upgradeStrategy: { minimumHealthCapacity: 0.5 } });
    const c = appStatus({ app: a, plan: mkPlan(a, { available }), now: T0 }).status.conditions!.find((x) => x.type === 'Available')!;
    expect(c).toEqual({ type: 'Available', status: want, reason, message: `${available}/4 available (at least 2 needed)`, lastTransitionTime: at(0) });
  });

  it.each<[string, Record<string, unknown>, number, 'True' | 'False']>([
    ['no instances', { instances: 0 }, 0, 'True'],
    ['minimumHealthCapacity 0', { instances: 3, upgradeStrategy: { minimumHealthCapacity: 0 } }, 0, 'True'],
    ['minimumHealthCapacity 1, one missing', { instances: 3 }, 2, 'False'],
    ['0.7 of 10 needs 7 (no float overshoot)', { instances: 10, upgradeStrategy: { minimumHealthCapacity: 0.7 } }, 7, 'True'],
    ['0.7 of 10, 6 available', { instances: 10, upgradeStrategy: { minimumHealthCapacity: 0.7 } }, 6, 'False'],
  ])('Available: %s', (_n, spec, available, want) => {
    const a = mkApp(spec);
    expect(appStatus({ app: a, plan: mkPlan(a, { available }), now: T0 }).status.conditions!.find((x) => x.type === 'Available')!.status).toBe(want);
  });

  it('keepsLastTransitionTimeWhileTheStatusIsUnchanged', () => {
    const sim = new Sim({ instances: 4, upgradeStrategy: { minimumHealthCapacity: 0.5 } });
    const seq: Array<[number, number, string, string, string, string]> = [
      // t, available, Available status, its lastTransitionTime, Progressing status, its lastTransitionTime
      [0, 1, 'False', at(0), 'True', at(0)],
      [10, 1, 'False', at(0), 'True', at(0)],
      [20, 2, 'True', at(20), 'True', at(0)],
      [30, 3, 'True', at(20), 'True', at(0)],
      [40, 0, 'False', at(40), 'True', at(0)],
      [101, 0, 'False', at(40), 'False', at(101)],
      [110, 0, 'False', at(40), 'False', at(101)],
      [120, 4, 'True', at(120), 'True', at(120)],
    ];
    for (const [t, available, as, al, ps, pl] of seq) {
      // updated tracks available, but only grows at t=20,30 and t=120: the deployment fails at 101.
      const { status } = sim.step(t, { updated: t >= 120 ? 4 : available >= 2 ? available : Math.min(available, 1), available, done: t >= 120 });
      const [av, pr] = status.conditions!;
      expect([t, av.type, av.status, av.lastTransitionTime, pr.type, pr.status, pr.lastTransitionTime]).toEqual([t, 'Available', as, al, 'Progressing', ps, pl]);
    }
  });
});

describe('appStatus pendingReason', () => {
  const R1 = '0/3 agents available: 3 insufficient cpus.';
  const R2 = '0/3 agents available: 2 insufficient cpus, 1 constraint UNIQUE hostname.';
  it('copiesTheReasonAndWarnsOnlyWhenItChanges', () => {
    const sim = new Sim();
    const seq: Array<[number, string | undefined, boolean]> = [
      [0, R1, true],
      [10, R1, false],
      [20, R1, false],
      [30, R2, true],
      [40, R2, false],
      [50, undefined, false],
      [55, undefined, false],
      [60, R2, true],
    ];
    for (const [t, pending, warns] of seq) {
      const { status, events } = sim.step(t, { updated: 0, pending });
      expect([t, status.pendingReason]).toEqual([t, pending]);
      if (pending === undefined) expect(status).not.toHaveProperty('pendingReason');
      const fs = events.filter((e) => e.reason === 'FailedScheduling');
      expect([t, fs]).toEqual([t, warns ? [{ type: 'Warning', reason: 'FailedScheduling', message: pending }] : []]);
    }
  });
});

describe('nextFailures', () => {
  const T = 1_000_000;
  const R = BACKOFF_RESET_MS;
  it.each<[string, Failures, number[], number[], number, Failures]>([
    ['first failure', { count: 0 }, [T], [], T, { count: 1, lastFailureAt: T }],
    ['failures accumulate', { count: 2, lastFailureAt: T }, [T + 5, T + 3], [], T + 5, { count: 4, lastFailureAt: T + 5 }],
    ['lastFailureAt is the max, even for a late report', { count: 2, lastFailureAt: T + 10 }, [T + 5], [], T + 20, { count: 3, lastFailureAt: T + 10 }],
    ['nothing observed', { count: 2, lastFailureAt: T }, [], [], T + 10 * R, { count: 2, lastFailureAt: T }],
    ['healthy for the reset time after the failure', { count: 3, lastFailureAt: T }, [], [T + 1], T + 1 + R, { count: 0 }],
    ['healthy since the failure itself', { count: 3, lastFailureAt: T }, [], [T], T + R, { count: 0 }],
    ['healthy 1 ms short of the reset time', { count: 3, lastFailureAt: T }, [], [T + 1], T + R, { count: 3, lastFailureAt: T }],
    ['healthy since before the last failure', { count: 3, lastFailureAt: T }, [], [T - 1], T + 100 * R, { count: 3, lastFailureAt: T }],
    ['one of several healthy tasks suffices', { count: 3, lastFailureAt: T }, [], [T - 5, T + 10, T + R], T + R + 10, { count: 0 }],
    ['reset, then a new failure in the same batch', { count: 3, lastFailureAt: T }, [T + R + 5], [T + 1], T + R + 5, { count: 1, lastFailureAt: T + R + 5 }],
    ['a late-read failure after the healthy start: no reset', { count: 3, lastFailureAt: T }, [T + 30], [T + 1], T + 1 + R, { count: 4, lastFailureAt: T + 30 }],
    ['a failure without a time is reset by any long healthy run', { count: 2 }, [], [0], R, { count: 0 }],
  ])('%s', (_n, prev, failedAt, healthySince, now, want) => {
    const copy = structuredClone(prev);
    expect(nextFailures(prev, { failedAt, healthySince }, now)).toEqual(want);
    expect(prev).toEqual(copy);
  });

  it('returnsTheSameFailuresWithNothingToDo', () => {
    const prev = { count: 0 };
    expect(nextFailures(prev, { failedAt: [], healthySince: [T] }, T + R)).toBe(prev);
  });
});

describe('seedFailures', () => {
  const T = Date.parse('2026-01-01T12:00:00Z');
  const iso = (ms: number): string => new Date(ms).toISOString();
  /** A task that ended `end` ms after T having run `ran` ms. */
  const ended = (state: string, end: number, ran = 1000): { status: { state: string; startedAt?: string; finishedAt?: string } } => ({ status: { state, startedAt: iso(T + end - ran), finishedAt: iso(T + end) } });
  it.each<[string, ReturnType<typeof ended>[], Failures]>([
    ['no tasks', [], { count: 0 }],
    ['one short failure', [ended('FAILED', 0)], { count: 1, lastFailureAt: T }],
    ['FINISHED counts too', [ended('FINISHED', 0), ended('FAILED', -10)], { count: 2, lastFailureAt: T }],
    ['newest consecutive only, in any input order', [ended('FAILED', -300), ended('FAILED', -10), ended('KILLED', -100), ended('FINISHED', -20), ended('FAILED', 0)], { count: 3, lastFailureAt: T }],
    ['stops at LOST', [ended('FAILED', 0), ended('LOST', -5), ended('FAILED', -10)], { count: 1, lastFailureAt: T }],
    ['ERROR counts too (a start that cannot succeed)', [ended('FAILED', 0), ended('ERROR', -5, 0), ended('FAILED', -10)], { count: 3, lastFailureAt: T }],
    ['an ERROR that never started counts', [{ status: { state: 'ERROR', finishedAt: iso(T) } }, { status: { state: 'ERROR', finishedAt: iso(T - 5) } }], { count: 2, lastFailureAt: T }],
    ['newest KILLED: nothing', [ended('KILLED', 0), ended('FAILED', -10), ended('FAILED', -20)], { count: 0 }],
    ['stops at a long run', [ended('FAILED', 0), ended('FAILED', -10, BACKOFF_RESET_MS + 1), ended('FAILED', -20)], { count: 1, lastFailureAt: T }],
    ['a run of exactly the reset time is long', [ended('FAILED', 0), ended('FAILED', -10, BACKOFF_RESET_MS), ended('FAILED', -20)], { count: 1, lastFailureAt: T }],
    ['just under the reset time is short', [ended('FAILED', 0), ended('FAILED', -10, BACKOFF_RESET_MS - 1)], { count: 2, lastFailureAt: T }],
    ['newest long: nothing', [ended('FINISHED', 0, 10 * BACKOFF_RESET_MS), ended('FAILED', -10)], { count: 0 }],
    ['ignores tasks without finishedAt', [{ status: { state: 'FAILED', startedAt: iso(T + 50) } }, { status: { state: 'RUNNING', startedAt: iso(T) } }, ended('FAILED', 0), ended('FAILED', -10)], { count: 2, lastFailureAt: T }],
    ['ignores non-terminal states', [ended('RUNNING', 100), ended('STAGING', 50), ended('FAILED', 0)], { count: 1, lastFailureAt: T }],
    ['without startedAt counts as short', [{ status: { state: 'FAILED', finishedAt: iso(T) } }, { status: { state: 'FAILED', finishedAt: iso(T - 5) } }], { count: 2, lastFailureAt: T }],
    ['tasks without status', [{} as ReturnType<typeof ended>, ended('FAILED', 0)], { count: 1, lastFailureAt: T }],
  ])('%s', (_n, tasks, want) => {
    expect(seedFailures(tasks)).toEqual(want);
  });
});

describe('isProgressOnly', () => {
  const base: AppStatus = {
    observedGeneration: 2, instances: 3, tasksStaged: 1, tasksRunning: 2, tasksHealthy: 2, tasksUnhealthy: 0, updatedInstances: 2, availableInstances: 2,
    deployment: { id: 'd-2', targetVersion: 2, state: 'Running', step: 'Upgrade', updated: 2, total: 3, startedAt: 'a', lastProgressAt: 'b' },
    conditions: [{ type: 'Available', status: 'True', reason: 'MinimumInstancesAvailable', lastTransitionTime: 'x' }],
  };
  it.each<[string, Partial<AppStatus> | ((s: AppStatus) => AppStatus), boolean]>([
    ['counts', { tasksRunning: 3, tasksStaged: 0, availableInstances: 3 }, true],
    ['deployment progress and step', (s) => ({ ...s, deployment: { ...s.deployment!, updated: 3, step: 'Steady', lastProgressAt: 'c' } }), true],
    ['a condition message or time', (s) => ({ ...s, conditions: [{ ...s.conditions![0]!, message: 'm', lastTransitionTime: 'y' }] }), true],
    ['observedGeneration', { observedGeneration: 3 }, false],
    ['deployment state', (s) => ({ ...s, deployment: { ...s.deployment!, state: 'Succeeded' } }), false],
    ['a condition status', (s) => ({ ...s, conditions: [{ ...s.conditions![0]!, status: 'False' }] }), false],
    ['pendingReason', { pendingReason: '0/3 agents available' }, false],
    ['lastFailure', { lastFailure: { task: 'web-1', state: 'ERROR', message: 'image x not present' } }, false],
  ])('%s → %s', (_what, change, expected) => {
    const next = typeof change === 'function' ? change(base) : { ...base, ...change };
    expect(isProgressOnly(base, next)).toBe(expected);
  });
  it('treats a first status as significant', () => {
    expect(isProgressOnly(undefined, base)).toBe(false);
  });
});

describe('countsAsFailure', () => {
  // Marathon's rate limiter: Failed, Finished, Error (and Gone, Dropped) back off; Lost/Unreachable (the agent's) do not.
  it.each<[string | undefined, boolean]>([
    ['FAILED', true], ['FINISHED', true], ['ERROR', true],
    ['LOST', false], ['KILLED', false], ['UNREACHABLE', false], ['RUNNING', false], ['KILLING', false], [undefined, false],
  ])('%s → %s', (state, want) => expect(countsAsFailure(state)).toBe(want));
});

describe('lastFailureOf', () => {
  const T = Date.parse('2026-01-01T12:00:00Z');
  const iso = (ms: number): string => new Date(ms).toISOString();
  function t(name: string, state: string, end: number, extra: Partial<Task['status']> = {}): Task {
    return {
      apiVersion: 'shoal/v1', kind: 'Task',
      metadata: { name, namespace: 'default', creationTimestamp: iso(T + end - 100), ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'App', name: 'web', uid: 'u', version: 3 }] },
      spec: { nodeName: 'n1' },
      status: { state, finishedAt: iso(T + end), ...extra },
    } as unknown as Task;
  }
  const missing = 'image shoal/nope:latest not present on node n1 (no registry pull)';

  it.each<[string, Task[], Partial<TaskFailure> | undefined]>([
    ['none', [], undefined],
    ['only running and killed tasks', [t('a', 'RUNNING', 0), t('b', 'KILLED', 10)], undefined],
    ['the newest failure, whatever the input order', [t('a', 'FAILED', 0), t('b', 'ERROR', 20, { reason: 'ImageNotPresent', message: missing }), t('c', 'KILLED', 30), t('d', 'FINISHED', 10)],
      { task: 'b', node: 'n1', state: 'ERROR', reason: 'ImageNotPresent', message: missing, version: 3, at: iso(T + 20) }],
    ['LOST is shown (though it does not back off)', [t('a', 'FAILED', 0), t('b', 'LOST', 5, { reason: 'AgentLost' })], { task: 'b', state: 'LOST', reason: 'AgentLost' }],
    ['an exit code', [t('a', 'FAILED', 0, { exitCode: 3, message: 'exited with code 3' })], { task: 'a', state: 'FAILED', exitCode: 3, message: 'exited with code 3' }],
  ])('%s', (_n, tasks, want) => {
    const got = lastFailureOf(tasks);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toMatchObject(want);
  });

  it('saysWhatFailedInOneLine', () => {
    expect(failureMessage({ task: 'b', node: 'n1', state: 'ERROR', reason: 'ImageNotPresent', message: missing })).toBe(`task b ERROR on node n1 (ImageNotPresent): ${missing}`);
    expect(failureMessage({ task: 'a', state: 'FAILED', exitCode: 3 })).toBe('task a FAILED (exit code 3)');
  });
});

describe('appStatus lastFailure', () => {
  const f1: TaskFailure = { task: 'web-1', node: 'n1', state: 'ERROR', reason: 'ImageNotPresent', message: 'image x not present on node n1', at: at(10) };
  const f2: TaskFailure = { task: 'web-2', node: 'n2', state: 'FAILED', exitCode: 1, message: 'exited with code 1', at: at(20) };
  it('recordsTheNewestFailureWarnsOnceAndKeepsItOnceItsTaskIsGone', () => {
    const sim = new Sim();
    const step = (t: number, lastFailure?: TaskFailure) => {
      const out = appStatus({ app: sim.app, plan: mkPlan(sim.app), now: T0 + t * 1000, ...(lastFailure ? { lastFailure } : {}) });
      sim.app = { ...sim.app, status: out.status };
      return { failure: out.status.lastFailure, warned: out.events.filter((e) => e.reason === 'TaskFailed').map((e) => e.message) };
    };
    expect(step(0)).toEqual({ failure: undefined, warned: [] });
    expect(step(11, f1)).toEqual({ failure: f1, warned: ['task web-1 ERROR on node n1 (ImageNotPresent): image x not present on node n1'] });
    expect(step(12, { ...f1 })).toEqual({ failure: f1, warned: [] });
    expect(step(13)).toEqual({ failure: f1, warned: [] }); // its task garbage-collected: kept
    expect(step(21, f2)).toEqual({ failure: f2, warned: ['task web-2 FAILED on node n2 (exit code 1): exited with code 1'] });
    expect(step(22, f1)).toEqual({ failure: f2, warned: [] }); // an older one does not replace it
  });
});
