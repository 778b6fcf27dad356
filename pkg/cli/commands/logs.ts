/**
 * `shoal logs TASK [-f] [--tail N]`, `shoal logs app/NAME [--all]` and `shoal logs
 * jobrun/NAME|job/NAME`: a task's output through the apiserver (which proxies the agent running
 * it). For an app, one running instance, or with `--all` every instance, each line prefixed by
 * `[task-name] `. For a run, each of its tasks in turn under a `==> task NAME <==` line (as tail
 * prints several files); a job means its newest run. Ctrl-C ends a follow cleanly.
 */
import type { Command } from 'commander';
import { JOB_LABEL, JOBRUN_LABEL } from '../../api/jobs';
import { lookupKind } from '../../api/kinds';
import { isTerminal } from '../../api/tasks';
import type { Task } from '../../api/types.generated';
import type { ShoalObject } from '../../api/validation';
import { parseCount, parseKindArgs } from '../args';
import type { LogOptions, ResourceClient } from '../client';
import { contextOf, type CommandContext } from '../context';
import { CliError, ReportedFailure } from '../errors';
import type { CliIO } from '../io';

export interface LogsFlags {
  follow?: boolean;
  tail?: string;
  all?: boolean;
}

/** What `logs` reads: one task, an app's tasks, a run's tasks, or the tasks of a job's newest run. */
export type LogsTarget = { kind: 'task' | 'app' | 'jobrun' | 'job'; name: string };

/** `web-1` or `task/web-1` → a task; `app/web`, `jobrun/r`, `job/j`. Other kinds are refused. */
export function parseLogsTarget(arg: string): LogsTarget {
  if (!arg.includes('/')) return { kind: 'task', name: arg };
  const ref = parseKindArgs(arg);
  const kinds: Record<string, LogsTarget['kind']> = { Task: 'task', App: 'app', JobRun: 'jobrun', Job: 'job' };
  const kind = kinds[ref.kind.kind];
  if (kind) return { kind, name: ref.name! };
  throw new CliError(`logs are kept for tasks, apps, jobruns and jobs, not ${ref.kind.plural}: use TASK, app/NAME, jobrun/NAME or job/NAME`);
}

const TASKS = () => lookupKind('tasks')!;

type TaskLike = ShoalObject & { status?: { state?: string } };

/** Tasks of an app: owned by it (ownerReferences), or labelled `app=<name>`. */
export function tasksOfApp(tasks: ShoalObject[], app: string): TaskLike[] {
  return tasks.filter((t) => t.metadata.ownerReferences?.some((o: { kind?: string; name?: string }) => o.kind === 'App' && o.name === app) || t.metadata.labels?.app === app) as TaskLike[];
}

/** The instance `logs app/NAME` shows: a running one (first by name), else the newest. */
export function pickInstance(tasks: TaskLike[]): TaskLike | undefined {
  const byName = [...tasks].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  return byName.find((t) => t.status?.state === 'RUNNING')
    ?? byName.sort((a, b) => String(b.metadata.creationTimestamp ?? '').localeCompare(String(a.metadata.creationTimestamp ?? '')))[0];
}

