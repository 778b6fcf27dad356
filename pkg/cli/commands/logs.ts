/**
 * `shoal logs TASK [-f] [--tail N]` and `shoal logs app/NAME [--all]`: a task's output through
 * the apiserver (which proxies the agent running it). For an app, one running instance, or with
 * `--all` every instance, each line prefixed by `[task-name] `. Ctrl-C ends a follow cleanly.
 */
import type { Command } from 'commander';
import { lookupKind } from '../../api/kinds';
import type { ShoalObject } from '../../api/validation';
import { parseCount, parseKindArgs } from '../args';
import type { LogOptions, ResourceClient } from '../client';
import { contextOf, type CommandContext } from '../context';
import { CliError } from '../errors';
import type { CliIO } from '../io';

export interface LogsFlags {
  follow?: boolean;
  tail?: string;
  all?: boolean;
}

/** What `logs` reads: one task, or an app's tasks. */
export type LogsTarget = { kind: 'task'; name: string } | { kind: 'app'; name: string };

/** `web-1` or `task/web-1` → a task; `app/web` → an app. Other kinds are refused. */
export function parseLogsTarget(arg: string): LogsTarget {
  if (!arg.includes('/')) return { kind: 'task', name: arg };
  const ref = parseKindArgs(arg);
  if (ref.kind.kind === 'Task') return { kind: 'task', name: ref.name! };
  if (ref.kind.kind === 'App') return { kind: 'app', name: ref.name! };
  throw new CliError(`logs are kept for tasks and apps, not ${ref.kind.plural}: use TASK or app/NAME`);
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
    .argument('<target>', 'TASK, task/NAME or app/NAME')
    .description("Print a task's output, or an app's (one instance, or --all)")
    .option('-f, --follow', 'keep printing new output until Ctrl-C or the task ends')
    .option('--tail <n>', 'only the last N lines (per task)')
    .option('--all', 'for app/NAME: every instance, each line prefixed by [task-name]')
    .action(async (arg: string, flags: LogsFlags, command: Command) => {
      await runLogs(contextOf(io, command), arg, flags);
    });
}
