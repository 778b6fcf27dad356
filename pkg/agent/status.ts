/**
 * How an agent reports task status.
 *
 * Decision (DESIGN.md "Keys and writers"): the agent does a **status-only compare-and-swap
 * update of the Task object** at `objectKey(prefix, Task, namespace, name)`: it reads the key,
 * replaces `status` (and nothing else: spec and metadata are written back byte-for-byte as
 * parsed), and calls `store.update` with the mod revision it read; on ConflictError it reads
 * again. A separate status key was rejected because every reader (allocator, frameworks, CLI)
 * would then have to join two keys, and a watch on Tasks would miss status changes.
 *
 * Rules on every attempt, in this order:
 * - the Task key is gone, or holds another task (other uid): write nothing; the task must stop;
 * - the Task is terminal (FINISHED, FAILED, KILLED, ERROR, LOST): the registry's word is final,
 *   write nothing; the task must stop if it runs (this is how an agent that comes back stops a
 *   task of its own that node lifecycle marked LOST while it was away);
 * - otherwise write `{...defaults, ...current status, ...patch}`, unless that changes nothing
 *   (the same state twice is fine: writes are idempotent).
 * Failures other than conflicts (etcd unreachable) are retried with backoff until written or
 * the agent stops; a newer report for the same task replaces the pending one.
 */
import type { Logger } from 'pino';
import { lookupKind } from '../api/kinds';
import type { Task, TaskStatus } from '../api/types.generated';
import { jsonEqual } from '../util/json';
import { backoffDelay, errorMessage, sleepUnlessAborted } from '../util/backoff';
import { ConflictError, NotFoundError } from '../store/errors';
import { objectKey } from '../store/objects';
import type { Store } from '../store/types';

const TASKS = lookupKind('task')!;
/** Read-modify-write rounds lost to concurrent writers before backing off. */
const MAX_CONFLICTS = 10;

/** Mesos' terminal states: a task in one never runs again. */
export const TERMINAL_STATES: ReadonlySet<string> = new Set(['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST']);

/** One task of this agent, as the registry names it. */
export interface TaskRef {
  namespace: string;
  name: string;
  uid: string;
}

/**
 * What the registry says about a task: `live` (present, ours, not terminal), `terminal`, or
 * `gone` (deleted, or the key now holds another task).
 */
/** live: may start (STAGING); started: began running once already; terminal; gone. */
export type RegistryVerdict = 'live' | 'started' | 'terminal' | 'gone';

/** Outcome of one status report. */
export type ReportOutcome = 'written' | 'unchanged' | RegistryVerdict;

/** `namespace/name`, the agent's key for a task. */
export function taskRefKey(ref: { namespace: string; name: string }): string {
  return `${ref.namespace}/${ref.name}`;
}

/** Reads the Task and says whether it may run. Store errors propagate. */
export async function registryVerdict(store: Store, prefix: string, ref: TaskRef): Promise<RegistryVerdict> {
  const kv = await store.get(objectKey(prefix, TASKS, ref.namespace, ref.name));
  return kv ? verdictOf(JSON.parse(kv.value) as Task, ref) : 'gone';
}

function verdictOf(task: Task, ref: TaskRef): RegistryVerdict {
  if (task.metadata?.uid !== ref.uid) return 'gone';
  const state = task.status?.state ?? '';
  if (TERMINAL_STATES.has(state)) return 'terminal';
  return state === '' || state === 'STAGING' ? 'live' : 'started';
}

/**
 * One status report, conflicts retried: `patch` overrides the current status, `defaults` fill
 * fields it lacks (stagedAt when the binder set none). Returns what happened; store errors
 * other than conflicts propagate. `terminal` is returned only when the registry holds a
 * different terminal state than the one reported.
 */
