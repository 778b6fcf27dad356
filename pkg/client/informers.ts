/**
 * The informers the controller-manager shares between its controllers: one list + watch per
 * prefix, however many controllers read it.
 */
import type { Logger } from 'pino';
import { lookupKind } from '../api/kinds';
import type { App, Node, Task } from '../api/types.generated';
import { Informer } from './informer';
import { agentLeasePrefix, decodeObject, kindPrefix } from '../store/objects';
import type { Store } from '../store/types';
import type { Clock } from '../util/clock';

export interface ClusterInformers {
  /** Node objects by key. */
  nodes: Informer<Node>;
  /** Agent lease keys: the value cached is the key's mod revision (the registration). */
  leases: Informer<number>;
  /** Task objects by key; indexes TASKS_BY_NODE (spec.nodeName) and TASKS_BY_FRAMEWORK. */
  tasks: Informer<Task>;
  /** App objects by key. */
  apps: Informer<App>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Index of the tasks informer: a node's tasks, without scanning every task. */
export const TASKS_BY_NODE = 'nodeName';
/** Index of the tasks informer: a framework's tasks (by the binder's framework label). */
export const TASKS_BY_FRAMEWORK = 'framework';
/** Label the binder puts on every task: the framework that launched it. */
export const FRAMEWORK_LABEL = 'shoal.dev/framework';

/** Last path segment of a key: the node name for node and lease keys. */
export function lastSegment(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

/** `clock`: the informers' retry and staleness timers (default: the real clock). */
export function clusterInformers(store: Store, prefix: string, logger: Logger, clock?: Clock): ClusterInformers {
  const nodes = new Informer<Node>({ store, prefix: kindPrefix(prefix, lookupKind('node')!), logger, clock, decode: (kv) => decodeObject<Node>(kv.value, kv.modRevision) });
  const leases = new Informer<number>({ store, prefix: agentLeasePrefix(prefix), logger, clock, decode: (kv) => kv.modRevision });
  const tasks = new Informer<Task>({ store, prefix: kindPrefix(prefix, lookupKind('task')!), logger, clock, decode: (kv) => decodeObject<Task>(kv.value, kv.modRevision) });
  tasks.addIndex(TASKS_BY_NODE, (t) => t.spec?.nodeName);
  tasks.addIndex(TASKS_BY_FRAMEWORK, (t) => t.metadata.labels?.[FRAMEWORK_LABEL]);
  const apps = new Informer<App>({ store, prefix: kindPrefix(prefix, lookupKind('app')!), logger, clock, decode: (kv) => decodeObject<App>(kv.value, kv.modRevision) });
  return {
    nodes,
    leases,
    tasks,
    apps,
    start: async () => {
      await Promise.all([nodes.start(), leases.start(), tasks.start(), apps.start()]);
    },
    stop: async () => {
      await Promise.all([nodes.stop(), leases.stop(), tasks.stop(), apps.stop()]);
    },
  };
}
