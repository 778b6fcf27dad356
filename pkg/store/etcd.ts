/**
 * The Store on etcd v3 through the `etcd3` client. This is the one place where etcd3/gRPC
 * errors become typed store errors.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConsecutiveBreaker, circuitBreaker, handleType, handleWhen, noop, wrap } from 'cockatiel';
import { ClientClosedError, Etcd3, EtcdLeaseInvalidError, GRPCUnavailableError, IKeyValue, IRequestOp, ITxnResponse, isRecoverableError } from 'etcd3';
import { KeepAlives } from './etcd-keepalive';
import { Limiter, settlesWithin } from '../util/async';
import { EtcdWatch, recordCompactRevisions } from './etcd-watch';
import { AlreadyExistsError, ConflictError, LeaseLostError, NotFoundError, StoreError, UnavailableError } from './errors';
import type { KeyValue, Lease, ListResult, PutOptions, Store, TxnCompare, TxnOp, Watch, WatchOptions } from './types';
import { checkKey, checkKeys, checkLeaseId, checkPutOptions, checkRevision, checkTtl, checkTxn } from './validate';
import { ignoreIpServernameWarning } from '../util/warnings';

/** Names passed to StoreMetrics.observe. */
export type StoreOperation =
  | 'get'
  | 'getMany'
  | 'countNewer'
  | 'list'
  | 'create'
  | 'update'
  | 'delete'
  | 'txn'
  | 'grantLease'
  | 'revokeLease'
  | 'keepAlive'
  | 'revision'
  | 'compact';

/** Receives the duration of every etcd call (e.g. a Prometheus histogram). */
export interface StoreMetrics {
  observe(operation: string, seconds: number): void;
}

/** TLS towards etcd: the CA that signed its certificate, and a client certificate when etcd asks for one. */
export interface EtcdTls {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Where etcd is and who this component is to it (the flags --etcd-endpoints, --etcd-cacert, ...). */
export interface EtcdConnection {
  /** Client URLs, e.g. ['https://127.0.0.1:2379']. */
  endpoints: string[];
  /** With https:// endpoints. */
  tls?: EtcdTls;
  /** An etcd user (etcd's auth enabled): each component has its own, with its own role. */
  auth?: { username: string; password: string };
}

/** How to connect to etcd. */
export interface EtcdStoreOptions extends EtcdConnection {
  dialTimeoutMs?: number;
  /** Deadline of each request (watches excluded). Default 10 s. */
  requestTimeoutMs?: number;
  metrics?: StoreMetrics;
  /**
   * Writes (create, update, delete, txn) this client has in flight at most; more wait their turn
   * here. A process with many writers on one client (a host of hollow agents) would otherwise
   * queue thousands of proposals in etcd, whose apply then lags by seconds, and etcd answers
   * no lease renewal while its apply lags (every lease on it then expires). @default unlimited
   */
  maxWritesInFlight?: number;
}

/** An existing client; the store does not close it (its owner does). */
export interface EtcdStoreClientOptions {
  client: Etcd3;
  metrics?: StoreMetrics;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** The operations maxWritesInFlight counts. */
const WRITES: ReadonlySet<StoreOperation> = new Set(['create', 'update', 'delete', 'txn']);
/** Keys per range request in list(); keeps each response (and the memory it takes) small. */
const LIST_PAGE_SIZE = 500;
const CLOSE_WATCHES_TIMEOUT_MS = 2_000;

/** Store backed by etcd. Values and keys are UTF-8 strings. */
export class EtcdStore implements Store {
  private readonly client: Etcd3;
  private readonly ownsClient: boolean;
  private readonly metrics?: StoreMetrics;
  private readonly watches = new Set<EtcdWatch>();
  /** Bounds the writes in flight (EtcdStoreOptions.maxWritesInFlight). */
  private readonly writes?: Limiter;
  /** Keeps the leases of lease() alive; close() stops it. */
  private readonly keepAlives: KeepAlives;
  private closed = false;

  /** Connects with `options`, or uses an existing client (which close() then leaves open). */
  constructor(options: EtcdStoreOptions | EtcdStoreClientOptions | Etcd3) {
    if (options instanceof Etcd3) options = { client: options };
    if ('client' in options) {
      this.client = options.client;
      this.ownsClient = false;
    } else {
      this.client = connect(options);
      this.ownsClient = true;
    }
    this.metrics = options.metrics;
    const maxWrites = 'maxWritesInFlight' in options ? options.maxWritesInFlight : undefined;
    if (maxWrites !== undefined) this.writes = new Limiter(maxWrites);
    this.keepAlives = new KeepAlives(this.client, undefined, (seconds) => this.metrics?.observe('keepAlive', seconds));
    recordCompactRevisions(this.client);
  }