export async function writeTaskStatus(store: Store, prefix: string, ref: TaskRef, patch: TaskStatus, defaults: TaskStatus = {}): Promise<ReportOutcome> {
  const key = objectKey(prefix, TASKS, ref.namespace, ref.name);
  for (let round = 0; round < MAX_CONFLICTS; round++) {
    const kv = await store.get(key);
    if (!kv) return 'gone';
    const task = JSON.parse(kv.value) as Task; // raw: spec and metadata go back untouched
    const verdict = verdictOf(task, ref);
    if (verdict === 'gone') return 'gone';
    if (verdict === 'terminal') return task.status?.state === patch.state ? 'unchanged' : 'terminal';
    const status = { ...defaults, ...task.status, ...patch };
    if (jsonEqual(status, task.status)) return 'unchanged';
    try {
      await store.update(key, JSON.stringify({ ...task, status }), kv.modRevision);
      return 'written';
    } catch (err) {
      if (err instanceof NotFoundError) return 'gone';
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  throw new Error(`task ${taskRefKey(ref)} kept changing under ${MAX_CONFLICTS} status writes`);
}

export interface StatusReporterOptions {
  store: Store;
  prefix: string;
  logger: Logger;
  /** Aborts every pending report (the agent stopped). */
  signal: AbortSignal;
  /** The registry says the task must not run (terminal or gone): stop it locally. */
  onStale(ref: TaskRef, verdict: 'terminal' | 'gone'): void;
}

interface Pending {
  ref: TaskRef;
  patch: TaskStatus;
  defaults: TaskStatus;
}

/**
 * Writes task status in the background, one writer per task at a time, retrying with backoff
 * until written. Costs nothing for tasks with nothing pending: no timers, no entries.
 */
export class StatusReporter {
  /** The latest report not yet being written, per task key. */
  private readonly pending = new Map<string, Pending>();
  private readonly busy = new Set<string>();

  constructor(private readonly o: StatusReporterOptions) {}

  /** Queues a report; it merges with (and supersedes) one still pending for the same task. */
  report(ref: TaskRef, patch: TaskStatus, defaults: TaskStatus = {}): void {
    const key = taskRefKey(ref);
    const prev = this.pending.get(key);
    const merged = prev && prev.ref.uid === ref.uid ? { ref, patch: { ...prev.patch, ...patch }, defaults: { ...prev.defaults, ...defaults } } : { ref, patch, defaults };
    this.pending.set(key, merged);
    if (!this.busy.has(key)) void this.drain(key);
  }

  /** Writes what is pending for one task until nothing is. Never rejects. */
  private async drain(key: string): Promise<void> {
    this.busy.add(key);
    try {
      for (let next = this.take(key); next && !this.o.signal.aborted; next = this.take(key)) {
        await this.writeUntilDone(key, next);
      }
    } catch (err) {
      this.o.logger.error({ task: key, err: errorMessage(err) }, 'task status reporter failed');
    } finally {
      this.busy.delete(key);
    }
  }

  private take(key: string): Pending | undefined {
    const next = this.pending.get(key);
    this.pending.delete(key);
    return next;
  }

  private async writeUntilDone(key: string, report: Pending): Promise<void> {
    for (let attempt = 0; !this.o.signal.aborted; attempt++) {
      try {
        const outcome = await writeTaskStatus(this.o.store, this.o.prefix, report.ref, report.patch, report.defaults);
        this.logOutcome(key, report, outcome);
        if (outcome === 'terminal' || outcome === 'gone') this.o.onStale(report.ref, outcome);
        return;
      } catch (err) {
        this.o.logger.warn({ task: key, state: report.patch.state, err: errorMessage(err), attempt }, 'task status write failed; retrying');
        await sleepUnlessAborted(backoffDelay(attempt, 500), this.o.signal);
        const newer = this.take(key); // retry with the latest word, not a stale one
        if (newer) report = newer.ref.uid === report.ref.uid ? { ref: newer.ref, patch: { ...report.patch, ...newer.patch }, defaults: { ...report.defaults, ...newer.defaults } } : newer;
      }
    }
  }

  private logOutcome(key: string, report: Pending, outcome: ReportOutcome): void {
    const fields = { task: key, uid: report.ref.uid, state: report.patch.state, outcome };
    if (outcome === 'written') this.o.logger.info(fields, 'task status reported');
    else if (outcome === 'unchanged') this.o.logger.debug(fields, 'task status already reported');
    else this.o.logger.warn(fields, outcome === 'terminal' ? 'task status not reported: task is terminal in the registry' : 'task status not reported: task is gone from the registry');
  }
}
