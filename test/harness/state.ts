/** What global-setup leaves on globalThis for global-teardown (both run in jest's parent process). */
import type { EtcdProcess } from '../../pkg/devcluster/etcd';

export const HARNESS_KEY = '__shoalTestHarness';

export interface HarnessState {
  etcd: EtcdProcess;
  dataDir: string;
}
