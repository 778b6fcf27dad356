/**
 * Pure tests of the App reconcile (issue 5 items 2–5): tables of (app, tasks, now) → plan, and a seeded
 * simulation of rolling upgrades checking the minimumHealthCapacity / maximumOverCapacity invariants.
 */
import type { App, HealthCheck, ReadinessCheck, Task } from '../../pkg/api/types.generated';
import { type AppPlan, backoffUntil, ERROR_BACKOFF_SECONDS, reconcileApp, isAvailable } from '../../pkg/controllers/apps/reconcile';
import { CONFIG_HASH_ANNOTATION, configHash } from '../../pkg/controllers/apps/template';
import { seededRandom } from '../../pkg/scheduler/random';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const HC: HealthCheck = {
  protocol: 'HTTP', path: '/', gracePeriodSeconds: 5, intervalSeconds: 5, timeoutSeconds: 2, maxConsecutiveFailures: 3, delaySeconds: 0,
};
const RC: ReadinessCheck = { name: 'ready', protocol: 'HTTP', path: '/ready', intervalSeconds: 5, timeoutSeconds: 2, httpStatusCodesForReady: [200], preserveLastResponse: false };

interface AppOpts {
  instances?: number; generation?: number; min?: number; over?: number; checks?: boolean; readiness?: boolean;
  killSelection?: App['spec']['killSelection']; backoff?: App['spec']['backoff']; deleting?: boolean; restartedAt?: string; cmd?: string;
  unreachable?: App['spec']['unreachableStrategy'];
}
function app(o: AppOpts = {}): App {
  return {
    apiVersion: 'shoal/v1', kind: 'App',
    metadata: { name: 'web', namespace: 'default', uid: 'u-web', generation: o.generation ?? 1,
      ...(o.deleting ? { deletionTimestamp: new Date(T0).toISOString() } : {}) },
    spec: {
      instances: o.instances ?? 3, role: '*', cmd: o.cmd ?? 'httpd', ...(o.restartedAt ? { restartedAt: o.restartedAt } : {}), resources: { cpus: 0.1, mem: 32, disk: 0 }, ports: [], constraints: [],
      healthChecks: o.checks ? [HC] : [], readinessChecks: o.readiness ? [RC] : [],
      upgradeStrategy: { minimumHealthCapacity: o.min ?? 1, maximumOverCapacity: o.over ?? 1 },
      backoff: o.backoff ?? { seconds: 1, factor: 1.15, maxLaunchDelaySeconds: 300 },
      unreachableStrategy: o.unreachable ?? { inactiveAfterSeconds: 0, expungeAfterSeconds: 600 },
      killSelection: o.killSelection ?? 'YoungestFirst', taskKillGracePeriodSeconds: 3,
      progressDeadlineSeconds: 600, revisionHistoryLimit: 10,
    },
    status: {},
  };
}

interface TaskOpts {
  /** The App generation it was launched for; null: none recorded. */
  version?: number | null;
  /** The config hash it was launched from (shoal.dev/config-hash); none by default (the version decides). */
  hash?: string;
  state?: Task['status']['state']; healthy?: boolean; ready?: boolean; created?: number;
}
/** A task of `owner`, running (and healthy if it has checks) unless told otherwise; `created` is seconds after T0. */
function task(owner: App, name: string, o: TaskOpts = {}): Task {
  const state = o.state ?? 'RUNNING';
  return {
    apiVersion: 'shoal/v1', kind: 'Task',
    metadata: { name, namespace: 'default', creationTimestamp: new Date(T0 + (o.created ?? 0) * 1000).toISOString(),
      ...(o.hash !== undefined ? { annotations: { [CONFIG_HASH_ANNOTATION]: o.hash } } : {}),
      ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'App', name: 'web', uid: 'u-web', controller: true, ...(o.version === null ? {} : { version: o.version ?? 1 }) }] },
    spec: { role: '*', cmd: 'httpd', resources: { cpus: 0.1, mem: 32, disk: 0 }, ports: [],
      healthChecks: owner.spec.healthChecks, readinessChecks: owner.spec.readinessChecks, taskKillGracePeriodSeconds: 3 },
    status: { state, ...(state === 'RUNNING' && owner.spec.healthChecks.length ? { healthy: o.healthy ?? true } : {}),
      ...(o.ready !== undefined ? { ready: o.ready } : owner.spec.readinessChecks.length && state === 'RUNNING' ? { ready: true } : {}) },
  };
}
/** n tasks named prefix-0.. with ascending creation times. */
const many = (owner: App, prefix: string, n: number, o: TaskOpts = {}): Task[] =>
  Array.from({ length: n }, (_, i) => task(owner, `${prefix}-${i}`, { created: i, ...o }));

