/**
 * App status from a reconcile plan, and the deployment bookkeeping around it: when a deployment
 * starts, progresses, succeeds or misses its progress deadline. Pure: the controller passes the
 * previous status and `now`, and records the events this returns.
 */
import type { App, AppStatus, Condition, Deployment } from '../../api/types.generated';
import { isTerminal } from '../../api/tasks';
import { jsonEqual } from '../../util/json';
import type { AppPlan } from './reconcile';
import { upgradeBounds } from './reconcile';

export interface StatusEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface StatusInput {
  app: App;
  plan: AppPlan;
  /** Epoch ms. */
  now: number;
  /** The offer loop's summary while instances wait for offers ("0/3 agents available: ..."). */
  pendingReason?: string;
}

/** The App's new status and the events its changes deserve. */
export function appStatus({ app, plan, now, pendingReason }: StatusInput): { status: AppStatus; events: StatusEvent[] } {
  const prev = app.status ?? {};
  const events: StatusEvent[] = [];
  const deployment = nextDeployment(app, plan, now, events);
  const c = plan.counts;
  const status: AppStatus = {
    observedGeneration: app.metadata.generation ?? 1,
    instances: c.desired,
    tasksStaged: c.staged,
    tasksRunning: c.running,
    tasksHealthy: c.healthy,
    tasksUnhealthy: c.unhealthy,
    updatedInstances: c.updated,
    availableInstances: c.available,
    ...(pendingReason ? { pendingReason } : {}),
    deployment,
    conditions: conditions(app, plan, deployment, prev.conditions ?? [], now),
  };
  if (pendingReason && pendingReason !== prev.pendingReason) events.push({ type: 'Warning', reason: 'FailedScheduling', message: pendingReason });
  return { status, events };
}

/** The deployment to `app`'s generation: a new one when the generation moved, else the previous one advanced. */
function nextDeployment(app: App, plan: AppPlan, now: number, events: StatusEvent[]): Deployment {
  const at = new Date(now).toISOString();
  const target = app.metadata.generation ?? 1;
  const prev = app.status?.deployment;
  const { updated, total } = plan.deployment.progress;
  let d: Deployment;
  if (!prev || prev.targetVersion !== target) {
    d = { id: `${(app.metadata.uid ?? 'app').slice(0, 8)}-${target}`, targetVersion: target, state: 'Running', startedAt: at, lastProgressAt: at, updated, total };
    events.push({ type: 'Normal', reason: 'DeploymentStarted', message: `rolling out version ${target}: ${total} instance(s)` });
  } else {
    d = { ...prev, total };
    if (updated > (prev.updated ?? 0) || total !== prev.total) d.lastProgressAt = at;
    d.updated = updated;
  }
  d.step = plan.deployment.step;
  if (app.metadata.deletionTimestamp) return d;
  if (plan.deployment.done) {
    if (d.state !== 'Succeeded') {
      d.state = 'Succeeded';
      d.finishedAt = at;
      d.message = `version ${target} available: ${updated}/${total}`;
      events.push({ type: 'Normal', reason: 'DeploymentSucceeded', message: d.message });
    }
    return d;
  }
  if (d.state === 'Succeeded') {
    // Done once, then an instance failed: the deployment stays done; Available tells the rest.
    return d;
  }
  const deadlineMs = app.spec.progressDeadlineSeconds * 1000;
  const stalledMs = now - Date.parse(d.lastProgressAt ?? d.startedAt ?? at);
  if (stalledMs > deadlineMs) {
    if (d.state !== 'Failed') {
      d.state = 'Failed';
      d.message = `no progress for ${app.spec.progressDeadlineSeconds}s: ${updated}/${total} instances of version ${target} available`;
      events.push({ type: 'Warning', reason: 'DeploymentFailed', message: d.message });
    }
  } else {
    if (d.state === 'Failed') events.push({ type: 'Normal', reason: 'DeploymentProgressing', message: `progressing again: ${updated}/${total}` });
    d.state = 'Running';
    d.message = `${updated} of ${total} updated instances available`;
    delete d.finishedAt;
  }
  return d;
}

/** Epoch ms at which a running deployment misses its deadline (for a timed re-check), or undefined. */
export function deadlineAt(app: App, deployment: Deployment | undefined): number | undefined {
  if (deployment?.state !== 'Running') return undefined;
  return Date.parse(deployment.lastProgressAt ?? deployment.startedAt ?? '') + app.spec.progressDeadlineSeconds * 1000 + 1;
}

