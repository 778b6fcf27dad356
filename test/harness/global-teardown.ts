/** Jest global teardown: stops the etcd started by global-setup and removes its data dir. */
import * as fs from 'node:fs/promises';
import { HARNESS_KEY, HarnessState } from './state';

export default async function globalTeardown(): Promise<void> {
  const state = (globalThis as Record<string, unknown>)[HARNESS_KEY] as HarnessState | undefined;
  if (!state) return; // an external etcd (SHOAL_TEST_ETCD preset) is not ours to stop
  delete (globalThis as Record<string, unknown>)[HARNESS_KEY];
  await state.etcd.stop();
  await fs.rm(state.dataDir, { recursive: true, force: true });
}
