/**
 * Node lifecycle: an agent whose lease key is gone is lost. Its Node gets Ready=Unknown and an
 * event; after a grace period (default 0 s) its non-terminal tasks change, in fenced transactions:
 * - a task with an unreachableStrategy (an App's) becomes UNREACHABLE, its assignment kept: its
 *   App replaces it after inactiveAfterSeconds, and if the agent comes back the agent reports it
 *   RUNNING again; once expungeAfterSeconds have passed it becomes LOST as below;
 * - any other task becomes LOST and its assignment key is deleted, so its framework replaces it
 *   and an agent that comes back finds no assignment and stops what it still runs.
 */
import { lookupKind } from '../api/kinds';
import type { Node, Task } from '../api/types.generated';
import { agentLeaseKey, assignmentKey, encodeObject, objectKey, taskStatusKey } from '../store/objects';
import { chunkTxn, FENCED } from '../store/validate';
import { nameKey } from '../api/keys';
import { fencedTxn, NotLeaderError, type TermContext } from './context';
import { lastSegment, TASKS_BY_NODE } from '../client/informers';
import { isTerminal, stampStatusRevision } from '../api/tasks';
import { WorkQueue } from './queue';
import type { Clock } from '../util/clock';

const NODES = lookupKind('node')!;
const TASKS = lookupKind('task')!;

export interface NodeLifecycleOptions extends TermContext {
  /** Seconds between losing an agent and marking its tasks LOST. @default 0 */
  lostTaskGraceSeconds?: number;
}

export class NodeLifecycleController {
  private readonly queue: WorkQueue;
  /** When each node was first seen without a lease (grace accounting). */
  private readonly lostSince = new Map<string, number>();
  private readonly clock: Clock;

  constructor(private readonly o: NodeLifecycleOptions) {
    this.clock = o.clock;
    this.queue = new WorkQueue({ sync: (name) => this.sync(name).catch(ignoreNotLeader), logger: o.logger, workers: 2, clock: this.clock });
  }

  start(): void {
    const enqueue = (key: string) => this.queue.add(lastSegment(key));
    this.o.informers.nodes.addHandlers({ onAdd: enqueue, onUpdate: enqueue });
    this.o.informers.leases.addHandlers({ onAdd: enqueue, onDelete: enqueue });
    for (const [key] of this.o.informers.nodes.entries()) enqueue(key);
  }

  stop(): void {
    this.queue.stop();
  }

  /** Converges one node: alive → nothing to do; lost → Ready=Unknown, then its tasks LOST. */
  async sync(name: string): Promise<void> {
    const node = this.o.informers.nodes.get(objectKey(this.o.prefix, NODES, undefined, name));
    if (!node) return;
    // The lease informer can lag the node informer (a re-registered agent writes its lease key
    // first): confirm with a read before declaring the agent lost.
    const leaseKey = agentLeaseKey(this.o.prefix, name);
    if (this.o.informers.leases.get(leaseKey) !== undefined || (await this.o.store.get(leaseKey)) !== undefined) {
      this.lostSince.delete(name);
      return;
    }
    const since = this.lostSince.get(name) ?? this.clock.now();
    this.lostSince.set(name, since);
    await this.markNotReady(node);
    const graceMs = (this.o.lostTaskGraceSeconds ?? 0) * 1000;
    const wait = since + graceMs - this.clock.now();
    if (wait > 0) {
      this.queue.addAfter(name, wait);
      return;
    }
    const next = await this.markTasks(name);
    if (next !== undefined) this.queue.addAfter(name, Math.max(0, next - this.clock.now()) + 1);
  }

