/**
 * The process runtime (a Mesos command task without a container): runs a task's `cmd` with
 * `/bin/sh -c` in a session and process group of its own, in a work directory per task,
 * `<dataDir>/tasks/<namespace>/<name>-<uid8>/`, with an environment made only of taskEnv() plus
 * a minimal PATH and HOME (nothing of the agent's own environment).
 *
 * Work directory: `stdout`, `stderr` (the task's output, appended to through file descriptors
 * the task owns, so it keeps writing while no agent runs), `task.json` (a TaskRecord: what a
 * restarted agent needs to adopt, stop, exec in and read logs of the task) and `exitcode`.
 *
 * Exit codes survive the agent. A process the agent did not spawn (adopted after a restart)
 * cannot be waited for, so every task runs under a wrapper shell, the leader of its group:
 *
 *     trap : HUP INT TERM; /bin/sh -c "$cmd"; code=$?; echo "$code" > exitcode; exit "$code"
 *
 * - The user's command runs in its own `/bin/sh -c`, as asked, so its shell semantics are
 *   untouched; the wrapper's traps are handlers (not ignores), which exec() resets to the
 *   default in children: the command still dies of SIGTERM/SIGINT/SIGHUP as usual.
 * - Because the wrapper traps those signals it outlives its command by a few instructions when
 *   the whole group is signalled, and records the command's code (128+n when a signal killed
 *   it, as sh reports it), then exits with that same code.
 * - The wrapper does not `exec`: it stays the group leader (pgid = the reported pid), so a kill
 *   of the group reaches the wrapper, the command and every child it spawned.
 * - Only SIGKILL of the wrapper itself (a group SIGKILL, an OOM kill, a reboot) leaves no
 *   `exitcode`; an adopted task that ends that way is reported with UNKNOWN_EXIT_CODE. A task the
 *   agent spawned itself has its code from the child's 'exit' event (a signal → 128+n).
 *
 * Identity: a pid alone is not proof; the kernel recycles them. task.json records the process's
 * start time (`/proc/<pid>/stat` field 22) and the boot id, so a recycled pid (or a dir from
 * before a reboot) is never adopted, signalled or reported running. A zombie counts as ended.
 *
 * When a task ends by itself, what is left of its group (children it put in the background) is
 * SIGKILLed: a finished task leaves nothing behind that would hold its ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { nameKey } from '../api/keys';
import { settlesWithin } from '../util/async';
import { taskEnv, type NodeContext } from './env';
import type { ExecResult, LogOptions, Runtime, RuntimeTask, RuntimeTaskRef, StartedTask } from './types';

/** The PATH a task gets unless its spec sets one. */
export const PROCESS_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Reported when an adopted task ended without recording its code (its wrapper was SIGKILLed). */
export const UNKNOWN_EXIT_CODE = -1;
/** exec()'s exit code when the command ran out of time (GNU timeout's convention). */
export const EXEC_TIMEOUT_EXIT_CODE = 124;

const SHELL = '/bin/sh';
/** $1: the task's cmd, $2: where its exit code goes. See the header for why it looks like this. */
const WRAPPER = 'trap : HUP INT TERM\n/bin/sh -c "$1"\ncode=$?\necho "$code" > "$2"\nexit "$code"';
const RECORD = 'task.json';
const EXIT_CODE = 'exitcode';
const DEFAULT_POLL_MS = 1000;
const GROUP_POLL_MS = 50;
/** How long a SIGKILLed group may take to vanish before stop() gives up waiting (and says so). */
const KILL_WAIT_MS = 5000;
const FOLLOW_POLL_MS = 200;
const READ_CHUNK = 64 * 1024;
/** exec() keeps this much output, like Kubernetes' exec probes. */
const EXEC_OUTPUT_LIMIT = 10 * 1024;
/** What a namespace or name must look like to become a path segment (no `/`, `.`, `..`). */
const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const HAS_PROC = existsSync('/proc/self/stat');

export interface ProcessRuntimeOptions {
  /** The agent's data directory; tasks live under `<dataDir>/tasks/`. */
  dataDir: string;
  /** What tasks see of their node (HOST, SHOAL_NODE). */
  node: NodeContext;
  logger: Logger;
  /** How often adopted tasks (no child handle) are checked for their exit. @default 1000 */
  pollIntervalMs?: number;
}

