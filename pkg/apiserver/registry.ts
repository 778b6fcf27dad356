/**
 * API semantics over the store: admission on every write, server-managed metadata
 * (uid, generation, creationTimestamp, deletionTimestamp), status kept from what is stored,
 * and compare-and-swap on mod revisions so concurrent writers never lose an update.
 */
import { randomUUID } from 'node:crypto';
import { APP_FINALIZER, appHistoryKey, appHistoryPrefix, type AppRevision } from '../api/apps';
import { manualRunName, newJobRun, parentCycle } from '../api/jobs';
import { DEFAULT_NAMESPACE, kindByPlural, type KindInfo } from '../api/kinds';
import type { Job, JobRun } from '../api/types.generated';
import { admit, shown, structuralCause, type ShoalObject } from '../api/validation';
import { matchesSelector, type Selector } from '../api/labels';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../store/errors';
import { assignmentKey, decodeKeyValue, encodeObject, kindPrefix, objectKey, prefixEnd } from '../store/objects';
import type { Store, TxnCompare, TxnOp } from '../store/types';
import { ApiError, fromStoreError, invalid, tooLarge } from './errors';
import { jsonEqual } from '../util/json';
import { mergePatch } from './merge-patch';

export interface WriteOptions {
  /** Validate and admit, but write nothing. */
  dryRun?: boolean;
}

/** Longest idempotency key of `POST .../jobs/{name}/run`. */
export const MAX_IDEMPOTENCY_KEY = 253;

export interface ListResult {
  items: ShoalObject[];
  resourceVersion: string;
}

/** Identifies one object. namespace is undefined for cluster-scoped kinds. */
export interface ObjectRef {
  kind: KindInfo;
  namespace: string | undefined;
  name: string;
}

/** Times a read-modify-write is retried when a concurrent writer got there first. */
const CAS_RETRIES = 5;

/** Clock injected for tests. */
export type Now = () => Date;

export class Registry {
  constructor(private readonly store: Store, private readonly prefix: string, private readonly now: Now = () => new Date()) {}

  private key(ref: ObjectRef): string {
    return objectKey(this.prefix, ref.kind, ref.namespace, ref.name);
  }

  async get(ref: ObjectRef): Promise<ShoalObject> {
    const kv = await this.store.get(this.key(ref)).catch((e) => fromStoreError(e, ref.kind.kind, ref.name));
    if (!kv) throw new ApiError('NotFound', `${ref.kind.singular} "${ref.name}" not found`, { kind: ref.kind.kind, name: ref.name });
    return decodeKeyValue(kv);
  }

  async list(kind: KindInfo, namespace: string | undefined, selector: Selector): Promise<ListResult> {
    const res = await this.store.list(kindPrefix(this.prefix, kind, namespace)).catch((e) => fromStoreError(e, kind.kind, ''));
    const items = res.items.map((kv) => decodeKeyValue(kv)).filter((o) => matchesSelector(selector, o.metadata.labels));
    return { items, resourceVersion: String(res.revision) };
  }

  /** Admits a body for `ref`'s kind and namespace, checking it names the same object as the URL. */
  private admitFor(kind: KindInfo, namespace: string | undefined, body: unknown, urlName?: string): ShoalObject {
    const structural = structuralCause(body);
    if (structural) throw invalid(kind.kind, urlName, [structural], true);
    const b = body as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
    if (b && typeof b === 'object' && b.kind !== undefined && b.kind !== kind.kind) {
      throw new ApiError('BadRequest', `body kind "${shown(b.kind)}" does not match the URL's kind ${kind.kind}`);
    }
    if (kind.namespaced && b?.metadata?.namespace !== undefined && b.metadata.namespace !== namespace) {
      throw new ApiError('BadRequest', `metadata.namespace "${shown(b.metadata.namespace)}" does not match the URL's namespace "${namespace}"`);
    }
    if (urlName !== undefined && b?.metadata?.name !== undefined && b.metadata.name !== urlName) {
      throw new ApiError('BadRequest', `metadata.name "${shown(b.metadata.name)}" does not match the URL's name "${urlName}"`);
    }
    const withNs = kind.namespaced && b?.metadata && typeof b.metadata === 'object' && b.metadata.namespace === undefined
      ? { ...b, metadata: { ...b.metadata, namespace: namespace ?? DEFAULT_NAMESPACE } }
      : body;
    const r = admit(withNs);
    if (!r.ok) {
      const name = urlName ?? (typeof b?.metadata?.name === 'string' ? b.metadata.name : undefined);
      throw r.tooLarge ? tooLarge(kind.kind, name, r.causes) : invalid(kind.kind, name, r.causes);
    }
    return r.object;
  }

