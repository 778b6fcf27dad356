/**
 * The App controller's decision: a pure diff from one App and its tasks to a plan of launches and kills
 * (Marathon semantics). No I/O, no clock: the controller shell reads state, passes
 * `now`, and applies the plan.
 *
 * Which tasks are of the current version is decided here, from what each task recorded when it was launched: the
 * hash of its task template (`shoal.dev/config-hash`) against the App's `configHash`. A new generation that only
 * scales or tunes the controller keeps the hash, so it replaces nothing (Marathon's scale); any change to what the
 * tasks run changes it, and every task of another hash is old, whatever generation it was launched for. A task
 * without a hash (made by something else) is old when its recorded generation is older than the App's; a task
 * with neither counts as current (never kill what we cannot date).
 *
 * A task whose kill was sent (`killing`) is KILLING whatever its agent last reported: the kill is on its way.
 *
 * Choices made where the issue is silent:
 * - KILLING tasks are already on their way out: they are neither killed again nor counted as instances, but they
 *   still hold resources, so they count toward the over-capacity ceiling and toward the unhealthy-kill budget.
 * - Inflight launches lower `launch` but never cause kills: a running task is not killed for one not yet seen.
 * - minimumHealthCapacity and maximumOverCapacity that leave no room to launch nor to kill (e.g. 1 and 0) get one
 *   extra instance of surge, so the upgrade starts one new task, waits for it, then kills one old one.
 * - Backoff applies to every launch of the App (Marathon's launch-queue delay); kills still happen during it.
 *   `failures.count > 0` without `lastFailureAt` cannot be anchored in time and delays nothing.
 * - Kills of tasks in the same reconcile still count as non-terminal: their resources are freed only once the
 *   agent reports them terminal, so with maximumOverCapacity 0 the replacements come in the next reconcile.
 * - An upgrade is not over when the last old task's kill is sent but when no old task is live (Marathon's
 *   replace step waits for the old instances to be terminal): until then launches stay under the
 *   maximumOverCapacity ceiling, which counts the old KILLING tasks.
 */
import type { App, Deployment, Task } from '../../api/types.generated';
import { isTerminal } from '../../api/tasks';
import { isCurrentConfig } from './template';

/** Why a task is killed. */
export type KillReason = 'ScaleDown' | 'Upgrade' | 'Unhealthy' | 'AppDeleted';

/** The deployment step an App is in, for status and logs. */
export type DeploymentStep = NonNullable<Deployment['step']>;

/** Instance counts for App status (`shoal get apps`). */
export interface AppCounts {
  desired: number;
  running: number;
  /** RUNNING tasks with health checks that pass (Marathon's tasksHealthy: tasks without checks are not counted). */
  healthy: number;
  staged: number;
  unhealthy: number;
  /** Non-terminal tasks of the current version (UP-TO-DATE). */
  updated: number;
  available: number;
}

/** What the controller should do now for one App. */
export interface AppPlan {
  /** New instances of the current version to launch now. */
  launch: number;
  kill: Array<{ task: string; reason: KillReason }>;
  /** Backoff: no launch before this epoch ms. */
  delayUntil?: number;
  /** When an UNREACHABLE task becomes inactive (it is then replaced): sync again at this epoch ms. */
  wakeAt?: number;
  deployment: { targetVersion: number; step: DeploymentStep; progress: { updated: number; total: number }; done: boolean };
  counts: AppCounts;
}

/** Everything `reconcileApp` reads. */
export interface AppReconcileInput {
  app: App;
  /** `configHash(app)` (template.ts): tasks launched from another template are of an old version. */
  configHash: string;
  /** This App's tasks, in any state, as stored (their recorded config hash and version decide which are current). */
  tasks: Task[];
  /** Names of tasks whose kill was sent and not yet seen ended: KILLING, whatever their reported state. */
  killing: ReadonlySet<string>;
  /** Epoch ms. */
  now: number;
  /** Consecutive FAILED/FINISHED/ERROR tasks, tracked by the caller. */
  failures: { count: number; lastFailureAt?: number; /** The state the newest failed task ended in. */ lastState?: string };
  /** Launches bound but not yet visible as Tasks. */
  inflight: number;
}

type Kill = AppPlan['kill'][number];

// Products like 10 × 0.7 are 7.000000000000001 in floating point; without the epsilon ceil would say 8.
const EPS = 1e-9;
const ceilShare = (n: number, share: number): number => Math.ceil(n * share - EPS);
const floorShare = (n: number, share: number): number => Math.floor(n * share + EPS);