/** What `task.json` holds. */
export interface TaskRecord {
  namespace: string;
  name: string;
  uid: string;
  /** The wrapper shell's pid, which is also the task's process group id. */
  pid: number;
  startedAt: string;
  /** `/proc/<pid>/stat` start time (clock ticks since boot); a recycled pid has another one. */
  startTime?: string;
  /** `/proc/sys/kernel/random/boot_id` at start; a pid from before a reboot is not ours. */
  bootId?: string;
  cmd: string;
  /** The task's environment, for exec() after an agent restart (the file is mode 0600). */
  env: Record<string, string>;
}

/** What inspect() knows of a task. */
export interface ProcessTaskInfo {
  namespace: string;
  name: string;
  uid: string;
  pid: number;
  dir: string;
  startedAt: string;
  running: boolean;
  /** Once ended, when the task recorded it; absent when it is unknown (see UNKNOWN_EXIT_CODE). */
  exitCode?: number;
}

/** Options of logs(): `both` reads stdout, then stderr (two files keep no order between them). */
export type ProcessLogOptions = LogOptions;

/** The task has no work directory here (never started on this node, or removed). */
export class TaskNotFoundError extends Error {
  constructor(namespace: string, name: string) {
    super(`task ${namespace}/${name} not found in the process runtime`);
    this.name = 'TaskNotFoundError';
  }
}

/** start() of a task that already ran here and ended: a task never runs twice. */
export class TaskAlreadyRanError extends Error {
  constructor(
    readonly namespace: string,
    readonly taskName: string,
    /** undefined when the code is unknown. */
    readonly exitCode: number | undefined,
  ) {
    const how = exitCode === undefined ? 'with an unknown exit code' : `with exit code ${exitCode}`;
    super(`task ${namespace}/${taskName} already ran on this node and exited ${how}`);
    this.name = 'TaskAlreadyRanError';
  }
}

/** A task this runtime watches: started here, or adopted. */
interface Tracked {
  record: TaskRecord;
  dir: string;
  onExit: (code: number) => void;
  /** Set when this runtime spawned it (the wrapper's exit code); adopted tasks are polled instead. */
  exited?: Promise<number>;
  /** Set by stop(): no onExit from then on. */
  stopping?: Promise<void>;
  /** Its end was seen (or the runtime closed): nothing more is reported. */
  done: boolean;
}

interface OnDisk {
  dir: string;
  record: TaskRecord;
}

/** Runs `cmd` tasks as process groups on this machine; see the module comment. */
export class ProcessRuntime implements Runtime {
  readonly name = 'process';
  private readonly root: string;
  private readonly log: Logger;
  private readonly tasks = new Map<string, Tracked>();
  /** Adopted tasks, checked every pollIntervalMs by one shared timer. */
  private readonly polled = new Set<Tracked>();
  private poller?: NodeJS.Timeout;

  constructor(private readonly o: ProcessRuntimeOptions) {
    this.root = path.join(o.dataDir, 'tasks');
    this.log = o.logger.child({ runtime: 'process' });
  }

  /**
   * Spawns the task's group and resolves with the wrapper's pid once it runs; rejects when the
   * task has no cmd or cannot be spawned. Idempotent: a task (same uid) that already runs here,
   * e.g. since before an agent restart, is adopted instead of started twice.
   */
  async start(task: RuntimeTask, onExit: (code: number) => void): Promise<StartedTask> {
    const cmd = task.spec.cmd;
    if (!cmd) throw new Error(`task ${task.namespace}/${task.name} has no cmd; the process runtime cannot run container images`);
    if (!safeRef(task)) throw new Error(`task ${task.namespace}/${task.name}: namespace and name must be plain path segments`);
    const existing = await this.attach(task, onExit);
    if (existing) return existing;
    const dir = this.workDir(task);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const env = { PATH: PROCESS_PATH, HOME: dir, ...taskEnv(task, this.o.node) };
    const { child, exited, identity } = await spawnWrapped(cmd, dir, env);
    const record: TaskRecord = { namespace: task.namespace, name: task.name, uid: task.uid, pid: child.pid!, startedAt: new Date().toISOString(), ...identity, cmd, env };
    const t: Tracked = { record, dir, onExit, exited, done: false };
    this.tasks.set(keyOf(task), t);
    void exited.then((code) => this.finish(t, code));
    child.unref(); // the agent may exit; the task stays
    await this.persist(t);
    this.log.info({ task: keyOf(task), uid: task.uid, pid: record.pid, dir }, 'process started');
    return { pid: record.pid };
  }

