/**
 * `shoal apply -f FILE|DIR|-`: all documents are validated locally, then dry-run on the server,
 * and only if every one passes is anything written. Each object is then created, replaced
 * (optimistic concurrency, retried on 409) or left alone when nothing changed. Jobs are applied
 * parents first (the server refuses a Job whose parent does not exist yet), otherwise in the
 * order given; a cycle among the Jobs applied is refused before anything is sent.
 */
import type { Command } from 'commander';
import { parentCycle } from '../../api/jobs';
import { KINDS, type KindInfo } from '../../api/kinds';
import type { ManifestDocument } from '../../api/manifest';
import { admit, type FieldCause, type ShoalObject } from '../../api/validation';
import type { ResourceClient } from '../client';
import { contextOf } from '../context';
import { ApiError, CliError, isNotFound, ReportedFailure } from '../errors';
import type { CliIO } from '../io';
import { loadManifests } from '../manifests';
import { jsonEqual } from '../../util/json';

/** One validated, defaulted object ready to send. */
export interface PlannedObject {
  doc: ManifestDocument;
  kind: KindInfo;
  /** undefined for cluster-scoped kinds. */
  namespace: string | undefined;
  object: ShoalObject;
  /** `app/web`. */
  ref: string;
}

export type ApplyResult = 'created' | 'configured' | 'unchanged';

/** What applying needs from outside: output, a lazily created client, the fallback namespace. */
export interface ApplyDeps {
  out(line: string): void;
  err(line: string): void;
  client(): ResourceClient;
  /** `-n`, else the config file's namespace, else `default`; used when a document names none. */
  defaultNamespace(): string;
}

/**
 * PUT conflicts (409) are retried this many times, re-reading the object each time, after a
 * short jittered pause: controllers write status (a Job's every fire time, an App's every few
 * task changes), and on a loaded machine three immediate retries could all land between two of
 * those writes and lose (the jobs e2e saw it in CI).
 */
export const MAX_CONFLICT_RETRIES = 8;

type Raw = Record<string, unknown>;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const isMap = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `app/web` for messages, from whatever the document holds. */
function docRef(obj: unknown, kind: KindInfo | undefined, doc: ManifestDocument): string {
  if (!isMap(obj)) return `document ${doc.index}`;
  const kindName = kind?.singular ?? (typeof obj.kind === 'string' && obj.kind ? obj.kind.toLowerCase() : 'object');
  const meta = obj.metadata;
  const name = isMap(meta) && typeof meta.name === 'string' && meta.name ? meta.name : '<unnamed>';
  return `${kindName}/${name}`;
}

/** `file:line: app/web: field: message`, the line found from the field path. */
export function causeLine(doc: ManifestDocument, ref: string, cause: FieldCause): string {
  const line = cause.field ? doc.lineOf(cause.field) : doc.line;
  return `${doc.source}:${line}: ${ref}: ${cause.field ? `${cause.field}: ` : ''}${cause.message}`;
}

/** Validates one document: kind allowed, namespace filled in, admitted (defaults applied). */
function planOne(doc: ManifestDocument, defaultNamespace: () => string): { planned?: PlannedObject; errors: string[] } {
  const raw = doc.object;
  const kind = isMap(raw) ? KINDS.find((k) => k.kind === raw.kind) : undefined;
  const ref = docRef(raw, kind, doc);
  if (kind && !kind.verbs.includes('create')) {
    const message = `${kind.kind} objects cannot be applied: Shoal creates them (allowed: ${kind.verbs.join(', ')})`;
    return { errors: [causeLine(doc, ref, { field: 'kind', message })] };
  }
  const input = isMap(raw) ? withNamespace(raw, kind, defaultNamespace) : raw;
  const result = admit(input);
  if (!result.ok) return { errors: result.causes.map((c) => causeLine(doc, ref, c)) };
  const namespace = result.kind.namespaced ? result.object.metadata.namespace : undefined;
  return { planned: { doc, kind: result.kind, namespace, object: result.object, ref }, errors: [] };
}

/** The document with metadata.namespace filled in for namespaced kinds, so admission checks it too. */
function withNamespace(raw: Raw, kind: KindInfo | undefined, defaultNamespace: () => string): Raw {
  if (!kind?.namespaced || !isMap(raw.metadata) || raw.metadata.namespace !== undefined) return raw;
  return { ...raw, metadata: { ...raw.metadata, namespace: defaultNamespace() } };
}