interface Row {
  name: string;
  app: App;
  tasks: (a: App) => Task[];
  inflight?: number;
  failures?: { count: number; lastFailureAt?: number };
  now?: number;
  /** Names of tasks whose kill was sent. */
  killing?: string[];
  expect: Partial<{
    launch: number; kill: string[]; reasons: string[]; step: string; done: boolean; delayUntil: number | undefined;
    updated: number; progress: number; healthy: number;
  }>;
}

function run(r: Row): AppPlan {
  return reconcileApp({
    app: r.app, configHash: configHash(r.app), tasks: r.tasks(r.app), killing: new Set(r.killing ?? []),
    now: r.now ?? T0, failures: r.failures ?? { count: 0 }, inflight: r.inflight ?? 0,
  });
}

function check(r: Row): void {
  const plan = run(r);
  const e = r.expect;
  if (e.launch !== undefined) expect(plan.launch).toBe(e.launch);
  if (e.kill !== undefined) expect(plan.kill.map((k) => k.task)).toEqual(e.kill);
  if (e.reasons !== undefined) expect(plan.kill.map((k) => k.reason)).toEqual(e.reasons);
  if (e.step !== undefined) expect(plan.deployment.step).toBe(e.step);
  if (e.done !== undefined) expect(plan.deployment.done).toBe(e.done);
  if ('delayUntil' in e) expect(plan.delayUntil).toBe(e.delayUntil);
  if (e.updated !== undefined) expect(plan.counts.updated).toBe(e.updated);
  if (e.progress !== undefined) expect(plan.deployment.progress.updated).toBe(e.progress);
  if (e.healthy !== undefined) expect(plan.counts.healthy).toBe(e.healthy);
}

const scaling: Row[] = [
  { name: 'createsInstancesForANewApp', app: app(), tasks: () => [], expect: { launch: 3, kill: [], step: 'ScaleUp', done: false } },
  { name: 'doesNothingWhenConverged', app: app({ checks: true }), tasks: (a) => many(a, 't', 3), expect: { launch: 0, kill: [], step: 'Steady', done: true } },
  { name: 'ignoresTerminalTasks', app: app({ instances: 2 }), tasks: (a) => [task(a, 'a'), task(a, 'b', { state: 'FAILED' }), task(a, 'c', { state: 'LOST' })], expect: { launch: 1, kill: [] } },
  { name: 'scalesDownYoungestFirst', app: app({ instances: 1 }), tasks: (a) => many(a, 't', 3), expect: { launch: 0, kill: ['t-2', 't-1'], reasons: ['ScaleDown', 'ScaleDown'], step: 'ScaleDown' } },
  { name: 'scalesDownOldestFirst', app: app({ instances: 1, killSelection: 'OldestFirst' }), tasks: (a) => many(a, 't', 3), expect: { kill: ['t-0', 't-1'] } },
  {
    name: 'killsNotRunningBeforeRunningOnScaleDown', app: app({ instances: 2, checks: true }),
    tasks: (a) => [task(a, 'young', { created: 9 }), task(a, 'staging', { state: 'STAGING', created: 1 }), task(a, 'sick', { healthy: false, created: 2 }), task(a, 'older', { created: 0 })],
    expect: { launch: 0, kill: ['staging', 'sick'], reasons: ['ScaleDown', 'ScaleDown'] },
  },
  { name: 'countsInflightLaunches', app: app(), tasks: (a) => [task(a, 'a')], inflight: 2, expect: { launch: 0, kill: [], step: 'Steady' } },
  { name: 'countsInflightLaunchesPartially', app: app(), tasks: (a) => [task(a, 'a')], inflight: 1, expect: { launch: 1, step: 'ScaleUp' } },
  { name: 'neverKillsRunningTasksForInflightOnes', app: app({ instances: 2 }), tasks: (a) => many(a, 't', 2), inflight: 1, expect: { launch: 0, kill: [] } },
  {
    name: 'replacesKillingTasksWithoutKillingThemAgain', app: app({ instances: 2 }),
    tasks: (a) => [task(a, 'a'), task(a, 'dying', { state: 'KILLING' })], expect: { launch: 1, kill: [] },
  },
];

