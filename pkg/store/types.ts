/**
 * The store: etcd's key/value model (keys, JSON string values, revisions, watches)
 * behind an interface, with an etcd implementation and an in-memory double that pass
 * the same contract tests (test/integration/store.contract.test.ts).
 */

/** One key as stored. Revisions are etcd revisions (the memory store counts the same way). */
export interface KeyValue {
  key: string;
  value: string;
  /** Revision of the last write to this key: the object's resourceVersion. */
  modRevision: number;
  /** Revision at which the key was created. */
  createRevision: number;
  /** Lease id (decimal string) the key is attached to; absent when it has none. */
  lease?: string;
}

export interface ListResult {
  items: KeyValue[];
  /** The store revision the list was read at; watch with afterRevision = revision to see every later change. */
  revision: number;
}

export type WatchEventType = 'put' | 'delete';

export interface WatchEvent {
  type: WatchEventType;
  key: string;
  /** The new value (put) or '' (delete). */
  value: string;
  /** Revision of this change. */
  modRevision: number;
  /** The key's createRevision after a put (equal to modRevision on creation); 0 for a delete, as etcd reports it. */
  createRevision: number;
  /** The value before this change, when it existed and the watch asked for it (WatchOptions.prevValue). */
  prevValue?: string;
}

export interface WatchOptions {
  /** Deliver every change with a revision greater than this. 0 means "from now". */
  afterRevision: number;
  /**
   * Deliver each event's previous value (prevValue). etcd reads it from its backend for every
   * event and sends it along, which roughly doubles a busy watch's cost: ask only when needed
   * (a delete's last value for API clients). @default false
   */
  prevValue?: boolean;
  /** Called with the events of one revision batch, in revision order. */
  onEvents(events: WatchEvent[]): void;
  /**
   * Called once when the watch ends abnormally (CompactedError when afterRevision was compacted,
   * UnavailableError when the store is gone). The watch is dead afterwards: relist and watch again.
   */
  onError(err: Error): void;
}

export interface Watch {
  /** Stops the watch. Idempotent. */
  cancel(): Promise<void>;
}

export interface PutOptions {
  /** Attach the key to a lease with this TTL in seconds (events expire on their own). */
  ttlSeconds?: number;
  /** Attach the key to an existing lease id (as returned by grantLease, or Lease.id). */
  leaseId?: string;
}

/** A compare in a transaction: the key's mod revision equals `modRevision` (0 = key absent). */
export interface TxnCompare {
  key: string;
  modRevision: number;
}

/**
 * A fence: the leader key still has this mod revision. Every controller-manager write puts it
 * first among its compares, so a deposed leader's writes fail.
 */
export type Fence = TxnCompare;

export type TxnOp =
  | { op: 'put'; key: string; value: string; leaseId?: string }
  | { op: 'delete'; key: string }
  /**
   * Deletes every key k with key <= k < end (etcd's DeleteRange), e.g. a prefix's keys without
   * listing them first. As in etcd, it may not cover a key that the same txn puts.
   */
  | { op: 'deleteRange'; key: string; end: string };

/**
 * A lease that the store keeps alive in the background (Store.lease), e.g. an agent's
 * heartbeat: keys attached to it live exactly as long as its holder keeps it.
 */
export interface Lease {
  /** Lease id (decimal string) for PutOptions.leaseId and TxnOp.leaseId. */
  readonly id: string;
  /** Stops keep-alive and revokes the lease: every key attached to it is deleted at once. Idempotent. */
  revoke(): Promise<void>;
  /**
   * Stops keep-alive WITHOUT revoking, as a crashed process would: the attached keys vanish
   * when the TTL runs out. onLost is not called. Idempotent.
   */
  release(): void;
}

/** Key/value store with revisions, compare-and-swap and watches. */
export interface Store {
  /** Reads one key; undefined when absent. */
  get(key: string): Promise<KeyValue | undefined>;
  /**
   * Reads several keys at one revision, in one round trip (an etcd txn of ranges); one entry per
   * key, in order, undefined where absent. At most 128 keys (etcd's --max-txn-ops).
   */
  getMany(keys: string[]): Promise<Array<KeyValue | undefined>>;
  /**
   * How many keys under `prefix` were written after `revision` (mod revision greater; deleted
   * keys do not count). One read (on etcd it scans the prefix): how a watcher that has been
   * silent for a while checks that it is not missing writes.
   */
  countNewer(prefix: string, revision: number): Promise<number>;
  /** Reads every key under a prefix, sorted by key, with the revision it was read at. */
  list(prefix: string): Promise<ListResult>;
  /** Creates a key only if absent (txn on mod revision 0). Returns the new mod revision. Throws AlreadyExistsError. */
  create(key: string, value: string, opts?: PutOptions): Promise<number>;
  /**
   * Replaces a key only if its mod revision is `expectedModRevision`.
   * Returns the new mod revision. Throws NotFoundError or ConflictError.
   */
  update(key: string, value: string, expectedModRevision: number, opts?: PutOptions): Promise<number>;
  /**
   * Deletes a key, only if its mod revision is `expectedModRevision` when one is given.
   * Returns the deleted key/value. Throws NotFoundError or ConflictError.
   */
  delete(key: string, expectedModRevision?: number): Promise<KeyValue>;
  /**
   * Applies `ops` atomically if every compare holds. Returns the txn's revision when applied,
   * or undefined when a compare failed (nothing written). At most 128 ops per call (etcd's default).
   */
  txn(compares: TxnCompare[], ops: TxnOp[]): Promise<number | undefined>;
  /** Watches every key under a prefix from a revision. */
  watch(prefix: string, opts: WatchOptions): Promise<Watch>;
  /** Grants a lease with a TTL in seconds, NOT kept alive (it expires after the TTL); returns its id. */
  grantLease(ttlSeconds: number): Promise<string>;
  /**
   * Grants a lease and keeps it alive in the background (a keep-alive every TTL/3) until
   * revoke() or release(). `onLost` is called once, never inside this call, when the lease
   * ends any other way: etcd reports it expired or revoked (revokeLease by anyone else), or
   * keep-alive got no answer from etcd for twice the TTL (etcd unreachable).
   * It is not called after revoke(), release() or close(). Throws UnavailableError when the
   * grant fails (no lease exists then).
   */
  lease(ttlSeconds: number, onLost: (err: Error) => void): Promise<Lease>;
  /**
   * Revokes a lease by id, whoever holds it: its keys are deleted at once and a holder keeping it
   * alive gets onLost. Unknown, expired or already revoked ids are ignored.
   */
  revokeLease(id: string): Promise<void>;
  /** Current store revision (for readiness and bookkeeping). */
  revision(): Promise<number>;
  /** Releases connections, cancels watches and stops keeping leases alive (without revoking them). */
  close(): Promise<void>;
}
