/**
 * How an agent reports task status.
 *
 * Decision (DESIGN.md "Keys and writers"): the agent does a **status-only compare-and-swap
 * update of the Task object** at `objectKey(prefix, Task, namespace, name)`: it takes the value
 * it last read or wrote (for a new task: the bound Task its assignment carries, at the
 * assignment's revision), replaces `status` (and nothing else: spec and metadata are written
 * back byte-for-byte as parsed), and writes it on condition that the key's mod revision is
 * still that value's; when another writer came between, it reads again. A separate status key was rejected because every reader (allocator, frameworks, CLI)
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
import type { Clock } from '../util/clock';
import { objectKey } from '../store/objects';
import { TERMINAL_STATES } from '../api/tasks';
import type { Store } from '../store/types';
import { chunkTxn } from '../store/validate';

const TASKS = lookupKind('task')!;
/** Read-modify-write rounds lost to concurrent writers before backing off. */
const MAX_CONFLICTS = 10;

/** One task of this agent, as the registry names it. */
export interface TaskRef {
  namespace: string;
  name: string;
  uid: string;
}

/**
 * What the registry says about a task: `live` (present, ours, not started yet: it may start),
 * `started` (began running once already), `terminal`, or `gone` (deleted, or the key now holds
 * another task).
 */
export type RegistryVerdict = 'live' | 'started' | 'terminal' | 'gone';

/** Outcome of one status report. */
export type ReportOutcome = 'written' | 'unchanged' | RegistryVerdict;

/** `namespace/name`, the agent's key for a task. */
export function taskRefKey(ref: { namespace: string; name: string }): string {
  return `${ref.namespace}/${ref.name}`;
}

function verdictOf(task: Task, ref: TaskRef): RegistryVerdict {
  if (task.metadata?.uid !== ref.uid) return 'gone';
  const state = task.status?.state ?? '';
  if (TERMINAL_STATES.has(state)) return 'terminal';
  return state === '' || state === 'STAGING' ? 'live' : 'started';
}

/** The Task as this agent last read or wrote it: the compare-and-swap base of its next status write. */
export interface TaskBase {
  /** The stored JSON, exactly as read or written. */
  value: string;
  modRevision: number;
}

/** What one report does to a Task whose stored value is `value` (undefined: absent). */
export type StatusStep =
  | { kind: 'gone' | 'terminal' | 'unchanged'; final: boolean }
  | { kind: 'write'; value: string; final: boolean };

/**
 * The rules above as a pure function. `final`: the Task is terminal in the registry after this
 * step (or gone), so the agent keeps no base for it.
 */
export function statusStep(value: string | undefined, ref: TaskRef, patch: TaskStatus, defaults: TaskStatus = {}): StatusStep {
  if (value === undefined) return { kind: 'gone', final: true };
  const task = JSON.parse(value) as Task; // raw: spec and metadata go back untouched
  const verdict = verdictOf(task, ref);
  if (verdict === 'gone') return { kind: 'gone', final: true };
  if (verdict === 'terminal') return { kind: task.status?.state === patch.state ? 'unchanged' : 'terminal', final: true };
  const status = { ...defaults, ...task.status, ...patch };
  const final = TERMINAL_STATES.has(status.state ?? '');
  if (jsonEqual(status, task.status)) return { kind: 'unchanged', final };
  return { kind: 'write', value: JSON.stringify({ ...task, status }), final };
}

export interface StatusReporterOptions {
  store: Store;
  prefix: string;
  logger: Logger;
  /** Aborts every pending report (the agent stopped). */
  signal: AbortSignal;
  /** The registry says the task must not run (terminal or gone): stop it locally. */
  onStale(ref: TaskRef, verdict: 'terminal' | 'gone'): void;
  /** Time of the retry backoff. @default realClock */
  clock?: Clock;
}

interface Pending {
  ref: TaskRef;
  patch: TaskStatus;
  defaults: TaskStatus;
}

/**
 * Writes this agent's task status in the background, batched: whatever was reported while the
 * previous write was in flight goes out as one etcd transaction (a compare-and-swap per task,
 * up to 128 tasks), as Nomad clients batch allocation updates. The compare bases are the values
 * this agent last read or wrote, so a task started from a fresh assignment costs one write and
 * no read; a failed compare (another writer) re-reads that batch's tasks in one round trip and
 * tries again. Store errors back off and retry, with the latest word per task, until written or
 * the agent stops. Costs nothing for tasks with nothing pending but their base, which is
 * dropped once the task is terminal in the registry.
 */
