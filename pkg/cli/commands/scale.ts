/**
 * `shoal scale app NAME --instances N` and `shoal cordon|uncordon NODE`: small merge patches.
 */
import type { Command } from 'commander';
import { lookupKind } from '../../api/kinds';
import { isTerminal } from '../../api/tasks';
import type { Node, Task } from '../../api/types.generated';
import { parseCount, parseKindArgs, refString } from '../args';
import { contextOf, type CommandContext } from '../context';
import { CliError } from '../errors';
import type { CliIO } from '../io';

/** Sets spec.instances of an app (`app/web scaled`). */
export async function runScale(ctx: CommandContext, kindArg: string, nameArg: string | undefined, instances: string): Promise<void> {
  const { kind, name } = parseKindArgs(kindArg, nameArg);
  if (kind.kind !== 'App') throw new CliError(`cannot scale ${kind.plural}: only apps have instances`);
  if (!name) throw new CliError('must specify an app: shoal scale app NAME --instances N');
  const count = parseCount('--instances', instances);
  await ctx.client().patch(kind, ctx.namespaceFor(kind), name, { spec: { instances: count } });
  ctx.out(`${refString(kind, name)} scaled`);
}

/** `n1` or `node/n1`. */
function nodeName(arg: string): string {
  if (!arg.includes('/')) return arg;
  const { kind, name } = parseKindArgs(arg);
  if (kind.kind !== 'Node') throw new CliError(`only nodes can be cordoned, not ${kind.plural}`);
  return name!;
}

/** Marks a node (un)schedulable; says `already` when there is nothing to change, like kubectl. */
export async function runCordon(ctx: CommandContext, arg: string, unschedulable: boolean): Promise<void> {
  const kind = lookupKind('nodes')!;
  const name = nodeName(arg);
  const client = ctx.client();
  const verb = unschedulable ? 'cordoned' : 'uncordoned';
  const node = (await client.get(kind, undefined, name)) as Node;
  if (Boolean(node.spec?.unschedulable) === unschedulable) return ctx.out(`${refString(kind, name)} already ${verb}`);
  await client.patch(kind, undefined, name, { spec: { unschedulable } });
  ctx.out(`${refString(kind, name)} ${verb}`);
}

/**
 * Cordons a node, then kills every live task on it (deleting a task removes its assignment,
 * so the agent stops it and its framework places a replacement elsewhere).
 */
export async function runDrain(ctx: CommandContext, arg: string): Promise<void> {
  await runCordon(ctx, arg, true);
  const name = nodeName(arg);
  const tasks = lookupKind('tasks')!;
  const client = ctx.client();
  const live = ((await client.list(tasks, undefined)).items as Task[])
    .filter((t) => t.spec?.nodeName === name && !isTerminal(t));
  for (const t of live) {
    await client.delete(tasks, t.metadata.namespace, t.metadata.name);
    ctx.out(`task/${t.metadata.name} killed (namespace ${t.metadata.namespace})`);
  }
  ctx.out(`node/${name} drained`);
}

/** Registers `scale`, `cordon`, `uncordon` and `drain`. */
export function registerScale(program: Command, io: CliIO): void {
  program
    .command('scale')
    .description('Set the number of instances of an app')
    .argument('<kind>', 'app (or app/NAME)')
    .argument('[name]')
    .requiredOption('--instances <n>', 'desired number of instances')
    .action(async (kindArg: string, nameArg: string | undefined, opts: { instances: string }, command: Command) => {
      await runScale(contextOf(io, command), kindArg, nameArg, opts.instances);
    });
  for (const [verb, unschedulable] of [['cordon', true], ['uncordon', false]] as const) {
    program
      .command(verb)
      .description(unschedulable ? 'Mark a node unschedulable (running tasks stay)' : 'Mark a node schedulable again')
      .argument('<node>', 'node name (or node/NAME)')
      .action(async (arg: string, _opts: unknown, command: Command) => {
        await runCordon(contextOf(io, command), arg, unschedulable);
      });
  }
  program
    .command('drain')
    .description('Cordon a node and kill its tasks so their apps and jobs replace them elsewhere')
    .argument('<node>', 'node name (or node/NAME)')
    .action(async (arg: string, _opts: unknown, command: Command) => {
      await runDrain(contextOf(io, command), arg);
    });
}
