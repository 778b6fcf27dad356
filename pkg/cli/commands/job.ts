/**
 * `shoal job run NAME [--idempotency-key K]`, `shoal job suspend NAME`, `shoal job resume NAME`:
 * a manual run through `POST .../jobs/{name}/run`, and merge patches of spec.suspend.
 */
import type { Command } from 'commander';
import type { KindInfo } from '../../api/kinds';
import { parseKindArgs, refString } from '../args';
import { contextOf, type CommandContext } from '../context';
import { CliError } from '../errors';
import type { CliIO } from '../io';

/** `report` or `job/report` → `report`; other kinds are refused. */
export function jobName(arg: string): { kind: KindInfo; name: string } {
  const ref = parseKindArgs(arg.includes('/') ? arg : `job/${arg}`);
  if (ref.kind.kind !== 'Job') throw new CliError(`expected a job, not ${ref.kind.plural}: use NAME or job/NAME`);
  return { kind: ref.kind, name: ref.name! };
}

/** Starts a manual run: `jobrun/<name> created`, or `unchanged` when the key's run existed. */
export async function runJobNow(ctx: CommandContext, arg: string, idempotencyKey: string | undefined): Promise<void> {
  const { name } = jobName(arg);
  if (idempotencyKey !== undefined && (idempotencyKey === '' || idempotencyKey.length > 253)) {
    throw new CliError('--idempotency-key must be 1 to 253 characters');
  }
  const client = ctx.client();
  if (!client.runJob) throw new CliError('this client cannot run jobs');
  const { run, created } = await client.runJob(ctx.namespace(), name, idempotencyKey);
  ctx.out(`jobrun/${run.metadata.name} ${created ? 'created' : 'unchanged'}`);
}

/** Sets spec.suspend: `job/NAME suspended|resumed`. */
export async function setSuspend(ctx: CommandContext, arg: string, suspend: boolean): Promise<void> {
  const { kind, name } = jobName(arg);
  await ctx.client().patch(kind, ctx.namespaceFor(kind), name, { spec: { suspend } });
  ctx.out(`${refString(kind, name)} ${suspend ? 'suspended' : 'resumed'}`);
}

/** Registers `job run|suspend|resume`. */
export function registerJob(program: Command, io: CliIO): void {
  const job = program.command('job').description('Run a job now, or suspend and resume its schedule');
  job.command('run')
    .description('Start a run of a job now (trigger Manual); prints jobrun/<name> created')
    .argument('<name>', 'job name (or job/NAME)')
    .option('--idempotency-key <key>', 'the same key always names the same run: asking again prints "unchanged" instead of starting another')
    .action(async (arg: string, opts: { idempotencyKey?: string }, command: Command) => {
      await runJobNow(contextOf(io, command), arg, opts.idempotencyKey);
    });
  for (const [verb, suspend] of [['suspend', true], ['resume', false]] as const) {
    job.command(verb)
      .description(suspend ? 'Start no new runs (active runs continue; times passed while suspended are not run later)' : 'Run on schedule again')
      .argument('<name>', 'job name (or job/NAME)')
      .action(async (arg: string, _opts: unknown, command: Command) => {
        await setSuspend(contextOf(io, command), arg, suspend);
      });
  }
}