const upgrades: Row[] = [
  // N = 4, min .5 → 2 must stay available; over 0 → no room to launch: kill the 2 youngest old ones first.
  { name: 'rollingUpgradeRespectsMinimumHealthCapacity', app: app({ instances: 4, generation: 2, min: 0.5, over: 0, checks: true }), tasks: (a) => many(a, 'old', 4), expect: { launch: 0, kill: ['old-3', 'old-2'], reasons: ['Upgrade', 'Upgrade'], step: 'Upgrade', done: false } },
  { name: 'rollingUpgradeWaitsForNewTasksToBeHealthy', app: app({ instances: 4, generation: 2, min: 0.5, over: 0, checks: true }),
    tasks: (a) => [...many(a, 'old', 2), ...many(a, 'new', 2, { version: 2, state: 'STAGING' })], expect: { launch: 0, kill: [] } },
  // Budget max(1, 4 − 2) = 2: both failing new tasks go, replacements wait until they are gone (no room over 4).
  { name: 'rollingUpgradeReplacesUnhealthyNewTasks', app: app({ instances: 4, generation: 2, min: 0.5, over: 0, checks: true }),
    tasks: (a) => [...many(a, 'old', 2), ...many(a, 'new', 2, { version: 2, healthy: false })], expect: { launch: 0, kill: ['new-1', 'new-0'], reasons: ['Unhealthy', 'Unhealthy'] } },
  { name: 'rollingUpgradeKillsOldOnceNewAreHealthy', app: app({ instances: 4, generation: 2, min: 0.5, over: 0, checks: true }),
    tasks: (a) => [...many(a, 'old', 2), ...many(a, 'new', 2, { version: 2, created: 10 })], expect: { launch: 0, kill: ['old-1', 'old-0'] } },
  { name: 'rollingUpgradeNeverExceedsMaximumOverCapacity', app: app({ instances: 4, generation: 2, min: 1, over: 0.5 }), tasks: (a) => many(a, 'old', 4), expect: { launch: 2, kill: [] } },
  { name: 'rollingUpgradeCountsInflightAgainstOverCapacity', app: app({ instances: 4, generation: 2, min: 1, over: 0.5 }), tasks: (a) => many(a, 'old', 4), inflight: 1, expect: { launch: 1, kill: [] } },
  { name: 'fullHealthWithoutOverCapacitySurgesByOne', app: app({ instances: 3, generation: 2, min: 1, over: 0 }), tasks: (a) => many(a, 'old', 3), expect: { launch: 1, kill: [] } },
  { name: 'upgradeWithZeroCapacityKillsOldFirst', app: app({ instances: 3, generation: 2, min: 0, over: 0 }), tasks: (a) => many(a, 'old', 3), expect: { launch: 0, kill: ['old-2', 'old-1', 'old-0'], step: 'Upgrade' } },
  { name: 'upgradeWithZeroCapacityLaunchesOnceOldAreGone', app: app({ instances: 3, generation: 2, min: 0, over: 0 }), tasks: () => [], expect: { launch: 3, kill: [], step: 'ScaleUp' } },
  {
    name: 'upgradeKillsOldNotAvailableFirst', app: app({ instances: 3, generation: 2, min: 1, over: 0, checks: true }),
    tasks: (a) => [task(a, 'old-staging', { state: 'STAGING', created: 0 }), task(a, 'old-a', { created: 1 }), task(a, 'old-b', { created: 2 })],
    expect: { launch: 1, kill: ['old-staging'] },
  },
  {
    name: 'readinessGatesOldKills', app: app({ instances: 2, generation: 2, min: 1, over: 0, checks: true, readiness: true }),
    tasks: (a) => [...many(a, 'old', 2), task(a, 'new', { version: 2, created: 5, ready: false })], expect: { launch: 0, kill: [] },
  },
  {
    name: 'readyNewTaskReplacesAnOldOne', app: app({ instances: 2, generation: 2, min: 1, over: 0, checks: true, readiness: true }),
    tasks: (a) => [...many(a, 'old', 2), task(a, 'new', { version: 2, created: 5 })], expect: { launch: 0, kill: ['old-1'] },
  },
  {
    name: 'upgradeIsNotDoneUntilNewTasksAreReady', app: app({ instances: 2, generation: 2, readiness: true }),
    tasks: (a) => [task(a, 'new-0', { version: 2, ready: true }), task(a, 'new-1', { version: 2, ready: false })], expect: { launch: 0, kill: [], done: false, progress: 1 },
  },
  {
    name: 'surgeWaitsForReadinessBeforeKillingOld', app: app({ instances: 2, generation: 2, min: 1, over: 1, readiness: true }),
    tasks: (a) => [...many(a, 'old', 2), ...many(a, 'new', 2, { version: 2, created: 5, ready: false })], expect: { launch: 0, kill: [], step: 'Upgrade', progress: 0 },
  },
  { name: 'upgradeIsDoneWhenAllNewAreAvailable', app: app({ instances: 2, generation: 2, checks: true }), tasks: (a) => many(a, 'new', 2, { version: 2 }), expect: { launch: 0, kill: [], step: 'Steady', done: true } },
];

