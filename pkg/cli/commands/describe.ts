/**
 * `shoal describe KIND [NAME]`: the object in words, with the events about it (listed in its
 * namespace, or for cluster-scoped kinds in `default`, where components record them, and
 * filtered here).
 */
import type { Command } from 'commander';
import { APP_LABEL } from '../../api/apps';
import { lookupKind, type KindInfo } from '../../api/kinds';
import { JOB_LABEL, JOBRUN_LABEL } from '../../api/jobs';
import type { Event, JobRun, Node, Task } from '../../api/types.generated';
import type { ShoalObject } from '../../api/validation';
import { parseKindArgs } from '../args';
import type { ResourceClient } from '../client';
import { contextOf, type CommandContext } from '../context';
import { describeObject, eventIsAbout } from '../describe';
import { ApiError, messageOf } from '../errors';
import type { CliIO } from '../io';
import { emptyListMessage, FRAMEWORK_TASK_LABEL } from '../printers';
import { nodeAllocations } from './get';

/** Events about `obj`, or why they could not be listed (describe still shows the object). */
export async function eventsAbout(client: ResourceClient, kind: KindInfo, objs: ShoalObject[]): Promise<Map<ShoalObject, Event[] | string>> {
  const eventKind = lookupKind('events')!;
  const result = new Map<ShoalObject, Event[] | string>();
  let events: Event[] | string;
  try {
    // Events about nodes and frameworks are recorded in `default` (as Kubernetes does for nodes):
    // reading them there needs no read access to every namespace.
    const namespace = kind.namespaced ? objs[0]?.metadata.namespace : 'default';
    events = (await client.list(eventKind, namespace)).items as Event[];
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    events = `<unable to list events: ${messageOf(err)}>`;
  }
  for (const obj of objs) result.set(obj, typeof events === 'string' ? events : events.filter((e) => eventIsAbout(e, obj)));
  return result;
}

/** Runs `describe` for a kind and, optionally, a name (without one: every object of the kind). */
export async function runDescribe(ctx: CommandContext, kind: KindInfo, name: string | undefined): Promise<void> {
  const client = ctx.client();
  const namespace = ctx.namespaceFor(kind);
  const objs = name ? [await client.get(kind, namespace, name)] : (await client.list(kind, namespace)).items;
  if (!objs.length) return ctx.err(emptyListMessage(kind, namespace));
  const events = await eventsAbout(client, kind, objs);
  const tasks = kind.kind === 'App' ? await appTasks(client, objs)
    : kind.kind === 'JobRun' ? await labelled<Task>(client, 'tasks', JOBRUN_LABEL, objs)
    // A Framework is cluster-scoped: its tasks are listed in every namespace.
    : kind.kind === 'Framework' ? await labelled<Task>(client, 'tasks', FRAMEWORK_TASK_LABEL, objs) : new Map<ShoalObject, Task[] | string>();
  const nodes = kind.kind === 'Framework' ? await listNodes(client) : undefined;
  const allocations = kind.kind === 'Node' ? await nodeAllocations(client) : undefined;
  const allocationOf = (o: ShoalObject) => (typeof allocations === 'string' ? allocations : allocations?.find((a) => a.metadata.name === o.metadata.name));
  const runs = kind.kind === 'Job' ? await labelled<JobRun>(client, 'jobruns', JOB_LABEL, objs) : new Map<ShoalObject, JobRun[] | string>();
  const now = ctx.io.now();
  ctx.out(objs.map((o) => describeObject(kind, o, events.get(o) ?? [], now, { tasks: tasks.get(o), runs: runs.get(o), nodes, allocation: allocationOf(o) })).join('\n\n\n'));
}

/**
 * For each object, the objects of `plural` in its namespace labelled `label=<its name>` (a Job's
 * runs, a run's tasks), or why they could not be listed.
 */
export async function labelled<T extends ShoalObject>(client: ResourceClient, plural: string, label: string, owners: ShoalObject[]): Promise<Map<ShoalObject, T[] | string>> {
  const kind = lookupKind(plural)!;
  const result = new Map<ShoalObject, T[] | string>();
  for (const owner of owners) {
    try {
      const list = await client.list(kind, owner.metadata.namespace, { labelSelector: `${label}=${owner.metadata.name}` });
      // The server filters; this keeps a fake or an older server honest.
      result.set(owner, (list.items as T[]).filter((o) => o.metadata.labels?.[label] === owner.metadata.name));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      result.set(owner, `<unable to list ${plural}: ${messageOf(err)}>`);
    }
  }
  return result;
}

/** Each App's tasks (label shoal.dev/app=NAME in its namespace), or why they could not be listed. */
export async function appTasks(client: ResourceClient, apps: ShoalObject[]): Promise<Map<ShoalObject, Task[] | string>> {
  const taskKind = lookupKind('tasks')!;
  const result = new Map<ShoalObject, Task[] | string>();
  for (const app of apps) {
    try {
      const list = await client.list(taskKind, app.metadata.namespace, { labelSelector: `${APP_LABEL}=${app.metadata.name}` });
      // The label is the App's name: the server filters, this keeps a fake or an older server honest.
      result.set(app, (list.items as Task[]).filter((t) => t.metadata.labels?.[APP_LABEL] === app.metadata.name));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      result.set(app, `<unable to list tasks: ${messageOf(err)}>`);
    }
  }
  return result;
}

/** All nodes (a Framework's share of the cluster's capacity), or why they could not be listed. */
async function listNodes(client: ResourceClient): Promise<Node[] | string> {
  try {
    return (await client.list(lookupKind('nodes')!, undefined)).items as Node[];
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return `<unable to list nodes: ${messageOf(err)}>`;
  }
}

/** Registers `describe`. */
export function registerDescribe(program: Command, io: CliIO): void {
  program
    .command('describe')
    .description('Show an object in detail, with its conditions and events')
    .argument('<kind>', 'app, job, jobrun, framework (fw), task, node, event (or KIND/NAME)')
    .argument('[name]')
    .action(async (kindArg: string, nameArg: string | undefined, _opts: unknown, command: Command) => {
      const { kind, name } = parseKindArgs(kindArg, nameArg);
      await runDescribe(contextOf(io, command), kind, name);
    });
}