  /** Creates an object: generation 1, a new uid, empty status; an App also gets its finalizer and revision 1. */
  async create(kind: KindInfo, namespace: string | undefined, body: unknown, opts: WriteOptions = {}): Promise<ShoalObject> {
    return this.createAdmitted(kind, this.admitFor(kind, namespace, body), opts, false);
  }

  /**
   * The one create path: server metadata, then the write. `keepStatus`: the server made the
   * object (a manual JobRun, born Pending), so its status is ours, not a client's to drop.
   */
  private async createAdmitted(kind: KindInfo, obj: ShoalObject, opts: WriteOptions, keepStatus: boolean): Promise<ShoalObject> {
    if (obj.kind === 'Job') await this.checkJobParents(obj as Job, undefined);
    const { resourceVersion: _rv, deletionTimestamp: _dt, ...meta } = obj.metadata;
    if (obj.kind === 'App' && !meta.finalizers?.includes(APP_FINALIZER)) meta.finalizers = [...(meta.finalizers ?? []), APP_FINALIZER];
    const stored = {
      ...obj,
      metadata: { ...meta, uid: randomUUID(), generation: 1, creationTimestamp: this.now().toISOString() },
      ...('status' in obj ? { status: keepStatus ? obj.status : {} } : {}),
    } as ShoalObject;
    const ref = { kind, namespace: obj.metadata.namespace, name: obj.metadata.name };
    const key = this.key(ref);
    if (opts.dryRun) {
      const existing = await this.store.get(key).catch((e) => fromStoreError(e, kind.kind, ref.name));
      if (existing) fromStoreError(new AlreadyExistsError(key), kind.kind, ref.name);
      return stored;
    }
    let rev: number;
    if (stored.kind === 'App') {
      // Revision 1 goes with the App; history left by an earlier App of this name is dropped.
      const ops: TxnOp[] = [{ op: 'put', key, value: encodeObject(stored) }, ...this.historyOps(stored, true)];
      const done = await this.store.txn([{ key, modRevision: 0 }], ops).catch((e) => fromStoreError(e, kind.kind, ref.name));
      if (done === undefined) fromStoreError(new AlreadyExistsError(key), kind.kind, ref.name);
      rev = done;
    } else {
      rev = await this.store.create(key, encodeObject(stored)).catch((e) => fromStoreError(e, kind.kind, ref.name));
    }
    stored.metadata.resourceVersion = String(rev);
    return stored;
  }

  /** An App's stored spec versions, newest first. 404 when the App does not exist. */
  async revisions(ref: ObjectRef): Promise<AppRevision[]> {
    await this.get(ref);
    const res = await this.store.list(appHistoryPrefix(this.prefix, ref.namespace ?? DEFAULT_NAMESPACE, ref.name)).catch((e) => fromStoreError(e, ref.kind.kind, ref.name));
    const revisions: AppRevision[] = [];
    for (const kv of res.items) {
      try {
        const r = JSON.parse(kv.value) as AppRevision;
        if (typeof r?.generation === 'number') revisions.push(r);
      } catch {
        // a value that is not a revision is skipped, not served
      }
    }
    return revisions.sort((a, b) => b.generation - a.generation);
  }