/** Whether the task has health checks (its own, else the App's). */
function hasHealthChecks(task: Task, app: App): boolean {
  return (task.spec?.healthChecks ?? app.spec.healthChecks).length > 0;
}

/** RUNNING and not failing a health check: a task without checks is healthy when running (availability's view). */
export function isHealthy(task: Task, app: App): boolean {
  if (task.status?.state !== 'RUNNING') return false;
  return !hasHealthChecks(task, app) || task.status.healthy === true;
}

/** RUNNING with health checks that pass: what Marathon's tasksHealthy counts (never a task without checks). */
export function isCheckedHealthy(task: Task, app: App): boolean {
  return task.status?.state === 'RUNNING' && hasHealthChecks(task, app) && task.status.healthy === true;
}

/** Healthy and, if it has readiness checks, ready: may take traffic and replace an old instance. */
export function isAvailable(task: Task, app: App): boolean {
  const checks = task.spec?.readinessChecks ?? app.spec.readinessChecks;
  return isHealthy(task, app) && (checks.length === 0 || task.status.ready === true);
}

/** RUNNING with health checks reporting failure: the candidates for an Unhealthy kill. */
export function isUnhealthy(task: Task, app: App): boolean {
  return task.status?.state === 'RUNNING' && hasHealthChecks(task, app) && task.status.healthy === false;
}

/** The upgrade budget of an App: the floor on available tasks and the ceiling on non-terminal ones. */
export function upgradeBounds(app: App): { minAvailable: number; maxTotal: number } {
  const n = app.spec.instances;
  const { minimumHealthCapacity, maximumOverCapacity } = app.spec.upgradeStrategy;
  const minAvailable = ceilShare(n, minimumHealthCapacity);
  let surge = floorShare(n, maximumOverCapacity);
  // No room to launch and none to kill would deadlock the upgrade: allow one extra instance.
  if (surge === 0 && n > 0 && minAvailable >= n) surge = 1;
  return { minAvailable, maxTotal: n + surge };
}

/** Backoff end for the given failures, or undefined when launches may go ahead. */
export function backoffUntil(app: App, failures: AppReconcileInput['failures']): number | undefined {
  if (failures.count <= 0 || failures.lastFailureAt === undefined) return undefined;
  const { seconds, factor, maxLaunchDelaySeconds } = app.spec.backoff;
  let delay = seconds * Math.pow(factor, failures.count - 1);
  // A start that can never succeed (ERROR: the image is not on the node, the runtime refused the
  // spec) fails in milliseconds, so Marathon's 1 s × 1.15ⁿ would relaunch it ~16 times a minute.
  // It waits at least as kubelet's image-pull backoff does: 10 s, doubling, up to the App's maximum.
  if (failures.lastState === 'ERROR') delay = Math.max(delay, ERROR_BACKOFF_SECONDS * Math.pow(2, failures.count - 1));
  return failures.lastFailureAt + Math.min(delay, maxLaunchDelaySeconds) * 1000;
}

/** The least backoff after a task ended in ERROR, doubled per consecutive failure (see {@link backoffUntil}). */
export const ERROR_BACKOFF_SECONDS = 10;

/**
 * Tasks in the order they should be killed: not running first, then running but not available (Marathon kills
 * what serves nobody before what serves traffic), then by killSelection, then by name so the order is stable.
 */
export function killOrder(tasks: Task[], app: App): Task[] {
  const youngestFirst = app.spec.killSelection !== 'OldestFirst';
  // Keys computed once per task, not per comparison: a sync orders every task of the App.
  const keyed = tasks.map((t) => ({
    t,
    rank: t.status?.state !== 'RUNNING' ? 0 : isAvailable(t, app) ? 2 : 1,
    created: Date.parse(t.metadata.creationTimestamp ?? '') || 0,
  }));
  keyed.sort(
    (a, b) =>
      a.rank - b.rank ||
      (youngestFirst ? b.created - a.created : a.created - b.created) ||
      (a.t.metadata.name < b.t.metadata.name ? -1 : a.t.metadata.name > b.t.metadata.name ? 1 : 0),
  );
  return keyed.map((k) => k.t);
}

/** Whether a task is of the App's current version (see the module comment). */
type IsCurrent = (task: Task) => boolean;

/** The task as this reconcile sees it: KILLING once its kill was sent, until it ends. */
function asSeen(task: Task, killing: ReadonlySet<string>): Task {
  if (!killing.has(task.metadata.name) || isTerminal(task) || task.status?.state === 'KILLING') return task;
  return { ...task, status: { ...task.status, state: 'KILLING' } };
}