const failures: Row[] = [
  // N = 4, min .75 → budget max(1, 4 − 3) = 1.
  { name: 'unhealthyKillsAreBudgeted', app: app({ instances: 4, min: 0.75, checks: true }), tasks: (a) => [...many(a, 'sick', 3, { healthy: false }), task(a, 'ok')], expect: { launch: 1, kill: ['sick-2'], reasons: ['Unhealthy'], step: 'ScaleUp' } },
  { name: 'unhealthyBudgetFollowsMinimumHealthCapacity', app: app({ instances: 4, min: 0.5, checks: true }), tasks: (a) => many(a, 'sick', 4, { healthy: false }), expect: { launch: 2, kill: ['sick-3', 'sick-2'] } },
  { name: 'unhealthyBudgetIsAtLeastOne', app: app({ instances: 2, min: 1, checks: true }), tasks: (a) => many(a, 'sick', 2, { healthy: false }), expect: { kill: ['sick-1'] } },
  {
    name: 'tasksAlreadyKillingUseTheUnhealthyBudget', app: app({ instances: 4, min: 0.75, checks: true }),
    tasks: (a) => [task(a, 'dying', { state: 'KILLING' }), ...many(a, 'sick', 2, { healthy: false }), task(a, 'ok')], expect: { launch: 1, kill: [] },
  },
  {
    name: 'backoffDelaysRelaunch', app: app({ instances: 2, backoff: { seconds: 1, factor: 2, maxLaunchDelaySeconds: 300 } }),
    tasks: (a) => [task(a, 'a')], failures: { count: 3, lastFailureAt: T0 }, now: T0 + 1000,
    expect: { launch: 0, delayUntil: T0 + 4000, step: 'Backoff' }, // 1 s × 2^(3−1)
  },
  {
    name: 'backoffEndsAfterTheDelay', app: app({ instances: 2, backoff: { seconds: 1, factor: 2, maxLaunchDelaySeconds: 300 } }),
    tasks: (a) => [task(a, 'a')], failures: { count: 3, lastFailureAt: T0 }, now: T0 + 4000, expect: { launch: 1, delayUntil: undefined, step: 'ScaleUp' },
  },
  {
    name: 'backoffIsCapped', app: app({ instances: 1, backoff: { seconds: 1, factor: 2, maxLaunchDelaySeconds: 60 } }),
    tasks: () => [], failures: { count: 20, lastFailureAt: T0 }, now: T0, expect: { launch: 0, delayUntil: T0 + 60_000 },
  },
  {
    name: 'backoffDoesNotDelayKills', app: app({ instances: 1 }), tasks: (a) => many(a, 't', 2),
    failures: { count: 2, lastFailureAt: T0 }, now: T0, expect: { launch: 0, kill: ['t-1'], delayUntil: undefined, step: 'ScaleDown' },
  },
  {
    name: 'deletionKillsEverything', app: app({ deleting: true }),
    tasks: (a) => [task(a, 'a'), task(a, 'b', { state: 'STAGING' }), task(a, 'c', { state: 'KILLING' }), task(a, 'd', { state: 'FAILED' })],
    expect: { launch: 0, kill: ['a', 'b'], reasons: ['AppDeleted', 'AppDeleted'], step: 'Deleting', done: false },
  },
  { name: 'deletionIsDoneWhenNoTaskRuns', app: app({ deleting: true }), tasks: (a) => [task(a, 'd', { state: 'KILLED' })], expect: { launch: 0, kill: [], done: true } },
];

/** The config hash of the App before its spec changed (its cmd was `httpd`, no restartedAt). */
const OLD = configHash(app());
const cur = (a: App) => configHash(a);

