/**
 * What one JobRun should do next: a pure function of the run, its tasks and the time. The Job
 * controller feeds it from informers and carries out the plan (queue launches, kill, write status).
 *
 * Counting, per run (the spec is the Job's, copied when the run was created):
 * - a task that ended FINISHED succeeded; FAILED, ERROR, LOST and KILLED ended it otherwise;
 * - without a gang, every task that did not succeed uses one of `retries`; the run fails when
 *   failed tasks exceed `retries`, succeeds when `completions` tasks succeeded, and keeps at most
 *   `parallelism` tasks (and never more than still need to succeed) at once;
 * - with a gang, tasks are launched in attempts of `parallelism` together (annotation
 *   {@link ATTEMPT_ANNOTATION}); a member ending other than FINISHED fails the attempt and its other
 *   members are killed; the next attempt starts once all are gone; `retries` counts attempts after
 *   the first;
 * - relaunches wait the backoff (seconds × factor^(failures−1), capped) after the last failure;
 * - `activeDeadlineSeconds` counts from the run's creation; `startingDeadlineSeconds` fails a run
 *   that has had no task RUNNING by scheduledTime + deadline as Missed.
 */
import type { JobRun, JobRunStatus, Task, TaskFailure } from '../../api/types.generated';
import { isFinishedPhase } from '../../api/jobs';
import { isTerminal } from '../../api/tasks';
import { failureMessage, lastFailureOf } from '../apps/status';

/** Annotation on a gang task: the attempt (1, 2, ...) it belongs to. */
export const ATTEMPT_ANNOTATION = 'shoal.dev/attempt';

export type RunKillReason = 'RunFinished' | 'GangMemberFailed' | 'DeadlineExceeded' | 'Missed' | 'Replaced';

export interface RunInput {
  run: JobRun;
  /** Every task of the run, terminal or not. */
  tasks: Task[];
  /** Launched for the run, not yet seen as tasks. */
  inflight: number;
  now: number;
  /** The Job replaced this run (concurrencyPolicy Replace): it ends Failed. */
  replaced?: boolean;
}

export interface RunPlan {
  /** Tasks to queue for launch now (0: none). */
  launch: number;
  /** The launches are one gang attempt: all placed together or none. */
  gang: boolean;
  /** The attempt the launches belong to (gang) or the number of tasks launched so far + 1. */
  attempt: number;
  kill: Array<{ task: string; reason: RunKillReason }>;
  status: JobRunStatus;
  /** Set when this plan ends the run. */
  finished?: { phase: 'Succeeded' | 'Failed' | 'Missed'; reason: string; message: string };
  /** The next time something is decided by time alone (a backoff or a deadline ends). */
  wakeAt?: number;
  /** Why nothing is launched though tasks are still needed, when it is time that waits. */
  waiting?: string;
}

const SUCCEEDED = 'FINISHED';

