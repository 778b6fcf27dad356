/**
 * What one Job should do next: a pure function of the Job, its runs, its parents and the time.
 *
 * - A schedule's fire times after `status.scheduledThrough` (else the Job's creation) that are
 *   due now are decided together ({@link dueTimes}): the latest runs once if it is within
 *   `startingDeadlineSeconds` (or there is none), every other is counted missed. The cursor then
 *   moves to the latest due time, in the same status write, so no time is decided twice.
 * - While suspended, due times are passed over (the cursor moves; nothing is missed or run).
 * - A fire time while a run is active: Allow starts another, Forbid skips it (counted in
 *   `skipped`), Replace ends the active runs (Failed, Replaced) and starts the new one.
 * - Without a schedule or parents, the Job runs once, at its creation.
 * - With parents, it runs once each time every parent has succeeded since its previous run
 *   (each parent's `status.lastSuccessTime` is newer than this Job's `lastScheduleTime`); a
 *   parent retried and then successful has one success. An active run holds the next trigger
 *   back under Forbid (it is not lost: the condition still holds when the run ends).
 * - Run names derive from what triggered them, so creating one twice (a leader change between
 *   the create and the status write) finds the first.
 * - Finished runs beyond the history limits are deleted, oldest first, with their tasks.
 */
import { isFinishedPhase, newJobRun, parentsRunName, scheduledRunName, type RunTrigger } from '../../api/jobs';
import { dueTimes, parseSchedule, type Schedule } from '../../api/schedule';
import type { Job, JobRun, JobStatus } from '../../api/types.generated';

export interface JobInput {
  job: Job;
  /** The Job's runs (this Job object's, by owner uid). */
  runs: JobRun[];
  /** Each parent by name: undefined when it does not exist. */
  parents: Map<string, Job | undefined>;
  now: number;
}

export type JobDecision =
  | { kind: 'fired'; run: string; trigger: RunTrigger; scheduledTime: number }
  | { kind: 'skipped'; scheduledTime: number; active: string[] }
  | { kind: 'replaced'; runs: string[]; scheduledTime: number }
  | { kind: 'missed'; count: number; capped: boolean; first?: number; last?: number }
  | { kind: 'suspended'; through: number }
  | { kind: 'waitingForParents'; missing: string[] }
  | { kind: 'invalidSchedule'; message: string };

export interface JobPlan {
  /** A run to create (at most one per sync). */
  create?: JobRun;
  /** Active runs to end as Replaced. */
  replace: string[];
  /** Finished runs to delete (history limits). */
  delete: string[];
  status: JobStatus;
  decisions: JobDecision[];
  /** When the next fire time is due (sync then). */
  wakeAt?: number;
}

export function planJob({ job, runs, parents, now }: JobInput): JobPlan {
  const spec = job.spec;
  const prev = job.status ?? {};
  const created = Date.parse(job.metadata.creationTimestamp ?? '') || now;
  const decisions: JobDecision[] = [];
  const status: JobStatus = { ...prev };
  const active = runs.filter((r) => !isFinishedPhase(r.status?.phase));
  const byName = new Set(runs.map((r) => r.metadata.name));
  let create: JobRun | undefined;
  let replace: string[] = [];
  let wakeAt: number | undefined;
  const deleting = job.metadata.deletionTimestamp !== undefined;

  /** Starts a run now unless the policy says otherwise; true when it was started (or existed). */
  const fire = (name: string, trigger: RunTrigger, scheduledTime: number, parentRuns?: string[]): boolean => {
    if (byName.has(name)) return true; // made before a leader change: the same time, the same run
    if (active.length > 0 && spec.concurrencyPolicy === 'Forbid') {
      // A fire time passes and is skipped; a parents' trigger waits (it still holds when the run ends).
      if (trigger !== 'Parents') decisions.push({ kind: 'skipped', scheduledTime, active: active.map((r) => r.metadata.name) });
      return false;
    }
    if (active.length > 0 && spec.concurrencyPolicy === 'Replace') {
      replace = active.map((r) => r.metadata.name);
      decisions.push({ kind: 'replaced', runs: replace, scheduledTime });
    }
    create = newJobRun(job, { name, trigger, scheduledTime, parentRuns });
    decisions.push({ kind: 'fired', run: name, trigger, scheduledTime });
    return true;
  };

  let schedule: Schedule | undefined;
  if (spec.schedule !== undefined) {
    try {
      schedule = parseSchedule(spec.schedule, spec.timezone ?? 'UTC', created);
    } catch (err) {
      decisions.push({ kind: 'invalidSchedule', message: (err as Error).message }); // admission refuses these; kept from an older version
    }
  }

  if (!deleting && schedule) {
    // Before the first look, a fire time at the creation itself is due (an ISO interval with an empty start runs at once, as in Chronos).
    const since = Date.parse(prev.scheduledThrough ?? '') || Date.parse(prev.lastScheduleTime ?? '') || created - 1;
    const due = dueTimes(schedule, { since, now, startingDeadlineSeconds: spec.startingDeadlineSeconds });
    const latest = Math.max(due.run ?? -Infinity, due.lastMissed ?? -Infinity);
    if (Number.isFinite(latest)) {
      if (spec.suspend) {
        decisions.push({ kind: 'suspended', through: latest });
      } else {
        if (due.missed > 0) {
          decisions.push({ kind: 'missed', count: due.missed, capped: due.missedCapped, first: due.firstMissed, last: due.lastMissed });
          status.missed = (prev.missed ?? 0) + due.missed;
          if (due.lastMissed !== undefined) status.lastMissedTime = iso(due.lastMissed);
          if (due.run === undefined) status.lastResult = 'Missed';
        }
        if (due.run !== undefined) {
          if (fire(scheduledRunName(job.metadata.name, due.run), 'Schedule', due.run)) status.lastScheduleTime = iso(due.run);
          else status.skipped = (prev.skipped ?? 0) + 1;
        }
      }
      status.scheduledThrough = iso(latest);
    }
    wakeAt = due.next;
    if (due.next !== undefined && !spec.suspend) status.nextScheduleTime = iso(due.next);
    else delete status.nextScheduleTime;
  } else if (!deleting && spec.parents.length === 0 && !spec.suspend && prev.lastScheduleTime === undefined) {
    const onceName = scheduledRunName(job.metadata.name, created);
    if (byName.has(onceName)) status.lastScheduleTime = iso(created); // made before a leader change
    else if (runs.length === 0 && fire(onceName, 'Once', created)) status.lastScheduleTime = iso(created);
  }

  if (!deleting && spec.parents.length > 0 && !spec.suspend && create === undefined) {
    const missing = spec.parents.filter((p) => !parents.get(p));
    if (missing.length) {
      decisions.push({ kind: 'waitingForParents', missing });
    } else {
      const since = Date.parse(prev.lastScheduleTime ?? '') || created;
      const successes = spec.parents.map((p) => parents.get(p)!.status ?? {});
      const ready = successes.every((s) => (Date.parse(s.lastSuccessTime ?? '') || 0) > since);
      if (ready) {
        const at = Math.max(...successes.map((s) => Date.parse(s.lastSuccessTime!)));
        const parentRuns = successes.map((s) => s.lastSuccessfulRun ?? '').filter(Boolean);
        const name = parentsRunName(job.metadata.name, parentRuns.length === spec.parents.length ? parentRuns : [String(at)]);
        if (fire(name, 'Parents', at, parentRuns) && at > (Date.parse(status.lastScheduleTime ?? '') || 0)) status.lastScheduleTime = iso(at);
      }
    }
  }

  const kept = trim(runs, spec.successfulRunsHistoryLimit ?? 3, spec.failedRunsHistoryLimit ?? 3);
  const remaining = runs.filter((r) => !kept.delete.includes(r.metadata.name));
  Object.assign(status, summarize(runs, remaining, status, create));
  if (spec.suspend || deleting) delete status.nextScheduleTime;
  return { create, replace, delete: kept.delete, status, decisions, wakeAt };
}

