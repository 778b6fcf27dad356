/**
 * The one way the leader writes: a transaction compared first on the leader key's revision
 * (the fence), so a deposed leader writes nothing.
 */
import type { Fence, Store, TxnCompare, TxnOp } from './types';
import { chunkTxn, FENCED, txnOpCost } from './validate';

/** The fence failed: this term is over, and nothing was written. */
export class NotLeaderError extends Error {
  constructor() {
    super('no longer the leader');
  }
}

/**
 * One transaction compared on the fence and `compares`. Its revision when written; undefined
 * when one of `compares` failed; throws {@link NotLeaderError} when the fence did.
 */
export async function fencedTxn(ctx: { store: Store; fence: Fence }, compares: TxnCompare[], ops: TxnOp[]): Promise<number | undefined> {
  const { store, fence } = ctx;
  const revision = await store.txn([{ key: fence.key, modRevision: fence.modRevision }, ...compares], ops);
  if (revision !== undefined) return revision;
  if ((await store.get(fence.key))?.modRevision !== fence.modRevision) throw new NotLeaderError();
  return undefined;
}

/** Unconditional ops (deletes, puts) in as many fenced transactions as etcd's 128-op limit needs. */
export async function fencedBatches(ctx: { store: Store; fence: Fence }, ops: TxnOp[]): Promise<void> {
  for (const chunk of chunkTxn(ops, txnOpCost, FENCED)) await fencedTxn(ctx, [], chunk);
}