  /**
   * SIGTERM to the task's process group, SIGKILL after `graceSeconds` if any of it is left;
   * resolves when the group is gone. No onExit after this. An unknown task is a no-op; a task
   * started before an agent restart is found on disk (it need not be adopted first).
   */
  async stop(namespace: string, name: string, graceSeconds: number): Promise<void> {
    const t = this.tasks.get(nameKey(namespace, name)) ?? (await this.runningOnDisk(namespace, name));
    if (!t) return;
    t.stopping ??= this.terminate(t, graceSeconds).finally(() => this.forget(t));
    await t.stopping;
  }

  /** Every task whose work dir says it was started here and whose process is still ours and alive. */
  async list(): Promise<RuntimeTaskRef[]> {
    const refs = new Map<string, RuntimeTaskRef>();
    for (const { record } of await this.scan()) {
      if (isAlive(record)) refs.set(keyOf(record), refOf(record));
    }
    for (const [key, t] of this.tasks) if (!t.done && !refs.has(key)) refs.set(key, refOf(t.record));
    return [...refs.values()];
  }

  /**
   * Watches a task started by an earlier agent, so `onExit` is called when it ends (with the code
   * it recorded, or UNKNOWN_EXIT_CODE), or at the next poll if it has already ended. Resolves
   * false when this node has no trace of that task (same namespace, name and uid).
   */
  async adopt(ref: RuntimeTaskRef, onExit: (code: number) => void): Promise<boolean> {
    const key = keyOf(ref);
    const current = this.tasks.get(key);
    if (current && current.record.uid === ref.uid && !current.done) {
      current.onExit = onExit;
      return true;
    }
    if (!safeRef(ref)) return false;
    const found = (await this.recordsOf(ref.namespace, ref.name)).find((e) => e.record.uid === ref.uid);
    if (!found) return false;
    const t: Tracked = { ...found, onExit, done: false };
    this.tasks.set(key, t);
    this.watch(t);
    this.log.info({ task: key, uid: ref.uid, pid: found.record.pid }, 'process adopted');
    return true;
  }

  /** The task's state as its work dir and the kernel tell it; undefined when it has none here. */
  async inspect(namespace: string, name: string): Promise<ProcessTaskInfo | undefined> {
    const found = await this.find(namespace, name);
    if (!found) return undefined;
    const { record: r, dir } = found;
    const running = isAlive(r);
    const info: ProcessTaskInfo = { namespace: r.namespace, name: r.name, uid: r.uid, pid: r.pid, dir, startedAt: r.startedAt, running };
    const code = running ? undefined : readExitCode(dir);
    if (code !== undefined) info.exitCode = code;
    return info;
  }

  /**
   * The task's output from its files: the last `tail` lines, then (with `follow`) what it
   * writes until it ends or the consumer destroys the stream. An unknown task errors the stream
   * with TaskNotFoundError.
   */
  logs(namespace: string, name: string, options: ProcessLogOptions = {}): NodeJS.ReadableStream {
    const stream: Readable = Readable.from(this.logChunks(namespace, name, options, () => stream.destroyed), { objectMode: false });
    return stream;
  }

  /**
   * Runs `/bin/sh -c command` in the task's work dir with the task's environment (COMMAND health
   * checks), in a process group of its own that is SIGKILLed after `timeoutSeconds` (≤ 0: no
   * limit). Rejects with TaskNotFoundError, or when the task does not run.
   */
  async exec(namespace: string, name: string, command: string, timeoutSeconds: number): Promise<ExecResult> {
    const found = await this.find(namespace, name);
    if (!found) throw new TaskNotFoundError(namespace, name);
    if (!isAlive(found.record)) throw new Error(`task ${namespace}/${name} is not running`);
    return runShell(command, found.dir, found.record.env, timeoutSeconds * 1000);
  }