// Which tasks are of the current version: the config hash each task was launched from decides, not the generation.
const versions: Row[] = [
  { name: 'scaleUpKeepsEveryTask', app: app({ instances: 5, generation: 2 }), tasks: (a) => many(a, 't', 3, { hash: cur(a) }),
    expect: { launch: 2, kill: [], step: 'ScaleUp', updated: 3 } },
  { name: 'scaleIsDoneWithoutReplacingAnything', app: app({ instances: 3, generation: 2, checks: true }), tasks: (a) => many(a, 't', 3, { hash: cur(a) }),
    expect: { launch: 0, kill: [], step: 'Steady', done: true, updated: 3, progress: 3 } },
  { name: 'scaleDownIsNoUpgrade', app: app({ instances: 1, generation: 2 }), tasks: (a) => many(a, 't', 3, { hash: cur(a) }),
    expect: { launch: 0, kill: ['t-2', 't-1'], reasons: ['ScaleDown', 'ScaleDown'], step: 'ScaleDown' } },
  { name: 'configChangeMakesEveryTaskOld', app: app({ instances: 3, generation: 2, cmd: 'httpd -v2', min: 1, over: 0 }), tasks: () => many(app(), 't', 3, { hash: OLD }),
    expect: { launch: 1, kill: [], step: 'Upgrade', done: false, updated: 0, progress: 0 } },
  { name: 'theHashDecidesOverTheVersion', app: app({ instances: 3, generation: 2, cmd: 'httpd -v2', min: 1, over: 0 }), tasks: () => many(app(), 't', 3, { hash: OLD, version: 2 }),
    expect: { launch: 1, kill: [], step: 'Upgrade', updated: 0 } },
  { name: 'newTasksOfTheChangedConfigReplaceOldOnes', app: app({ instances: 2, generation: 2, cmd: 'httpd -v2', min: 1, over: 0 }),
    tasks: (a) => [...many(app(), 'old', 2, { hash: OLD }), task(a, 'new', { hash: cur(a), version: 2, created: 5 })],
    expect: { launch: 0, kill: ['old-1'], reasons: ['Upgrade'], step: 'Upgrade', updated: 1, progress: 1 } },
  { name: 'aTaskWithNoVersionNorHashIsCurrent', app: app({ instances: 2, generation: 2 }), tasks: (a) => many(a, 't', 2, { version: null }),
    expect: { launch: 0, kill: [], step: 'Steady', done: true, updated: 2 } },
  { name: 'aTaskWithNoVersionButAnotherHashIsOld', app: app({ instances: 2, generation: 2, cmd: 'httpd -v2', min: 1, over: 0 }), tasks: () => many(app(), 't', 2, { version: null, hash: OLD }),
    expect: { launch: 1, kill: [], step: 'Upgrade', updated: 0 } },
  { name: 'aTaskWithNoHashOfAnOlderGenerationIsOld', app: app({ instances: 2, generation: 3, min: 1, over: 0 }), tasks: (a) => many(a, 't', 2, { version: 2 }),
    expect: { launch: 1, kill: [], step: 'Upgrade', updated: 0 } },
  { name: 'restartedAtReplacesEveryTask', app: app({ instances: 2, generation: 2, restartedAt: '2026-01-01T00:00:00Z', min: 1, over: 0 }), tasks: () => many(app(), 't', 2, { hash: OLD }),
    expect: { launch: 1, kill: [], step: 'Upgrade', updated: 0 } },
  { name: 'restartedAtUpgradeIsDoneOnceOnlyNewTasksRun', app: app({ instances: 2, generation: 2, restartedAt: '2026-01-01T00:00:00Z' }), tasks: (a) => many(a, 'n', 2, { hash: cur(a), version: 2 }),
    expect: { launch: 0, kill: [], step: 'Steady', done: true } },
];

// A task whose kill was sent is KILLING, whatever the agent last reported.
const killsSent: Row[] = [
  { name: 'aTaskWhoseKillWasSentIsReplacedNotKilledAgain', app: app({ instances: 2 }), tasks: (a) => many(a, 't', 2, { hash: cur(a) }), killing: ['t-1'],
    expect: { launch: 1, kill: [], step: 'ScaleUp', updated: 1 } },
  { name: 'aKillSentUsesTheUnhealthyBudget', app: app({ instances: 4, min: 0.75, checks: true }),
    tasks: (a) => [...many(a, 'sick', 3, { healthy: false }), task(a, 'ok')], killing: ['sick-0'], expect: { launch: 1, kill: [] } },
  { name: 'aKillSentOfAnOldTaskIsNotSentAgain', app: app({ instances: 2, generation: 2, cmd: 'httpd -v2', min: 0, over: 0 }), tasks: () => many(app(), 't', 2, { hash: OLD }), killing: ['t-0'],
    expect: { launch: 0, kill: ['t-1'], reasons: ['Upgrade'] } },
  { name: 'anEndedTaskIsEndedEvenIfItsKillWasSent', app: app({ instances: 2 }), tasks: (a) => [task(a, 't-0', { state: 'KILLED' }), task(a, 't-1')], killing: ['t-0'],
    expect: { launch: 1, kill: [], updated: 1 } },
  { name: 'deletionDoesNotKillTwice', app: app({ deleting: true }), tasks: (a) => many(a, 't', 3), killing: ['t-0'], expect: { kill: ['t-1', 't-2'], done: false } },
];

/** An UNREACHABLE task (its agent away since `secondsAgo` before T0). */
function away(t: Task, secondsAgo: number): Task {
  return { ...t, status: { ...t.status, state: 'UNREACHABLE', unreachableSince: new Date(T0 - secondsAgo * 1000).toISOString() } };
}