/** Reconciles one App: see the module comment for the semantics. */
export function reconcileApp(input: AppReconcileInput): AppPlan {
  const { app } = input;
  const isCurrent: IsCurrent = (t) => isCurrentConfig(t, app, input.configHash);
  // An UNREACHABLE task counts as running until its App's inactiveAfterSeconds pass; then it is
  // inactive: not counted (a replacement launches), not killed (its agent is away). If it comes
  // back (RUNNING again) before it is expunged, it counts again and the surplus is killed.
  const inactive = new Set(input.tasks.filter((t) => inactiveSince(t, app) <= input.now).map((t) => t.metadata.name));
  const live = input.tasks.filter((t) => !isTerminal(t) && !inactive.has(t.metadata.name)).map((t) => asSeen(t, input.killing));
  const counts = countTasks(app, live, isCurrent);
  if (app.metadata.deletionTimestamp) return deletionPlan(app, live, isCurrent, counts);

  const active = live.filter((t) => t.status?.state !== 'KILLING');
  const old = active.filter((t) => !isCurrent(t));
  const fresh = active.filter(isCurrent);
  // The upgrade lasts until no task of an old version is live, KILLING ones included: they still
  // run until their agent reports them ended. Deciding on the active ones only ended it as soon as
  // the last old kills were sent, and the steady diff then launched `instances − fresh` beside
  // them, over maxOverCapacity (13 live against 12 in the fault suite).
  const upgrading = live.some((t) => !isCurrent(t));
  const budget = unhealthyBudget(app, live);
  const diff = upgrading ? upgradeDiff(input, live, old, fresh, budget) : steadyDiff(input, fresh, budget);

  const delayUntil = backoffUntil(app, input.failures);
  const delayed = delayUntil !== undefined && input.now < delayUntil && diff.launch > 0;
  const plan: AppPlan = {
    launch: delayed ? 0 : diff.launch,
    kill: diff.kill,
    deployment: deployment(app, live, isCurrent, counts, step(upgrading, delayed, diff)),
    counts,
  };
  if (delayed) plan.delayUntil = delayUntil;
  const becomesInactive = input.tasks.map((t) => inactiveSince(t, app)).filter((at) => at > input.now && Number.isFinite(at));
  if (becomesInactive.length) plan.wakeAt = Math.min(...becomesInactive);
  return plan;
}

/** When an UNREACHABLE task stops counting (epoch ms); Infinity for any other task. */
export function inactiveSince(task: Task, app: App): number {
  if (task.status?.state !== 'UNREACHABLE') return Infinity;
  const since = Date.parse(task.status.unreachableSince ?? '');
  if (!Number.isFinite(since)) return -Infinity; // unknown since when: inactive now
  return since + (app.spec.unreachableStrategy?.inactiveAfterSeconds ?? 0) * 1000;
}

/** How many RUNNING-but-unhealthy tasks may be killed now: the upgrade's share, less what is already dying. */
function unhealthyBudget(app: App, live: Task[]): number {
  const n = app.spec.instances;
  const share = Math.max(1, n - upgradeBounds(app).minAvailable);
  return Math.max(0, share - live.filter((t) => t.status?.state === 'KILLING').length);
}

/** Steady state: scale to `instances`, replace unhealthy tasks within budget. */
function steadyDiff(input: AppReconcileInput, fresh: Task[], budget: number): { launch: number; kill: Kill[] } {
  const { app } = input;
  const n = app.spec.instances;
  const ordered = killOrder(fresh, app);
  const surplus = Math.max(0, fresh.length - n);
  const kill: Kill[] = ordered.slice(0, surplus).map((t) => ({ task: t.metadata.name, reason: 'ScaleDown' }));
  const unhealthy = killUnhealthy(ordered.slice(surplus), app, budget);
  kill.push(...unhealthy);
  const kept = fresh.length - surplus - unhealthy.length;
  return { launch: Math.max(0, n - kept - input.inflight), kill };
}

/** Kills up to `budget` unhealthy tasks, in kill order. */
function killUnhealthy(ordered: Task[], app: App, budget: number): Kill[] {
  return ordered
    .filter((t) => isUnhealthy(t, app))
    .slice(0, budget)
    .map((t) => ({ task: t.metadata.name, reason: 'Unhealthy' }));
}