  /** Deletes the work dirs of a task that no longer runs (garbage collection). Rejects while it runs. */
  async remove(namespace: string, name: string): Promise<void> {
    if (!safeRef({ namespace, name })) return;
    const dirs = await this.dirsOf(namespace, name);
    for (const dir of dirs) {
      const record = await readRecord(dir);
      if (record && isAlive(record)) throw new Error(`task ${namespace}/${name} still runs (pid ${record.pid}); stop it before removing it`);
    }
    await Promise.all(dirs.map((dir) => fs.rm(dir, { recursive: true, force: true })));
    const t = this.tasks.get(nameKey(namespace, name));
    if (t?.done) this.forget(t);
  }

  /**
   * Forgets every task without touching its processes (the agent is going away; the next one
   * adopts them): no onExit after this, no timer left.
   */
  close(): void {
    for (const t of this.tasks.values()) t.done = true;
    this.tasks.clear();
    this.polled.clear();
    this.stopPolling();
  }

  // ---- start ------------------------------------------------------------------------------

  /** The pid of the same task if it already runs here (then watched with `onExit`); undefined to start it. */
  private async attach(task: RuntimeTask, onExit: (code: number) => void): Promise<StartedTask | undefined> {
    const found = await this.find(task.namespace, task.name);
    if (!found) return undefined;
    const alive = isAlive(found.record);
    if (found.record.uid !== task.uid) {
      if (alive) throw new Error(`task ${keyOf(task)} already runs here with uid ${found.record.uid}; stop it first`);
      return undefined;
    }
    if (!alive) throw new TaskAlreadyRanError(task.namespace, task.name, readExitCode(found.dir));
    await this.adopt(task, onExit);
    return { pid: found.record.pid };
  }

  /** Writes task.json atomically; a task that cannot be recorded could not be adopted, so it is killed. */
  private async persist(t: Tracked): Promise<void> {
    try {
      const tmp = path.join(t.dir, `${RECORD}.tmp`);
      await fs.writeFile(tmp, JSON.stringify(t.record, null, 2), { mode: 0o600 });
      await fs.rename(tmp, path.join(t.dir, RECORD));
    } catch (err) {
      t.done = true;
      this.forget(t);
      signalGroup(t.record.pid, 'SIGKILL');
      throw new Error(`task ${keyOf(t.record)}: cannot write ${RECORD}: ${(err as Error).message}`);
    }
  }

  private workDir(ref: RuntimeTaskRef): string {
    const uid8 = ref.uid.replace(/[^A-Za-z0-9]/g, '').slice(0, 8) || 'nouid';
    return path.join(this.root, ref.namespace, `${ref.name}-${uid8}`);
  }

  // ---- exits and stops --------------------------------------------------------------------

  /** The task's wrapper ended with `code`: report it once, unless stop() asked for it. */
  private finish(t: Tracked, code: number): void {
    if (t.done) return;
    t.done = true;
    if (t.stopping) return; // stop() reports nothing and forgets the task itself
    this.forget(t);
    signalGroup(t.record.pid, 'SIGKILL'); // background leftovers of a finished task
    this.log.info({ task: keyOf(t.record), uid: t.record.uid, exitCode: code }, 'process exited');
    try {
      t.onExit(code);
    } catch (err) {
      this.log.warn({ task: keyOf(t.record), err: (err as Error).message }, 'onExit threw');
    }
  }

  private async terminate(t: Tracked, graceSeconds: number): Promise<void> {
    const pgid = t.record.pid;
    const task = keyOf(t.record);
    if (!groupAlive(pgid)) return this.reaped(t);
    signalGroup(pgid, 'SIGTERM');
    if (await waitFor(() => !groupAlive(pgid), Math.max(0, graceSeconds) * 1000)) {
      this.log.info({ task, pid: pgid }, 'process group stopped (SIGTERM)');
      return this.reaped(t);
    }
    signalGroup(pgid, 'SIGKILL');
    const gone = await waitFor(() => !groupAlive(pgid), KILL_WAIT_MS);
    if (gone) this.log.info({ task, pid: pgid, graceSeconds }, 'process group killed (SIGKILL after the grace period)');
    else this.log.warn({ task, pid: pgid }, 'process group still present after SIGKILL; giving up waiting');
    return this.reaped(t);
  }

