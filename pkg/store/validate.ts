/**
 * Argument checks shared by every Store implementation, so a bad call fails the same way
 * (TypeError, before any I/O) whether it would reach etcd or the memory double.
 */
import type { PutOptions, TxnCompare, TxnOp } from './types';

/** etcd's default --max-txn-ops: the most ops (puts, deletes, ranges) of one txn branch. */
export const MAX_TXN_OPS = 128;
/** etcd applies --max-txn-ops to compares too: at most 128 of them per txn. */
export const MAX_TXN_COMPARES = MAX_TXN_OPS;
/**
 * Key and value bytes per transaction that writers batching many objects stay under: etcd
 * refuses a request over its --max-request-bytes (1.5 MiB by default), and would refuse such a
 * batch on every retry.
 */
export const MAX_TXN_BYTES = 1 << 20;

/** What one item adds to a transaction (see {@link chunkTxn}). */
export interface TxnCost {
  /** Ops it writes (puts, deletes). @default 1 */
  ops?: number;
  /** Compares of its own, e.g. on its key's mod revision. @default 0 */
  compares?: number;
  /** Keys compared once per transaction however many of its items need them, e.g. an agent's lease key. */
  sharedCompares?: readonly string[];
  /** Key and value bytes it sends. @default 0 */
  bytes?: number;
}

/** Limits of one transaction of {@link chunkTxn}, and what every transaction carries besides its items. */
export interface TxnLimits {
  /** @default MAX_TXN_OPS */
  maxOps?: number;
  /** @default MAX_TXN_COMPARES */
  maxCompares?: number;
  /** @default MAX_TXN_BYTES */
  maxBytes?: number;
  /** In every transaction besides the items, e.g. the leader fence `{ compares: 1 }` (here `ops` defaults to 0). */
  reserved?: TxnCost;
}

/** What every fenced transaction carries besides its items: the compare on the leader key. */
export const FENCED: TxnLimits = Object.freeze({ reserved: Object.freeze({ ops: 0, compares: 1 }) });

/** The cost of one txn op of its own: one op, its key and value bytes. */
export function txnOpCost(op: TxnOp): TxnCost {
  return { ops: 1, bytes: op.key.length + (op.op === 'put' ? op.value.length : op.op === 'deleteRange' ? op.end.length : 0) };
}

/**
 * The one way to batch many writes under etcd's limits: splits `items` in order into runs that
 * each fit one transaction — at most `maxOps` ops, `maxCompares` compares (shared compares
 * counted once per run) and `maxBytes` bytes, counting `reserved` in every run. `cost` gives an
 * item's {@link TxnCost}, or just its bytes (one op, no compare). An item over a limit on its
 * own goes alone (etcd then judges it).
 *
 * The older form `chunkTxn(items, bytes, maxCount, maxBytes)` (each item one op) still works.
 */
export function chunkTxn<T>(items: readonly T[], cost: (item: T) => number | TxnCost, limits?: TxnLimits): T[][];
export function chunkTxn<T>(items: readonly T[], cost: (item: T) => number | TxnCost, maxCount?: number, maxBytes?: number): T[][];
export function chunkTxn<T>(items: readonly T[], cost: (item: T) => number | TxnCost, limits: TxnLimits | number = {}, maxBytes?: number): T[][] {
  const l = typeof limits === 'number' ? { maxOps: limits, maxBytes } : limits;
  const maxOps = l.maxOps ?? MAX_TXN_OPS;
  const maxCompares = l.maxCompares ?? MAX_TXN_COMPARES;
  const maxSize = l.maxBytes ?? MAX_TXN_BYTES;
  const base = { ops: l.reserved?.ops ?? 0, compares: l.reserved?.compares ?? 0, bytes: l.reserved?.bytes ?? 0, shared: l.reserved?.sharedCompares ?? [] };
  const out: T[][] = [];
  let cur: T[] = [];
  let shared = new Set(base.shared);
  let ops = base.ops;
  let compares = base.compares + shared.size;
  let bytes = base.bytes;
  for (const item of items) {
    const c = costOf(cost(item));
    let fresh = new Set(c.shared.filter((k) => !shared.has(k)));
    const fits = ops + c.ops <= maxOps && compares + c.compares + fresh.size <= maxCompares && bytes + c.bytes <= maxSize;
    if (cur.length > 0 && !fits) {
      out.push(cur);
      cur = [];
      shared = new Set(base.shared);
      fresh = new Set(c.shared.filter((k) => !shared.has(k)));
      ops = base.ops;
      compares = base.compares + shared.size;
      bytes = base.bytes;
    }
    cur.push(item);
    for (const k of fresh) shared.add(k);
    ops += c.ops;
    compares += c.compares + fresh.size;
    bytes += c.bytes;
  }
  if (cur.length) out.push(cur);
  return out;
}