/** Finished runs beyond the limits, oldest first: succeeded ones over `succeeded`, failed and missed over `failed`. */
function trim(runs: JobRun[], succeeded: number, failed: number): { delete: string[] } {
  const finished = runs.filter((r) => isFinishedPhase(r.status?.phase)).sort((a, b) => finishedAt(b) - finishedAt(a));
  const ok = finished.filter((r) => r.status?.phase === 'Succeeded');
  const bad = finished.filter((r) => r.status?.phase !== 'Succeeded');
  return { delete: [...ok.slice(succeeded), ...bad.slice(failed)].map((r) => r.metadata.name) };
}

/**
 * Counts and lastRun from the kept runs; last results from every run seen, those deleted now
 * included (a history limit of 0 still records a result). Times only move forward.
 */
function summarize(runs: JobRun[], kept: JobRun[], prev: JobStatus, created: JobRun | undefined): Partial<JobStatus> {
  const out: Partial<JobStatus> = {
    active: kept.filter((r) => !isFinishedPhase(r.status?.phase)).length + (created ? 1 : 0),
    succeeded: kept.filter((r) => r.status?.phase === 'Succeeded').length,
    failed: kept.filter((r) => r.status?.phase === 'Failed').length,
  };
  const newest = [...kept, ...(created ? [created] : [])].sort((a, b) => startedOrdering(b) - startedOrdering(a))[0];
  if (newest) out.lastRun = newest.metadata.name;
  const finished = runs.filter((r) => isFinishedPhase(r.status?.phase)).sort((a, b) => finishedAt(b) - finishedAt(a));
  const last = finished[0];
  if (last && finishedAt(last) >= (Date.parse(lastResultTime(prev) ?? '') || 0)) out.lastResult = last.status!.phase as JobStatus['lastResult'];
  const lastOk = finished.find((r) => r.status?.phase === 'Succeeded');
  if (lastOk && finishedAt(lastOk) > (Date.parse(prev.lastSuccessTime ?? '') || 0)) {
    out.lastSuccessTime = lastOk.status!.completionTime;
    out.lastSuccessfulRun = lastOk.metadata.name;
  }
  const lastBad = finished.find((r) => r.status?.phase === 'Failed');
  if (lastBad && finishedAt(lastBad) > (Date.parse(prev.lastFailureTime ?? '') || 0)) out.lastFailureTime = lastBad.status!.completionTime;
  const lastMissed = finished.find((r) => r.status?.phase === 'Missed');
  if (lastMissed && finishedAt(lastMissed) > (Date.parse(prev.lastMissedTime ?? '') || 0)) out.lastMissedTime = lastMissed.status!.completionTime;
  return out;
}

function lastResultTime(s: JobStatus): string | undefined {
  const times = [s.lastSuccessTime, s.lastFailureTime, s.lastMissedTime].filter((t): t is string => t !== undefined);
  return times.sort((a, b) => Date.parse(b) - Date.parse(a))[0];
}

function finishedAt(r: JobRun): number {
  return Date.parse(r.status?.completionTime ?? '') || Date.parse(r.metadata.creationTimestamp ?? '') || 0;
}

function startedOrdering(r: JobRun): number {
  return Date.parse(r.metadata.creationTimestamp ?? '') || Number.MAX_SAFE_INTEGER; // a run being created is the newest
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