  /** Waits (bounded) for our own child's 'exit': once reaped, its pid is gone, not a zombie. */
  private async reaped(t: Tracked): Promise<void> {
    if (t.exited) await settlesWithin(t.exited, KILL_WAIT_MS);
  }

  private forget(t: Tracked): void {
    const key = keyOf(t.record);
    if (this.tasks.get(key) === t) this.tasks.delete(key);
    this.polled.delete(t);
    if (this.polled.size === 0) this.stopPolling();
  }

  /** Adopted tasks have no child handle: poll them (one timer for all). */
  private watch(t: Tracked): void {
    this.polled.add(t);
    if (this.poller) return;
    this.poller = setInterval(() => this.poll(), this.o.pollIntervalMs ?? DEFAULT_POLL_MS);
    this.poller.unref();
  }

  private poll(): void {
    for (const t of [...this.polled]) {
      try {
        if (!isAlive(t.record)) this.finish(t, readExitCode(t.dir) ?? UNKNOWN_EXIT_CODE);
      } catch (err) {
        this.log.warn({ task: keyOf(t.record), err: (err as Error).message }, 'checking an adopted process failed');
      }
    }
  }

  private stopPolling(): void {
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }

  // ---- work dirs --------------------------------------------------------------------------

  /** The task's live record if it runs (tracked or on disk), else its newest record. */
  private async find(namespace: string, name: string): Promise<OnDisk | undefined> {
    const tracked = this.tasks.get(nameKey(namespace, name));
    if (tracked) return tracked;
    if (!safeRef({ namespace, name })) return undefined;
    const all = await this.recordsOf(namespace, name);
    return all.find((e) => isAlive(e.record)) ?? all.sort((a, b) => b.record.startedAt.localeCompare(a.record.startedAt))[0];
  }

  /** A running task on disk, as a Tracked that is not watched (for stop()). */
  private async runningOnDisk(namespace: string, name: string): Promise<Tracked | undefined> {
    const found = await this.find(namespace, name);
    if (!found || !isAlive(found.record)) return undefined;
    return { ...found, onExit: () => undefined, done: false };
  }

  /** Every readable task.json, of one namespace or all. */
  private async scan(namespace?: string): Promise<OnDisk[]> {
    const namespaces = namespace !== undefined ? [namespace] : await subdirs(this.root);
    const dirs = (await Promise.all(namespaces.map((ns) => subdirs(path.join(this.root, ns)).then((ds) => ds.map((d) => path.join(this.root, ns, d)))))).flat();
    const found = await Promise.all(dirs.map(async (dir) => ({ dir, record: await readRecord(dir) })));
    return found.filter((e): e is OnDisk => e.record !== undefined);
  }

  /** The task's records (one per uid it ran with here); reads only the dirs named after it. */
  private async recordsOf(namespace: string, name: string): Promise<OnDisk[]> {
    const found = await Promise.all((await this.dirsOf(namespace, name)).map(async (dir) => ({ dir, record: await readRecord(dir) })));
    return found.filter((e): e is OnDisk => e.record?.namespace === namespace && e.record.name === name);
  }

  /** Work dirs named after the task (`<name>-<uid8>`), with or without a task.json. */
  private async dirsOf(namespace: string, name: string): Promise<string[]> {
    const dirs = await subdirs(path.join(this.root, namespace));
    return dirs.filter((d) => d.lastIndexOf('-') > 0 && d.slice(0, d.lastIndexOf('-')) === name).map((d) => path.join(this.root, namespace, d));
  }

  // ---- logs -------------------------------------------------------------------------------

