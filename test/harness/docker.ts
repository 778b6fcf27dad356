/** Docker for tests: whether a daemon answers (hack/start-dockerd.sh starts one where it can). */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/**
 * Undefined when a daemon answers (one is started if none does), else why not. Synchronous so a
 * suite can choose `describe.skip` at load time and print the reason.
 */
export function dockerUnavailableReason(): string | undefined {
  const r = spawnSync(path.join(ROOT, 'hack/start-dockerd.sh'), { encoding: 'utf8', timeout: 45_000 });
  if (r.status === 0) return undefined;
  return (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').pop();
}