// The fault suite's over-capacity finding: an App of 10 (min 0.5, over 0.2: ceiling 12) rolling v2 → v3. The
// kills of the last old tasks were sent and, in the next sync, the App counted as no longer upgrading: the steady
// diff launched `instances − fresh` beside the old tasks still running (KILLING), and 13 were live at once.
const chaosApp = (): App => app({ instances: 10, generation: 3, cmd: 'httpd -v3', min: 0.5, over: 0.2, checks: true, unreachable: { inactiveAfterSeconds: 300, expungeAfterSeconds: 600 } });
const lastKillsSent: Row[] = [
  {
    // Seen as 3 KILLING + 7 RUNNING + 3 STAGING: 3 old kills sent in one sync, their agents not yet done.
    name: 'theUpgradeLastsWhileKilledOldTasksStillRun', app: chaosApp(),
    tasks: (a) => [...many(a, 'new', 7, { hash: cur(a), version: 3, created: 10 }), ...many(app(), 'old', 3, { hash: OLD, version: 2 })],
    killing: ['old-0', 'old-1', 'old-2'],
    expect: { launch: 2, kill: [], step: 'Upgrade', done: false },
  },
  {
    // The same as the agent reports it (KILLING) after a leader change, when the new term's kill set is empty.
    name: 'theUpgradeLastsWhileOldTasksReportKilling', app: chaosApp(),
    tasks: (a) => [...many(a, 'new', 7, { hash: cur(a), version: 3, created: 10 }), ...many(app(), 'old', 3, { hash: OLD, version: 2, state: 'KILLING' })],
    expect: { launch: 2, kill: [], step: 'Upgrade', done: false },
  },
  {
    // Seen as 4 UNREACHABLE + 7 RUNNING + 2 STAGING: old tasks killed on an agent that then went away (their
    // kill cannot complete; they stay live until inactiveAfterSeconds), 8 new ones (one of them on that agent).
    name: 'oldTasksKilledOnAnAgentThatWentAwayStillCount', app: chaosApp(),
    tasks: (a) => [
      ...many(a, 'new', 7, { hash: cur(a), version: 3, created: 10 }), away(task(a, 'new-away', { hash: cur(a), version: 3, created: 10 }), 1),
      ...many(app(), 'old', 3, { hash: OLD, version: 2 }).map((t) => away(t, 1)), task(app(), 'old-last', { hash: OLD, version: 2 }),
    ],
    killing: ['old-0', 'old-1', 'old-2', 'old-last'],
    expect: { launch: 0, kill: [], step: 'Upgrade', done: false },
  },
  {
    // Once the old tasks have ended the rest launches: the upgrade is done when the new ones are available.
    name: 'theRestLaunchesOnceTheKilledOldTasksEnded', app: chaosApp(),
    tasks: (a) => [...many(a, 'new', 7, { hash: cur(a), version: 3, created: 10 }), ...many(app(), 'old', 3, { hash: OLD, version: 2, state: 'KILLED' })],
    killing: ['old-0'],
    expect: { launch: 3, kill: [], step: 'ScaleUp' },
  },
];

// tasksHealthy counts tasks with health checks that pass, as Marathon's does; available is separate.
const counting: Row[] = [
  { name: 'tasksWithoutHealthChecksAreNotCountedHealthy', app: app(), tasks: (a) => many(a, 't', 3), expect: { healthy: 0, done: true } },
  { name: 'tasksWithPassingHealthChecksAreHealthy', app: app({ checks: true }), tasks: (a) => [...many(a, 't', 2), task(a, 'sick', { healthy: false })], expect: { healthy: 2 } },
];

describe('reconcileApp', () => {
  describe('scaling', () => it.each(scaling.map((r) => [r.name, r] as const))('%s', (_n, r) => check(r)));
  describe('versions', () => it.each(versions.map((r) => [r.name, r] as const))('%s', (_n, r) => check(r)));
  describe('kills sent', () => it.each(killsSent.map((r) => [r.name, r] as const))('%s', (_n, r) => check(r)));
  describe('last old kills sent (fault suite: over capacity)', () => it.each(lastKillsSent.map((r) => [r.name, r] as const))('%s', (_n, r) => check(r)));
  describe('counts', () => it.each(counting.map((r) => [r.name, r] as const))('%s', (_n, r) => check(r)));
  describe('rolling upgrades', () => it.each(upgrades.map((r) => [r.name, r] as const))('%s', (_n, r) => check(r)));
  describe('failures and deletion', () => it.each(failures.map((r) => [r.name, r] as const))('%s', (_n, r) => check(r)));

  it('reportsCountsAndProgress', () => {
    const a = app({ instances: 4, generation: 2, checks: true, min: 1, over: 0 });
    const plan = reconcileApp({
      app: a, configHash: configHash(a), killing: new Set(), now: T0, failures: { count: 0 }, inflight: 0,
      tasks: [task(a, 'o1'), task(a, 'o2', { healthy: false }), task(a, 'n1', { version: 2 }), task(a, 'n2', { version: 2, state: 'STAGING' }), task(a, 'x', { state: 'FAILED' })],
    });
    expect(plan.counts).toEqual({ desired: 4, running: 3, healthy: 2, staged: 1, unhealthy: 1, updated: 2, available: 2 });
    expect(plan.deployment).toEqual({ targetVersion: 2, step: 'Upgrade', progress: { updated: 1, total: 4 }, done: false });
  });

  it('decidesTheVersionAndKillingItselfFromTasksAsStored', () => {
    // A scale to 4 (generation 2, same config) while one kill is on its way: nothing is replaced, the dying task is not an instance.
    const a = app({ instances: 4, generation: 2, checks: true });
    const h = configHash(a);
    const plan = reconcileApp({
      app: a, configHash: h, killing: new Set(['t-2']), now: T0, failures: { count: 0 }, inflight: 0, tasks: many(a, 't', 3, { hash: h, version: 1 }),
    });
    expect(plan.counts).toMatchObject({ running: 2, healthy: 2, updated: 2, available: 2 });
    expect(plan).toMatchObject({ launch: 2, kill: [], deployment: { step: 'ScaleUp', progress: { updated: 2, total: 4 }, done: false } });
  });
});