  private async *logChunks(namespace: string, name: string, o: ProcessLogOptions, closed: () => boolean): AsyncGenerator<Buffer> {
    const found = await this.find(namespace, name);
    if (!found) throw new TaskNotFoundError(namespace, name);
    const which = o.stream ?? 'both';
    const files = (which === 'both' ? ['stdout', 'stderr'] : [which]).map((f) => path.join(found.dir, f));
    const spans = await Promise.all(files.map((f) => tailSpan(f, o.tail)));
    const offsets = spans.map((s) => s.start);
    // Without follow the answer is a snapshot: the last `tail` lines as they were when asked, not
    // those plus whatever the task wrote while we read (tail=1 must give one line).
    const ends = o.follow === true ? undefined : spans.map((s) => s.end);
    for (;;) {
      // Checked before reading: whatever an ended task wrote is read once more, then we stop.
      const more = o.follow === true && isAlive(found.record);
      for (let i = 0; i < files.length; i++) {
        for await (const chunk of readFrom(files[i], offsets[i], ends?.[i])) {
          offsets[i] += chunk.length;
          yield chunk;
        }
      }
      if (!more || closed()) return;
      await pause(FOLLOW_POLL_MS);
      if (closed()) return;
    }
  }
}

// ---- spawning ---------------------------------------------------------------------------

interface Spawned {
  child: ChildProcess;
  /** The wrapper's exit code (128+n for a signal). */
  exited: Promise<number>;
  identity: Pick<TaskRecord, 'startTime' | 'bootId'>;
}

/** Spawns the wrapper detached (setsid: new session and group) with its output appended to the work dir's files. */
async function spawnWrapped(cmd: string, dir: string, env: Record<string, string>): Promise<Spawned> {
  const out = await fs.open(path.join(dir, 'stdout'), 'a', 0o600);
  try {
    const err = await fs.open(path.join(dir, 'stderr'), 'a', 0o600);
    try {
      const child = spawn(SHELL, ['-c', WRAPPER, 'shoal-task', cmd, path.join(dir, EXIT_CODE)], { cwd: dir, env, detached: true, stdio: ['ignore', out.fd, err.fd] });
      // Read now: the pid cannot have been reaped (and so recycled) before the event loop turns.
      const identity = child.pid ? procIdentity(child.pid) : {};
      const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signalExitCode(signal))));
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      child.on('error', () => undefined); // we signal with process.kill; nothing else can fail later
      return { child, exited, identity };
    } finally {
      await err.close(); // the child has its own copies
    }
  } finally {
    await out.close();
  }
}

/** `/bin/sh -c command` in its own group, output captured, the group SIGKILLed at the timeout. */
function runShell(command: string, cwd: string, env: Record<string, string>, timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(SHELL, ['-c', command], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let kept = 0;
    const collect = (chunk: Buffer) => {
      if (kept < EXEC_OUTPUT_LIMIT) chunks.push(chunk.subarray(0, EXEC_OUTPUT_LIMIT - kept));
      kept += chunk.length;
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    let timedOut = false;
    let exitCode = UNKNOWN_EXIT_CODE;
    const kill = () => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL');
    const timer = timeoutMs > 0 ? setTimeout(() => ((timedOut = true), kill()), timeoutMs).unref() : undefined;
    child.once('error', (err) => (clearTimeout(timer), reject(err)));
    // Background children would hold the pipes open and 'close' would never come.
    child.once('exit', (code, signal) => ((exitCode = code ?? signalExitCode(signal)), kill()));
    child.once('close', () => {
      clearTimeout(timer);
      const output = Buffer.concat(chunks).toString('utf8');
      resolve(timedOut ? { exitCode: EXEC_TIMEOUT_EXIT_CODE, output, timedOut } : { exitCode, output, timedOut });
    });
  });
}

function signalExitCode(signal: NodeJS.Signals | null): number {
  const n = signal ? osConstants.signals[signal] : undefined;
  return n === undefined ? UNKNOWN_EXIT_CODE : 128 + n;
}

// ---- processes and groups -----------------------------------------------------------------

interface ProcStat {
  state: string;
  pgrp: number;
  startTime: string;
}

/** Fields of `/proc/<pid>/stat` after the command name (which may hold spaces and parens). */
function procStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], pgrp: Number(f[2]), startTime: f[19] };
  } catch {
    return undefined;
  }
}

let cachedBootId: string | undefined;
function bootId(): string | undefined {
  if (cachedBootId === undefined && HAS_PROC) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      cachedBootId = '';
    }
  }
  return cachedBootId || undefined;
}

function procIdentity(pid: number): Pick<TaskRecord, 'startTime' | 'bootId'> {
  const identity: Pick<TaskRecord, 'startTime' | 'bootId'> = {};
  const stat = procStat(pid);
  if (stat) identity.startTime = stat.startTime;
  const boot = bootId();
  if (boot) identity.bootId = boot;
  return identity;
}