function conditions(app: App, plan: AppPlan, d: Deployment, prev: Condition[], now: number): Condition[] {
  const { minAvailable } = upgradeBounds(app);
  const available = plan.counts.available >= Math.min(minAvailable, app.spec.instances);
  const avail: Condition = available
    ? { type: 'Available', status: 'True', reason: 'MinimumHealthCapacity', message: `${plan.counts.available}/${app.spec.instances} available (at least ${minAvailable} needed)` }
    : { type: 'Available', status: 'False', reason: 'MinimumHealthCapacityUnmet', message: `${plan.counts.available}/${app.spec.instances} available (at least ${minAvailable} needed)` };
  const progressing: Condition =
    d.state === 'Failed' ? { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: d.message }
    : d.state === 'Succeeded' ? { type: 'Progressing', status: 'True', reason: 'NewVersionAvailable', message: `version ${d.targetVersion} rolled out` }
    : { type: 'Progressing', status: 'True', reason: 'NewVersionProgressing', message: d.message };
  return [avail, progressing].map((c) => withTransition(c, prev, now));
}

/** Keeps lastTransitionTime while the condition's status is unchanged. */
function withTransition(c: Condition, prev: Condition[], now: number): Condition {
  const old = prev.find((p) => p.type === c.type);
  return { ...c, lastTransitionTime: old && old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : new Date(now).toISOString() };
}

/** Consecutive failures of an App's tasks: what the launch backoff grows with. */
export interface Failures {
  count: number;
  lastFailureAt?: number;
}

/** A task ran healthy this long: the App's backoff starts over (Marathon resets it on a healthy run). */
export const BACKOFF_RESET_MS = 60_000;

/**
 * Failures after a batch of observations: each task that just ended FAILED or FINISHED adds one;
 * a task running healthy for {@link BACKOFF_RESET_MS} since the last failure resets the count.
 */
export function nextFailures(prev: Failures, observed: { failedAt: number[]; healthySince: number[] }, now: number): Failures {
  // Events in time order: a healthy run resets only if it lasted BACKOFF_RESET_MS before the next failure.
  const resets = (f: Failures, at: number) => f.count > 0 && observed.healthySince.some((t) => t >= (f.lastFailureAt ?? 0) && at - t >= BACKOFF_RESET_MS);
  let f = prev;
  for (const at of [...observed.failedAt].sort((a, b) => a - b)) {
    if (resets(f, at)) f = { count: 0 };
    f = { count: f.count + 1, lastFailureAt: Math.max(at, f.lastFailureAt ?? 0) };
  }
  return resets(f, now) ? { count: 0 } : f;
}

/**
 * Failures a new leader starts from, read off the App's terminal tasks (the controller's count
 * is in memory): the newest FAILED/FINISHED tasks in a row that ran less than
 * {@link BACKOFF_RESET_MS}. The history is short (garbage collection), so this is a floor.
 */
export function seedFailures(tasks: ReadonlyArray<{ status?: { state?: string; startedAt?: string; finishedAt?: string } }>): Failures {
  const ended = tasks
    .filter((t) => isTerminal(t) && t.status?.finishedAt)
    .sort((a, b) => Date.parse(b.status!.finishedAt!) - Date.parse(a.status!.finishedAt!));
  let count = 0;
  for (const t of ended) {
    const ran = Date.parse(t.status!.finishedAt!) - (Date.parse(t.status!.startedAt ?? '') || Date.parse(t.status!.finishedAt!));
    if (!['FAILED', 'FINISHED'].includes(t.status!.state!) || ran >= BACKOFF_RESET_MS) break;
    count++;
  }
  return count > 0 ? { count, lastFailureAt: Date.parse(ended[0]!.status!.finishedAt!) } : { count: 0 };
}

/**
 * Whether `next` differs from `prev` only in progress figures (task counts, deployment
 * progress and step): what the controller may write at most once a second per App, where a
 * change of generation, deployment state, condition or pending reason is written at once.
 * At thousands of tasks starting together, an App's counts change with every task; writing
 * each one would cost etcd as many writes as the tasks themselves.
 */
export function isProgressOnly(prev: AppStatus | undefined, next: AppStatus): boolean {
  if (!prev) return false;
  const gist = (s: AppStatus) => ({
    observedGeneration: s.observedGeneration,
    pendingReason: s.pendingReason,
    deployment: s.deployment && { id: s.deployment.id, targetVersion: s.deployment.targetVersion, state: s.deployment.state, message: s.deployment.message },
    conditions: s.conditions?.map((c) => ({ type: c.type, status: c.status, reason: c.reason })),
  });
  return jsonEqual(gist(prev), gist(next));
}
