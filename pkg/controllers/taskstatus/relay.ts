/**
 * The task status relay: agents write status reports only under their own key range
 * (`<prefix>/taskstatus/<node>/`, all their etcd role allows them besides their lease, their Node
 * and reading their assignments); the leading controller-manager folds each report into its Task
 * (./decide.ts says how), as a Mesos master receives an agent's status updates and forwards them.
 *
 * Batched like the agents' reports before it: every report that changed while the previous round
 * was being written goes out together, decided {@link CHUNK} at a time and written in as few
 * fenced transactions as etcd's limits allow, each Task compared on the mod revision it was
 * decided on. A failed compare re-reads that chunk's
 * Tasks and reports in one round trip and decides again; a store error backs off and retries.
 * Reports of Tasks that are gone are deleted (compared on their own revision and on the Task's
 * absence), so the range holds one key per live task.
 */
import { Counter, type Registry } from 'prom-client';
import { lookupKind } from '../../api/kinds';
import { nameKey } from '../../api/keys';
import type { Task } from '../../api/types.generated';
import { REPORTS_BY_TASK, type StoredTaskStatusReport } from '../../client/informers';
import { assignmentKey, decodeObject, encodeObject, objectKey, taskStatusKey } from '../../store/objects';
import type { TxnCompare, TxnOp } from '../../store/types';
import { chunkTxn, FENCED, txnOpCost, type TxnCost } from '../../store/validate';
import { backoffDelay, errorMessage, sleepUnlessAborted } from '../../util/backoff';
import { fencedTxn, NotLeaderError, type TermContext } from '../context';
import { relayStep, type RelayStep } from './decide';

const TASKS = lookupKind('task')!;
/** Reports decided together (one round trip to re-read after a lost compare: 2 keys each, under 128). */
const CHUNK = 40;
/** Rounds of compare failures in a row before a chunk backs off. */
const MAX_CONFLICTS = 10;

interface Seen {
  /** The report key. */
  key: string;
  report: StoredTaskStatusReport;
  task: Task | undefined;
}

/** Reports the relay decided on, by outcome (one counter per registry, kept across terms). */
export class TaskStatusRelayMetrics {
  readonly reports: Counter<'outcome'>;
  constructor(registry: Registry) {
    const name = 'shoal_task_status_reports_total';
    this.reports = (registry.getSingleMetric(name) as Counter<'outcome'> | undefined) ?? new Counter({
      name, labelNames: ['outcome'], registers: [registry],
      help: "Agents' task status reports the relay wrote something for, by outcome: applied, stopped (the Task was terminal: assignment deleted), gone (Task deleted: report dropped), forged, invalid, malformed (refused).",
    });
  }
}

/** What the relay uses of its term. */
export type TaskStatusRelayOptions = Pick<TermContext, 'store' | 'prefix' | 'informers' | 'fence' | 'events' | 'logger' | 'clock'> & { metrics?: TaskStatusRelayMetrics };

export class TaskStatusRelay {
  private readonly dirty = new Set<string>();
  private flushing = false;
  private readonly abort = new AbortController();

  constructor(private readonly o: TaskStatusRelayOptions) {}

  start(): void {
    const { taskStatuses, tasks } = this.o.informers;
    taskStatuses.addHandlers({ onAdd: (key) => this.enqueue(key), onUpdate: (key) => this.enqueue(key) });
    // A Task deleted: the reports about it go too.
    tasks.addHandlers({
      onDelete: (_key, t) => {
        for (const r of taskStatuses.byIndex(REPORTS_BY_TASK, nameKey(t.metadata.namespace, t.metadata.name))) {
          this.enqueue(taskStatusKey(this.o.prefix, r.node, r.namespace, r.name));
        }
      },
    });
    for (const [key] of taskStatuses.entries()) this.enqueue(key);
  }

  stop(): void {
    this.abort.abort();
  }

  private enqueue(key: string): void {
    this.dirty.add(key);
    if (this.flushing || this.abort.signal.aborted) return;
    this.flushing = true;
    setImmediate(() => void this.flush()); // reports of this turn of the event loop go together
  }

  private async flush(): Promise<void> {
    const { signal } = this.abort;
    try {
      for (let attempt = 0; this.dirty.size > 0 && !signal.aborted; ) {
        const keys = [...this.dirty];
        this.dirty.clear();
        const chunks: string[][] = [];
        for (let i = 0; i < keys.length; i += CHUNK) chunks.push(keys.slice(i, i + CHUNK));
        const failed = (await Promise.all(chunks.map((c) => this.relayChunk(c, attempt)))).flat();
        if (failed.length === 0) {
          attempt = 0;
          continue;
        }
        failed.forEach((k) => this.dirty.add(k));
        await sleepUnlessAborted(backoffDelay(attempt++, 500), signal, this.o.clock);
      }
    } catch (err) {
      if (err instanceof NotLeaderError) this.abort.abort();
      else this.o.logger.error({ err: errorMessage(err) }, 'task status relay failed');
    } finally {
      this.flushing = false;
      if (this.dirty.size > 0 && !signal.aborted) this.enqueue([...this.dirty][0]);
    }
  }

