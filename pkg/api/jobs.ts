/**
 * Names shared by the apiserver, the Job controller and the CLI for Jobs, their runs and the
 * Tasks of those runs; and the one function that makes a run from a Job.
 */
import { createHash } from 'node:crypto';
import type { Job, JobRun } from './types.generated';

/** Label on every JobRun and on every Task of a run: the Job's name. `shoal get jobruns -l shoal.dev/job=report`. */
export const JOB_LABEL = 'shoal.dev/job';
/** Label on every Task of a run: the run's name. */
export const JOBRUN_LABEL = 'shoal.dev/jobrun';

export type RunTrigger = JobRun['spec']['trigger'];

/** Longest Job name part of a run name: room for `-` and 10 digits (or `-manual-` and 8 characters). */
const RUN_PREFIX_MAX = 47;

function prefix(job: string): string {
  return job.slice(0, RUN_PREFIX_MAX).replace(/-+$/, '');
}

/**
 * The run of a scheduled (or once) time: `<job>-<unix seconds>`. Derived from the time, so a
 * create repeated after a leader change finds the run already there instead of making a second.
 */
export function scheduledRunName(job: string, scheduledMs: number): string {
  return `${prefix(job)}-${Math.floor(scheduledMs / 1000)}`;
}

/** The run a set of parent runs triggers: the same parents' runs always name the same run. */
export function parentsRunName(job: string, parentRuns: readonly string[]): string {
  return `${prefix(job)}-p${shortHash([...parentRuns].sort().join(','))}`;
}

/** A manual run: from the caller's idempotency key (the same key, the same run), or random. */
export function manualRunName(job: string, key?: string): string {
  return `${prefix(job)}-manual-${key === undefined ? randomSuffix() : shortHash(key)}`;
}

function shortHash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 8);
}

function randomSuffix(): string {
  let s = '';
  while (s.length < 8) s += Math.floor(Math.random() * 36).toString(36);
  return s;
}

/** A new run of the Job: its spec a copy of the Job's, as it is now (a later edit does not change the run). */
export function newJobRun(job: Job, o: { name: string; trigger: RunTrigger; scheduledTime: number; parentRuns?: string[] }): JobRun {
  return {
    apiVersion: 'shoal/v1',
    kind: 'JobRun',
    metadata: {
      name: o.name,
      namespace: job.metadata.namespace ?? 'default',
      labels: { ...job.metadata.labels, [JOB_LABEL]: job.metadata.name },
      ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'Job', name: job.metadata.name, uid: job.metadata.uid ?? '', controller: true, version: job.metadata.generation ?? 1 }],
    },
    spec: {
      job: job.metadata.name,
      trigger: o.trigger,
      scheduledTime: new Date(o.scheduledTime).toISOString(),
      ...(o.parentRuns?.length ? { parentRuns: [...o.parentRuns].sort() } : {}),
      template: structuredClone(job.spec),
    },
    status: { phase: 'Pending' },
  };
}

/** Whether a run in this phase has ended (Succeeded, Failed or Missed). */
export function isFinishedPhase(phase: string | undefined): phase is 'Succeeded' | 'Failed' | 'Missed' {
  return phase === 'Succeeded' || phase === 'Failed' || phase === 'Missed';
}

/** Whether the run has ended. */
export function isFinishedRun(run: Pick<JobRun, 'status'>): boolean {
  return isFinishedPhase(run.status?.phase);
}

/**
 * A cycle through `start` in a parent graph, in run order (parent before child) from `start`
 * back to it: `a → b → c → a` when a's parent is c, c's is b and b's is a. Undefined if none.
 * Iterative DFS, each node visited once. Used by the apiserver (Jobs stored) and `shoal apply`
 * (Jobs of one apply).
 */
export function parentCycle<T>(start: T, parentsOf: (node: T) => readonly T[]): T[] | undefined {
  const via = new Map<T, T>(); // node -> the child it was reached from
  const seen = new Set<T>([start]);
  const stack = [start];
  while (stack.length) {
    const child = stack.pop()!;
    for (const parent of parentsOf(child)) {
      if (parent === start) {
        // Walking back from `child` to `start` reads the parent chain backwards: run order.
        const cycle = [start];
        for (let at = child; at !== start; at = via.get(at)!) cycle.push(at);
        return [...cycle, start];
      }
      if (seen.has(parent)) continue;
      seen.add(parent);
      via.set(parent, child);
      stack.push(parent);
    }
  }
  return undefined;
}
