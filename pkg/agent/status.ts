/**
 * How an agent reports task status.
 *
 * Decision (DESIGN.md "Keys and writers", issue 15): the agent writes a **status report per task
 * under its own key range**, `taskStatusKey(prefix, node, namespace, name)`, and nothing else of
 * a Task: its etcd role reaches only its lease key, its Node, its assignments (read) and this
 * range, so a compromised agent cannot forge another node's task status. The leading
 * controller-manager's task status relay (pkg/controllers/taskstatus) folds each report into its
 * Task, checking that the Task is bound to this node and has the report's uid, and answers a
 * report the registry refuses (the Task is terminal there) by deleting the assignment, which
 * stops the task here. Writing through the apiserver with a node authorizer was the alternative;
 * it would make every agent depend on the apiserver and cost an HTTP request per report, where
 * this costs one put in a batched transaction (see docs/operations.md for the measured cost).
 *
 * A report holds everything the agent has said of the task (`status`, newest value per field,
 * and `defaults`, first value per field), so the latest report alone is enough, and a restarted
 * agent reads its range back to know what it said before (whether a task had started).
 * Writes are idempotent and need no compare: only this agent writes its range (the relay only
 * deletes reports of Tasks that are gone). Store errors are retried with backoff until written
 * or the agent stops; a newer report for the same task merges into the pending one.
 */
import type { Logger } from 'pino';
import type { TaskStatus } from '../api/types.generated';
import { jsonEqual } from '../util/json';
import { backoffDelay, errorMessage, sleepUnlessAborted } from '../util/backoff';
import type { Clock } from '../util/clock';
import { taskStatusKey, taskStatusPrefix } from '../store/objects';
import { parseTaskStatusReport, TERMINAL_STATES, type TaskStatusReport } from '../api/tasks';
import type { Store } from '../store/types';
import { chunkTxn } from '../store/validate';

/** One task of this agent, as the registry names it. */
export interface TaskRef {
  namespace: string;
  name: string;
  uid: string;
}

/**
 * What this agent said of a task before: nothing or only that it was staged (`live`: it may
 * start), that it began running once already (`started`), or that it ended (`terminal`).
 */
export type ReportVerdict = 'live' | 'started' | 'terminal';

/** `namespace/name`, the agent's key for a task. */
export function taskRefKey(ref: { namespace: string; name: string }): string {
  return `${ref.namespace}/${ref.name}`;
}

/** The report after `patch` (newer fields win) and `defaults` (older ones win) are added to `base`. */
function mergeReport(base: TaskStatusReport | undefined, uid: string, patch: TaskStatus, defaults: TaskStatus = {}): TaskStatusReport {
  const same = base?.uid === uid ? base : undefined;
  const merged = { ...defaults, ...same?.defaults };
  return { uid, status: { ...same?.status, ...patch }, ...(Object.keys(merged).length ? { defaults: merged } : {}) };
}

export interface StatusReporterOptions {
  store: Store;
  prefix: string;
  /** This agent's node: its reports go under taskStatusPrefix(prefix, node). */
  node: string;
  logger: Logger;
  /** Aborts every pending report (the agent stopped). */
  signal: AbortSignal;
  /** Time of the retry backoff. @default realClock */
  clock?: Clock;
}

interface Pending {
  ref: TaskRef;
  patch: TaskStatus;
  defaults: TaskStatus;
  /** Write even if the report says nothing new (the registry may have moved on: say it again). */
  force: boolean;
}

/**
 * Writes this agent's task status reports in the background, batched: whatever was reported
 * while the previous write was in flight goes out as one etcd transaction (up to 128 puts), as
 * Nomad clients batch allocation updates.
 */
export class StatusReporter {
  /** The latest word not yet being written, per task key. */
  private readonly pending = new Map<string, Pending>();
  /** What this agent's report key holds, per task key, as written (or read back after a restart). */
  private readonly reports = new Map<string, TaskStatusReport>();
  /** The read-back of this agent's range (once per agent). */
  private loading?: Promise<void>;
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
   * Resolves once nothing is pending or being written for the task: its latest report is in etcd
   * (or the agent stopped). What must not be lost to a crash (a KILLED before the task's
   * leftovers go) waits for this.
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