  /** Decides and writes one chunk, re-reading after lost compares; returns the keys a store error left undone. */
  private async relayChunk(keys: string[], attempt: number): Promise<string[]> {
    try {
      let seen = this.fromInformers(keys);
      for (let round = 0; seen.length > 0; round++) {
        if (round === MAX_CONFLICTS) throw new Error(`tasks kept changing under ${MAX_CONFLICTS} rounds of status writes`);
        const decided = seen.map((s) => ({ s, step: relayStep({ task: s.task, node: s.report.node, value: s.report.value, revision: s.report.modRevision }) }));
        const writes = decided.filter((d) => d.step.kind !== 'none').map((d) => ({ ...d, ...this.plan(d.s, d.step) }));
        // As many transactions as etcd's limits need (large Tasks: fewer per transaction).
        const conflicted: Seen[] = [];
        for (const group of chunkTxn(writes, txnCostOf, FENCED)) {
          if ((await fencedTxn(this.o, group.flatMap((w) => w.compares), group.flatMap((w) => w.ops))) !== undefined) group.forEach((w) => this.log(w.s, w.step));
          else conflicted.push(...group.map((w) => w.s));
        }
        if (conflicted.length === 0) return [];
        seen = await this.read(conflicted); // another writer came between: decide again on what is there now
      }
      return [];
    } catch (err) {
      if (err instanceof NotLeaderError) throw err;
      this.o.logger.warn({ reports: keys.slice(0, 10), count: keys.length, err: errorMessage(err), attempt }, 'task status relay write failed; retrying');
      return keys;
    }
  }

  /** The compares and ops of one step (see ./decide.ts). */
  private plan(s: Seen, step: RelayStep): { compares: TxnCompare[]; ops: TxnOp[] } {
    const { namespace, name, node } = s.report;
    const taskKey = objectKey(this.o.prefix, TASKS, namespace, name);
    const onTask = { key: taskKey, modRevision: s.task ? Number(s.task.metadata.resourceVersion) : 0 };
    switch (step.kind) {
      case 'apply':
        return { compares: [onTask], ops: [{ op: 'put', key: taskKey, value: encodeObject(step.task) }] };
      case 'stop':
        return { compares: [onTask], ops: [{ op: 'delete', key: assignmentKey(this.o.prefix, node, namespace, name) }] };
      case 'drop': // only this report, and only while the Task is as decided on (absent: revision 0)
        return { compares: [{ key: s.key, modRevision: s.report.modRevision }, onTask], ops: [{ op: 'delete', key: s.key }] };
      case 'none':
        return { compares: [], ops: [] };
    }
  }

  private log(s: Seen, step: RelayStep): void {
    if (step.kind !== 'none') this.o.metrics?.reports.inc({ outcome: step.kind === 'apply' ? 'applied' : step.kind === 'stop' ? 'stopped' : step.why });
    const fields = { task: nameKey(s.report.namespace, s.report.name), node: s.report.node, revision: s.report.modRevision };
    const { logger } = this.o;
    if (step.kind === 'apply') {
      if (step.from !== step.to) logger.info({ ...fields, from: step.from, state: step.to }, 'task status relayed');
      else logger.debug(fields, 'task status relayed');
    } else if (step.kind === 'stop') {
      logger.info(fields, 'task is terminal in the registry but its agent says it runs: assignment deleted so the agent stops it');
    } else if (step.kind === 'drop') {
      if (step.why === 'forged' || step.why === 'invalid' || step.why === 'malformed') {
        logger.warn({ ...fields, why: step.why, message: step.message }, 'task status report refused');
        void this.o.events.record({ kind: 'Node', name: s.report.node }, 'Warning', step.why === 'forged' ? 'ForgedTaskStatus' : 'InvalidTaskStatus', `status report for task ${fields.task} refused: ${step.message ?? 'not a task status report'}`);
      } else logger.debug(fields, 'task status report dropped: the task is gone');
    }
  }

  private fromInformers(keys: string[]): Seen[] {
    const { taskStatuses, tasks } = this.o.informers;
    const out: Seen[] = [];
    for (const key of keys) {
      const report = taskStatuses.get(key);
      if (!report) continue; // deleted since: nothing to relay
      out.push({ key, report, task: tasks.get(objectKey(this.o.prefix, TASKS, report.namespace, report.name)) });
    }
    return out;
  }

  /** These reports and their Tasks as they are now, in one round trip (a report deleted since is left out). */
  private async read(stale: Seen[]): Promise<Seen[]> {
    const kvs = await this.o.store.getMany(stale.flatMap(({ key, report }) => [key, objectKey(this.o.prefix, TASKS, report.namespace, report.name)]));
    const out: Seen[] = [];
    stale.forEach(({ key, report }, i) => {
      const [reportKv, taskKv] = [kvs[2 * i], kvs[2 * i + 1]];
      if (!reportKv) return;
      out.push({ key, report: { ...report, value: reportKv.value, modRevision: reportKv.modRevision }, task: taskKv && decodeObject<Task>(taskKv.value, taskKv.modRevision) });
    });
    return out;
  }
}

/** What one write adds to a transaction. */
function txnCostOf(w: { compares: TxnCompare[]; ops: TxnOp[] }): TxnCost {
  return { compares: w.compares.length, ops: w.ops.length, bytes: w.ops.reduce((n, op) => n + txnOpCost(op).bytes!, 0) };
}