/** Runs `logs`. */
export async function runLogs(ctx: CommandContext, arg: string, flags: LogsFlags): Promise<void> {
  const target = parseLogsTarget(arg);
  if (flags.all && target.kind !== 'app') throw new CliError('--all is for apps: shoal logs app/NAME --all');
  const tail = flags.tail === undefined ? undefined : parseCount('--tail', flags.tail);
  const namespace = ctx.namespace();
  const client = ctx.client();
  if (!client.logs) throw new CliError('this client cannot read logs');
  const abort = new AbortController();
  const unsubscribe = ctx.io.onInterrupt(() => abort.abort());
  const opts: LogOptions = { tail, follow: Boolean(flags.follow), signal: abort.signal };
  try {
    if (target.kind === 'task') return await copy(client, namespace, target.name, opts, (text) => ctx.io.stdout(text));
    if (target.kind === 'jobrun' || target.kind === 'job') {
      const run = target.kind === 'job' ? await newestRun(client, namespace, target.name) : target.name;
      return await runLogsOf(ctx, client, namespace, run, opts);
    }
    const tasks = tasksOfApp((await client.list(TASKS(), namespace)).items, target.name);
    if (!tasks.length) throw new CliError(`app "${target.name}" has no tasks in namespace "${namespace}"`);
    if (!flags.all) {
      const one = pickInstance(tasks)!;
      if (tasks.length > 1) ctx.err(`Showing task ${one.metadata.name} of ${tasks.length}; use --all for every instance`);
      return await copy(client, namespace, one.metadata.name, opts, (text) => ctx.io.stdout(text));
    }
    const names = tasks.map((t) => t.metadata.name).sort();
    // Every instance at once (a follow interleaves them), each line whole and prefixed.
    const results = await Promise.allSettled(names.map((name) => {
      const lines = new LineBuffer((line) => ctx.io.stdout(`[${name}] ${line}\n`));
      return copy(client, namespace, name, opts, (text) => lines.push(text)).finally(() => lines.flush());
    }));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${names[i]}: ${(r.reason as Error).message}`] : []));
    if (failed.length) throw new CliError(failed);
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    unsubscribe();
  }
}

/** The newest run of a job (by creation); errors name the job or say it has not run. */
export async function newestRun(client: ResourceClient, namespace: string, job: string): Promise<string> {
  await client.get(lookupKind('jobs')!, namespace, job); // a missing job is the server's 404, not "no runs"
  const runs = (await client.list(lookupKind('jobruns')!, namespace, { labelSelector: `${JOB_LABEL}=${job}` })).items
    .filter((r) => r.metadata.labels?.[JOB_LABEL] === job);
  if (!runs.length) throw new CliError(`job "${job}" has no runs in namespace "${namespace}"`);
  return oldestFirstByCreation(runs).at(-1)!.metadata.name;
}

/** Oldest first by creationTimestamp, then by name. */
export function oldestFirstByCreation<T extends ShoalObject>(items: T[]): T[] {
  const t = (o: T) => Date.parse(o.metadata.creationTimestamp ?? '') || 0;
  return [...items].sort((a, b) => t(a) - t(b) || a.metadata.name.localeCompare(b.metadata.name));
}

/** The task `logs -f jobrun/NAME` follows: the newest one not ended, else the newest. */
export function taskToFollow(tasks: Task[]): Task | undefined {
  const sorted = oldestFirstByCreation(tasks);
  return [...sorted].reverse().find((t) => !isTerminal(t)) ?? sorted.at(-1);
}

/**
 * A run's output: its tasks (label shoal.dev/jobrun), oldest first. One task prints as
 * `logs TASK` would; several print in turn, each under `==> task NAME <==`. With -f, only the
 * task to follow.
 */
async function runLogsOf(ctx: CommandContext, client: ResourceClient, namespace: string, run: string, opts: LogOptions): Promise<void> {
  const listed = (await client.list(TASKS(), namespace, { labelSelector: `${JOBRUN_LABEL}=${run}` })).items as Task[];
  const tasks = oldestFirstByCreation(listed.filter((t) => t.metadata.labels?.[JOBRUN_LABEL] === run));
  if (!tasks.length) {
    const found = await client.get(lookupKind('jobruns')!, namespace, run) as { status?: { phase?: string } };
    throw new CliError(`jobrun "${run}" has no tasks yet (phase ${found.status?.phase ?? 'Pending'}): see shoal describe jobrun ${run}`);
  }
  const write = (text: string) => ctx.io.stdout(text);
  if (opts.follow) {
    const one = taskToFollow(tasks)!;
    if (tasks.length > 1) ctx.err(`Following task ${one.metadata.name} of ${tasks.length} of jobrun ${run}`);
    return copy(client, namespace, one.metadata.name, opts, write);
  }
  if (tasks.length === 1) return copy(client, namespace, tasks[0].metadata.name, opts, write);
  let failed = false;
  for (const [i, t] of tasks.entries()) {
    write(`${i ? '\n' : ''}==> task ${t.metadata.name} <==\n`);
    let last = '\n';
    try {
      await copy(client, namespace, t.metadata.name, opts, (text) => {
        last = text;
        write(text);
      });
    } catch (err) {
      // One task whose logs are gone (its node removed) does not hide the others': report, go on, exit 1.
      if (!(err instanceof CliError) || opts.signal?.aborted) throw err;
      failed = true;
      ctx.err(`error: task ${t.metadata.name}: ${err.message}`);
    }
    if (!last.endsWith('\n')) write('\n');
  }
  if (failed) throw new ReportedFailure();
}

/** Copies one task's log to `write` as it arrives; an interrupt ends it quietly. */
async function copy(client: ResourceClient, namespace: string, name: string, opts: LogOptions, write: (text: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  try {
    for await (const chunk of await client.logs!(namespace, name, opts)) {
      const text = decoder.decode(chunk, { stream: true });
      if (text) write(text);
    }
    const rest = decoder.decode();
    if (rest) write(rest);
  } catch (err) {
    if (opts.signal?.aborted) return;
    if (err instanceof CliError) throw err;
    throw new CliError(`lost the log stream of task ${name}: ${(err as Error).message}`);
  }
}

/** Cuts text into whole lines; flush() emits a last line without a newline. */
export class LineBuffer {
  private partial = '';

  constructor(private readonly line: (line: string) => void) {}

  push(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop()!;
    for (const p of parts) this.line(p);
  }

  flush(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
  }
}

/** Registers `logs`. */
export function registerLogs(program: Command, io: CliIO): void {
  program.command('logs')
    .argument('<target>', 'TASK, task/NAME, app/NAME, jobrun/NAME or job/NAME')
    .description("Print a task's output, an app's (one instance, or --all), or a job run's (every task in turn, each under ==> task NAME <==; job/NAME is its newest run; -f follows the newest task still running)")
    .option('-f, --follow', 'keep printing new output until Ctrl-C or the task ends')
    .option('--tail <n>', 'only the last N lines (per task)')
    .option('--all', 'for app/NAME: every instance, each line prefixed by [task-name]')
    .action(async (arg: string, flags: LogsFlags, command: Command) => {
      await runLogs(contextOf(io, command), arg, flags);
    });
}
