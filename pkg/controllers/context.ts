/**
 * What every controller of a leadership term shares (and a framework factory gets), and the one
 * way they write: a transaction fenced on the leader key.
 */
import type { Logger } from 'pino';
import type { Fence, Store, TxnCompare, TxnOp } from '../store/types';
import type { EventRecorder } from '../client/events';
import type { ClusterInformers } from '../client/informers';

export interface TermContext {
  store: Store;
  /** etcd key prefix. */
  prefix: string;
  informers: ClusterInformers;
  /** The leader key's revision for this term: compared first in every write. */
  fence: Fence;
  events: EventRecorder;
  logger: Logger;
}

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
export async function fencedTxn(ctx: Pick<TermContext, 'store' | 'fence'>, compares: TxnCompare[], ops: TxnOp[]): Promise<number | undefined> {
  const { store, fence } = ctx;
  const revision = await store.txn([{ key: fence.key, modRevision: fence.modRevision }, ...compares], ops);
  if (revision !== undefined) return revision;
  if ((await store.get(fence.key))?.modRevision !== fence.modRevision) throw new NotLeaderError();
  return undefined;
}
