/**
 * The process runtime (a Mesos command task without a container): runs a task's `cmd` with
 * `/bin/sh -c` in a session and process group of its own, as an unprivileged user, in a cgroup
 * with the task's cpu, memory and pids limits, in a work directory of its own, with an
 * environment made only of taskEnv() plus PATH, HOME, USER and LOGNAME (nothing of the agent's).
 *
 * Directories (the agent's are traversable by tasks, never listable or readable):
 *
 *     <dataDir>/                          0711, the agent's
 *       tasks/<namespace>/                0711, the agent's
 *         <name>-<uid8>/                  0711, the agent's: what the task must not touch
 *           task.json                     0600, a TaskRecord (what a restarted agent needs to
 *                                         adopt, stop, exec in and read logs of the task)
 *           stdout, stderr                0600, the task's output, appended to through file
 *                                         descriptors the agent opens and the task inherits
 *           exitcode                      0600, written by the wrapper through an inherited fd
 *           work/                         0700, the task's user: its cwd and HOME
 *
 * Records live beside the work dir, not in it: a task owns its work dir and could replace any
 * file there (a symlink `stdout` → /etc/shadow would have the agent serve that file as logs).
 * Records of agents from before work/ existed are adopted as they are (their cwd is the dir).
 *
 * Who runs it: see task-users.ts (a uid of its own per task by default; root only with
 * `--task-user root --allow-root`). Limits: see cgroups.ts; without usable cgroups the agent warns
 * once at start and tasks run unlimited.
 *
 * Exit codes survive the agent. A process the agent did not spawn (adopted after a restart)
 * cannot be waited for, so every task runs under a wrapper shell, the leader of its group:
 *
 *     trap : HUP INT TERM; read go; exec </dev/null; /bin/sh -c "$cmd" 3>&-; code=$?; echo "$code" >&3; exit "$code"
 *
 * - `read go` holds the wrapper until the agent has put its pid in the task's cgroup: nothing
 *   of the task runs (or forks) outside its limits. The agent writes `go` on the wrapper's stdin
 *   pipe after that and after task.json; an agent that dies before leaves EOF: the wrapper exits
 *   125 without running anything.
 * - fd 3 is `exitcode`, opened by the agent: the task's user cannot open that file, and the
 *   command does not inherit the fd. (A task can still lie about its own exit code, as it can
 *   by exiting with any code; it cannot make the agent read anything else.)
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
 * - When the kernel OOM-killed a process of the task's cgroup, the exit is reported with an
 *   ExitDetail saying so (reason OOMKilled).
 *
 * Identity: a pid alone is not proof; the kernel recycles them. task.json records the process's
 * start time (`/proc/<pid>/stat` field 22) and the boot id, so a recycled pid (or a dir from
 * before a reboot) is never adopted, signalled or reported running. A zombie counts as ended.
 *
 * When a task ends by itself, what is left of its group and of its cgroup (children it put in
 * the background, even in a session of their own) is SIGKILLed: a finished task leaves nothing
 * behind that would hold its ports, and its cgroup is removed.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import { constants as osConstants, userInfo } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { nameKey } from '../api/keys';
import { settlesWithin } from '../util/async';
import { cgroupPopulated, createTaskCgroup, joinCgroup, killCgroup, limitsFor, oomKills, prepareParent, probeHost, removeCgroup, taskCgroupName, type CgroupHost, type CgroupLimits } from './cgroups';
import { DEFAULT_PIDS_LIMIT } from './docker-spec';
import { taskEnv, type NodeContext } from './env';
import { ancestorsOf, parsePasswdLine, pickUid, resolveTaskUser, untraversable, type PasswdEntry, type TaskIdentity, type TaskUserPolicy } from './task-users';
import type { ExecResult, ExitDetail, ExitHandler, LogOptions, Runtime, RuntimeTask, RuntimeTaskRef, StartedTask } from './types';
import { MAX_TIMER_MS } from '../util/clock';

/** The PATH a task gets unless its spec sets one. */
export const PROCESS_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Reported when an adopted task ended without recording its code (its wrapper was SIGKILLed). */
export const UNKNOWN_EXIT_CODE = -1;
/** exec()'s exit code when the command ran out of time (GNU timeout's convention). */
export const EXEC_TIMEOUT_EXIT_CODE = 124;