export class StatusReporter {
  /** The latest report not yet being written, per task key. */
  private readonly pending = new Map<string, Pending>();
  /** Compare bases, per task key, of tasks not terminal in the registry. */
  private readonly bases = new Map<string, TaskBase & { uid: string }>();
  private flushing = false;
  /** Keys of reports being written now (taken from pending by a flush, not yet settled). */
  private readonly inFlight = new Set<string>();
  /** whenSettled() callers, per task key. */
  private readonly waiters = new Map<string, Array<() => void>>();

  constructor(private readonly o: StatusReporterOptions) {
    o.signal.addEventListener('abort', () => {
      for (const list of this.waiters.values()) list.forEach((w) => w());
      this.waiters.clear();
    }, { once: true });
  }

  /**
   * Resolves once nothing is pending or being written for the task: its latest report was
   * written, found unneeded or refused by the registry (or the agent stopped). What must not be
   * lost to a crash (a KILLED before the task's leftovers go) waits for this.
   */
  whenSettled(ref: { namespace: string; name: string }): Promise<void> {
    const key = taskRefKey(ref);
    if (this.o.signal.aborted || (!this.pending.has(key) && !this.inFlight.has(key))) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.waiters.get(key) ?? [];
      list.push(resolve);
      this.waiters.set(key, list);
    });
  }

  private wake(key: string): void {
    if (this.pending.has(key) || this.inFlight.has(key)) return;
    const list = this.waiters.get(key);
    if (!list) return;
    this.waiters.delete(key);
    list.forEach((w) => w());
  }

  /**
   * Offers a value of the task's registry key (e.g. the bound Task carried by its assignment, at
   * the assignment's revision) as the base of its next write; an older one than known is ignored.
   */
  seed(ref: TaskRef, base: TaskBase): void {
    const key = taskRefKey(ref);
    const known = this.bases.get(key);
    if (known && known.uid === ref.uid && known.modRevision >= base.modRevision) return;
    this.bases.set(key, { uid: ref.uid, value: base.value, modRevision: base.modRevision }); // not a whole KeyValue: kept per running task
  }

  /** Drops what is known of a task that is no longer here, unless a report for it is still pending. */
  forget(key: string): void {
    if (!this.pending.has(key)) this.bases.delete(key);
  }

  /** Whether the task may run: from its base when one is known, else read from the registry. Store errors propagate. */
  async verdict(ref: TaskRef): Promise<RegistryVerdict> {
    const key = taskRefKey(ref);
    const known = this.bases.get(key);
    if (known?.uid === ref.uid) return verdictOf(JSON.parse(known.value) as Task, ref);
    const kv = await this.o.store.get(objectKey(this.o.prefix, TASKS, ref.namespace, ref.name));
    if (!kv) return 'gone';
    const verdict = verdictOf(JSON.parse(kv.value) as Task, ref);
    if (verdict === 'live' || verdict === 'started') this.seed(ref, kv);
    return verdict;
  }

  /** Queues a report; it merges with (and supersedes) one still pending for the same task. */
  report(ref: TaskRef, patch: TaskStatus, defaults: TaskStatus = {}): void {
    this.enqueue({ ref, patch, defaults });
    if (this.flushing || this.o.signal.aborted) return;
    this.flushing = true;
    setImmediate(() => void this.flush()); // reports made in this turn of the event loop go together
  }

  /** Adds a report under any newer one for the same task (newer fields win). */
  private enqueue(report: Pending, older = false): void {
    const key = taskRefKey(report.ref);
    const other = this.pending.get(key);
    if (!other || other.ref.uid !== report.ref.uid) {
      if (!(older && other)) this.pending.set(key, report);
      return;
    }
    const [first, second] = older ? [report, other] : [other, report];
    this.pending.set(key, { ref: second.ref, patch: { ...first.patch, ...second.patch }, defaults: { ...first.defaults, ...second.defaults } });
  }

  /** Writes until nothing is pending; one flush at a time. Never rejects. */
  private async flush(): Promise<void> {
    try {
      for (let attempt = 0; this.pending.size > 0 && !this.o.signal.aborted; ) {
        const all = [...this.pending.values()];
        this.pending.clear();
        all.forEach((r) => this.inFlight.add(taskRefKey(r.ref)));
        const chunks = chunkTxn(all, (r) => this.bases.get(taskRefKey(r.ref))?.value.length ?? 0);
        const failed = (await Promise.all(chunks.map((c) => this.writeChunk(c, attempt)))).flat();
        // Unwritten reports go back to pending before their keys leave inFlight: a waiter never
        // sees a moment with nothing pending while a report is still to be written.
        const unsettled = new Set(failed.map((r) => taskRefKey(r.ref)));
        failed.forEach((r) => this.enqueue(r, true)); // retried with the latest word, not a stale one
        for (const r of all) {
          const key = taskRefKey(r.ref);
          this.inFlight.delete(key);
          if (!unsettled.has(key)) this.wake(key);
        }
        if (failed.length === 0) {
          attempt = 0;
          continue;
        }
        await sleepUnlessAborted(backoffDelay(attempt++, 500), this.o.signal, this.o.clock);
      }
    } catch (err) {
      this.o.logger.error({ err: errorMessage(err) }, 'task status reporter failed');
    } finally {
      this.flushing = false;
    }
  }

  /** Writes one batch in one transaction, re-reading after lost compares; returns the reports a store error left unwritten. */
  private async writeChunk(chunk: Pending[], attempt: number): Promise<Pending[]> {
    let todo = chunk;
    try {
      for (let round = 0; todo.length > 0; round++) {
        if (round === MAX_CONFLICTS) throw new Error(`tasks kept changing under ${MAX_CONFLICTS} status writes`);
        const bases = await this.basesOf(todo);
        const writes: Array<{ report: Pending; key: string; value: string; base: TaskBase; final: boolean }> = [];
        for (const report of todo) {
          const base = bases.get(taskRefKey(report.ref));
          const step = statusStep(base?.value, report.ref, report.patch, report.defaults);
          if (step.kind === 'write') writes.push({ report, key: this.keyOf(report.ref), value: step.value, base: base!, final: step.final });
          else this.settle(report, step.kind, step.final);
        }
        todo = writes.map((w) => w.report);
        if (writes.length === 0) return [];
        const compares = writes.map((w) => ({ key: w.key, modRevision: w.base.modRevision }));
        const revision = await this.o.store.txn(compares, writes.map((w) => ({ op: 'put' as const, key: w.key, value: w.value })));
        if (revision === undefined) {
          todo.forEach((r) => this.bases.delete(taskRefKey(r.ref))); // another writer: read them again
          continue;
        }
        for (const w of writes) {
          if (!w.final) this.bases.set(taskRefKey(w.report.ref), { uid: w.report.ref.uid, value: w.value, modRevision: revision });
          this.settle(w.report, 'written', w.final);
        }
        return [];
      }
      return [];
    } catch (err) {
      this.o.logger.warn({ tasks: todo.map((r) => taskRefKey(r.ref)).slice(0, 10), count: todo.length, err: errorMessage(err), attempt }, 'task status write failed; retrying');
      return todo;
    }
  }

  /** The base of each report's task, reading those not known in one round trip; absent ones map to undefined. */
  private async basesOf(reports: Pending[]): Promise<Map<string, TaskBase | undefined>> {
    const out = new Map<string, TaskBase | undefined>();
    const unknown: Pending[] = [];
    for (const r of reports) {
      const known = this.bases.get(taskRefKey(r.ref));
      if (known?.uid === r.ref.uid) out.set(taskRefKey(r.ref), known);
      else unknown.push(r);
    }
    if (unknown.length === 0) return out;
    const kvs = await this.o.store.getMany(unknown.map((r) => this.keyOf(r.ref)));
    unknown.forEach((r, i) => {
      const kv = kvs[i];
      out.set(taskRefKey(r.ref), kv && { value: kv.value, modRevision: kv.modRevision });
      if (kv) this.bases.set(taskRefKey(r.ref), { uid: r.ref.uid, value: kv.value, modRevision: kv.modRevision });
    });
    return out;
  }

  /** A report is done: log it, drop the base of a task now terminal or gone, and stop what must not run. */
  private settle(report: Pending, outcome: ReportOutcome, final: boolean): void {
    const key = taskRefKey(report.ref);
    if (final) this.bases.delete(key);
    const fields = { task: key, uid: report.ref.uid, state: report.patch.state, outcome };
    if (outcome === 'written') this.o.logger.info(fields, 'task status reported');
    else if (outcome === 'unchanged') this.o.logger.debug(fields, 'task status already reported');
    else {
      this.o.logger.warn(fields, outcome === 'terminal' ? 'task status not reported: task is terminal in the registry' : 'task status not reported: task is gone from the registry');
      if (outcome === 'terminal' || outcome === 'gone') this.o.onStale(report.ref, outcome);
    }
  }

  private keyOf(ref: TaskRef): string {
    return objectKey(this.o.prefix, TASKS, ref.namespace, ref.name);
  }
}
