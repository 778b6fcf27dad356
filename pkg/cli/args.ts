/**
 * kubectl-style argument parsing shared by commands: `app`, `apps`, `App`, `app/web`, `apps web`.
 */
import { KINDS, lookupKind, type KindInfo, type Verb } from '../api/kinds';
import { CliError } from './errors';

/** A kind and, when given, one object name. */
export interface KindRef {
  kind: KindInfo;
  name?: string;
}

/** Resolves `KIND [NAME]` or `KIND/NAME`; throws CliError for unknown kinds or both forms at once. */
export function parseKindArgs(kindArg: string, nameArg?: string): KindRef {
  const slash = kindArg.indexOf('/');
  const kindName = slash >= 0 ? kindArg.slice(0, slash) : kindArg;
  const kind = resolveKind(kindName);
  if (slash < 0) return { kind, name: nameArg || undefined };
  const name = kindArg.slice(slash + 1);
  if (!name) throw new CliError(`missing name in "${kindArg}": use KIND/NAME, e.g. app/web`);
  if (nameArg !== undefined) {
    throw new CliError(`there is no need to give a name as a separate argument when using ${kindArg}`);
  }
  return { kind, name };
}

/** Resolves a kind by any of its names; the error lists the names the user can use. */
export function resolveKind(name: string): KindInfo {
  const kind = lookupKind(name);
  if (!kind) {
    throw new CliError(`unknown kind "${name}": known kinds are ${knownKindNames()}`);
  }
  return kind;
}

/** `apps (app), jobs (job), ...` for error messages. */
export function knownKindNames(): string {
  return KINDS.map((k) => `${k.plural} (${[k.singular, ...k.shortNames].join(', ')})`).join(', ');
}

/** Refuses locally what the API would refuse with 405, with a message that says what is allowed. */
export function requireVerb(kind: KindInfo, verb: Verb, action: string): void {
  if (!kind.verbs.includes(verb)) {
    throw new CliError(`${kind.plural} cannot be ${action} (allowed: ${kind.verbs.join(', ')})`);
  }
}

/** `app/web`: how kubectl names an object in its output. */
export function refString(kind: KindInfo, name: string): string {
  return `${kind.singular}/${name}`;
}

/** Output formats of get/events. `table` is the default. */
export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml' | 'name';

const FORMATS: readonly OutputFormat[] = ['wide', 'json', 'yaml', 'name'];

/** Parses `-o`; throws CliError naming the allowed formats. */
export function parseOutput(value: string | undefined): OutputFormat {
  if (value === undefined || value === '') return 'table';
  if ((FORMATS as readonly string[]).includes(value)) return value as OutputFormat;
  throw new CliError(`unknown output format "${value}": allowed formats are ${FORMATS.join(', ')}`);
}

/** Parses a non-negative integer flag such as `--instances`. */
export function parseCount(flag: string, value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new CliError(`${flag} must be a non-negative integer, not "${value}"`);
  return Number(value.trim());
}
