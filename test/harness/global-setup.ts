/**
 * Jest global setup: starts ONE real etcd for the whole run and publishes its endpoint in
 * SHOAL_TEST_ETCD (workers inherit the environment). Tests isolate themselves by key prefix
 * (see uniquePrefix()). A failure to start etcd fails the run: tests must never pass without it.
 * If SHOAL_TEST_ETCD is already set, that etcd is used and nothing is started.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEtcd } from '../../pkg/devcluster/etcd';
import { HARNESS_KEY, HarnessState } from './state';

export default async function globalSetup(): Promise<void> {
  if (process.env.SHOAL_TEST_ETCD) return;
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-test-etcd-'));
  try {
    const etcd = await startEtcd({ dataDir });
    process.env.SHOAL_TEST_ETCD = etcd.endpoint;
    const state: HarnessState = { etcd, dataDir };
    (globalThis as Record<string, unknown>)[HARNESS_KEY] = state;
  } catch (err) {
    await fs.rm(dataDir, { recursive: true, force: true });
    throw new Error(`test harness could not start etcd: ${(err as Error).message}`);
  }
}
