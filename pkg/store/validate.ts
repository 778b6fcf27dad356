/**
 * Argument checks shared by every Store implementation, so a bad call fails the same way
 * (TypeError, before any I/O) whether it would reach etcd or the memory double.
 */
import type { PutOptions, TxnCompare, TxnOp } from './types';

/** etcd's default --max-txn-ops. */
export const MAX_TXN_OPS = 128;
/**
 * Key and value bytes per transaction that writers batching many objects stay under: etcd
 * refuses a request over its --max-request-bytes (1.5 MiB by default), and would refuse such a
 * batch on every retry.
 */
export const MAX_TXN_BYTES = 1 << 20;

/**
 * Splits `items` in order into runs of at most `maxCount` items and `maxBytes` bytes (`size` of
 * each); an item bigger than `maxBytes` goes alone (etcd then judges it).
 */
export function chunkTxn<T>(items: readonly T[], size: (item: T) => number, maxCount = MAX_TXN_OPS, maxBytes = MAX_TXN_BYTES): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const n = size(item);
    if (cur.length > 0 && (cur.length === maxCount || bytes + n > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(item);
    bytes += n;
  }
  if (cur.length) out.push(cur);
  return out;
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