export function planRun(input: RunInput): RunPlan {
  const { run, tasks, inflight, now } = input;
  const spec = run.spec.template;
  const prev = run.status ?? {};
  const live = tasks.filter((t) => !isTerminal(t));
  const ended = tasks.filter(isTerminal);
  const succeeded = ended.filter((t) => t.status?.state === SUCCEEDED).length;
  const failedTasks = ended.filter((t) => t.status?.state !== SUCCEEDED);
  const lastFailure = lastFailureOf(tasks, JOB_FAILURE_STATES);
  const lastFailedAt = failedTasks.length ? Math.max(...failedTasks.map(finishedAt)) : undefined;
  const startTime = prev.startTime ?? earliest(tasks.map((t) => t.status?.startedAt));
  const base: JobRunStatus = {
    phase: prev.phase ?? 'Pending',
    attempts: tasks.length + inflight,
    active: live.length + inflight,
    succeeded,
    failed: failedTasks.length,
    ...(startTime ? { startTime } : {}),
    ...(lastFailure ? { lastFailure } : {}),
  };
  const killAll = (reason: RunKillReason) => live.map((t) => ({ task: t.metadata.name, reason }));

  // An ended run only makes sure nothing of it still runs.
  if (isFinishedPhase(prev.phase)) {
    return { launch: 0, gang: false, attempt: 0, kill: killAll('RunFinished'), status: { ...base, phase: prev.phase, completionTime: prev.completionTime, reason: prev.reason, message: prev.message } };
  }
  const finish = (phase: 'Succeeded' | 'Failed' | 'Missed', reason: string, message: string, killReason: RunKillReason): RunPlan => ({
    launch: 0, gang: false, attempt: 0,
    kill: killAll(killReason),
    status: { ...base, phase, completionTime: new Date(now).toISOString(), reason, message },
    finished: { phase, reason, message },
  });

  const completions = spec.completions ?? 1;
  const parallelism = Math.min(spec.parallelism ?? 1, completions);
  const retries = spec.retries ?? 2;
  const created = Date.parse(run.metadata.creationTimestamp ?? '') || now;

  if (input.replaced) return finish('Failed', 'Replaced', 'replaced by a newer run (concurrencyPolicy Replace)', 'Replaced');

  // Deadlines first: they end the run whatever its tasks are doing.
  if (spec.activeDeadlineSeconds !== undefined && now >= created + spec.activeDeadlineSeconds * 1000) {
    return finish('Failed', 'DeadlineExceeded', `still active after activeDeadlineSeconds (${spec.activeDeadlineSeconds}s)`, 'DeadlineExceeded');
  }
  const everStarted = startTime !== undefined || ended.length > 0;
  const scheduled = Date.parse(run.spec.scheduledTime) || created;
  if (!everStarted && run.spec.trigger !== 'Manual' && spec.startingDeadlineSeconds !== undefined && now >= scheduled + spec.startingDeadlineSeconds * 1000) {
    return finish('Missed', 'StartingDeadlineExceeded', `no task started within startingDeadlineSeconds (${spec.startingDeadlineSeconds}s) of ${run.spec.scheduledTime}`, 'Missed');
  }

  const deadlines = [
    spec.activeDeadlineSeconds !== undefined ? created + spec.activeDeadlineSeconds * 1000 : undefined,
    !everStarted && run.spec.trigger !== 'Manual' && spec.startingDeadlineSeconds !== undefined ? scheduled + spec.startingDeadlineSeconds * 1000 : undefined,
  ];
  const plan = spec.gang
    ? planGang(input, base, { parallelism, retries, live, lastFailure, lastFailedAt })
    : planTasks(input, base, { completions, parallelism, retries, succeeded, failed: failedTasks.length, live, lastFailure, lastFailedAt });
  if ('finished' in plan && plan.finished) return finish(plan.finished.phase, plan.finished.reason, plan.finished.message, 'RunFinished');
  const p = plan as RunPlan;
  p.wakeAt = earliestNumber([p.wakeAt, ...deadlines]);
  p.status.phase = startTime !== undefined || ended.length > 0 ? 'Running' : 'Pending';
  return p;
}

interface Counts {
  completions: number;
  parallelism: number;
  retries: number;
  succeeded: number;
  failed: number;
  live: Task[];
  lastFailure?: TaskFailure;
  lastFailedAt?: number;
}

type Finishing = { finished: { phase: 'Succeeded' | 'Failed'; reason: string; message: string } };

function planTasks(input: RunInput, status: JobRunStatus, c: Counts): RunPlan | Finishing {
  if (c.succeeded >= c.completions) return { finished: { phase: 'Succeeded', reason: 'Completed', message: `${c.succeeded} of ${c.completions} task(s) succeeded` } };
  if (c.failed > c.retries) {
    return { finished: { phase: 'Failed', reason: 'RetriesExhausted', message: `${c.failed} task(s) failed, more than retries (${c.retries})${c.lastFailure ? `; last: ${failureSummary(c.lastFailure)}` : ''}` } };
  }
  const active = c.live.length + input.inflight;
  const want = Math.max(0, Math.min(c.parallelism, c.completions - c.succeeded) - active);
  const plan: RunPlan = { launch: want, gang: false, attempt: input.tasks.length + input.inflight + 1, kill: [], status };
  return withBackoff(plan, input, c.failed, c.lastFailedAt);
}

