/**
 * `shoal rollout status|history|undo|restart app NAME`: kubectl's rollout commands for Apps,
 * on the App's status.deployment and its stored spec versions (`.../apps/{name}/revisions`).
 */
import type { Command } from 'commander';
import { dump } from 'js-yaml';
import type { AppRevision } from '../../api/apps';
import type { KindInfo } from '../../api/kinds';
import type { App } from '../../api/types.generated';
import type { ShoalObject } from '../../api/validation';
import { parseCount, parseKindArgs } from '../args';
import { sleep, type ResourceClient } from '../client';
import { contextOf, type CommandContext } from '../context';
import { ApiError, CliError } from '../errors';
import type { CliIO } from '../io';
import { MAX_CONFLICT_RETRIES } from './apply';
import { changeSummary, historyRows, parseDuration, rolloutState, undoTarget } from '../rollout';
import { age, formatTable } from '../table';

type Sub = 'status' | 'history' | 'undo' | 'restart';

/** `app NAME`, `apps NAME` or `app/NAME`; only apps roll out. */
function appRef(sub: Sub, kindArg: string, nameArg: string | undefined): { kind: KindInfo; name: string } {
  const { kind, name } = parseKindArgs(kindArg, nameArg);
  if (kind.kind !== 'App') throw new CliError(`rollout ${sub} works on apps, not ${kind.plural}`);
  if (!name) throw new CliError(`must specify an app: shoal rollout ${sub} app NAME`);
  return { kind, name };
}

function revisionsOf(client: ResourceClient, namespace: string, name: string): Promise<AppRevision[]> {
  if (!client.revisions) throw new CliError('this client cannot read app revisions');
  return client.revisions(namespace, name);
}

/** Options of `rollout status`. */
export interface StatusOptions {
  /** Duration text; `0` waits forever. @default "10m" */
  timeout?: string;
  /** `--watch=false` prints the state once. */
  watch?: string | boolean;
  /** Between polls; injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
}

function parseBool(flag: string, v: string | boolean | undefined): boolean {
  if (v === undefined || v === true) return true;
  if (v === false) return false;
  const t = v.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(t)) return true;
  if (['false', '0', 'no'].includes(t)) return false;
  throw new CliError(`${flag} must be true or false, not "${v}"`);
}

/**
 * Polls the App once a second, printing each new waiting message, until its rollout is done
 * (exit 0), failed (progress deadline: exit 1) or the timeout passes (exit 1).
 */
export async function runRolloutStatus(ctx: CommandContext, kindArg: string, nameArg: string | undefined, opts: StatusOptions = {}): Promise<void> {
  const { kind, name } = appRef('status', kindArg, nameArg);
  const timeoutText = opts.timeout ?? '10m';
  const timeoutMs = parseDuration('--timeout', timeoutText);
  const watch = parseBool('--watch', opts.watch);
  const pause = opts.sleep ?? ((ms: number) => sleep(ms));
  const client = ctx.client();
  const deadline = timeoutMs > 0 ? ctx.io.now() + timeoutMs : Infinity;
  let last: string | undefined;
  for (;;) {
    const state = rolloutState((await client.get(kind, ctx.namespace(), name)) as App);
    if (state.phase === 'failed') throw new CliError(state.message);
    if (state.message !== last) ctx.out(state.message);
    last = state.message;
    if (state.phase === 'done' || !watch) return;
    const left = deadline - ctx.io.now();
    if (left <= 0) throw new CliError(`timed out after ${timeoutText} waiting for app "${name}" rollout to finish`);
    await pause(Math.min(1000, left));
  }
}

/** REVISION, CREATED, CHANGE oldest first; with `revision`, that version's spec as YAML. */
export async function runRolloutHistory(ctx: CommandContext, kindArg: string, nameArg: string | undefined, revision?: string): Promise<void> {
  const { name } = appRef('history', kindArg, nameArg);
  const revisions = await revisionsOf(ctx.client(), ctx.namespace(), name);
  const now = ctx.io.now();
  if (revision !== undefined) {
    const n = parseCount('--revision', revision);
    const r = revisions.find((x) => x.generation === n);
    if (!r) throw new CliError(`app "${name}" has no revision ${n} (stored: ${revisions.map((x) => x.generation).sort((a, b) => a - b).join(', ') || 'none'})`);
    ctx.out(`app "${name}" with revision #${n} (created ${r.createdAt})`);
    ctx.out(dump({ spec: r.spec }, { noRefs: true, lineWidth: -1 }).trimEnd());
    return;
  }
  if (!revisions.length) return ctx.err(`No rollout history found for app "${name}".`);
  ctx.out(`app "${name}"`);
  const rows = historyRows(revisions, (ts) => age(ts, now));
  for (const line of formatTable([['REVISION', 'CREATED', 'CHANGE'], ...rows])) ctx.out(line);
}

/**
 * Puts an older stored spec back, as a PUT compared on the App's resourceVersion: a concurrent
 * change of the spec makes it fail whole (409) instead of mixing. A concurrent status write by the
 * App controller (same generation) is not a change the user made: read again and retry. The
 * rollback is a new generation.
 */
export async function runRolloutUndo(ctx: CommandContext, kindArg: string, nameArg: string | undefined, toRevision?: string): Promise<void> {
  const { kind, name } = appRef('undo', kindArg, nameArg);
  const client = ctx.client();
  const namespace = ctx.namespace();
  const to = toRevision === undefined ? undefined : parseCount('--to-revision', toRevision);
  if (to === 0) throw new CliError('--to-revision must be 1 or more (omit it for the previous revision)');
  let generation: number | undefined;
  for (let attempt = 0; ; attempt++) {
    const app = (await client.get(kind, namespace, name)) as App;
    if (generation !== undefined && app.metadata.generation !== generation) {
      throw new CliError(`app "${name}" changed while rolling back (generation ${generation} → ${app.metadata.generation}); nothing was applied`);
    }
    generation = app.metadata.generation ?? 1;
    const target = undoTarget(name, generation, await revisionsOf(client, namespace, name), to);
    if (changeSummary(app.spec, target.spec) === '<none>') {
      ctx.out(`app "${name}" skipped rollback (current spec already matches revision ${target.generation})`);
      return;
    }
    const { status: _status, ...rest } = app;
    const body = { ...rest, spec: target.spec } as unknown as ShoalObject;
    try {
      await client.replace(kind, namespace, name, body);
      ctx.out(`app "${name}" rolled back (to revision ${target.generation})`);
      return;
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 409)) throw err;
      if (attempt >= MAX_CONFLICT_RETRIES) throw new CliError(`app "${name}" kept changing while rolling back; nothing was applied: ${err.message}`);
    }
  }
}

