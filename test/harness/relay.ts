/**
 * The task status relay alone, for tests that run agents without a controller-manager: agents
 * write reports under their own range and only the leading controller-manager folds them into
 * Tasks, so such a test needs this to see Task status. It leads its own fence (a key of its own),
 * as a controller-manager's term would.
 */
import type { Logger } from 'pino';
import { EventRecorder } from '../../pkg/client/events';
import { clusterInformers } from '../../pkg/client/informers';
import { TaskStatusRelay } from '../../pkg/controllers/taskstatus/relay';
import type { Store } from '../../pkg/store/types';
import { realClock, type Clock } from '../../pkg/util/clock';
import { silentLogger } from '../../pkg/util/log';

export interface RunningRelay {
  stop(): Promise<void>;
}

export async function startTaskStatusRelay(store: Store, prefix: string, o: { logger?: Logger; clock?: Clock } = {}): Promise<RunningRelay> {
  const logger = o.logger ?? silentLogger();
  const clock = o.clock ?? realClock;
  const fenceKey = `${prefix}/leader/test-task-status-relay`;
  const modRevision = (await store.txn([], [{ op: 'put', key: fenceKey, value: 'test' }]))!;
  const informers = clusterInformers(store, prefix, logger, clock);
  await informers.start();
  const relay = new TaskStatusRelay({
    store, prefix, informers, logger, clock,
    fence: { key: fenceKey, modRevision },
    events: new EventRecorder(store, prefix, 'test-relay', logger, clock),
  });
  relay.start();
  return {
    stop: async () => {
      relay.stop();
      await informers.stop();
    },
  };
}