function planGang(input: RunInput, status: JobRunStatus, c: Pick<Counts, 'parallelism' | 'retries' | 'live' | 'lastFailure' | 'lastFailedAt'>): RunPlan | Finishing {
  const attemptOf = (t: Task) => Number(t.metadata.annotations?.[ATTEMPT_ANNOTATION] ?? 1) || 1;
  const attempt = input.tasks.reduce((m, t) => Math.max(m, attemptOf(t)), 0);
  const current = input.tasks.filter((t) => attemptOf(t) === attempt);
  const live = current.filter((t) => !isTerminal(t));
  // A member ended other than FINISHED, or the master bound only part of the gang (a member
  // refused at accept, e.g. for fair share, never became a task): the attempt has failed.
  const partial = attempt > 0 && input.inflight === 0 && current.length < c.parallelism;
  const broken = partial || current.some((t) => isTerminal(t) && t.status?.state !== SUCCEEDED);
  status.attempts = attempt;
  if (attempt > 0 && !broken && current.length >= c.parallelism && current.every((t) => t.status?.state === SUCCEEDED)) {
    return { finished: { phase: 'Succeeded', reason: 'Completed', message: `gang of ${c.parallelism} succeeded (attempt ${attempt})` } };
  }
  if (broken) {
    // A member failed: the attempt has failed; its other members are stopped before anything else.
    if (live.length > 0 || input.inflight > 0) {
      return { launch: 0, gang: true, attempt, kill: live.map((t) => ({ task: t.metadata.name, reason: 'GangMemberFailed' as const })), status };
    }
    if (attempt > c.retries) {
      return { finished: { phase: 'Failed', reason: 'RetriesExhausted', message: `gang attempt ${attempt} failed, retries (${c.retries}) exhausted${c.lastFailure ? `; last: ${failureSummary(c.lastFailure)}` : ''}` } };
    }
    return withBackoff({ launch: c.parallelism, gang: true, attempt: attempt + 1, kill: [], status }, input, attempt, c.lastFailedAt);
  }
  if (attempt === 0 && input.inflight === 0) return { launch: c.parallelism, gang: true, attempt: 1, kill: [], status };
  return { launch: 0, gang: true, attempt, kill: [], status };
}

/** Holds a relaunch back until the backoff after the last failure has passed. */
function withBackoff(plan: RunPlan, input: RunInput, failures: number, lastFailedAt: number | undefined): RunPlan {
  if (plan.launch === 0 || failures === 0) return plan;
  const { seconds = 1, factor = 1.15, maxLaunchDelaySeconds = 300 } = input.run.spec.template.backoff ?? {};
  const delayMs = Math.min(seconds * Math.pow(factor, failures - 1), maxLaunchDelaySeconds) * 1000;
  const from = lastFailedAt || input.now;
  const at = from + delayMs;
  if (input.now >= at) return plan;
  return { ...plan, launch: 0, wakeAt: at, waiting: `backing off after ${failures} failure(s): next launch in ${Math.ceil((at - input.now) / 1000)}s` };
}

function failureSummary(f: TaskFailure): string {
  return failureMessage(f);
}

/** What a job task's failure is: it ended FAILED, ERROR or LOST (FINISHED succeeded; KILLED counts against retries but has no exit to report). */
const JOB_FAILURE_STATES: ReadonlySet<string> = new Set(['FAILED', 'ERROR', 'LOST']);

function finishedAt(t: Task): number {
  return Date.parse(t.status?.finishedAt ?? '') || Date.parse(t.metadata.creationTimestamp ?? '') || 0;
}

function earliest(times: Array<string | undefined>): string | undefined {
  let best: string | undefined;
  for (const t of times) if (t && (best === undefined || Date.parse(t) < Date.parse(best))) best = t;
  return best;
}

function earliestNumber(xs: Array<number | undefined>): number | undefined {
  const ys = xs.filter((x): x is number => x !== undefined);
  return ys.length ? Math.min(...ys) : undefined;
}