function costOf(c: number | TxnCost): { ops: number; compares: number; bytes: number; shared: readonly string[] } {
  if (typeof c === 'number') return { ops: 1, compares: 0, bytes: c, shared: [] };
  return { ops: c.ops ?? 1, compares: c.compares ?? 0, bytes: c.bytes ?? 0, shared: c.sharedCompares ?? [] };
}

export function checkKey(key: string): void {
  // etcd rejects the empty key ("key is not provided").
  if (typeof key !== 'string' || key === '') throw new TypeError('store key must be a non-empty string');
}

/** Keys of one getMany: each a key, at most 128 (one txn of ranges). */
export function checkKeys(keys: string[]): void {
  if (keys.length > MAX_TXN_OPS) throw new TypeError(`getMany reads at most ${MAX_TXN_OPS} keys, got ${keys.length}`);
  keys.forEach(checkKey);
}

/** A revision given by a caller: a positive integer (or 0 when `allowZero`). */
export function checkRevision(name: string, revision: number, allowZero = false): void {
  const min = allowZero ? 0 : 1;
  if (!Number.isSafeInteger(revision) || revision < min) {
    throw new TypeError(`${name} must be an integer >= ${min}, got ${revision}`);
  }
}

export function checkTtl(ttlSeconds: number): void {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new TypeError(`lease TTL must be a whole number of seconds >= 1, got ${ttlSeconds}`);
  }
}

/** A lease id as etcd gives them: a decimal string. */
export function checkLeaseId(id: string): void {
  if (typeof id !== 'string' || !/^\d+$/.test(id)) throw new TypeError(`lease id must be a decimal string, got ${JSON.stringify(id)}`);
}

export function checkPutOptions(opts: PutOptions): void {
  if (opts.ttlSeconds !== undefined && opts.leaseId !== undefined) {
    throw new TypeError('give ttlSeconds or leaseId, not both');
  }
  if (opts.ttlSeconds !== undefined) checkTtl(opts.ttlSeconds);
}

/** etcd's limits on one txn: at most 128 ops, and no key written twice. */
export function checkTxn(compares: TxnCompare[], ops: TxnOp[]): void {
  if (ops.length > MAX_TXN_OPS) {
    throw new TypeError(`a txn may hold at most ${MAX_TXN_OPS} ops, got ${ops.length}`);
  }
  compares.forEach((c) => {
    checkKey(c.key);
    checkRevision('compare modRevision', c.modRevision, true);
  });
  const written = new Set<string>();
  const ranges: Array<{ key: string; end: string }> = [];
  for (const op of ops) {
    checkKey(op.key);
    if (op.op === 'deleteRange') {
      checkKey(op.end);
      if (op.end <= op.key) throw new TypeError(`txn deletes an empty range [${op.key}, ${op.end})`);
      ranges.push(op);
      continue;
    }
    if (written.has(op.key)) throw new TypeError(`txn writes key ${op.key} twice`);
    written.add(op.key);
  }
  for (const op of ops) {
    const range = op.op === 'put' && ranges.find((r) => r.key <= op.key && op.key < r.end);
    if (range) throw new TypeError(`txn puts key ${op.key} inside the range [${range.key}, ${range.end}) it deletes`);
  }
}
