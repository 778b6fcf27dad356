/**
 * `shoal delete KIND NAME...`, `shoal delete KIND/NAME...` and `shoal delete -f FILE|DIR|-`.
 * Like kubectl, a missing object is reported and the others are still deleted; the exit code is 1.
 */
import type { Command } from 'commander';
import { KINDS, type KindInfo } from '../../api/kinds';
import type { ManifestDocument } from '../../api/manifest';
import { parseKindArgs, refString, requireVerb, resolveKind, type KindRef } from '../args';
import type { ResourceClient } from '../client';
import { contextOf, type CommandContext } from '../context';
import { ApiError, CliError, ReportedFailure } from '../errors';
import type { CliIO } from '../io';
import { loadManifests } from '../manifests';
import { collect } from './apply';

/** One object to delete. */
export interface DeleteTarget {
  kind: KindInfo;
  namespace: string | undefined;
  name: string;
}

/** `KIND NAME...` or `KIND/NAME...` into targets. */
export function parseDeleteArgs(args: string[], namespace: () => string): DeleteTarget[] {
  if (!args.length) throw new CliError('must specify KIND NAME, KIND/NAME or -f FILE');
  const mixed = (a: string) => new CliError(`cannot mix KIND/NAME and KIND NAME arguments ("${a}")`);
  let refs: KindRef[];
  if (args[0].includes('/')) {
    refs = args.map((a) => {
      if (!a.includes('/')) throw mixed(a);
      return parseKindArgs(a);
    });
  } else {
    const kind = resolveKind(args[0]);
    if (args.length < 2) throw new CliError(`must specify a name: shoal delete ${args[0]} NAME`);
    refs = args.slice(1).map((name) => {
      if (name.includes('/')) throw mixed(name);
      return { kind, name };
    });
  }
  return refs.map((r) => ({ kind: r.kind, name: r.name!, namespace: r.kind.namespaced ? namespace() : undefined }));
}

/** Targets named by manifest documents, and one-line problems for documents that name none. */
export function targetsFromDocs(docs: ManifestDocument[], namespace: () => string): { targets: DeleteTarget[]; errors: string[] } {
  const targets: DeleteTarget[] = [];
  const errors: string[] = [];
  for (const doc of docs) {
    const o = (doc.object ?? {}) as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
    const kind = KINDS.find((k) => k.kind === o.kind);
    const name = o.metadata?.name;
    if (!kind) errors.push(`${doc.source}:${doc.lineOf('kind')}: unknown kind ${JSON.stringify(o.kind ?? null)}`);
    else if (typeof name !== 'string' || !name) errors.push(`${doc.source}:${doc.lineOf('metadata.name')}: ${kind.singular}: metadata.name is required`);
    else {
      const ns = typeof o.metadata?.namespace === 'string' ? o.metadata.namespace : undefined;
      targets.push({ kind, name, namespace: kind.namespaced ? ns ?? namespace() : undefined });
    }
  }
  return { targets, errors };
}

/** Deletes each target; reports failures on stderr and returns false if any failed. */
export async function deleteAll(client: ResourceClient, targets: DeleteTarget[], out: (l: string) => void, err: (l: string) => void): Promise<boolean> {
  let ok = true;
  for (const t of targets) requireVerb(t.kind, 'delete', 'deleted');
  for (const t of targets) {
    const ref = refString(t.kind, t.name);
    try {
      await client.delete(t.kind, t.namespace, t.name);
      out(`${ref} deleted`);
    } catch (e) {
      // Only per-object answers let the rest go on; no server or no auth stops everything.
      if (!(e instanceof ApiError) || ![403, 404, 405, 409].includes(e.code)) throw e;
      ok = false;
      err(`error: ${e.code === 404 ? `${ref} not found` : e.message}`);
    }
  }
  return ok;
}

async function runDelete(ctx: CommandContext, io: CliIO, args: string[], files: string[]): Promise<void> {
  if (files.length && args.length) throw new CliError('cannot combine -f with KIND NAME arguments');
  let targets: DeleteTarget[];
  if (files.length) {
    const loaded = await loadManifests(files, io);
    const fromDocs = targetsFromDocs(loaded.docs, () => ctx.namespace());
    const errors = [...loaded.errors, ...fromDocs.errors];
    if (errors.length) throw new CliError(errors);
    if (!fromDocs.targets.length) throw new CliError('no objects passed to delete');
    targets = fromDocs.targets;
  } else {
    targets = parseDeleteArgs(args, () => ctx.namespace());
  }
  const ok = await deleteAll(ctx.client(), targets, (l) => ctx.out(l), (l) => ctx.err(l));
  if (!ok) throw new ReportedFailure();
}

/** Registers `delete`. */
export function registerDelete(program: Command, io: CliIO): void {
  program
    .command('delete')
    .description('Delete objects by kind and name, or those in manifests (-f)')
    .argument('[args...]', 'KIND NAME..., or KIND/NAME...')
    .option('-f, --filename <path>', 'file, directory or - for stdin (repeatable)', collect, [])
    .action(async (args: string[], opts: { filename: string[] }, command: Command) => {
      await runDelete(contextOf(io, command), io, args, opts.filename);
    });
}