  /**
   * Ops that go in the txn writing `app` at a new generation: its revision, and range deletes of
   * the revisions past spec.revisionHistoryLimit (the current one and the `limit` before it are
   * kept; generations count up by one per spec change) and of any "newer" than the current one,
   * which cannot belong to this App. `fresh`: the App is being created, so every other key under
   * its history prefix is stale. History keys sort by generation (10 digits), so no read is needed.
   */
  private historyOps(app: ShoalObject, fresh: boolean): TxnOp[] {
    const ns = app.metadata.namespace ?? DEFAULT_NAMESPACE;
    const generation = app.metadata.generation ?? 1;
    const spec = (app as { spec?: { revisionHistoryLimit?: number } }).spec;
    const revision: AppRevision = { generation, createdAt: this.now().toISOString(), spec };
    const prefix = appHistoryPrefix(this.prefix, ns, app.metadata.name);
    const current = appHistoryKey(this.prefix, ns, app.metadata.name, generation);
    const oldestKept = fresh ? generation : Math.max(0, generation - (spec?.revisionHistoryLimit ?? 10));
    const ops: TxnOp[] = [{ op: 'put', key: current, value: JSON.stringify(revision) }];
    ops.push({ op: 'deleteRange', key: prefix, end: appHistoryKey(this.prefix, ns, app.metadata.name, oldestKept) });
    ops.push({ op: 'deleteRange', key: `${current}\0`, end: prefixEnd(prefix) });
    return ops;
  }

  /**
   * Admission of a Job across objects: each parent it adds must be a Job of its namespace, and
   * the parent graph must stay acyclic. One list of the namespace's Jobs, so O(jobs in it).
   * On update only added parents are checked: a parent deleted since does not block an
   * unrelated change (`shoal job suspend`), and only a new edge can close a cycle.
   */
  private async checkJobParents(job: Job, current: Job | undefined): Promise<void> {
    const parents = job.spec?.parents ?? [];
    const before = new Set(current?.spec?.parents ?? []);
    const added = parents.map((p, i) => ({ p, i })).filter(({ p }) => !before.has(p));
    if (!added.length) return;
    const name = job.metadata.name;
    const namespace = job.metadata.namespace ?? DEFAULT_NAMESPACE;
    const jobs = (await this.list(kindByPlural('jobs')!, namespace, [])).items as Job[];
    const parentsOf = new Map<string, readonly string[]>(jobs.map((j) => [j.metadata.name, j.spec?.parents ?? []]));
    parentsOf.set(name, parents);
    const causes = added
      .filter(({ p }) => p !== name && !jobs.some((j) => j.metadata.name === p))
      .map(({ p, i }) => ({ field: `spec.parents[${i}]`, message: `job "${p}" not found` }));
    if (causes.length) throw invalid('Job', name, causes);
    const cycle = parentCycle(name, (j) => parentsOf.get(j) ?? []);
    if (cycle) throw invalid('Job', name, [{ field: 'spec.parents', message: `would make a cycle: ${cycle.join(' → ')}` }]);
  }

  /**
   * `POST .../jobs/{name}/run`: a Manual JobRun of the Job as it is now, created through the
   * create path (uid, creationTimestamp, resourceVersion, admission). With an idempotency key
   * the run's name derives from it: asking again returns the run made the first time.
   */
  async runJob(ref: ObjectRef, idempotencyKey: string | undefined, opts: WriteOptions = {}): Promise<{ run: ShoalObject; created: boolean }> {
    const runs = kindByPlural('jobruns')!;
    const namespace = ref.namespace ?? DEFAULT_NAMESPACE;
    for (let attempt = 0; ; attempt++) {
      const job = (await this.get(ref)) as Job;
      if (job.metadata.deletionTimestamp) {
        throw new ApiError('Conflict', `job "${ref.name}" is being deleted: it cannot run`, { kind: 'Job', name: ref.name });
      }
      const name = manualRunName(ref.name, idempotencyKey);
      if (idempotencyKey !== undefined) {
        const existing = await this.getIfExists({ kind: runs, namespace, name });
        if (existing) return { run: this.sameJobRun(existing as JobRun, job, idempotencyKey), created: false };
      }
      const run = newJobRun(job, { name, trigger: 'Manual', scheduledTime: this.now().getTime() });
      try {
        return { run: await this.createAdmitted(runs, this.admitFor(runs, namespace, run), opts, true), created: true };
      } catch (err) {
        // Another request with the same key won the race (or, without one, a random name repeated).
        if (!(err instanceof ApiError && err.reason === 'AlreadyExists') || attempt >= 2) throw err;
      }
    }
  }