  private async markNotReady(node: Node): Promise<void> {
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status === 'Unknown') return;
    const next = structuredClone(node);
    const at = this.clock.date().toISOString();
    const condition = { type: 'Ready', status: 'Unknown' as const, reason: 'NodeLeaseExpired', message: 'the agent stopped renewing its lease', lastTransitionTime: at };
    next.status.conditions = [...(next.status.conditions ?? []).filter((c) => c.type !== 'Ready'), condition];
    const key = objectKey(this.o.prefix, NODES, undefined, node.metadata.name);
    if (!(await fencedTxn(this.o, [{ key, modRevision: Number(node.metadata.resourceVersion) }], [{ op: 'put', key, value: encodeObject(next) }]))) {
      throw new Error(`node ${node.metadata.name} changed; retrying`);
    }
    this.o.logger.warn({ node: node.metadata.name }, 'agent lost: node not ready');
    await this.o.events.record({ kind: 'Node', name: node.metadata.name, uid: node.metadata.uid }, 'Warning', 'NodeNotReady', `agent ${node.metadata.name} stopped renewing its lease`);
  }

  /**
   * The lost agent's tasks: UNREACHABLE (those with an unreachableStrategy, until expunged) or
   * LOST. Returns when the next UNREACHABLE task is to be expunged (sync again then).
   */
  private async markTasks(node: string): Promise<number | undefined> {
    const now = this.clock.now();
    const decided = this.o.informers.tasks.byIndex(TASKS_BY_NODE, node).filter((t) => !isTerminal(t)).map((task) => ({ task, ...decide(task, now) }));
    const changes = decided.filter((d) => d.next !== undefined);
    const writes = changes.map(({ task, next }) => {
      const ns = task.metadata.namespace ?? 'default';
      const key = objectKey(this.o.prefix, TASKS, ns, task.metadata.name);
      const lost = next === 'LOST';
      // The agent's last report about the task, as seen: compared, and stamped on the Task as
      // superseded, so the relay never applies a report older than this mark (an agent's RUNNING
      // written just before it was lost would otherwise undo the mark).
      const report = taskStatusKey(this.o.prefix, node, ns, task.metadata.name);
      const reportRevision = this.o.informers.taskStatuses.get(report)?.modRevision ?? 0;
      const marked = stampStatusRevision(lost ? this.lost(task, node) : this.unreachable(task, node), reportRevision);
      return { task, key, lost, value: encodeObject(marked), assignment: assignmentKey(this.o.prefix, node, ns, task.metadata.name), report, reportRevision };
    });
    // Per task: two compares (the Task, the agent's report) and a put of the Task, and for LOST a
    // delete of its assignment.
    const cost = (w: (typeof writes)[number]) => ({ ops: 2, compares: 2, bytes: 2 * w.key.length + w.value.length + w.assignment.length + w.report.length });
    for (const batch of chunkTxn(writes, cost, FENCED)) {
      const compares = batch.flatMap((w) => [{ key: w.key, modRevision: Number(w.task.metadata.resourceVersion) }, { key: w.report, modRevision: w.reportRevision }]);
      const ops = batch.flatMap((w) => [{ op: 'put' as const, key: w.key, value: w.value }, ...(w.lost ? [{ op: 'delete' as const, key: w.assignment }] : [])]);
      if (!(await fencedTxn(this.o, compares, ops))) throw new Error(`tasks on ${node} changed; retrying`);
      for (const w of batch) this.o.logger.warn({ task: nameKey(w.task.metadata.namespace, w.task.metadata.name), node, state: w.lost ? 'LOST' : 'UNREACHABLE' }, w.lost ? 'task lost with its agent' : 'task unreachable with its agent');
    }
    const lost = writes.filter((w) => w.lost).length;
    const unreachable = writes.length - lost;
    if (lost) await this.o.events.record({ kind: 'Node', name: node }, 'Warning', 'TasksLost', `${lost} task(s) on ${node} marked LOST`);
    if (unreachable) await this.o.events.record({ kind: 'Node', name: node }, 'Warning', 'TasksUnreachable', `${unreachable} task(s) on ${node} marked UNREACHABLE (kept until their expungeAfterSeconds)`);
    const expunges = decided.map((d) => d.expungeAt).filter((at): at is number => at !== undefined && at > now);
    return expunges.length ? Math.min(...expunges) : undefined;
  }

  private lost(task: Task, node: string): Task {
    const next = structuredClone(task);
    const was = task.status?.state === 'UNREACHABLE' ? ' (unreachable past its expungeAfterSeconds)' : '';
    next.status = { ...next.status, state: 'LOST', reason: 'AgentLost', message: `agent ${node} was lost${was}`, finishedAt: this.clock.date().toISOString() };
    return next;
  }

  private unreachable(task: Task, node: string): Task {
    const next = structuredClone(task);
    next.status = { ...next.status, state: 'UNREACHABLE', reason: 'AgentUnreachable', message: `agent ${node} stopped renewing its lease`, unreachableSince: this.clock.date().toISOString() };
    return next;
  }
}

/**
 * What a non-terminal task of a lost agent becomes now: UNREACHABLE (with a strategy, not yet
 * so), LOST (without one, or past its expunge time), or nothing new; and when it is expunged.
 */
export function decide(task: Task, now: number): { next?: 'UNREACHABLE' | 'LOST'; expungeAt?: number } {
  const strategy = task.spec?.unreachableStrategy;
  if (!strategy) return { next: 'LOST' };
  if (task.status?.state !== 'UNREACHABLE') {
    return strategy.expungeAfterSeconds <= 0 ? { next: 'LOST' } : { next: 'UNREACHABLE', expungeAt: now + strategy.expungeAfterSeconds * 1000 };
  }
  const since = Date.parse(task.status.unreachableSince ?? '') || now;
  const expungeAt = since + strategy.expungeAfterSeconds * 1000;
  return now >= expungeAt ? { next: 'LOST' } : { expungeAt };
}

/** A write refused by the fence ends the term: the next leader converges the node, nothing to retry here. */
function ignoreNotLeader(err: unknown): void {
  if (!(err instanceof NotLeaderError)) throw err;
}