const SHELL = '/bin/sh';
/** $1: the task's cmd; fd 3: its exitcode file. See the header for why it looks like this. */
const WRAPPER = 'trap : HUP INT TERM\nread -r go && [ "$go" = go ] || exit 125\nexec </dev/null\n/bin/sh -c "$1" 3>&-\ncode=$?\necho "$code" >&3\nexit "$code"';
/** exec()'s gate: the same wait for the cgroup, then the command itself. */
const EXEC_WRAPPER = 'read -r go && [ "$go" = go ] || exit 125\nexec </dev/null\nexec /bin/sh -c "$1"';
const GO = 'go\n';
/** util-linux's setpriv, to set no_new_privs (no gain through setuid binaries), as Docker's no-new-privileges. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const RECORD = 'task.json';
const EXIT_CODE = 'exitcode';
/** The task's own directory inside its record dir. */
const WORK = 'work';
/** The agent's directories: tasks may pass through them to their work dir, never list them. */
const AGENT_DIR_MODE = 0o711;
const WORK_DIR_MODE = 0o700;
/** How long a task's cgroup may stay busy (its last processes dying) before its removal is left to remove(). */
const CGROUP_REMOVE_WAIT_MS = 5000;
/** Where task cgroups go in the hierarchy by default (Docker uses /docker, the kubelet /kubepods). */
export const DEFAULT_CGROUP_PARENT = '/shoal';
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
  /** `--task-user`: run every task as this user (name, uid or uid:gid). @default a uid of its own per task (agent as root) */
  taskUser?: string;
  /** `--task-uids`: where per-task uids come from. @default DEFAULT_TASK_UIDS */
  taskUids?: [number, number];
  /** `--allow-root`: a task user that is root is refused without it. @default false */
  allowRoot?: boolean;
  /** Where task cgroups are made; false: no cgroups (no limits). @default DEFAULT_CGROUP_PARENT */
  cgroupParent?: string | false;
  /** Processes per task. @default DEFAULT_PIDS_LIMIT */
  pidsLimit?: number;
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
  /** Its cwd and HOME; absent in records from before work/ existed (then it is the record's dir). */
  workDir?: string;
  /** Who it runs as; absent: the agent's own user. */
  user?: TaskIdentity;
  /** Its cgroup dirs; absent: it runs without limits. */
  cgroups?: string[];
  /** What its cgroup limits it to. */
  limits?: CgroupLimits;
}

/** What inspect() knows of a task. */
export interface ProcessTaskInfo {
  namespace: string;
  name: string;
  uid: string;
  pid: number;
  /** The record dir (task.json, stdout, stderr, exitcode). */
  dir: string;
  /** The task's own dir: its cwd and HOME. */
  workDir: string;
  /** The uid it runs as. */
  user?: number;
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

/** A start that cannot succeed on this node as it is set up (an untraversable data dir, a full uid range): ERROR, not retried here. */
export class ProcessPolicyError extends Error {
  readonly code = 'Policy';
  constructor(message: string) {
    super(message);
    this.name = 'ProcessPolicyError';
  }
}

/** A task this runtime watches: started here, or adopted. */
interface Tracked {
  record: TaskRecord;
  dir: string;
  onExit: ExitHandler;
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

  private readonly policy: TaskUserPolicy;
  /** The host's cgroups when tasks get limits; undefined: they run without (the agent warned at start). */
  private readonly cgroupHost?: CgroupHost;
  private readonly cgroupParent: string;
  /** Dynamic uids picked by starts in flight, before their task.json holds them. */
  private readonly reserved = new Set<number>();