/** Sets spec.restartedAt to now: a new version, so a rolling upgrade replaces every task. */
export async function runRolloutRestart(ctx: CommandContext, kindArg: string, nameArg: string | undefined): Promise<void> {
  const { kind, name } = appRef('restart', kindArg, nameArg);
  await ctx.client().patch(kind, ctx.namespace(), name, { spec: { restartedAt: new Date(ctx.io.now()).toISOString() } });
  ctx.out(`app "${name}" restarted`);
}

/** Registers `rollout` and its subcommands. */
export function registerRollout(program: Command, io: CliIO): void {
  const rollout = program.command('rollout').description('Follow, list, undo or restart the rollouts of an app');
  rollout
    .command('status')
    .description('Wait for an app\'s rollout to finish (exit 1 when it misses its progress deadline)')
    .argument('<kind>', 'app (or app/NAME)')
    .argument('[name]')
    .option('--timeout <duration>', 'give up after this long (0: never)', '10m')
    .option('-w, --watch [bool]', 'keep watching until the rollout finishes (--watch=false: print once)', true)
    .action(async (kindArg: string, nameArg: string | undefined, opts: { timeout: string; watch: string | boolean }, command: Command) => {
      await runRolloutStatus(contextOf(io, command), kindArg, nameArg, opts);
    });
  rollout
    .command('history')
    .description('List an app\'s stored versions and what changed in each')
    .argument('<kind>', 'app (or app/NAME)')
    .argument('[name]')
    .option('--revision <n>', 'print that version\'s spec')
    .action(async (kindArg: string, nameArg: string | undefined, opts: { revision?: string }, command: Command) => {
      await runRolloutHistory(contextOf(io, command), kindArg, nameArg, opts.revision);
    });
  rollout
    .command('undo')
    .description('Go back to the previous (or a given) version of an app\'s spec')
    .argument('<kind>', 'app (or app/NAME)')
    .argument('[name]')
    .option('--to-revision <n>', 'the revision to go back to (default: the one before the current)')
    .action(async (kindArg: string, nameArg: string | undefined, opts: { toRevision?: string }, command: Command) => {
      await runRolloutUndo(contextOf(io, command), kindArg, nameArg, opts.toRevision);
    });
  rollout
    .command('restart')
    .description('Replace every task of an app by a rolling upgrade')
    .argument('<kind>', 'app (or app/NAME)')
    .argument('[name]')
    .action(async (kindArg: string, nameArg: string | undefined, _opts: unknown, command: Command) => {
      await runRolloutRestart(contextOf(io, command), kindArg, nameArg);
    });
}
