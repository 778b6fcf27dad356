/** Child processes of end-to-end tests: their output, stopping them, and what they leave behind. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
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

/** The component processes of one end-to-end test, by name: started with one env, output kept, stopped together. */
export class ProcGroup {
  readonly procs = new Map<string, ChildProcess>();
  readonly output = new Map<string, string>();

  /** `env()`: read at each start (tests set it in beforeAll). */
  constructor(private readonly env: () => NodeJS.ProcessEnv) {}

  /** `node bin ...args`, its output captured under `name`. */
  start(name: string, bin: string, args: string[]): ChildProcess {
    const proc = spawn('node', [bin, ...args], { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    capture(this.output, name, proc);
    this.procs.set(name, proc);
    return proc;
  }

  alive(name: string): boolean {
    const p = this.procs.get(name);
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** The end of each process's output, for a failure message. */
  tails(chars = 2500): string {
    return [...this.output].map(([name, text]) => `--- ${name}:\n${text.slice(-chars)}`).join('\n');
  }

  /** SIGTERM to each, the last started first; resolves once all exited. */
  async stopAll(): Promise<void> {
    for (const proc of [...this.procs.values()].reverse()) await stopProc(proc);
  }
}