/**
 * Steps an App from N old tasks to the new version: launched ones appear STAGING and become RUNNING and healthy
 * on a later step (70% chance per step). A killed task vanishes at once, or with `slowKills` stays live (its kill
 * sent, its agent not done) for a random number of steps, as on a loaded machine or an agent that went away.
 * Returns the number of steps taken.
 */
function simulateUpgrade(n: number, min: number, over: number, rnd: () => number, slowKills = false): number {
  const a = app({ instances: n, generation: 2, min, over, checks: true });
  const minAvailable = Math.ceil(n * min - 1e-9);
  const surge = Math.floor(n * over + 1e-9);
  const maxTotal = n + (surge === 0 && minAvailable >= n ? 1 : surge);
  let tasks = many(a, 'old', n);
  const killing = new Set<string>();
  let launched = 0;
  const limit = 10 * n + 20 + (slowKills ? 10 * n : 0);
  for (let step = 0; step < limit; step++) {
    const plan = reconcileApp({ app: a, configHash: configHash(a), tasks, killing, now: T0 + step * 1000, failures: { count: 0 }, inflight: 0 });
    if (plan.deployment.done) {
      expect(tasks.every((t) => t.metadata.ownerReferences?.[0]?.version === 2)).toBe(true);
      expect(tasks.filter((t) => isAvailable(t, a))).toHaveLength(n);
      return step;
    }
    // Killed tasks still exist while the launches start: together they must fit under the ceiling.
    expect(tasks.length + plan.launch).toBeLessThanOrEqual(maxTotal);
    for (const k of plan.kill) {
      expect(killing.has(k.task)).toBe(false); // a kill is sent once
      killing.add(k.task);
    }
    const survivors = tasks.filter((t) => !killing.has(t.metadata.name));
    expect(survivors.filter((t) => isAvailable(t, a)).length).toBeGreaterThanOrEqual(minAvailable);
    const ended = new Set([...killing].filter(() => !slowKills || rnd() < 0.4));
    for (const name of ended) killing.delete(name);
    tasks = tasks.filter((t) => !ended.has(t.metadata.name))
      .map((t) => (t.status.state === 'STAGING' && rnd() < 0.7 ? task(a, t.metadata.name, { version: 2, created: 100 }) : t));
    for (let i = 0; i < plan.launch; i++) tasks.push(task(a, `new-${launched++}`, { version: 2, state: 'STAGING', created: 100 + step }));
  }
  throw new Error(`upgrade of ${n} instances (min ${min}, over ${over}${slowKills ? ', slow kills' : ''}) did not converge in ${limit} steps`);
}

describe('rolling upgrade simulation', () => {
  const mins = [0, 0.25, 0.5, 0.7, 0.75, 0.9, 1];
  const overs = [0, 0.1, 0.3, 0.5, 1];

  it('keepsCapacityBoundsAndConvergesForEveryStrategyGrid', () => {
    for (let n = 1; n <= 8; n++)
      for (const min of mins) for (const over of overs) simulateUpgrade(n, min, over, seededRandom(n * 1000 + min * 100 + over * 10));
  });

  it.each([false, true])('keepsCapacityBoundsAndConvergesForRandomStrategies (slow kills: %s)', (slowKills) => {
    const rnd = seededRandom(42);
    for (let i = 0; i < 300; i++) {
      const n = 1 + Math.floor(rnd() * 12);
      const min = Math.round(rnd() * 100) / 100;
      const over = Math.round(rnd() * 100) / 100;
      const seed = Math.floor(rnd() * 2 ** 31);
      try {
        simulateUpgrade(n, min, over, seededRandom(seed), slowKills);
      } catch (err) {
        throw new Error(`replay: n=${n} min=${min} over=${over} seed=${seed} slowKills=${slowKills}: ${(err as Error).message}`);
      }
    }
  });

  it('keepsCapacityBoundsWhenKillsTakeTime', () => {
    // Kills that take several steps leave old tasks KILLING when the last old kills are sent (the fault suite's finding).
    for (let n = 1; n <= 12; n++)
      for (const min of mins) for (const over of overs) simulateUpgrade(n, min, over, seededRandom(n * 1000 + min * 100 + over * 10 + 7), true);
  });
});

