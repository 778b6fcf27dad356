/**
 * What every controller of a leadership term shares (and a framework factory gets), and the one
 * way they write: a transaction fenced on the leader key.
 */
import type { Logger } from 'pino';
import type { Fence, Store } from '../store/types';
import type { EventRecorder } from '../client/events';
import type { ClusterInformers } from '../client/informers';
import type { FrameworkRegistry } from '../master/framework';
import type { Clock } from '../util/clock';

export interface TermContext {
  store: Store;
  /** etcd key prefix. */
  prefix: string;
  informers: ClusterInformers;
  /** The leader key's revision for this term: compared first in every write. */
  fence: Fence;
  events: EventRecorder;
  logger: Logger;
  /** The master's registry: every framework (built-in or not) registers and unregisters here. */
  frameworks: FrameworkRegistry;
  clock: Clock;
}

export { fencedBatches, fencedTxn, NotLeaderError } from '../store/fenced';