  /** @inheritdoc */
  async get(key: string): Promise<KeyValue | undefined> {
    checkKey(key);
    const res = await this.call('get', () => this.client.kv.range({ key: bytes(key) }));
    return res.kvs.length > 0 ? toKeyValue(res.kvs[0]) : undefined;
  }

  /** @inheritdoc A read-only txn: etcd serves it at one revision without a raft proposal. */
  async getMany(keys: string[]): Promise<Array<KeyValue | undefined>> {
    checkKeys(keys);
    if (keys.length === 0) return [];
    const res = await this.call('getMany', () => this.client.kv.txn({ success: keys.map((key) => ({ request_range: { key: bytes(key) } })) }));
    return res.responses.map((r) => {
      const kvs = r.response_range?.kvs ?? [];
      return kvs.length > 0 ? toKeyValue(kvs[0]) : undefined;
    });
  }

  /**
   * @inheritdoc A keys-only range with min_mod_revision. etcd applies that filter to the keys it
   * returns, after counting and limiting (so neither count_only nor limit can be used): it reads
   * the whole prefix and sends back only the newer keys.
   */
  async countNewer(prefix: string, revision: number): Promise<number> {
    checkRevision('revision', revision, true);
    const { start, end } = prefixRange(prefix);
    const res = await this.call('countNewer', () => this.client.kv.range({ key: start, range_end: end, keys_only: true, min_mod_revision: String(revision + 1) }));
    return res.kvs.length;
  }

  /** Pages through the prefix, every page read at the first page's revision (one consistent snapshot). */
  async list(prefix: string): Promise<ListResult> {
    const { start, end } = prefixRange(prefix);
    return this.call('list', async () => {
      const items: KeyValue[] = [];
      let revision: number | undefined;
      for (let from = start; ; ) {
        const res = await this.client.kv.range({ key: from, range_end: end, limit: LIST_PAGE_SIZE, revision });
        revision ??= Number(res.header.revision);
        items.push(...res.kvs.map(toKeyValue));
        if (!res.more || res.kvs.length === 0) return { items, revision };
        from = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]); // the next key after the last
      }
    });
  }

  /** @inheritdoc */
  async create(key: string, value: string, opts: PutOptions = {}): Promise<number> {
    checkKey(key);
    checkPutOptions(opts);
    const lease = await this.leaseFor(opts);
    const res = await this.call('create', () =>
      this.client.kv.txn({ compare: [modRevisionIs(key, 0)], success: [putOp(key, value, lease)] }),
    );
    if (!res.succeeded) throw new AlreadyExistsError(key);
    return Number(res.header.revision);
  }

  /** @inheritdoc A put without lease options detaches the key from its lease, as in etcd. */
  async update(key: string, value: string, expectedModRevision: number, opts: PutOptions = {}): Promise<number> {
    checkKey(key);
    checkRevision('expectedModRevision', expectedModRevision);
    checkPutOptions(opts);
    const lease = await this.leaseFor(opts);
    const res = await this.call('update', () => this.compareAndSwap(key, expectedModRevision, putOp(key, value, lease)));
    if (!res.succeeded) throw casFailure(key, expectedModRevision, res);
    return Number(res.header.revision);
  }