describe('backoffUntil', () => {
  const marathon = app({ instances: 1 }); // 1 s × 1.15ⁿ, at most 300 s
  const at = 1_000_000;
  it.each([
    ['no failure', { count: 0 }, undefined],
    ['one FAILED: 1 s', { count: 1, lastFailureAt: at, lastState: 'FAILED' }, at + 1000],
    ['three FAILED: 1.15² s', { count: 3, lastFailureAt: at, lastState: 'FAILED' }, at + 1000 * 1.15 ** 2],
    ['one ERROR: at least 10 s', { count: 1, lastFailureAt: at, lastState: 'ERROR' }, at + ERROR_BACKOFF_SECONDS * 1000],
    ['three ERROR: 10 s doubled twice', { count: 3, lastFailureAt: at, lastState: 'ERROR' }, at + 40_000],
    ['many ERROR: capped at maxLaunchDelaySeconds', { count: 20, lastFailureAt: at, lastState: 'ERROR' }, at + 300_000],
    ['ERROR, but FAILED last: the App\'s own backoff', { count: 3, lastFailureAt: at, lastState: 'FAILED' }, at + 1000 * 1.15 ** 2],
  ])('%s', (_name, failures, want) => {
    const got = backoffUntil(marathon, failures);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toBeCloseTo(want, 6);
  });

  it('launches a task that always ends in ERROR 3 times in its first minute', () => {
    let now = 0;
    let launches = 0;
    let failures = { count: 0 } as { count: number; lastFailureAt?: number; lastState?: string };
    while (now < 60_000) {
      const until = backoffUntil(marathon, failures);
      if (until !== undefined && until > now) {
        now = until;
        continue;
      }
      launches++;
      now += 50; // the start fails at once
      failures = { count: failures.count + 1, lastFailureAt: now, lastState: 'ERROR' };
    }
    expect(launches).toBe(3); // at 0 s, ~10 s, ~30 s; the next at ~70 s
  });
});

describe('unreachable tasks (Marathon unreachableStrategy)', () => {
  const unreachable = (a: App, name: string, sinceSecondsBeforeT0: number): Task => {
    const t = task(a, name, { hash: configHash(a) });
    return { ...t, status: { ...t.status, state: 'UNREACHABLE', unreachableSince: new Date(T0 - sinceSecondsBeforeT0 * 1000).toISOString() } };
  };
  const plan = (a: App, tasks: Task[]) => reconcileApp({ app: a, configHash: configHash(a), tasks, killing: new Set(), now: T0, failures: { count: 0 }, inflight: 0 });

  it('countsAnUnreachableTaskUntilInactiveAfterSecondsThenReplacesItWithoutKillingIt', () => {
    const a = app({ instances: 2, unreachable: { inactiveAfterSeconds: 60, expungeAfterSeconds: 600 } });
    const young = plan(a, [task(a, 'ok', { hash: configHash(a) }), unreachable(a, 'away', 10)]);
    expect({ launch: young.launch, kill: young.kill, wakeAt: young.wakeAt }).toEqual({ launch: 0, kill: [], wakeAt: T0 + 50_000 });
    const old = plan(a, [task(a, 'ok', { hash: configHash(a) }), unreachable(a, 'away', 60)]);
    expect({ launch: old.launch, kill: old.kill, wakeAt: old.wakeAt }).toEqual({ launch: 1, kill: [], wakeAt: undefined });
  });

  it('replacesAtOnceWithTheDefaultStrategy', () => {
    const a = app({ instances: 1 });
    expect(plan(a, [unreachable(a, 'away', 0)])).toMatchObject({ launch: 1, kill: [] });
  });

  it('killsTheReplacementWhenTheOriginalComesBack', () => {
    // The original is RUNNING again (its agent returned before expunge); YoungestFirst kills the replacement.
    const a = app({ instances: 1 });
    const back = task(a, 'original', { hash: configHash(a), created: 0 });
    const replacement = task(a, 'replacement', { hash: configHash(a), created: 30 });
    expect(plan(a, [back, replacement])).toMatchObject({ launch: 0, kill: [{ task: 'replacement', reason: 'ScaleDown' }] });
  });
});
