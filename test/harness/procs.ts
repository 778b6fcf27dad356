/** Processes a test left behind, found by where they run. */
import { readdirSync, readlinkSync } from 'node:fs';

/**
 * Kills (SIGKILL) every process whose working directory is under `dir`: the task processes of
 * the agents a test ran with their data in `dir`. A task's command line may not say whose it is
 * (`exec busybox httpd ...` replaces the shell that carried the test's mark), its cwd does.
 */
export function killProcessesUnder(dir: string): number {
  let killed = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${entry}/cwd`);
    } catch {
      continue; // gone, or not ours to read
    }
    if (cwd === dir || cwd.startsWith(`${dir}/`)) {
      try {
        process.kill(Number(entry), 'SIGKILL');
        killed++;
      } catch {
        // already gone
      }
    }
  }
  return killed;
}