/** Validates every document; returns what to send, or every problem (with file and line). */
export function planApply(docs: ManifestDocument[], defaultNamespace: () => string): { planned: PlannedObject[]; errors: string[] } {
  const planned: PlannedObject[] = [];
  const errors: string[] = [];
  const seen = new Map<string, PlannedObject>();
  for (const doc of docs) {
    const r = planOne(doc, defaultNamespace);
    errors.push(...r.errors);
    if (!r.planned) continue;
    const key = `${r.planned.kind.kind}/${r.planned.namespace ?? ''}/${r.planned.object.metadata.name}`;
    const first = seen.get(key);
    if (first) {
      // Applying both would silently keep only the second.
      errors.push(causeLine(doc, r.planned.ref, { field: 'metadata.name', message: `duplicate of ${first.doc.source}:${first.doc.line}` }));
      continue;
    }
    seen.set(key, r.planned);
    planned.push(r.planned);
  }
  return { planned, errors };
}

/** Top-level fields a user owns: everything but the envelope, metadata and status (spec for apps and jobs). */
function desiredFields(obj: ShoalObject): Raw {
  const rest: Raw = { ...(obj as unknown as Raw) };
  for (const key of ['apiVersion', 'kind', 'metadata', 'status']) delete rest[key];
  return rest;
}

/** True when the server's object differs from the local one in spec, labels or annotations. */
export function needsUpdate(local: ShoalObject, server: ShoalObject): boolean {
  return !jsonEqual(desiredFields(local), desiredFields(server)) ||
    !jsonEqual(local.metadata.labels ?? {}, server.metadata.labels ?? {}) ||
    !jsonEqual(local.metadata.annotations ?? {}, server.metadata.annotations ?? {});
}

/** The PUT body: local fields over the server's metadata (uid, resourceVersion, ...), without status. */
export function updateBody(local: ShoalObject, server: ShoalObject): ShoalObject {
  const metadata = { ...server.metadata, labels: local.metadata.labels, annotations: local.metadata.annotations };
  const body = { ...local, metadata } as Raw;
  delete body.status;
  return body as unknown as ShoalObject;
}

async function getOrUndefined(client: ResourceClient, p: PlannedObject): Promise<ShoalObject | undefined> {
  try {
    return await client.get(p.kind, p.namespace, p.object.metadata.name);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Errors that concern one object and let the others proceed (anything else aborts: no server, no auth). */
function isObjectError(err: unknown): err is ApiError {
  return err instanceof ApiError && [400, 403, 404, 405, 409, 413, 415, 422].includes(err.code);
}

/** Server errors as `file:line: app/web: ...` lines, one per cause when the server named fields. */
export function serverErrorLines(p: PlannedObject, err: ApiError): string[] {
  if (err.causes.length) return err.causes.map((c) => causeLine(p.doc, p.ref, c));
  return [causeLine(p.doc, p.ref, { field: '', message: err.message })];
}

/**
 * Server-side dry run of every object (create or replace, as apply would); returns the problems.
 * A controller writing an object's status between the read and the dry run is retried as the
 * real write is, so it is not reported as a problem of the manifest.
 */
export async function dryRunAll(client: ResourceClient, planned: PlannedObject[], pause: (ms: number) => Promise<void> = sleep): Promise<string[]> {
  const errors: string[] = [];
  const jobs = new Set(planned.filter((p) => p.kind.kind === 'Job').map((p) => jobKey(p.namespace, p.object.metadata.name)));
  for (const p of planned) {
    try {
      await applyOne(client, p, pause, { dryRun: true });
    } catch (err) {
      if (!isObjectError(err)) throw err;
      const rest = withoutParentsApplied(p, err, jobs);
      if (rest) errors.push(...serverErrorLines(p, rest));
    }
  }
  return errors;
}

const jobKey = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;

/**
 * A dry run cannot see the parents this apply creates before the Job: the server's
 * `spec.parents[i]: job "x" not found` is dropped when x is a Job of this apply. Returns the
 * error with what is left, or undefined when nothing is.
 */
function withoutParentsApplied(p: PlannedObject, err: ApiError, jobs: ReadonlySet<string>): ApiError | undefined {
  if (p.kind.kind !== 'Job' || err.code !== 422 || !err.causes.length) return err;
  const pending = (c: FieldCause) => {
    const m = /^job "([^"]+)" not found$/.exec(c.message);
    return /^spec\.parents\[\d+\]$/.test(c.field) && m !== null && jobs.has(jobKey(p.namespace, m[1]));
  };
  const rest = err.causes.filter((c) => !pending(c));
  if (rest.length === err.causes.length) return err;
  return rest.length ? new ApiError(err.code, err.reason, err.message, rest) : undefined;
}

/**
 * The apply order: each Job after the Jobs of this apply (same namespace) it names as parents,
 * everything else as given (Kahn's algorithm taking the earliest document first, so an order
 * that already works is kept). Jobs on a cycle are errors: `would make a cycle: a → b → a`.
 */