/** Whether the record's process is alive and still the one we started (not a recycled pid, not a zombie). */
function isAlive(r: TaskRecord): boolean {
  try {
    process.kill(r.pid, 0);
  } catch {
    return false; // ESRCH: gone; EPERM: another user's process took the pid
  }
  if (!HAS_PROC) return true;
  if (r.bootId && r.bootId !== bootId()) return false;
  const stat = procStat(r.pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return false;
  return r.startTime === undefined || stat.startTime === r.startTime;
}

/** Whether any live (non-zombie) process is left in the group. */
function groupAlive(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  if (!HAS_PROC) return true;
  // kill(-pgid, 0) also succeeds for zombies nobody reaped yet; they hold nothing, so look closer.
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') return true;
  }
  return false;
}

/** Signals a whole process group; false when nothing received it. Refuses pgids 0 and 1 (ours, init's). */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Polls `done` until true (→ true) or `ms` passed (→ false). */
async function waitFor(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (done()) return true;
    if (Date.now() >= deadline) return false;
    await pause(Math.min(GROUP_POLL_MS, Math.max(1, deadline - Date.now())));
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

// ---- files --------------------------------------------------------------------------------

/** A task.json, or undefined if missing or not one of ours (a bad pid must never reach kill()). */
async function readRecord(dir: string): Promise<TaskRecord | undefined> {
  try {
    const r = JSON.parse(await fs.readFile(path.join(dir, RECORD), 'utf8')) as TaskRecord;
    const strings = [r.namespace, r.name, r.uid, r.startedAt].every((s) => typeof s === 'string');
    const valid = strings && Number.isInteger(r.pid) && r.pid > 1 && typeof r.env === 'object' && r.env !== null;
    return valid ? r : undefined;
  } catch {
    return undefined;
  }
}

/** The code the wrapper recorded, if it could. */
function readExitCode(dir: string): number | undefined {
  try {
    const text = readFileSync(path.join(dir, EXIT_CODE), 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}

/**
 * Where the last `lines` lines of `file` begin (0 without a limit or file), and where the file
 * ended when asked.
 */
async function tailSpan(file: string, lines: number | undefined): Promise<{ start: number; end: number }> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    return { start: 0, end: 0 };
  }
  try {
    const { size } = await fh.stat();
    if (lines === undefined || lines < 0) return { start: 0, end: size };
    if (lines === 0 || size === 0) return { start: size, end: size };
    const last = Buffer.alloc(1);
    await fh.read(last, 0, 1, size - 1);
    return { start: await newlineBefore(fh, last[0] === 0x0a ? size - 1 : size, lines), end: size }; // a final newline ends a line, it starts none
  } finally {
    await fh.close();
  }
}

/** Scanning back from `end`, the offset just after the `count`-th newline (0 if there are fewer). */
async function newlineBefore(fh: fs.FileHandle, end: number, count: number): Promise<number> {
  for (let pos = end; pos > 0; ) {
    const len = Math.min(READ_CHUNK, pos);
    pos -= len;
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, pos);
    for (let i = len - 1; i >= 0; i--) if (buf[i] === 0x0a && --count === 0) return pos + i + 1;
  }
  return 0;
}

/** What `file` holds from `offset` to `end` (or its current end), in chunks. */
async function* readFrom(file: string, offset: number, end = Infinity): AsyncGenerator<Buffer> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    return;
  }
  try {
    for (let pos = offset; pos < end; ) {
      const want = Math.min(READ_CHUNK, end - pos);
      const buf = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

// ---- names --------------------------------------------------------------------------------

function keyOf(ref: { namespace: string; name: string }): string {
  return nameKey(ref.namespace, ref.name);
}

function refOf(r: TaskRecord): RuntimeTaskRef {
  return { namespace: r.namespace, name: r.name, uid: r.uid };
}

/** Namespace and name become path segments: never `..`, never a `/` (logs and exec come from HTTP). */
function safeRef(ref: { namespace: string; name: string }): boolean {
  return SAFE_SEGMENT.test(ref.namespace) && SAFE_SEGMENT.test(ref.name);
}
