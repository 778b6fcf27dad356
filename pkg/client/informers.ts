/**
 * The informers the controller-manager shares between its controllers: one list + watch per
 * prefix, however many controllers read it.
 */
import type { Logger } from 'pino';
import { JOBRUN_LABEL } from '../api/jobs';
import { nameKey } from '../api/keys';
import { lookupKind } from '../api/kinds';
import type { App, Framework, Job, JobRun, Node, Task } from '../api/types.generated';
import { Informer } from './informer';
import { agentLeasePrefix, decodeObject, kindPrefix, taskStatusPrefix } from '../store/objects';
import type { Store } from '../store/types';
import type { Clock } from '../util/clock';

export interface ClusterInformers {
  /** Node objects by key. */
  nodes: Informer<Node>;
  /** Agent lease keys: the value cached is the key's mod revision (the registration). */
  leases: Informer<number>;
  /** Task objects by key; indexes TASKS_BY_NODE (spec.nodeName) and TASKS_BY_FRAMEWORK. */
  tasks: Informer<Task>;
  /** Agents' task status reports (`<prefix>/taskstatus/<node>/<namespace>/<task>`), relayed into Tasks. */
  taskStatuses: Informer<StoredTaskStatusReport>;
  /** App objects by key. */
  apps: Informer<App>;
  /** Job objects by key. */
  jobs: Informer<Job>;
  /** JobRun objects by key; index RUNS_BY_JOB. */
  jobRuns: Informer<JobRun>;
  /** External Framework objects (Mesos scheduler API) by key. */
  frameworks: Informer<Framework>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A stored task status report, as the task status informer keeps it: where it is and its raw value. */
export interface StoredTaskStatusReport {
  node: string;
  namespace: string;
  name: string;
  value: string;
  modRevision: number;
}

/** Index of the task status informer: the reports about one task (`<namespace>/<name>`), whatever their node. */
export const REPORTS_BY_TASK = 'task';

/** Index of the tasks informer: a node's tasks, without scanning every task. */
export const TASKS_BY_NODE = 'nodeName';
/** Index of the tasks informer: a framework's tasks (by the binder's framework label). */
export const TASKS_BY_FRAMEWORK = 'framework';
/** Label the binder puts on every task: the framework that launched it. */
export const FRAMEWORK_LABEL = 'shoal.dev/framework';

/** Index of the job runs informer: a Job's runs (`<namespace>/<job>`). */
export const RUNS_BY_JOB = 'job';
/** Index of the tasks informer: a JobRun's tasks (`<namespace>/<run>`, from the JobRun label). */
export const TASKS_BY_RUN = 'jobrun';

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
  const jobs = new Informer<Job>({ store, prefix: kindPrefix(prefix, lookupKind('job')!), logger, clock, decode: (kv) => decodeObject<Job>(kv.value, kv.modRevision) });
  const jobRuns = new Informer<JobRun>({ store, prefix: kindPrefix(prefix, lookupKind('jobrun')!), logger, clock, decode: (kv) => decodeObject<JobRun>(kv.value, kv.modRevision) });
  jobRuns.addIndex(RUNS_BY_JOB, (r) => nameKey(r.metadata.namespace, r.spec.job));
  tasks.addIndex(TASKS_BY_RUN, (t) => {
    const run = t.metadata.labels?.[JOBRUN_LABEL];
    return run ? nameKey(t.metadata.namespace, run) : undefined;
  });
  const frameworks = new Informer<Framework>({ store, prefix: kindPrefix(prefix, lookupKind('framework')!), logger, clock, decode: (kv) => decodeObject<Framework>(kv.value, kv.modRevision) });
  const reportsPrefix = taskStatusPrefix(prefix);
  const taskStatuses = new Informer<StoredTaskStatusReport>({
    store, prefix: reportsPrefix, logger, clock,
    decode: (kv) => {
      const [node, namespace, name, ...rest] = kv.key.slice(reportsPrefix.length).split('/');
      return node && namespace && name && rest.length === 0 ? { node, namespace, name, value: kv.value, modRevision: kv.modRevision } : undefined;
    },
  });
  taskStatuses.addIndex(REPORTS_BY_TASK, (r) => nameKey(r.namespace, r.name));
  const all = [nodes, leases, tasks, taskStatuses, apps, jobs, jobRuns, frameworks];
  return {
    nodes,
    leases,
    tasks,
    taskStatuses,
    apps,
    jobs,
    jobRuns,
    frameworks,
    start: async () => {
      await Promise.all(all.map((i) => i.start()));
    },
    stop: async () => {
      await Promise.all(all.map((i) => i.stop()));
    },
  };
}
