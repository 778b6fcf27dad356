/**
 * The binder: accepted launches become Task objects (already bound to their node) plus
 * assignment keys, in batched etcd transactions. Each transaction is guarded by the leader key
 * (fence), by each agent's lease key at the revision the offer was made from, and by the task
 * key being absent: a failed guard means those launches did not happen, and nothing is
 * half-written.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { lookupKind } from '../api/kinds';
import { nameKey } from '../api/keys';
import { admit, formatCauses } from '../api/validation';
import type { Task } from '../api/types.generated';
import { realClock, type Clock } from '../util/clock';
import { agentLeaseKey, assignmentKey, encodeObject, objectKey } from '../store/objects';
import { Limiter } from '../util/async';
import { FRAMEWORK_LABEL } from '../client/informers';
import type { Fence, Store, TxnCompare, TxnOp } from '../store/types';
import { MAX_TXN_BYTES, MAX_TXN_OPS } from '../store/validate';
import type { LaunchRequest, LaunchResult } from '../scheduler/types';

/** One accepted launch with the agent registration it was offered from. */
export interface BindItem {
  request: LaunchRequest;
  agent: string;
  leaseRevision: number;
  frameworkId: string;
  /** The framework's role: the Task's spec.role, which its resources are accounted to (whatever the template says). */
  role?: string;
}


/** A launch ready to write: its Task, encoded. */
interface Ready {
  item: BindItem;
  value: string;
}

/**
 * Bind transactions in flight at once. etcd batches concurrent proposals into one raft round and
 * fsync, so a few help; many only queue in etcd's apply, and etcd answers no lease renewal until
 * its apply has caught up (after 1 s it fails the renewal stream: "waiting for the applied index
 * took too long"). A full bind txn (128 ops) takes about 100 ms to apply on a loaded 2-core
 * machine: at 32 in flight every agent lease of a 5,000-agent cluster expired in a cascade, at 4
 * none did, and 10,000 tasks bind as fast (5–6 s).
 */
const TXNS_IN_FLIGHT = 4;
const TASKS = lookupKind('task')!;

export { FRAMEWORK_LABEL };

export class Binder {
  /** Shared by every bind in flight: allocation rounds do not wait for their binds, so several overlap. */
  private readonly txns = new Limiter(TXNS_IN_FLIGHT);

  constructor(private readonly store: Store, private readonly prefix: string, private readonly log: Logger, private readonly clock: Clock = realClock) {}

  /** Writes every launch it can; one result per item, in order. */
  async bind(items: BindItem[], fence: Fence): Promise<LaunchResult[]> {
    const results = new Map<BindItem, LaunchResult>();
    const ready: Ready[] = [];
    for (const item of items) {
      const task = this.taskFor(item);
      if (typeof task === 'string') {
        this.log.warn({ task: nameKey(item.request.namespace, item.request.taskName), why: task }, 'launch refused: invalid task');
        results.set(item, { request: item.request, ok: false, reason: 'BindFailed' });
      } else ready.push({ item, value: encodeObject(task) });
    }
    // Transactions are independent (each creates its own tasks): several in flight let etcd commit
    // them together; more would only queue inside etcd and delay its lease renewals.
    for (const batchResults of await Promise.all(batches(ready).map((batch) => this.txns.run(() => this.bindBatch(batch, fence))))) {
      for (const [item, r] of batchResults) results.set(item, r);
    }
    return items.map((i) => results.get(i)!);
  }

  private taskFor(item: BindItem): Task | string {
    const r = item.request;
    const tpl = r.task;
    const now = this.clock.date().toISOString();
    const ports = (tpl.spec.ports ?? []).map((p, i) => ({ ...p, hostPort: r.ports[i] ?? p.hostPort }));
    const candidate = {
      apiVersion: 'shoal/v1',
      kind: 'Task',
      metadata: {
        ...tpl.metadata,
        labels: { ...tpl.metadata?.labels, [FRAMEWORK_LABEL]: item.frameworkId },
        name: r.taskName,
        namespace: r.namespace,
        uid: randomUUID(),
        generation: 1,
        creationTimestamp: now,
      },
      spec: { ...tpl.spec, ...(item.role !== undefined ? { role: item.role } : {}), ports, nodeName: item.agent, resources: r.resources, ...(r.placement ? { placement: r.placement } : {}) },
      status: { state: 'STAGING', stagedAt: now, hostPorts: r.ports },
    };
    const admitted = admit(candidate);
    return admitted.ok ? (admitted.object as Task) : formatCauses(admitted.causes);
  }