export function orderForApply(planned: PlannedObject[]): { ordered: PlannedObject[]; errors: string[] } {
  const index = new Map<string, number>();
  planned.forEach((p, i) => p.kind.kind === 'Job' && index.set(jobKey(p.namespace, p.object.metadata.name), i));
  const parentsOf = (i: number): number[] => {
    const p = planned[i];
    if (p.kind.kind !== 'Job') return [];
    const parents = (p.object as { spec?: { parents?: string[] } }).spec?.parents ?? [];
    return parents.map((n) => index.get(jobKey(p.namespace, n))).filter((j): j is number => j !== undefined);
  };
  const children = planned.map(() => [] as number[]);
  const waiting = planned.map((_, i) => parentsOf(i).length);
  planned.forEach((_, i) => parentsOf(i).forEach((j) => children[j].push(i)));
  const ready = planned.map((_, i) => i).filter((i) => waiting[i] === 0);
  const ordered: PlannedObject[] = [];
  while (ready.length) {
    ready.sort((a, b) => a - b);
    const i = ready.shift()!;
    ordered.push(planned[i]);
    for (const c of children[i]) if (--waiting[c] === 0) ready.push(c);
  }
  const errors: string[] = [];
  const reported = new Set<number>();
  for (let i = 0; i < planned.length; i++) {
    if (waiting[i] === 0 || reported.has(i)) continue;
    const cycle = parentCycle(i, parentsOf);
    if (!cycle) continue; // only waits on a cycle elsewhere
    cycle.forEach((j) => reported.add(j));
    const names = cycle.map((j) => planned[j].object.metadata.name);
    errors.push(causeLine(planned[i].doc, planned[i].ref, { field: 'spec.parents', message: `would make a cycle: ${names.join(' → ')}` }));
  }
  return { ordered, errors };
}

/**
 * Creates, replaces or leaves one object (or, with dryRun, asks the server whether it would);
 * re-reads and retries when a write loses a race (409): a controller writing status meanwhile.
 */
export async function applyOne(client: ResourceClient, p: PlannedObject, pause: (ms: number) => Promise<void> = sleep, opts: { dryRun?: boolean } = {}): Promise<ApplyResult> {
  const name = p.object.metadata.name;
  const write = opts.dryRun ? { dryRun: true } : undefined;
  for (let attempt = 0; ; attempt++) {
    const current = await getOrUndefined(client, p);
    if (current && !needsUpdate(p.object, current)) return 'unchanged';
    try {
      if (!current) await client.create(p.kind, p.namespace, p.object, write);
      else await client.replace(p.kind, p.namespace, name, updateBody(p.object, current), write);
      return current ? 'configured' : 'created';
    } catch (err) {
      const raced = err instanceof ApiError && err.code === 409;
      if (!raced || attempt >= MAX_CONFLICT_RETRIES) throw err;
      await pause(Math.min(1000, 25 * 2 ** attempt) * (0.5 + Math.random()));
    }
  }
}

/** The whole apply: validate all, dry-run all, then write each. Throws CliError listing every problem. */
export async function applyManifests(docs: ManifestDocument[], loadErrors: string[], deps: ApplyDeps): Promise<void> {
  const plan = planApply(docs, deps.defaultNamespace);
  const { ordered: planned, errors: cycles } = orderForApply(plan.planned);
  const local = [...loadErrors, ...plan.errors, ...cycles];
  if (local.length) throw new CliError(local);
  if (!planned.length) throw new CliError('no objects passed to apply');
  const client = deps.client();
  const remote = await dryRunAll(client, planned);
  if (remote.length) throw new CliError(remote);
  let failed = false;
  for (const p of planned) {
    try {
      deps.out(`${p.ref} ${await applyOne(client, p)}`);
    } catch (err) {
      if (!isObjectError(err)) throw err;
      failed = true; // like kubectl: report, carry on with the rest, exit 1 at the end
      for (const line of serverErrorLines(p, err)) deps.err(`error: ${line}`);
    }
  }
  if (failed) throw new ReportedFailure();
}

/** Registers `apply`. */
export function registerApply(program: Command, io: CliIO): void {
  program
    .command('apply')
    .description('Create or update objects from YAML/JSON manifests (all are validated before any is written). ' +
      'Jobs are applied parents first (spec.parents), so a file or directory with a whole Job graph applies in one go; ' +
      'everything else in the order given')
    .option('-f, --filename <path>', 'file, directory or - for stdin (repeatable)', collect, [])
    .action(async (opts: { filename: string[] }, command: Command) => {
      const ctx = contextOf(io, command);
      const { docs, errors } = await loadManifests(opts.filename, io);
      await applyManifests(docs, errors, {
        out: (line) => ctx.out(line),
        err: (line) => ctx.err(line),
        client: () => ctx.client(),
        defaultNamespace: () => ctx.namespace(),
      });
    });
}

/** Commander collector for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