/**
 * Rolling upgrade: old tasks that serve nobody go first; old available ones only while availability stays at
 * minimumHealthCapacity; new tasks launch up to the maximumOverCapacity ceiling.
 */
function upgradeDiff(
  input: AppReconcileInput,
  live: Task[],
  old: Task[],
  fresh: Task[],
  budget: number,
): { launch: number; kill: Kill[] } {
  const { app } = input;
  const n = app.spec.instances;
  const { minAvailable, maxTotal } = upgradeBounds(app);
  const kill: Kill[] = [];
  let unhealthyLeft = budget;
  for (const t of killOrder(old, app).filter((t) => !isAvailable(t, app))) {
    // Unhealthy old tasks share the budget: a host-wide health flap must not take out every instance at once.
    if (isUnhealthy(t, app)) {
      if (unhealthyLeft === 0) continue;
      unhealthyLeft--;
    }
    kill.push({ task: t.metadata.name, reason: 'Upgrade' });
  }
  const available = live.filter((t) => isAvailable(t, app)).length;
  const oldAvailable = killOrder(old, app).filter((t) => isAvailable(t, app));
  const room = Math.max(0, available - minAvailable);
  kill.push(...oldAvailable.slice(0, room).map((t): Kill => ({ task: t.metadata.name, reason: 'Upgrade' })));

  const orderedFresh = killOrder(fresh, app);
  const unhealthy = killUnhealthy(orderedFresh, app, unhealthyLeft);
  const keptFresh = orderedFresh.filter((t) => !unhealthy.some((k) => k.task === t.metadata.name));
  const surplus = keptFresh.slice(0, Math.max(0, keptFresh.length - n));
  kill.push(...unhealthy, ...surplus.map((t): Kill => ({ task: t.metadata.name, reason: 'ScaleDown' })));

  const needed = n - (keptFresh.length - surplus.length) - input.inflight;
  // Tasks being killed still hold their resources, so they count against the ceiling until they are gone.
  const headroom = maxTotal - live.length - input.inflight;
  return { launch: Math.max(0, Math.min(needed, headroom)), kill };
}

/** Deleting: kill everything still running (KILLING tasks are already on their way), launch nothing. */
function deletionPlan(app: App, live: Task[], isCurrent: IsCurrent, counts: AppCounts): AppPlan {
  const kill = live
    .filter((t) => t.status?.state !== 'KILLING')
    .map((t): Kill => ({ task: t.metadata.name, reason: 'AppDeleted' }));
  const d = deployment(app, live, isCurrent, counts, 'Deleting');
  return { launch: 0, kill, counts, deployment: { ...d, done: live.length === 0 } };
}

/** The most telling step: deletion, a backoff holding launches back, upgrade, then scaling. */
function step(upgrading: boolean, delayed: boolean, diff: { launch: number; kill: Kill[] }): DeploymentStep {
  if (delayed) return 'Backoff';
  if (upgrading) return 'Upgrade';
  if (diff.launch > 0) return 'ScaleUp';
  if (diff.kill.some((k) => k.reason === 'ScaleDown')) return 'ScaleDown';
  return 'Steady';
}

/** Deployment status; progress counts new-version tasks that are available, as `shoal rollout status` shows. */
function deployment(app: App, live: Task[], isCurrent: IsCurrent, counts: AppCounts, s: DeploymentStep): AppPlan['deployment'] {
  const n = app.spec.instances;
  const oldLeft = live.some((t) => !isCurrent(t));
  const updatedAvailable = live.filter((t) => isCurrent(t) && isAvailable(t, app)).length;
  return {
    targetVersion: app.metadata.generation ?? 1,
    step: s,
    progress: { updated: Math.min(n, updatedAvailable), total: n },
    done: !oldLeft && counts.available >= n,
  };
}

/** Status counts over non-terminal tasks; KILLING ones are not UP-TO-DATE since they are leaving. */
function countTasks(app: App, live: Task[], isCurrent: IsCurrent): AppCounts {
  const state = (s: string) => live.filter((t) => t.status?.state === s).length;
  return {
    desired: app.spec.instances,
    running: state('RUNNING'),
    healthy: live.filter((t) => isCheckedHealthy(t, app)).length,
    staged: state('STAGING') + state('STARTING'),
    unhealthy: live.filter((t) => isUnhealthy(t, app)).length,
    updated: live.filter((t) => t.status?.state !== 'KILLING' && isCurrent(t)).length,
    available: live.filter((t) => isAvailable(t, app)).length,
  };
}