  /** Throws when the task user flags cannot work (an unknown user, root without allowRoot). */
  constructor(private readonly o: ProcessRuntimeOptions) {
    this.root = path.join(o.dataDir, 'tasks');
    this.log = o.logger.child({ runtime: 'process' });
    const users = resolveTaskUser({ taskUser: o.taskUser, taskUids: o.taskUids, allowRoot: o.allowRoot ?? false, agent: agentIdentity(), lookup: lookupUser });
    this.policy = users.policy;
    if (users.warning) this.log.warn({ policy: this.policy }, users.warning);
    else this.log.info({ policy: this.policy }, 'process tasks run as a uid of their own each');
    this.prepareAgentDirs();
    this.cgroupParent = o.cgroupParent || DEFAULT_CGROUP_PARENT;
    this.cgroupHost = this.setUpCgroups();
  }

  /**
   * Spawns the task's group and resolves with the wrapper's pid once it runs; rejects when the
   * task has no cmd or cannot be spawned. Idempotent: a task (same uid) that already runs here,
   * e.g. since before an agent restart, is adopted instead of started twice.
   */
  async start(task: RuntimeTask, onExit: ExitHandler): Promise<StartedTask> {
    const cmd = task.spec.cmd;
    if (!cmd) throw new Error(`task ${task.namespace}/${task.name} has no cmd; the process runtime cannot run container images`);
    if (!safeRef(task)) throw new Error(`task ${task.namespace}/${task.name}: namespace and name must be plain path segments`);
    const existing = await this.attach(task, onExit);
    if (existing) return existing;
    const who = await this.identityFor(task);
    try {
      return await this.launch(task, cmd, who, onExit);
    } finally {
      if (who.switch) this.reserved.delete(who.identity.uid); // held by task.json from now on (or free again)
    }
  }