  /** One transaction; on a failed guard, finds which guard failed and retries the rest once. */
  private async bindBatch(batch: Ready[], fence: Fence, retry = true): Promise<Array<[BindItem, LaunchResult]>> {
    const compares: TxnCompare[] = [{ key: fence.key, modRevision: fence.modRevision }];
    const ops: TxnOp[] = [];
    const agents = new Map<string, number>();
    for (const { item, value } of batch) {
      agents.set(item.agent, item.leaseRevision);
      const key = objectKey(this.prefix, TASKS, item.request.namespace, item.request.taskName);
      compares.push({ key, modRevision: 0 });
      // The assignment is the Task itself, byte for byte: its agent takes it as the Task's value at
      // this revision, the compare base of its first status write (no read before it starts).
      ops.push({ op: 'put', key, value });
      ops.push({ op: 'put', key: assignmentKey(this.prefix, item.agent, item.request.namespace, item.request.taskName), value });
    }
    for (const [agent, rev] of agents) compares.push({ key: agentLeaseKey(this.prefix, agent), modRevision: rev });
    let revision: number | undefined;
    try {
      revision = await this.store.txn(compares, ops);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, tasks: batch.length }, 'bind transaction failed');
      return batch.map(({ item }) => [item, { request: item.request, ok: false, reason: 'BindFailed' }]);
    }
    if (revision !== undefined) {
      for (const { item } of batch) this.log.info({ task: nameKey(item.request.namespace, item.request.taskName), node: item.agent, framework: item.frameworkId, revision }, 'task bound');
      return batch.map(({ item }) => [item, { request: item.request, ok: true }]);
    }
    return this.diagnose(batch, fence, retry);
  }

  private async diagnose(batch: Ready[], fence: Fence, retry: boolean): Promise<Array<[BindItem, LaunchResult]>> {
    const leader = await this.store.get(fence.key);
    if (leader?.modRevision !== fence.modRevision) {
      this.log.warn({ tasks: batch.length }, 'bind refused: no longer the leader');
      return batch.map(({ item }) => [item, { request: item.request, ok: false, reason: 'NotLeader' }]);
    }
    const out: Array<[BindItem, LaunchResult]> = [];
    const rest: typeof batch = [];
    const leases = new Map<string, number>();
    for (const { item, value } of batch) {
      if (!leases.has(item.agent)) leases.set(item.agent, (await this.store.get(agentLeaseKey(this.prefix, item.agent)))?.modRevision ?? 0);
      const taskKey = objectKey(this.prefix, TASKS, item.request.namespace, item.request.taskName);
      if (leases.get(item.agent) !== item.leaseRevision) out.push([item, { request: item.request, ok: false, reason: 'AgentLost' }]);
      else if (await this.store.get(taskKey)) out.push([item, { request: item.request, ok: false, reason: 'BindFailed' }]);
      else rest.push({ item, value });
    }
    for (const [item, r] of out) this.log.warn({ task: nameKey(item.request.namespace, item.request.taskName), node: item.agent, reason: r.reason }, 'bind refused');
    if (rest.length && retry) out.push(...(await this.bindBatch(rest, fence, false)));
    else for (const { item } of rest) out.push([item, { request: item.request, ok: false, reason: 'BindFailed' }]);
    return out;
  }
}

/**
 * Splits launches so each txn stays within etcd's limits: ops (a Task and its assignment per
 * launch), compares (the fence, each task key, each agent's lease key) and request bytes.
 */
function batches(all: Ready[]): Ready[][] {
  const out: Ready[][] = [];
  let cur: Ready[] = [];
  let agents = new Set<string>();
  let bytes = 0;
  for (const x of all) {
    const newAgent = agents.has(x.item.agent) ? 0 : 1;
    const compares = 1 + cur.length + 1 + agents.size + newAgent;
    const size = 2 * x.value.length + 256; // the value twice, keys
    if (cur.length > 0 && ((cur.length + 1) * 2 > MAX_TXN_OPS || compares > MAX_TXN_OPS || bytes + size > MAX_TXN_BYTES)) {
      out.push(cur);
      cur = [];
      agents = new Set();
      bytes = 0;
    }
    cur.push(x);
    agents.add(x.item.agent);
    bytes += size;
  }
  if (cur.length) out.push(cur);
  return out;
}