  /** A run found under a key's name: it must be this Job's (not one left by an earlier Job of the name). */
  private sameJobRun(run: JobRun, job: Job, key: string): JobRun {
    const owner = run.metadata.ownerReferences?.find((o) => o.kind === 'Job');
    if (run.spec?.job !== job.metadata.name || (owner && job.metadata.uid && owner.uid !== job.metadata.uid)) {
      throw new ApiError('Conflict', `jobrun "${run.metadata.name}" of idempotency key "${key}" belongs to an earlier job "${job.metadata.name}"; delete it or use another key`, { kind: 'JobRun', name: run.metadata.name });
    }
    return run;
  }

  private async getIfExists(ref: ObjectRef): Promise<ShoalObject | undefined> {
    try {
      return await this.get(ref);
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  /** Replaces spec, labels, annotations and the other user-owned metadata of an object. */
  async update(ref: ObjectRef, body: unknown, opts: WriteOptions = {}): Promise<ShoalObject> {
    const desired = this.admitFor(ref.kind, ref.namespace, body, ref.name);
    return this.readModifyWrite(ref, desired.metadata.resourceVersion, () => desired, opts);
  }

  /** Applies a JSON merge patch (RFC 7386) to the stored object, then updates as PUT does. */
  async patch(ref: ObjectRef, patch: unknown, opts: WriteOptions = {}): Promise<ShoalObject> {
    const structural = structuralCause(patch);
    if (structural) throw invalid(ref.kind.kind, ref.name, [structural], true);
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
      throw new ApiError('BadRequest', 'a merge patch must be a JSON object');
    }
    const rv = (patch as { metadata?: { resourceVersion?: unknown } }).metadata?.resourceVersion;
    return this.readModifyWrite(ref, typeof rv === 'string' ? rv : undefined, (current) => {
      const { resourceVersion: _r, ...meta } = current.metadata;
      const desired = this.admitFor(ref.kind, ref.namespace, mergePatch({ ...current, metadata: meta }, patch), ref.name);
      // `finalizers: null` removes them all (a missing list would mean "keep the stored ones").
      if ((patch as { metadata?: { finalizers?: unknown } }).metadata?.finalizers === null) desired.metadata.finalizers = [];
      return desired;
    }, opts);
  }

  /**
   * Reads the object, computes its new form, writes it with a mod-revision compare.
   * With an explicit resourceVersion a mismatch is the client's 409; without one, a
   * concurrent write just means read again.
   */
  private async readModifyWrite(ref: ObjectRef, expectedRv: string | undefined, desiredOf: (current: ShoalObject) => ShoalObject, opts: WriteOptions): Promise<ShoalObject> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(ref);
      if (expectedRv !== undefined && expectedRv !== current.metadata.resourceVersion) {
        throw new ApiError('Conflict', `${ref.kind.singular} "${ref.name}" was modified: resourceVersion ${expectedRv} is stale (now ${current.metadata.resourceVersion}); read it again and retry`, { kind: ref.kind.kind, name: ref.name });
      }
      const next = this.merged(current, desiredOf(current));
      if (next.kind === 'Job') await this.checkJobParents(next as Job, current as Job);
      if (jsonEqual(next, current) || opts.dryRun) return next;
      try {
        if (next.metadata.deletionTimestamp && !next.metadata.finalizers?.length) {
          // The last finalizer is gone from an object being deleted: delete it now, as Kubernetes does.
          await this.remove(ref, current);
          return next;
        }
        const rev = await this.write(ref, current, next);
        next.metadata.resourceVersion = String(rev);
        return next;
      } catch (err) {
        if (err instanceof ConflictError && expectedRv === undefined && attempt < CAS_RETRIES) continue;
        fromStoreError(err, ref.kind.kind, ref.name);
      }
    }
  }

  /** The stored object after a client update: server-managed metadata and status are kept. */
  private merged(current: ShoalObject, desired: ShoalObject): ShoalObject {
    const cur = current.metadata;
    const specChanged = !jsonEqual((desired as { spec?: unknown }).spec, (current as { spec?: unknown }).spec);
    const next = {
      ...desired,
      metadata: {
        ...desired.metadata,
        // A body without finalizers (an applied manifest) keeps those controllers put there.
        ...(desired.metadata.finalizers === undefined && cur.finalizers !== undefined ? { finalizers: cur.finalizers } : {}),
        uid: cur.uid,
        creationTimestamp: cur.creationTimestamp,
        generation: (cur.generation ?? 1) + (specChanged ? 1 : 0),
        resourceVersion: cur.resourceVersion,
        ...(cur.deletionTimestamp ? { deletionTimestamp: cur.deletionTimestamp } : {}),
      },
      ...('status' in current ? { status: current.status } : {}),
    } as ShoalObject;
    if (next.metadata.deletionTimestamp === undefined) delete next.metadata.deletionTimestamp;
    return normalise(next);
  }

  /**
   * Deletes an object, or marks it (deletionTimestamp) when finalizers hold it: the
   * controllers owning the finalizers remove them once the object's children are gone.
   */
  async delete(ref: ObjectRef, expectedRv?: string, opts: WriteOptions = {}): Promise<ShoalObject> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(ref);
      if (expectedRv !== undefined && expectedRv !== current.metadata.resourceVersion) {
        throw new ApiError('Conflict', `${ref.kind.singular} "${ref.name}" was modified: resourceVersion ${expectedRv} is stale (now ${current.metadata.resourceVersion})`, { kind: ref.kind.kind, name: ref.name });
      }
      if (opts.dryRun) return current;
      try {
        if (!current.metadata.finalizers?.length) {
          await this.remove(ref, current);
          return current;
        }
        if (current.metadata.deletionTimestamp) return current;
        const marked = structuredClone(current);
        marked.metadata.deletionTimestamp = this.now().toISOString();
        marked.metadata.resourceVersion = String(await this.store.update(this.key(ref), encodeObject(marked), Number(current.metadata.resourceVersion)));
        return marked;
      } catch (err) {
        // Without a precondition from the client, a controller writing status meanwhile just means read again.
        if (err instanceof ConflictError && expectedRv === undefined && attempt < CAS_RETRIES) continue;
        fromStoreError(err, ref.kind.kind, ref.name);
      }
    }
  }

  /**
   * Writes `next` over `current` with a mod-revision compare; an App whose generation moved gets
   * its new revision (and history pruning) in the same txn. Throws the store's typed errors.
   */
  private async write(ref: ObjectRef, current: ShoalObject, next: ShoalObject): Promise<number> {
    const key = this.key(ref);
    const rev = Number(current.metadata.resourceVersion);
    if (next.kind !== 'App' || next.metadata.generation === current.metadata.generation) return this.store.update(key, encodeObject(next), rev);
    const ops: TxnOp[] = [{ op: 'put', key, value: encodeObject(next) }, ...this.historyOps(next, false)];
    return this.txnOrThrow(key, [{ key, modRevision: rev }], ops);
  }

  /**
   * Deletes a stored object compared on its mod revision, with what goes with it: a Task's
   * assignment key (so its agent stops it: this is how drain and `delete task` kill), an App's
   * spec history. Throws the store's typed errors.
   */
  private async remove(ref: ObjectRef, current: ShoalObject): Promise<void> {
    const key = this.key(ref);
    const rev = Number(current.metadata.resourceVersion);
    const ops: TxnOp[] = [{ op: 'delete', key }];
    if (current.kind === 'Task' && current.spec.nodeName) ops.push({ op: 'delete', key: assignmentKey(this.prefix, current.spec.nodeName, ref.namespace ?? '', ref.name) });
    if (current.kind === 'App') {
      const history = appHistoryPrefix(this.prefix, ref.namespace ?? DEFAULT_NAMESPACE, ref.name);
      ops.push({ op: 'deleteRange', key: history, end: prefixEnd(history) });
    }
    await this.txnOrThrow(key, [{ key, modRevision: rev }], ops);
  }

  /** Runs a txn compared on `key`; a failed compare becomes NotFoundError or ConflictError, as store.update reports it. */
  private async txnOrThrow(key: string, compares: TxnCompare[], ops: TxnOp[]): Promise<number> {
    const done = await this.store.txn(compares, ops);
    if (done !== undefined) return done;
    const now = await this.store.get(key);
    if (!now) throw new NotFoundError(key);
    throw new ConflictError(key, compares[0].modRevision, now.modRevision);
  }
}

/** Key order of a JSON round trip, so deep comparison with stored objects is exact. */
function normalise<T>(obj: T): T {
  return JSON.parse(JSON.stringify(obj)) as T;
}
