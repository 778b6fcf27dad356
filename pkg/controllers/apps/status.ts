/**
 * App status from a reconcile plan, and the deployment bookkeeping around it: when a deployment
 * starts, progresses, succeeds or misses its progress deadline. Pure: the controller passes the
 * previous status and `now`, and records the events this returns.
 */
import type { App, AppStatus, Condition, Deployment, Task, TaskFailure } from '../../api/types.generated';
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
  /** The newest failure among the App's tasks ({@link lastFailureOf}); an older one than the status has is ignored. */
  lastFailure?: TaskFailure;
}

/** The App's new status and the events its changes deserve. */
export function appStatus({ app, plan, now, pendingReason, lastFailure }: StatusInput): { status: AppStatus; events: StatusEvent[] } {
  const prev = app.status ?? {};
  const events: StatusEvent[] = [];
  const deployment = nextDeployment(app, plan, now, events);
  const failure = newerFailure(prev.lastFailure, lastFailure);
  if (failure && failure !== prev.lastFailure) events.push({ type: 'Warning', reason: 'TaskFailed', message: failureMessage(failure) });
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
    ...(failure ? { lastFailure: failure } : {}),
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

/** Task end states that are failures of the App (its lastFailure); LOST is the agent's, not the App's. */
const FAILURE_STATES = new Set(['FAILED', 'FINISHED', 'ERROR', 'LOST']);

/**
 * End states that count toward the launch backoff: Marathon's rate limiter takes Failed,
 * Finished and Error (and Gone, Dropped), not Lost/Unreachable. LOST here is the agent's loss
 * (lease expired, or its task vanished with the host): the App did nothing wrong, and its
 * replacement should not wait (docs/apps.md: "LOST tasks are replaced at once"). ERROR is a
 * start that cannot succeed on that agent (image missing, policy): relaunched without a delay it
 * fails again at once, tens of times a second.
 */
export function countsAsFailure(state: string | undefined): boolean {
  return state === 'FAILED' || state === 'FINISHED' || state === 'ERROR';
}

/**
 * The newest failure among `tasks` (by finishedAt), as App status records it. `states`: what
 * counts as a failure (an App's task that FINISHED failed; a Job's succeeded).
 */
export function lastFailureOf(tasks: ReadonlyArray<Task>, states: ReadonlySet<string> = FAILURE_STATES): TaskFailure | undefined {
  let newest: Task | undefined;
  let newestAt = -Infinity;
  for (const t of tasks) {
    if (!states.has(t.status?.state ?? '')) continue;
    const at = Date.parse(t.status.finishedAt ?? '') || Date.parse(t.metadata.creationTimestamp ?? '') || 0;
    if (at > newestAt || (at === newestAt && newest && t.metadata.name > newest.metadata.name)) {
      newest = t;
      newestAt = at;
    }
  }
  if (!newest) return undefined;
  const st = newest.status;
  const version = newest.metadata.ownerReferences?.[0]?.version;
  return {
    task: newest.metadata.name,
    ...(newest.spec?.nodeName ? { node: newest.spec.nodeName } : {}),
    state: st.state as TaskFailure['state'],
    ...(st.reason ? { reason: st.reason } : {}),
    ...(st.message ? { message: st.message } : {}),
    ...(st.exitCode !== undefined ? { exitCode: st.exitCode } : {}),
    ...(version !== undefined ? { version } : {}),
    ...(st.finishedAt ? { at: st.finishedAt } : {}),
  };
}

/** The newer of two failures (the status keeps its failure once the task is garbage-collected). */
function newerFailure(prev: TaskFailure | undefined, next: TaskFailure | undefined): TaskFailure | undefined {
  if (!next) return prev;
  if (!prev) return next;
  if (prev.task === next.task) return jsonEqual(prev, next) ? prev : next;
  return (Date.parse(next.at ?? '') || 0) > (Date.parse(prev.at ?? '') || 0) ? next : prev;
}

/** One line for the TaskFailed event: `task web-x ERROR on node n1 (ImageNotPresent): image ... not present ...`. */
export function failureMessage(f: TaskFailure): string {
  const why = [f.reason, f.exitCode !== undefined && f.reason === undefined ? `exit code ${f.exitCode}` : undefined].filter(Boolean).join(', ');
  return `task ${f.task} ${f.state}${f.node ? ` on node ${f.node}` : ''}${why ? ` (${why})` : ''}${f.message ? `: ${f.message}` : ''}`;
}

/** Consecutive failures of an App's tasks: what the launch backoff grows with. */
export interface Failures {
  count: number;
  lastFailureAt?: number;
}

/** A task ran healthy this long: the App's backoff starts over (Marathon resets it on a healthy run). */
export const BACKOFF_RESET_MS = 60_000;

/**
 * Failures after a batch of observations: each task that just ended FAILED, FINISHED or ERROR adds one;
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
 * is in memory): the newest FAILED/FINISHED/ERROR tasks in a row that ran less than
 * {@link BACKOFF_RESET_MS}. The history is short (garbage collection), so this is a floor.
 */
export function seedFailures(tasks: ReadonlyArray<{ status?: { state?: string; startedAt?: string; finishedAt?: string } }>): Failures {
  const ended = tasks
    .filter((t) => isTerminal(t) && t.status?.finishedAt)
    .sort((a, b) => Date.parse(b.status!.finishedAt!) - Date.parse(a.status!.finishedAt!));
  let count = 0;
  for (const t of ended) {
    const ran = Date.parse(t.status!.finishedAt!) - (Date.parse(t.status!.startedAt ?? '') || Date.parse(t.status!.finishedAt!));
    if (!countsAsFailure(t.status!.state) || ran >= BACKOFF_RESET_MS) break;
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
    lastFailure: s.lastFailure,
    deployment: s.deployment && { id: s.deployment.id, targetVersion: s.deployment.targetVersion, state: s.deployment.state, message: s.deployment.message },
    conditions: s.conditions?.map((c) => ({ type: c.type, status: c.status, reason: c.reason })),
  });
  return jsonEqual(gist(prev), gist(next));
}