  /** @inheritdoc Returns the key/value as it was before the delete. */
  async delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    checkKey(key);
    const op: IRequestOp = { request_delete_range: { key: bytes(key), prev_kv: true } };
    if (expectedModRevision === undefined) {
      const res = await this.call('delete', () => this.client.kv.deleteRange(op.request_delete_range!));
      if (res.prev_kvs.length === 0) throw new NotFoundError(key);
      return toKeyValue(res.prev_kvs[0]);
    }
    checkRevision('expectedModRevision', expectedModRevision);
    const res = await this.call('delete', () => this.compareAndSwap(key, expectedModRevision, op));
    if (!res.succeeded) throw casFailure(key, expectedModRevision, res);
    return toKeyValue(res.responses[0].response_delete_range.prev_kvs[0]);
  }

  /** @inheritdoc Throws TypeError for more than 128 ops or a key written twice (etcd's rules). */
  async txn(compares: TxnCompare[], ops: TxnOp[]): Promise<number | undefined> {
    checkTxn(compares, ops);
    // Puts of one value (the binder writes each Task twice: its key and its assignment) share one encoding.
    const encoded = new Map<string, Buffer>();
    const put = (op: TxnOp & { op: 'put' }): IRequestOp => {
      let value = encoded.get(op.value);
      if (!value) encoded.set(op.value, (value = bytes(op.value)));
      return { request_put: { key: bytes(op.key), value, lease: op.leaseId } };
    };
    const res = await this.call('txn', () =>
      this.client.kv.txn({
        compare: compares.map((c) => modRevisionIs(c.key, c.modRevision)),
        success: ops.map((op) => (op.op === 'put' ? put(op) : op.op === 'delete' ? deleteOp(op.key) : deleteRangeOp(op.key, op.end))),
      }),
    );
    return res.succeeded ? Number(res.header.revision) : undefined;
  }

  /**
   * @inheritdoc Resolves without waiting for etcd to register the watcher: the start revision is
   * explicit ("from now" is first resolved to the current revision), so no later write is missed.
   * Transient disconnects are retried by etcd3 and resume where delivery stopped.
   */
  async watch(prefix: string, opts: WatchOptions): Promise<Watch> {
    checkRevision('afterRevision', opts.afterRevision, true);
    const after = opts.afterRevision > 0 ? opts.afterRevision : await this.revision();
    this.assertOpen();
    const watch = new EtcdWatch(this.client, prefix, after + 1, opts, (w) => this.watches.delete(w));
    this.watches.add(watch);
    return watch;
  }

  /** @inheritdoc The id is a decimal string. etcd raises TTLs below its minimum (2 s by default). */
  async grantLease(ttlSeconds: number): Promise<string> {
    checkTtl(ttlSeconds);
    const res = await this.call('grantLease', () => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    return String(res.ID);
  }

  /**
   * @inheritdoc Every lease of this store is renewed over one LeaseKeepAlive stream (see
   * ./etcd-keepalive.ts), every TTL/3.
   */
  async lease(ttlSeconds: number, onLost: (err: Error) => void): Promise<Lease> {
    checkTtl(ttlSeconds);
    this.assertOpen();
    const id = await this.grantLease(ttlSeconds);
    let ended = false;
    const end = () => {
      ended = true;
      this.keepAlives.remove(id);
    };
    this.keepAlives.add(id, ttlSeconds, (why) => {
      if (ended) return;
      ended = true;
      setImmediate(() => onLost(new LeaseLostError(id, why)));
    });
    return {
      id,
      revoke: async () => {
        end();
        await this.revokeLease(id);
      },
      release: end,
    };
  }

  /** @inheritdoc */
  async revokeLease(id: string): Promise<void> {
    checkLeaseId(id);
    await this.call('revokeLease', async () => {
      try {
        await this.client.leaseClient.leaseRevoke({ ID: id });
      } catch (err) {
        if (!(err instanceof EtcdLeaseInvalidError)) throw err; // already gone: nothing to do
      }
    });
  }

  /** @inheritdoc */
  async revision(): Promise<number> {
    const res = await this.call('revision', () => this.client.kv.range({ key: Buffer.from([0]), count_only: true }));
    return Number(res.header.revision);
  }

  /**
   * Compacts etcd's history before `revision` (for tests and tools; etcd also compacts on its own).
   * Waits until the compaction is applied, so a watch started afterwards sees it. This affects every
   * client of the etcd, not just this store. Compacting an already compacted revision does nothing.
   */
  async compact(revision: number): Promise<void> {
    checkRevision('revision', revision);
    try {
      await this.call('compact', () => this.client.kv.compact({ revision, physical: true }));
    } catch (err) {
      if (!(err instanceof StoreError && /required revision has been compacted/.test(err.message))) throw err;
    }
  }

  /**
   * Stops keeping leases alive (without revoking them: their keys expire with their TTL), cancels
   * every watch (waiting at most 2 s for etcd), then closes the client if the store created it.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.keepAlives.close();
    await settlesWithin(Promise.all([...this.watches].map((w) => w.cancel())), CLOSE_WATCHES_TIMEOUT_MS);
    if (this.ownsClient) this.client.close();
  }

  /** One txn: apply `op` if the key's mod revision is `expected`, else read the key (to tell why). */
  private compareAndSwap(key: string, expected: number, op: IRequestOp): Promise<ITxnResponse> {
    return this.client.kv.txn({
      compare: [modRevisionIs(key, expected)],
      success: [op],
      failure: [{ request_range: { key: bytes(key) } }],
    });
  }

  private async leaseFor(opts: PutOptions): Promise<string | undefined> {
    return opts.ttlSeconds !== undefined ? this.grantLease(opts.ttlSeconds) : opts.leaseId;
  }

  /** Runs one etcd call: timing for metrics, and foreign errors turned into store errors. */
  private async call<T>(operation: StoreOperation, fn: () => Promise<T>): Promise<T> {
    this.assertOpen();
    if (this.writes && WRITES.has(operation)) return this.writes.run(() => this.timed(operation, fn));
    return this.timed(operation, fn);
  }

  private async timed<T>(operation: StoreOperation, fn: () => Promise<T>): Promise<T> {
    const started = process.hrtime.bigint();
    try {
      for (let attempt = 1, authRaces = 0; ; attempt++) {
        try {
          return await fn();
        } catch (err) {
          // Users or roles changed while the request was on its way: etcd applied nothing, and
          // etcd's Go client retries it too (etcd3 does not). Only a burst of changes repeats it.
          if (isAuthOldRevision(err) && ++authRaces < AUTH_RACE_ATTEMPTS) {
            attempt--;
            await sleep(10 * authRaces);
            continue;
          }
          if (attempt >= CALL_ATTEMPTS || !isSafeToRetry(operation, err)) throw err;
          await sleep(RETRY_DELAY_MS * attempt);
        }
      }
    } catch (err) {
      throw toStoreError(err, operation);
    } finally {
      this.metrics?.observe(operation, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError('etcd store is closed');
  }
}

function connect(options: EtcdStoreOptions): Etcd3 {
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  if (options.tls) ignoreIpServernameWarning();
  return new Etcd3({
    hosts: options.endpoints,
    auth: options.auth,
    ...(options.tls && { credentials: { rootCertificate: options.tls.ca, certChain: options.tls.cert, privateKey: options.tls.key } }),
    dialTimeout: options.dialTimeoutMs,
    // gRPC's default receive limit is 4 MiB, but etcd sends a lagging watcher its whole backlog
    // (up to 1,000 revisions) in one response. Over the limit, grpc-js ends the stream with
    // RESOURCE_EXHAUSTED and etcd3 resumes at the same revision, forever and without an error:
    // the watch went silent. etcd's own Go client has no limit either (math.MaxInt32).
    grpcOptions: { 'grpc.max_receive_message_length': -1 },
    faultHandling: faultHandling(options.endpoints.length),
    // Without a deadline a unary call to a hung etcd waits forever; streams (watches) must not expire.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
  });
}

/**
 * etcd3's defaults count every "recoverable" error, a missed deadline and a cancelled stream
 * included, towards a per-host circuit breaker that opens after 3 in a row and then fails every
 * call of the process for 5 s; and they retry a call that missed its deadline, whose write etcd
 * may well have applied, 3 times. Under load one slow call so became a 5 s outage of the whole
 * process (at 5,000 hollow agents: every lease grant and renewal stream failing at once, and a
 * cascade of expired leases). Here only UNAVAILABLE (etcd not reachable) opens a host's breaker,
 * which exists only when there is another host to try, and etcd3 retries nothing: EtcdStore
 * retries what is safe to retry (isSafeToRetry).
 *
 * A host whose connection fails (a member down: "No connection established") opens its breaker
 * at once. etcd3 sends each call to one host picked at random and moves to the next only when
 * that host's breaker is open; behind a 3-failure breaker one dead member of three failed about
 * one write in 27 even after EtcdStore's 3 attempts (tested in test/integration/etcd-cluster).
 */
function faultHandling(hosts: number): NonNullable<ConstructorParameters<typeof Etcd3>[0]>['faultHandling'] {
  const notConnected = handleWhen((err) => err instanceof GRPCUnavailableError && NOT_CONNECTED.test(err.message));
  return {
    host: () => (hosts > 1
      ? wrap(
        circuitBreaker(notConnected, { halfOpenAfter: 2_000, breaker: new ConsecutiveBreaker(1) }),
        circuitBreaker(handleType(GRPCUnavailableError), { halfOpenAfter: 2_000, breaker: new ConsecutiveBreaker(3) }),
      )
      : noop),
    global: noop,
  };
}

/** grpc-js's UNAVAILABLE for a call that never left this process: no connection to the host. */
const NOT_CONNECTED = /No connection established/;

/** Attempts of one store call when a retry is safe, and the pause before the n-th retry (× n). */
const CALL_ATTEMPTS = 3;
/** Sends of one request refused for an auth change racing it (see isAuthOldRevision). */
const AUTH_RACE_ATTEMPTS = 8;
const RETRY_DELAY_MS = 100;

/**
 * Whether a failed call may be sent again, as etcd's Go client decides: reads (and lease grants
 * and revokes) on any UNAVAILABLE; writes only when the request never left this process (no
 * connection). A write that etcd timed out ("etcdserver: request timed out", also UNAVAILABLE) or
 * whose connection dropped may have been applied: sent again, its compare would fail and report a
 * conflict for what was in fact our own write.
 *
 * Not even a read is sent again after etcd timed it out: that takes etcd 7 s (no quorum: its
 * members cannot agree), and 3 attempts made a caller wait 21 s for the answer "unavailable".
 */
export function isSafeToRetry(operation: StoreOperation, err: unknown): boolean {
  if (!(err instanceof GRPCUnavailableError) || SERVER_TIMED_OUT.test(err.message)) return false;
  return !WRITES.has(operation) || NOT_CONNECTED.test(err.message);
}

/**
 * etcd refused a request because users or roles changed between its arrival and its apply
 * ("revision of auth store is old": `shoal node add`, or a dev cluster making its agents' users
 * while its controller-manager campaigned). Nothing was applied; the request may be sent again.
 */
function isAuthOldRevision(err: unknown): boolean {
  return err instanceof Error && err.message.includes('etcdserver: revision of auth store is old');
}

/** etcd gave up on the request (after 5 s + 2 election timeouts): no quorum, or one too slow. */
const SERVER_TIMED_OUT = /etcdserver: request timed out/;

/**
 * gRPC errors that mean "etcd is not reachable now" (etcd3 marks them recoverable; an open
 * circuit breaker or a closed client mean the same) become UnavailableError; any other foreign
 * error becomes a StoreError carrying it as `cause`.
 */
function toStoreError(err: unknown, operation: string): Error {
  if (err instanceof StoreError) return err;
  const error = err instanceof Error ? err : new Error(String(err));
  const message = `etcd ${operation}: ${error.message}`;
  const brokenCircuit = 'isBrokenCircuitError' in error; // cockatiel's marker; etcd3 does not re-export the class
  if (isRecoverableError(error) || brokenCircuit || error instanceof ClientClosedError) {
    return new UnavailableError(message, error);
  }
  return Object.assign(new StoreError(message), { cause: error });
}

/** Tells NotFound from Conflict using the key read by the txn's failure branch. */
function casFailure(key: string, expected: number, res: ITxnResponse): StoreError {
  const current = res.responses[0]?.response_range?.kvs[0];
  return current ? new ConflictError(key, expected, Number(current.mod_revision)) : new NotFoundError(key);
}

function toKeyValue(kv: IKeyValue): KeyValue {
  const out: KeyValue = {
    key: kv.key.toString(),
    value: kv.value.toString(),
    modRevision: Number(kv.mod_revision),
    createRevision: Number(kv.create_revision),
  };
  if (kv.lease && kv.lease !== '0') out.lease = kv.lease;
  return out;
}

function bytes(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

/** Compare: the key's mod revision equals `revision` (0 = absent). */
function modRevisionIs(key: string, revision: number) {
  return { key: bytes(key), target: 'Mod', result: 'Equal', mod_revision: revision } as const;
}

function putOp(key: string, value: string, lease: string | undefined): IRequestOp {
  return { request_put: { key: bytes(key), value: bytes(value), lease } };
}

function deleteOp(key: string): IRequestOp {
  return { request_delete_range: { key: bytes(key) } };
}

function deleteRangeOp(key: string, end: string): IRequestOp {
  return { request_delete_range: { key: bytes(key), range_end: bytes(end) } };
}

/** The etcd key range of a prefix: [prefix, prefix with its last byte incremented). '' = every key. */
export function prefixRange(prefix: string): { start: Buffer; end: Buffer } {
  const start = bytes(prefix);
  for (let i = start.length - 1; i >= 0; i--) {
    if (start[i] < 0xff) {
      const end = Buffer.from(start.subarray(0, i + 1));
      end[i]++;
      return { start, end };
    }
  }
  // Empty (or all-0xff) prefix: etcd reads "\0" to "\0" as "every key".
  return { start: prefix === '' ? Buffer.from([0]) : start, end: Buffer.from([0]) };
}
