/**
 * Size limits admission checks beyond the schemas. Per-field limits (maxLength, maxItems,
 * maxProperties) live in schemas/, where ajv reports them; these are the sums a schema cannot
 * express, and the encoded size of a whole object, which keeps every write well under etcd's
 * request limit (--max-request-bytes, 1.5 MiB by default). A request over it would fail in etcd,
 * after admission said yes.
 *
 * Why 512 KiB: the biggest write of a client's object is an App's, which goes in one txn with
 * its revision (a copy of its spec): 2 × 512 KiB plus server metadata (16 KiB at most), status
 * and keys stays under 1.5 MiB. A Task
 * carries its App's spec and is written twice in its bind txn (object and assignment), so Tasks
 * and JobRuns, which the server derives from an App or Job, get a little more room.
 */
import type { FieldCause, ShoalObject } from './objects';

/** Encoded size (JSON, UTF-8, without status) of an object a client writes. Over it: 413. */
export const MAX_OBJECT_BYTES = 512 * 1024;
/** The same for Tasks and JobRuns: their App's or Job's spec plus the server's metadata. */
export const MAX_DERIVED_OBJECT_BYTES = MAX_OBJECT_BYTES + 64 * 1024;
/** Bytes of all annotation keys and values of one object, as Kubernetes (TotalAnnotationSizeLimitB). */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;
/**
 * Bytes of one env map's names and values. With cmd and args this stays far below what execve
 * takes (ARG_MAX, 2 MiB with an 8 MiB stack).
 */
export const MAX_ENV_BYTES = 256 * 1024;
/** Labels of any object (also in schemas/meta.json, Labels.maxProperties). */
export const MAX_LABELS = 64;
/**
 * Labels of an App or Job: their runs and tasks carry their labels plus up to three of Shoal's
 * own (shoal.dev/app or shoal.dev/job and shoal.dev/jobrun, and shoal.dev/framework), and
 * must still fit MAX_LABELS.
 */
export const MAX_WORKLOAD_LABELS = MAX_LABELS - 4;

const DERIVED_KINDS = new Set(['Task', 'JobRun']);

/** The most encoded bytes an object of `kind` may have (see {@link objectSizeCause}). */
export function maxObjectBytes(kind: string): number {
  return DERIVED_KINDS.has(kind) ? MAX_DERIVED_OBJECT_BYTES : MAX_OBJECT_BYTES;
}

/** UTF-8 bytes of a map's keys and values. */
function mapBytes(map: Record<string, string>): number {
  let n = 0;
  for (const [k, v] of Object.entries(map)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

/** `spec` and, for a JobRun, `spec.template`: where env maps of a workload are. */
function workloadSpecs(obj: ShoalObject): Array<{ at: string; spec: { env?: Record<string, string>; container?: { env?: Record<string, string> } } }> {
  const spec = (obj as { spec?: Record<string, unknown> }).spec;
  if (!spec || typeof spec !== 'object') return [];
  const out = [{ at: 'spec', spec: spec as never }];
  if (obj.kind === 'JobRun' && spec.template && typeof spec.template === 'object') out.push({ at: 'spec.template', spec: spec.template as never });
  return out;
}

/**
 * Totals over fields of an object that passed its schema: annotations, env maps, and the label
 * count of Apps and Jobs. Each cause names the field and the limit (answered 422).
 */
export function totalSizeCauses(obj: ShoalObject): FieldCause[] {
  const causes: FieldCause[] = [];
  const annotations = obj.metadata.annotations;
  if (annotations) {
    const n = mapBytes(annotations);
    if (n > MAX_ANNOTATIONS_BYTES) causes.push({ field: 'metadata.annotations', message: `keys and values take ${n} bytes: at most ${MAX_ANNOTATIONS_BYTES} (256 KiB) in all` });
  }
  const labels = Object.keys(obj.metadata.labels ?? {}).length;
  if ((obj.kind === 'App' || obj.kind === 'Job') && labels > MAX_WORKLOAD_LABELS) {
    causes.push({ field: 'metadata.labels', message: `has ${labels} labels: at most ${MAX_WORKLOAD_LABELS} on an ${obj.kind} (its runs and tasks carry them plus Shoal's own)` });
  }
  for (const { at, spec } of workloadSpecs(obj)) {
    for (const [field, env] of [[`${at}.env`, spec.env], [`${at}.container.env`, spec.container?.env]] as const) {
      if (!env) continue;
      const n = mapBytes(env);
      if (n > MAX_ENV_BYTES) causes.push({ field, message: `names and values take ${n} bytes: at most ${MAX_ENV_BYTES} (256 KiB) in all` });
    }
  }
  return causes;
}

/**
 * The encoded size of an object as far as its writer controls it: everything but status (a
 * client's is ignored; controllers write it) and the metadata the server sets or the schema
 * bounds (uid, generation, resourceVersion, timestamps, finalizers, ownerReferences: 16 KiB at
 * most). So an object admitted at the limit can be read, changed and written back. A cause for
 * the object as a whole (field ''), answered 413.
 */
export function objectSizeCause(obj: ShoalObject): FieldCause | undefined {
  const n = countedObjectBytes(obj);
  const max = maxObjectBytes(obj.kind);
  if (n <= max) return undefined;
  return { field: '', message: `the ${obj.kind} takes ${n} bytes encoded (status and server-set metadata not counted): at most ${max} (${max / 1024} KiB)` };
}

/** The bytes {@link objectSizeCause} counts of an object. */
export function countedObjectBytes(obj: ShoalObject): number {
  const { status: _status, metadata, ...rest } = obj as ShoalObject & { status?: unknown };
  const { name, namespace, labels, annotations } = metadata;
  return Buffer.byteLength(JSON.stringify({ ...rest, metadata: { name, namespace, labels, annotations } }));
}