  private async launch(task: RuntimeTask, cmd: string, who: Who, onExit: ExitHandler): Promise<StartedTask> {
    const dir = this.recordDir(task);
    const work = await this.prepareDirs(task, dir, who);
    const limits = limitsFor(task.spec.resources, this.o.pidsLimit ?? DEFAULT_PIDS_LIMIT);
    const cgroups = this.cgroupOf(task, dir, limits);
    const env = { PATH: PROCESS_PATH, HOME: work, USER: who.identity.name, LOGNAME: who.identity.name, ...taskEnv(task, this.o.node) };
    let spawned: Spawned;
    try {
      spawned = await spawnWrapped(cmd, dir, work, env, who.switch ? who.identity : undefined);
    } catch (err) {
      removeCgroup(cgroups);
      throw err;
    }
    const { child, exited, identity } = spawned;
    const record: TaskRecord = { namespace: task.namespace, name: task.name, uid: task.uid, pid: child.pid!, startedAt: new Date().toISOString(), ...identity, cmd, env, workDir: work };
    if (who.switch) record.user = who.identity;
    if (cgroups) Object.assign(record, { cgroups, limits });
    const t: Tracked = { record, dir, onExit, exited, done: false };
    this.tasks.set(keyOf(task), t);
    void exited.then((code) => this.finish(t, code));
    child.unref(); // the agent may exit; the task stays
    try {
      if (cgroups) joinCgroup(cgroups, record.pid);
    } catch (err) {
      await this.abandon(t);
      throw new Error(`task ${keyOf(task)}: cannot put it in its cgroup: ${(err as Error).message}`);
    }
    await this.persist(t);
    child.stdin!.end(GO); // the wrapper runs the command from here on (see the module comment)
    this.log.info({ task: keyOf(task), uid: task.uid, pid: record.pid, dir, user: record.user?.uid, cgroup: cgroups !== undefined }, 'process started');
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

  /** @inheritdoc Records of tasks whose process is gone, that this runtime does not track as running. */
  async listEnded(): Promise<RuntimeTaskRef[]> {
    const live = new Set((await this.list()).map((r) => keyOf(r)));
    const refs = new Map<string, RuntimeTaskRef>();
    for (const { record } of await this.scan()) {
      const key = keyOf(record);
      if (!live.has(key) && !isAlive(record)) refs.set(key, refOf(record));
    }
    return [...refs.values()];
  }

  /**
   * Watches a task started by an earlier agent, so `onExit` is called when it ends (with the code
   * it recorded, or UNKNOWN_EXIT_CODE), or at the next poll if it has already ended. Resolves
   * false when this node has no trace of that task (same namespace, name and uid).
   */
  async adopt(ref: RuntimeTaskRef, onExit: ExitHandler): Promise<boolean> {
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
    const info: ProcessTaskInfo = { namespace: r.namespace, name: r.name, uid: r.uid, pid: r.pid, dir, workDir: r.workDir ?? dir, startedAt: r.startedAt, running };
    if (r.user) info.user = r.user.uid;
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
    const r = found.record;
    return runShell(command, { cwd: r.workDir ?? found.dir, env: r.env, user: r.user, cgroups: r.cgroups }, timeoutSeconds * 1000);
  }

  /** Deletes the work dirs of a task that no longer runs (garbage collection). Rejects while it runs. */
  async remove(namespace: string, name: string): Promise<void> {
    if (!safeRef({ namespace, name })) return;
    const dirs = await this.dirsOf(namespace, name);
    const records = await Promise.all(dirs.map((dir) => readRecord(dir)));
    for (const record of records) {
      if (record && isAlive(record)) throw new Error(`task ${namespace}/${name} still runs (pid ${record.pid}); stop it before removing it`);
    }
    await Promise.all(records.map((record) => record && this.discardCgroup({ record })));
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
  private async attach(task: RuntimeTask, onExit: ExitHandler): Promise<StartedTask | undefined> {
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
      await this.abandon(t);
      throw new Error(`task ${keyOf(t.record)}: cannot write ${RECORD}: ${(err as Error).message}`);
    }
  }

  /** A start that failed after the spawn: the wrapper, still at its gate, is killed with its cgroup. */
  private async abandon(t: Tracked): Promise<void> {
    t.done = true;
    this.forget(t);
    signalGroup(t.record.pid, 'SIGKILL');
    await this.discardCgroup(t);
  }

  /** Who the task runs as: the policy's user, or a free uid of the range (reserved until its task.json holds it). */
  private async identityFor(task: RuntimeTask): Promise<Who> {
    const p = this.policy;
    if (p.kind === 'fixed') return { identity: p.identity, switch: p.switch };
    const used = new Set<number>(this.reserved);
    for (const { record } of await this.scan()) if (record.user) used.add(record.user.uid);
    for (const t of this.tasks.values()) if (t.record.user) used.add(t.record.user.uid);
    const uid = pickUid(p.range, used);
    if (uid === undefined) throw new ProcessPolicyError(`task ${keyOf(task)} cannot start: every uid of ${p.range[0]}-${p.range[1]} (--task-uids) belongs to a task whose work dir is still here`);
    this.reserved.add(uid);
    return { identity: { uid, gid: uid, name: String(uid) }, switch: true };
  }

  /**
   * The record dir (the agent's, 0711) and the work dir (the task's, 0700), which the task's user
   * must be able to reach: every directory above it must let that user through.
   */
  private async prepareDirs(task: RuntimeTask, dir: string, who: Who): Promise<string> {
    const work = path.join(dir, WORK);
    await fs.mkdir(work, { recursive: true, mode: WORK_DIR_MODE });
    for (const d of [path.dirname(dir), dir]) await fs.chmod(d, AGENT_DIR_MODE);
    if (who.switch) await fs.chown(work, who.identity.uid, who.identity.gid);
    await fs.chmod(work, WORK_DIR_MODE);
    if (!who.switch) return work;
    const real = await fs.realpath(dir);
    const stats = await Promise.all(ancestorsOf(real).map(async (p) => ({ path: p, ...pick(await fs.stat(p)) })));
    const blocked = untraversable(stats, who.identity.uid, who.identity.gid);
    if (blocked) throw new ProcessPolicyError(`task ${keyOf(task)} cannot start: its user (uid ${who.identity.uid}) cannot reach its work dir ${work} because ${blockedText(blocked)}`);
    return work;
  }

  /** The task's cgroup with its limits, when the host has cgroups; a cgroup that cannot be made fails the start. */
  private cgroupOf(task: RuntimeTask, dir: string, limits: ReturnType<typeof limitsFor>): string[] | undefined {
    if (!this.cgroupHost) return undefined;
    try {
      return createTaskCgroup(this.cgroupHost, this.cgroupParent, taskCgroupName(task.namespace, path.basename(dir)), limits);
    } catch (err) {
      throw new Error(`task ${keyOf(task)} cannot start: its cgroup (cpu, memory and pids limits) cannot be made: ${(err as Error).message}`);
    }
  }

  /** The data dir and tasks/: traversable by tasks (0711) when they run as other users; a warning when a parent is not. */
  private prepareAgentDirs(): void {
    mkdirSync(this.root, { recursive: true, mode: AGENT_DIR_MODE });
    const sample = this.policy.kind === 'fixed' ? (this.policy.switch ? this.policy.identity : undefined) : { uid: this.policy.range[0], gid: this.policy.range[0] };
    if (!sample) return;
    const own = process.getuid?.();
    for (const d of [this.o.dataDir, this.root]) if (statSync(d).uid === own) chmodSync(d, AGENT_DIR_MODE);
    const stats = ancestorsOf(realpathOr(this.root)).map((p) => ({ path: p, ...pick(statSync(p)) }));
    const blocked = untraversable(stats, sample.uid, sample.gid);
    if (blocked) this.log.warn({ dir: blocked.path }, `process tasks cannot start: their users cannot reach the data dir because ${blockedText(blocked)}`);
  }

  /** The host's cgroups with `<parent>` ready, or undefined and one warning. */
  private setUpCgroups(): CgroupHost | undefined {
    const noLimits = 'process tasks run without cpu, memory and pids limits';
    if (this.o.cgroupParent === false) {
      this.log.warn(`cgroups are turned off: ${noLimits}`);
      return undefined;
    }
    const { host, problem } = probeHost();
    let why = problem;
    if (host) {
      try {
        prepareParent(host, this.cgroupParent);
      } catch (err) {
        why = `cannot set up the cgroup ${this.cgroupParent}: ${(err as Error).message}`;
      }
    }
    if (!host || why) {
      this.log.warn({ why }, `no usable cgroups: ${noLimits}`);
      return undefined;
    }
    const controllers = host.version === 2 ? host.controllers : (Object.keys(host.roots) as string[]);
    const missing = ['cpu', 'memory', 'pids'].filter((c) => !controllers.includes(c));
    if (missing.length) this.log.warn({ version: host.version, missing }, `cgroup controllers missing: process tasks run without ${missing.join(', ')} limits`);
    this.log.info({ version: host.version, parent: this.cgroupParent, controllers }, 'process tasks get cgroup limits');
    return host;
  }

  private recordDir(ref: RuntimeTaskRef): string {
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
    const detail = exitDetail(t.record);
    void this.discardCgroup(t); // and those that left its group
    this.log.info({ task: keyOf(t.record), uid: t.record.uid, exitCode: code, reason: detail?.reason }, 'process exited');
    try {
      t.onExit(code, detail);
    } catch (err) {
      this.log.warn({ task: keyOf(t.record), err: (err as Error).message }, 'onExit threw');
    }
  }

  private async terminate(t: Tracked, graceSeconds: number): Promise<void> {
    await this.terminateGroup(t, graceSeconds);
    await this.discardCgroup(t);
  }

  private async terminateGroup(t: Tracked, graceSeconds: number): Promise<void> {
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

  /**
   * SIGKILLs what is left in the task's cgroup (processes that left its group) and removes the
   * cgroup once empty; one that stays busy is left for remove() (and said so).
   */
  private async discardCgroup(t: { record: TaskRecord }): Promise<void> {
    const dirs = t.record.cgroups;
    if (!dirs) return;
    const emptied = () => {
      killCgroup(dirs);
      return !cgroupPopulated(dirs);
    };
    if ((await waitFor(emptied, CGROUP_REMOVE_WAIT_MS)) && (await waitFor(() => removeCgroup(dirs), CGROUP_REMOVE_WAIT_MS))) return;
    this.log.warn({ task: keyOf(t.record), cgroups: dirs }, 'task cgroup still busy; it is removed with the task');
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
    // Not following, a running task's last `tail` lines stop at its last whole line (a snapshot).
    const wholeLines = o.follow !== true && o.tail !== undefined && isAlive(found.record);
    const spans = await Promise.all(files.map((f) => tailSpan(f, o.tail, wholeLines)));
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

/** Spawns the wrapper detached (setsid: new session and group), as `user`, output and exit code going to the record dir's files. */
async function spawnWrapped(cmd: string, dir: string, cwd: string, env: Record<string, string>, user: TaskIdentity | undefined): Promise<Spawned> {
  const files = await Promise.all([fs.open(path.join(dir, 'stdout'), 'a', 0o600), fs.open(path.join(dir, 'stderr'), 'a', 0o600), fs.open(path.join(dir, EXIT_CODE), 'w', 0o600)]);
  try {
    const [prog, ...args] = commandLine(WRAPPER, 'shoal-task', cmd);
    const child = spawn(prog, args, { cwd, env, detached: true, stdio: ['pipe', files[0].fd, files[1].fd, files[2].fd], ...idsOf(user) });
    child.stdin!.on('error', () => undefined); // EPIPE: the wrapper died at its gate; its exit says so
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
    await Promise.all(files.map((f) => f.close())); // the child has its own copies
  }
}

/** `sh -c script name arg` under setpriv --no-new-privs where the host has it. */
function commandLine(script: string, name: string, arg: string): string[] {
  const sh = [SHELL, '-c', script, name, arg];
  return SETPRIV ? [SETPRIV, '--no-new-privs', '--', ...sh] : sh;
}

function idsOf(user: TaskIdentity | undefined): { uid?: number; gid?: number } {
  return user ? { uid: user.uid, gid: user.gid } : {};
}

interface ShellContext {
  cwd: string;
  env: Record<string, string>;
  user?: TaskIdentity;
  cgroups?: string[];
}

/**
 * `/bin/sh -c command` as the task's user, in its cgroup (joined before the command runs), in a
 * group of its own, output captured, the group SIGKILLed at the timeout.
 */
function runShell(command: string, ctx: ShellContext, timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const [prog, ...args] = commandLine(EXEC_WRAPPER, 'shoal-exec', command);
    const child = spawn(prog, args, { cwd: ctx.cwd, env: ctx.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'], ...idsOf(ctx.user) });
    child.stdin!.on('error', () => undefined);
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
    let failed: Error | undefined;
    const kill = () => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL');
    const timer = timeoutMs > 0 ? setTimeout(() => ((timedOut = true), kill()), Math.min(timeoutMs, MAX_TIMER_MS)).unref() : undefined; // longer: Node would fire at once
    child.once('error', (err) => (clearTimeout(timer), reject(err)));
    // Background children would hold the pipes open and 'close' would never come.
    child.once('exit', (code, signal) => ((exitCode = code ?? signalExitCode(signal)), kill()));
    child.once('close', () => {
      clearTimeout(timer);
      if (failed) return reject(failed);
      const output = Buffer.concat(chunks).toString('utf8');
      resolve(timedOut ? { exitCode: EXEC_TIMEOUT_EXIT_CODE, output, timedOut } : { exitCode, output, timedOut });
    });
    if (child.pid === undefined) return; // 'error' follows
    try {
      if (ctx.cgroups) joinCgroup(ctx.cgroups, child.pid);
      child.stdin!.end(GO);
    } catch (err) {
      failed = new Error(`cannot put the command in the task's cgroup: ${(err as Error).message}`);
      kill();
    }
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

/** The code the wrapper recorded, if it could (the first bytes only: a task could make the file big through its wrapper's fd). */
function readExitCode(dir: string): number | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path.join(dir, EXIT_CODE), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    const buf = Buffer.alloc(16);
    const text = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Why a task ended, when its cgroup tells more than its code: the kernel's OOM killer. */
function exitDetail(r: TaskRecord): ExitDetail | undefined {
  if (!r.cgroups || oomKills(r.cgroups) === 0) return undefined;
  const mib = r.limits?.memoryBytes !== undefined ? ` of ${Math.round(r.limits.memoryBytes / (1024 * 1024))} MiB` : '';
  return { reason: 'OOMKilled', message: `out of memory: the kernel's OOM killer ended a process of the task, which reached its memory limit${mib}` };
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}

/**
 * Where the last `lines` lines of `file` begin (0 without a limit or file), and where the answer
 * ends: where the file ended when asked or, with `wholeLines` (the task still writes), after its
 * last newline, so a line caught half-written is not given as a line (it comes whole next time).
 */
async function tailSpan(file: string, lines: number | undefined, wholeLines: boolean): Promise<{ start: number; end: number }> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch {
    return { start: 0, end: 0 };
  }
  try {
    const { size } = await fh.stat();
    const all = lines === undefined || lines < 0;
    if (size === 0 || (all && !wholeLines)) return { start: 0, end: size };
    const last = Buffer.alloc(1);
    await fh.read(last, 0, 1, size - 1);
    const partial = last[0] !== 0x0a;
    const end = partial && wholeLines ? await newlineBefore(fh, size, 1) : size;
    if (all) return { start: 0, end };
    if (lines === 0 || end === 0) return { start: end, end };
    // A final newline ends a line, it starts none; the partial line left out ended at a newline.
    return { start: await newlineBefore(fh, partial && !wholeLines ? end : end - 1, lines), end };
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

// ---- users --------------------------------------------------------------------------------

/** Who a task runs as; `switch`: the agent changes to that user when it spawns the task. */
interface Who {
  identity: TaskIdentity;
  switch: boolean;
}

function agentIdentity(): TaskIdentity {
  const uid = process.getuid?.() ?? 0;
  let name = String(uid);
  try {
    name = userInfo().username;
  } catch {
    // no passwd entry for the agent's uid
  }
  return { uid, gid: process.getgid?.() ?? uid, name };
}

/** A user by name or uid, through NSS (`getent passwd`), else /etc/passwd. */
function lookupUser(nameOrUid: string): PasswdEntry | undefined {
  try {
    return parsePasswdLine(execFileSync('getent', ['passwd', nameOrUid], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }));
  } catch {
    try {
      const lines = readFileSync('/etc/passwd', 'utf8').split('\n').map(parsePasswdLine);
      return lines.find((e) => e !== undefined && (e.name === nameOrUid || String(e.uid) === nameOrUid));
    } catch {
      return undefined;
    }
  }
}

function pick(st: Stats): { uid: number; gid: number; mode: number } {
  return { uid: st.uid, gid: st.gid, mode: st.mode };
}

function blockedText(d: { path: string; uid: number; mode: number }): string {
  return `${d.path} (owner uid ${d.uid}, mode ${(d.mode & 0o7777).toString(8).padStart(4, '0')}) does not let it through: chmod o+x ${d.path}, or use a --data-dir whose parent directories do`;
}

function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}
