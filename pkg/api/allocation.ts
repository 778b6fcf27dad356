/**
 * What each node's live tasks hold: the NodeAllocation the apiserver computes and serves at
 * `GET /api/v1/nodeallocations[/{node}]` (`shoal get nodes` ALLOCATED, `shoal describe node`).
 *
 * Why a server-side aggregate: any authenticated user may read nodes (docs/api.md), but the tasks
 * on a node belong to many namespaces, and most users may read tasks in a few of them only.
 * Kubernetes' `kubectl describe node` lists pods with `spec.nodeName=` across all namespaces,
 * which needs cluster-wide pod read; here the server reads the tasks with its own etcd access and
 * answers only sums per node (no task names, namespaces or owners), which is node information.
 * It is computed per request (one etcd range read of the tasks, shared by concurrent requests)
 * rather than kept in Node.status by a controller: Node.status has one writer, the agent, and a
 * second writer would fight it; and the sums are never stale this way.
 */
import { isTerminal } from './tasks';
import type { Task } from './types.generated';

export const NODE_ALLOCATION_KIND = 'NodeAllocation';

/** Resources held on one node by its tasks that are not terminal. */
export interface NodeAllocation {
  apiVersion: 'shoal/v1';
  kind: 'NodeAllocation';
  /** The node's name; resourceVersion is the etcd revision the tasks were read at. */
  metadata: { name: string; resourceVersion?: string };
  /** cpus in cores (rounded to millicores), mem and disk in MiB, host ports ascending. */
  allocated: { cpus: number; mem: number; disk: number; ports: number[] };
  /** How many non-terminal tasks hold them. */
  tasks: number;
}

/** A NodeAllocation holding nothing (a node without live tasks). */
export function emptyAllocation(node: string, resourceVersion?: string): NodeAllocation {
  return { apiVersion: 'shoal/v1', kind: 'NodeAllocation', metadata: { name: node, ...(resourceVersion ? { resourceVersion } : {}) }, allocated: { cpus: 0, mem: 0, disk: 0, ports: [] }, tasks: 0 };
}

/**
 * Sums the resources and host ports of non-terminal placed tasks per node, sorted by node name.
 * Ports as the master's allocator counts them: assigned (status.hostPorts), else requested fixed ones.
 */
export function allocationsByNode(tasks: Task[], resourceVersion?: string): NodeAllocation[] {
  const byNode = new Map<string, NodeAllocation>();
  for (const t of tasks) {
    const node = t.spec?.nodeName;
    if (!node || isTerminal(t)) continue;
    let a = byNode.get(node);
    if (!a) byNode.set(node, (a = emptyAllocation(node, resourceVersion)));
    const r = t.spec.resources;
    a.allocated.cpus += r?.cpus ?? 0;
    a.allocated.mem += r?.mem ?? 0;
    a.allocated.disk += r?.disk ?? 0;
    const ports = t.status?.hostPorts ?? (t.spec.ports ?? []).map((p) => p.hostPort);
    a.allocated.ports.push(...ports.filter((p) => p > 0));
    a.tasks++;
  }
  const out = [...byNode.values()].sort((x, y) => x.metadata.name.localeCompare(y.metadata.name));
  for (const a of out) {
    a.allocated.cpus = Math.round(a.allocated.cpus * 1000) / 1000;
    a.allocated.ports.sort((x, y) => x - y);
  }
  return out;
}