  /** Drops what is known of a task that is no longer here, unless a report for it is still to be written. */
  forget(key: string): void {
    if (!this.pending.has(key) && !this.inFlight.has(key)) this.reports.delete(key);
  }

  /** What this agent said of the task before (read back from etcd after a restart). Store errors propagate. */
  async verdict(ref: TaskRef): Promise<ReportVerdict> {
    await this.load();
    const report = this.reports.get(taskRefKey(ref));
    if (report?.uid !== ref.uid) return 'live';
    const state = typeof report.status.state === 'string' ? report.status.state : '';
    if (TERMINAL_STATES.has(state)) return 'terminal';
    return state === '' || state === 'STAGING' ? 'live' : 'started';
  }

  /** Queues a report; it merges with (and supersedes) one still pending for the same task. */
  report(ref: TaskRef, patch: TaskStatus, defaults: TaskStatus = {}, opts: { force?: boolean } = {}): void {
    this.enqueue({ ref, patch, defaults, force: opts.force ?? false });
    if (this.flushing || this.o.signal.aborted) return;
    this.flushing = true;
    setImmediate(() => void this.flush()); // reports made in this turn of the event loop go together
  }

  /** Reads this agent's range once; a failed read is tried again by the next caller. */
  private load(): Promise<void> {
    this.loading ??= this.o.store.list(taskStatusPrefix(this.o.prefix, this.o.node)).then(
      ({ items }) => {
        const from = taskStatusPrefix(this.o.prefix, this.o.node).length;
        for (const kv of items) {
          const key = kv.key.slice(from);
          const report = parseTaskStatusReport(kv.value);
          if (report && !this.reports.has(key)) this.reports.set(key, report);
        }
      },
      (err: unknown) => {
        this.loading = undefined;
        throw err;
      },
    );
    return this.loading;
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
    this.pending.set(key, { ref: second.ref, patch: { ...first.patch, ...second.patch }, defaults: { ...second.defaults, ...first.defaults }, force: first.force || second.force });
  }

  /** Writes until nothing is pending; one flush at a time. Never rejects. */
  private async flush(): Promise<void> {
    try {
      for (let attempt = 0; this.pending.size > 0 && !this.o.signal.aborted; ) {
        try {
          await this.load();
        } catch (err) {
          this.o.logger.warn({ err: errorMessage(err), attempt }, 'reading back task status reports failed; retrying');
          await sleepUnlessAborted(backoffDelay(attempt++, 500), this.o.signal, this.o.clock);
          continue;
        }
        // Taken after the read-back: reports made while it was awaited are in pending now.
        const all = [...this.pending.values()];
        this.pending.clear();
        all.forEach((r) => this.inFlight.add(taskRefKey(r.ref)));
        const failed = await this.write(all, attempt);
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

  /** Writes what changed, in as few transactions as etcd's limits allow; returns the reports a store error left unwritten. */
  private async write(all: Pending[], attempt: number): Promise<Pending[]> {
    const writes: Array<{ p: Pending; key: string; report: TaskStatusReport; value: string }> = [];
    for (const p of all) {
      const key = taskRefKey(p.ref);
      const report = mergeReport(this.reports.get(key), p.ref.uid, p.patch, p.defaults);
      if (!p.force && jsonEqual(report, this.reports.get(key))) continue;
      writes.push({ p, key, report, value: JSON.stringify(report) });
    }
    const failed = await Promise.all(
      chunkTxn(writes, (w) => w.value.length).map(async (chunk) => {
        const ops = chunk.map((w) => ({ op: 'put' as const, key: taskStatusKey(this.o.prefix, this.o.node, w.p.ref.namespace, w.p.ref.name), value: w.value }));
        try {
          await this.o.store.txn([], ops);
        } catch (err) {
          this.o.logger.warn({ tasks: chunk.slice(0, 10).map((w) => w.key), count: chunk.length, err: errorMessage(err), attempt }, 'task status write failed; retrying');
          return chunk.map((w) => w.p);
        }
        for (const w of chunk) {
          this.reports.set(w.key, w.report);
          this.o.logger.info({ task: w.key, uid: w.p.ref.uid, state: w.p.patch.state }, 'task status reported');
        }
        return [];
      }),
    );
    return failed.flat();
  }
}
