/**
 * An in-memory Store with etcd's semantics (revisions, CAS, watch history, compaction,
 * leases) for unit tests and the contract suite. Not for production: nothing is persisted.
 */
import { AlreadyExistsError, CompactedError, ConflictError, LeaseLostError, NotFoundError, StoreError, UnavailableError } from './errors';
import type { KeyValue, Lease, ListResult, PutOptions, Store, TxnCompare, TxnOp, Watch, WatchEvent, WatchOptions } from './types';
import { checkKey, checkKeys, checkLeaseId, checkPutOptions, checkRevision, checkTtl, checkTxn } from './validate';
import { realClock, type Clock, type TimerHandle } from '../util/clock';

interface Entry {
  value: string;
  createRevision: number;
  modRevision: number;
  lease?: string;
}

interface LeaseEntry {
  id: string;
  /** The store clock's time at which it expires. */
  deadline: number;
  ttlMs: number;
  keys: Set<string>;
  /** Revokes the lease at the deadline; keep-alive re-arms it. */
  timer: TimerHandle;
  /** Present while a holder keeps the lease alive (Store.lease). */
  keeper?: { interval: TimerHandle; onLost: (err: Error) => void };
}

type Mutation = { op: 'put'; key: string; value: string; lease?: string } | { op: 'delete'; key: string };

interface MemoryWatch extends Watch {
  prefix: string;
  /** First revision not yet delivered. */
  nextRevision: number;
  opts: WatchOptions;
  ended: boolean;
  scheduled: boolean;
}

/**
 * In-memory Store. Revisions start at 1 and each applied write (or txn) adds one, as in etcd.
 * Lease TTLs and keep-alives run on its clock (a FakeClock in tests: step it past a TTL).
 */
export class MemoryStore implements Store {
  private readonly clock: Clock;

  constructor(options: { clock?: Clock } = {}) {
    this.clock = options.clock ?? realClock;
  }

  private rev = 1;
  private readonly data = new Map<string, Entry>();
  /** Events of every revision from `historyStart` on; history[i] holds revision historyStart + i. */
  private history: WatchEvent[][] = [];
  private historyStart = 2;
  private compactRevision = 0;
  private readonly watches = new Set<MemoryWatch>();
  private readonly leases = new Map<string, LeaseEntry>();
  private nextLeaseId = 1;
  private closed = false;

  /** @inheritdoc */
  async get(key: string): Promise<KeyValue | undefined> {
    this.assertOpen();
    checkKey(key);
    const entry = this.data.get(key);
    return entry && toKeyValue(key, entry);
  }

  /** @inheritdoc */
  async getMany(keys: string[]): Promise<Array<KeyValue | undefined>> {
    this.assertOpen();
    checkKeys(keys);
    return keys.map((key) => {
      const entry = this.data.get(key);
      return entry && toKeyValue(key, entry);
    });
  }

  /** @inheritdoc */
  async countNewer(prefix: string, revision: number): Promise<number> {
    this.assertOpen();
    checkRevision('revision', revision, true);
    let n = 0;
    for (const [k, e] of this.data) if (k.startsWith(prefix) && e.modRevision > revision) n++;
    return n;
  }

  /** @inheritdoc Keys are sorted by their UTF-8 bytes, as etcd sorts them. */
  async list(prefix: string): Promise<ListResult> {
    this.assertOpen();
    const keys = [...this.data.keys()].filter((k) => k.startsWith(prefix));
    keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return { items: keys.map((k) => toKeyValue(k, this.data.get(k)!)), revision: this.rev };
  }

  /** @inheritdoc */
  async create(key: string, value: string, opts: PutOptions = {}): Promise<number> {
    this.assertOpen();
    checkKey(key);
    checkPutOptions(opts);
    if (this.data.has(key)) throw new AlreadyExistsError(key);
    return this.commit([{ op: 'put', key, value, lease: this.leaseFor(opts) }]);
  }

  /** @inheritdoc A put without lease options detaches the key from its lease, as in etcd. */
  async update(key: string, value: string, expectedModRevision: number, opts: PutOptions = {}): Promise<number> {
    this.assertOpen();
    checkKey(key);
    checkRevision('expectedModRevision', expectedModRevision);
    checkPutOptions(opts);
    this.checkModRevision(key, expectedModRevision);
    return this.commit([{ op: 'put', key, value, lease: this.leaseFor(opts) }]);
  }

