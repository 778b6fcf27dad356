/** Child processes of end-to-end tests: their output, stopping them, and what they leave behind. */
import { execFile, type ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { promisify } from 'node:util';

/** Keeps the last 200 kB of a process's stdout and stderr in `logs` under `name` (for failure messages). */
export function capture(logs: Map<string, string>, name: string, proc: ChildProcess): void {
  logs.set(name, '');
  const add = (d: Buffer) => logs.set(name, (logs.get(name) + d.toString()).slice(-200_000));
  proc.stdout?.on('data', add);
  proc.stderr?.on('data', add);
}

/** Signals a child and resolves once it exited (at once if it already had). */
export async function stopProc(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  await exited;
}

/** PIDs of processes whose command line has `mark`. */
export async function processesWith(mark: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)('ps', ['-eo', 'pid=,args=']);
  return stdout.split('\n').filter((l) => l.includes(mark) && !l.includes('ps -eo')).map((l) => l.trim().split(/\s+/)[0]!);
}

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
