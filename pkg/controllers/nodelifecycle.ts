/**
 * Node lifecycle: an agent whose lease key is gone is lost. Its Node gets Ready=Unknown and an
 * event; after a grace period (default 0 s, Marathon's) its non-terminal tasks become LOST and
 * their assignment keys are deleted, in fenced transactions, so their frameworks replace them
 * and an agent that comes back finds no assignment and stops what it still runs.
 */
import { lookupKind } from '../api/kinds';
import type { Node, Task } from '../api/types.generated';
import { agentLeaseKey, assignmentKey, encodeObject, objectKey } from '../store/objects';
import { chunkTxn, FENCED } from '../store/validate';
import { nameKey } from '../api/keys';
import { fencedTxn, NotLeaderError, type TermContext } from './context';
import { lastSegment, TASKS_BY_NODE } from '../client/informers';
import { isTerminal } from '../api/tasks';
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
    await this.markTasksLost(name);
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

  private async markTasksLost(node: string): Promise<void> {
    const tasks = this.o.informers.tasks.byIndex(TASKS_BY_NODE, node).filter((t) => !isTerminal(t));
    const writes = tasks.map((task) => {
      const ns = task.metadata.namespace ?? 'default';
      const key = objectKey(this.o.prefix, TASKS, ns, task.metadata.name);
      return { task, key, value: encodeObject(this.lost(task, node)), assignment: assignmentKey(this.o.prefix, node, ns, task.metadata.name) };
    });
    // Per task: a compare and a put of the Task, a delete of its assignment.
    const cost = (w: (typeof writes)[number]) => ({ ops: 2, compares: 1, bytes: 2 * w.key.length + w.value.length + w.assignment.length });
    for (const batch of chunkTxn(writes, cost, FENCED)) {
      const compares = batch.map((w) => ({ key: w.key, modRevision: Number(w.task.metadata.resourceVersion) }));
      const ops = batch.flatMap((w) => [{ op: 'put' as const, key: w.key, value: w.value }, { op: 'delete' as const, key: w.assignment }]);
      if (!(await fencedTxn(this.o, compares, ops))) throw new Error(`tasks on ${node} changed; retrying`);
      for (const { task: t } of batch) this.o.logger.warn({ task: nameKey(t.metadata.namespace, t.metadata.name), node }, 'task lost with its agent');
    }
    if (tasks.length) await this.o.events.record({ kind: 'Node', name: node }, 'Warning', 'TasksLost', `${tasks.length} task(s) on ${node} marked LOST`);
  }

  private lost(task: Task, node: string): Task {
    const next = structuredClone(task);
    next.status = { ...next.status, state: 'LOST', reason: 'AgentLost', message: `agent ${node} was lost`, finishedAt: this.clock.date().toISOString() };
    return next;
  }
}

/** A write refused by the fence ends the term: the next leader converges the node, nothing to retry here. */
function ignoreNotLeader(err: unknown): void {
  if (!(err instanceof NotLeaderError)) throw err;
}