  /** @inheritdoc Returns the key/value as it was before the delete. */
  async delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    this.assertOpen();
    checkKey(key);
    if (expectedModRevision !== undefined) {
      checkRevision('expectedModRevision', expectedModRevision);
      this.checkModRevision(key, expectedModRevision);
    }
    const entry = this.data.get(key);
    if (!entry) throw new NotFoundError(key);
    const deleted = toKeyValue(key, entry);
    this.commit([{ op: 'delete', key }]);
    return deleted;
  }

  /** @inheritdoc Throws TypeError for more than 128 ops or a key written twice (etcd's rules). */
  async txn(compares: TxnCompare[], ops: TxnOp[]): Promise<number | undefined> {
    this.assertOpen();
    checkTxn(compares, ops);
    if (!compares.every((c) => (this.data.get(c.key)?.modRevision ?? 0) === c.modRevision)) return undefined;
    // Like etcd, leases are checked only for the branch that runs, and before anything is applied.
    for (const op of ops) if (op.op === 'put' && op.leaseId !== undefined) this.leaseEntry(op.leaseId);
    return this.commit(ops.flatMap((op): Mutation[] => {
      if (op.op === 'put') return [{ ...op, lease: op.leaseId }];
      if (op.op === 'delete') return [op];
      return [...this.data.keys()].filter((k) => op.key <= k && k < op.end).sort().map((key) => ({ op: 'delete', key }));
    }));
  }

  /** @inheritdoc Events are delivered on a later microtask, never inside the write call. */
  async watch(prefix: string, opts: WatchOptions): Promise<Watch> {
    this.assertOpen();
    checkRevision('afterRevision', opts.afterRevision, true);
    const after = opts.afterRevision > 0 ? opts.afterRevision : this.rev;
    const watch: MemoryWatch = {
      prefix,
      nextRevision: after + 1,
      opts,
      ended: false,
      scheduled: false,
      cancel: async () => this.endWatch(watch),
    };
    this.watches.add(watch);
    this.schedule(watch); // replays history (or reports compaction) when starting in the past
    return watch;
  }

  /** @inheritdoc The lease expires after `ttlSeconds` of real time, or at expireLeases()/revokeLease(). */
  async grantLease(ttlSeconds: number): Promise<string> {
    this.assertOpen();
    checkTtl(ttlSeconds);
    return this.newLease(ttlSeconds);
  }

  /**
   * @inheritdoc Keep-alive is an unref'd interval per lease firing every TTL/3 (as etcd clients
   * do) that pushes the deadline out by the TTL; it never keeps a process alive.
   */
  async lease(ttlSeconds: number, onLost: (err: Error) => void): Promise<Lease> {
    this.assertOpen();
    checkTtl(ttlSeconds);
    const id = this.newLease(ttlSeconds);
    const entry = this.leases.get(id)!;
    const interval = this.clock.setInterval(() => this.keepAlive(entry), entry.ttlMs / 3).unref();
    entry.keeper = { interval, onLost };
    const stopKeepAlive = () => {
      this.clock.clearInterval(interval);
      if (entry.keeper?.interval === interval) entry.keeper = undefined;
    };
    return {
      id,
      revoke: async () => {
        stopKeepAlive();
        this.dropLease(id);
      },
      release: stopKeepAlive,
    };
  }

  /** @inheritdoc */
  async revokeLease(id: string): Promise<void> {
    this.assertOpen();
    checkLeaseId(id);
    this.dropLease(id);
  }

  /** @inheritdoc */
  async revision(): Promise<number> {
    this.assertOpen();
    return this.rev;
  }

  /** Cancels watches and lease timers (keep-alive included, without onLost); later calls throw UnavailableError. */
  async close(): Promise<void> {
    this.closed = true;
    this.watches.forEach((w) => this.endWatch(w));
    this.leases.forEach((lease) => {
      this.clock.clearTimeout(lease.timer);
      if (lease.keeper) this.clock.clearInterval(lease.keeper.interval);
      lease.keeper = undefined;
    });
  }

  /**
   * Like etcd's compaction: forgets the history before `revision`, so a watch that needs an
   * older revision fails with CompactedError. Compacting an already compacted revision does
   * nothing; a future revision throws StoreError (as etcd does).
   */
  compact(revision: number): void {
    checkRevision('revision', revision);
    if (revision > this.rev) throw new StoreError(`cannot compact revision ${revision}: current revision is ${this.rev}`);
    if (revision <= this.compactRevision) return;
    const dropped = Math.max(0, revision - this.historyStart);
    this.history = this.history.slice(dropped);
    this.historyStart += dropped;
    this.compactRevision = revision;
    this.watches.forEach((w) => this.schedule(w)); // lagging watches learn they were compacted
  }

  /**
   * Revokes every lease whose deadline is at or before `now` (ms); lets tests skip waiting for
   * TTLs, or (with a future `now`) simulate a holder cut off from the store: kept-alive leases
   * expire too and their holders get onLost.
   */
  expireLeases(now: number = this.clock.now()): void {
    [...this.leases].filter(([, l]) => l.deadline <= now).forEach(([id]) => this.dropLease(id));
  }

  /**
   * Deletes the lease and its keys (in one revision, as etcd does); a holder still keeping it
   * alive learns on a later tick, as an etcd client learns from its next keep-alive. Unknown ids
   * are ignored.
   */
  private dropLease(id: string): void {
    const lease = this.leases.get(id);
    if (!lease) return;
    this.clock.clearTimeout(lease.timer);
    this.leases.delete(id);
    if (lease.keeper) {
      this.clock.clearInterval(lease.keeper.interval);
      const { onLost } = lease.keeper;
      lease.keeper = undefined;
      setImmediate(() => onLost(new LeaseLostError(id, 'expired or revoked')));
    }
    if (!this.closed) this.commit([...lease.keys].map((key) => ({ op: 'delete' as const, key })));
  }

  private keepAlive(lease: LeaseEntry): void {
    if (this.closed || !lease.keeper) return;
    lease.deadline = this.clock.now() + lease.ttlMs;
    this.clock.clearTimeout(lease.timer);
    lease.timer = this.leaseTimer(lease.id, lease.ttlMs);
  }

  private checkModRevision(key: string, expected: number): void {
    const entry = this.data.get(key);
    if (!entry) throw new NotFoundError(key);
    if (entry.modRevision !== expected) throw new ConflictError(key, expected, entry.modRevision);
  }

  /** The lease a put attaches to; call only once the write is known to go ahead. */
  private leaseFor(opts: PutOptions): string | undefined {
    if (opts.ttlSeconds !== undefined) return this.newLease(opts.ttlSeconds);
    if (opts.leaseId !== undefined) this.leaseEntry(opts.leaseId);
    return opts.leaseId;
  }

  private newLease(ttlSeconds: number): string {
    const id = String(this.nextLeaseId++);
    const ttlMs = ttlSeconds * 1000;
    this.leases.set(id, { id, deadline: this.clock.now() + ttlMs, ttlMs, keys: new Set(), timer: this.leaseTimer(id, ttlMs) });
    return id;
  }

  /** Revokes the lease after `ttlMs`; unref'd: a pending lease must not keep a test process alive. */
  private leaseTimer(id: string, ttlMs: number): TimerHandle {
    return this.clock.setTimeout(() => this.dropLease(id), ttlMs).unref();
  }

  /** The lease, or the error etcd gives for an unknown or expired one. */
  private leaseEntry(id: string): LeaseEntry {
    const lease = this.leases.get(id);
    if (!lease) throw new StoreError(`lease ${id} not found (expired or revoked)`);
    return lease;
  }

  /** Applies mutations as one revision; a commit that changes nothing does not advance it. */
  private commit(mutations: Mutation[]): number {
    const revision = this.rev + 1;
    const events = mutations.flatMap((m) => this.apply(m, revision));
    if (events.length === 0) return this.rev;
    this.rev = revision;
    this.history.push(events);
    this.watches.forEach((w) => this.schedule(w));
    return revision;
  }

  private apply(m: Mutation, revision: number): WatchEvent[] {
    const prev = this.data.get(m.key);
    if (prev?.lease) this.leases.get(prev.lease)?.keys.delete(m.key);
    if (m.op === 'delete') {
      if (!prev) return [];
      this.data.delete(m.key);
      return [{ type: 'delete', key: m.key, value: '', modRevision: revision, createRevision: 0, prevValue: prev.value }];
    }
    const entry: Entry = { value: m.value, createRevision: prev?.createRevision ?? revision, modRevision: revision };
    if (m.lease !== undefined) {
      entry.lease = m.lease;
      this.leaseEntry(m.lease).keys.add(m.key);
    }
    this.data.set(m.key, entry);
    const event: WatchEvent = { type: 'put', key: m.key, value: m.value, modRevision: revision, createRevision: entry.createRevision };
    if (prev) event.prevValue = prev.value;
    return [event];
  }

  private schedule(watch: MemoryWatch): void {
    if (watch.scheduled || watch.ended) return;
    watch.scheduled = true;
    queueMicrotask(() => {
      watch.scheduled = false;
      this.deliver(watch);
    });
  }

  /** Delivers every revision the watch has not seen, one onEvents call per revision. */
  private deliver(watch: MemoryWatch): void {
    while (!watch.ended && watch.nextRevision <= this.rev) {
      if (watch.nextRevision < this.compactRevision) {
        this.endWatch(watch);
        watch.opts.onError(new CompactedError(watch.nextRevision, this.compactRevision));
        return;
      }
      const events = this.history[watch.nextRevision - this.historyStart].filter((e) => e.key.startsWith(watch.prefix));
      watch.nextRevision++;
      if (events.length > 0) watch.opts.onEvents(events.map(({ prevValue, ...e }) => (watch.opts.prevValue && prevValue !== undefined ? { ...e, prevValue } : e)));
    }
  }

  private endWatch(watch: MemoryWatch): void {
    watch.ended = true;
    this.watches.delete(watch);
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError('memory store is closed');
  }
}

function toKeyValue(key: string, entry: Entry): KeyValue {
  const kv: KeyValue = { key, value: entry.value, modRevision: entry.modRevision, createRevision: entry.createRevision };
  if (entry.lease !== undefined) kv.lease = entry.lease;
  return kv;
}
