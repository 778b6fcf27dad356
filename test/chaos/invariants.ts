/**
 * The fault suite's invariants, as pure functions over snapshots (no I/O): the runner reads etcd,
 * the agents' task records and /proc, and these decide. Table-tested in
 * test/unit/chaos-invariants.test.ts.
 *
 * - {@link matchOneToOne}: nothing lost or doubled. Every non-terminal Task in etcd has exactly one
 *   live runtime record on its node and real processes on that node; every live record and every
 *   task process belongs to such a Task. Keys are `<node>/<namespace>/<name>-<uid8>`, the name
 *   of the process runtime's task dir.
 * - {@link finalAppCheck}: the App ends at `instances` RUNNING tasks, all of the final version, and
 *   nothing else non-terminal.
 * - {@link CapacitySampler}: fed every revision of the App's Tasks (from an etcd watch), it keeps the
 *   largest number of live tasks at once and the revisions where it exceeded the ceiling
 *   `instances + floor(instances × maximumOverCapacity)`. Live = non-terminal (UNREACHABLE and
 *   KILLING count: they still run, or may). It also records any Task that went from a terminal
 *   state back to a non-terminal one (a resurrection: something wrote a stale status).
 * - {@link staleWindowViolations}: the writes seen while only a deposed leader could have written
 *   as a controller-manager; any write of a kind only the controller-manager makes is a violation.
 */

/** Terminal task states (DESIGN.md): a task in one of these never runs again. */
export const TERMINAL = new Set(['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST']);

/** A Task as stored in etcd, reduced to what the checks need. */
export interface TaskView {
  namespace: string;
  name: string;
  uid: string;
  node: string;
  state: string;
  /** The owning App's name (label shoal.dev/app), when it has one. */
  app?: string;
  /** The App version the task runs (the CHAOS_VERSION env of its spec). */
  version?: string;
}

/** A process-runtime task record (task.json) found in an agent's data dir. */
export interface RecordView {
  node: string;
  namespace: string;
  /** The record dir's name, `<name>-<uid8>`. */
  dir: string;
  pid: number;
  /** Whether its pid is alive and is the process it recorded (same start time, not a zombie). */
  alive: boolean;
}

/** A real process whose cwd is inside an agent's task dir. */
export interface ProcessView {
  pid: number;
  node: string;
  namespace: string;
  /** `<name>-<uid8>` of the task dir its cwd is in. */
  dir: string;
}

/** The process runtime's `<name>-<uid8>` for a task. */
export function taskDirName(name: string, uid: string): string {
  return `${name}-${uid.replace(/[^A-Za-z0-9]/g, '').slice(0, 8) || 'nouid'}`;
}

const taskKey = (t: TaskView) => `${t.node}/${t.namespace}/${taskDirName(t.name, t.uid)}`;
const dirKey = (r: { node: string; namespace: string; dir: string }) => `${r.node}/${r.namespace}/${r.dir}`;

export interface CheckResult {
  ok: boolean;
  problems: string[];
}

const result = (problems: string[]): CheckResult => ({ ok: problems.length === 0, problems });

/** Non-terminal Tasks, live records and task processes match one to one (see the module comment). */
export function matchOneToOne(tasks: TaskView[], records: RecordView[], processes: ProcessView[]): CheckResult {
  const problems: string[] = [];
  const live = tasks.filter((t) => !TERMINAL.has(t.state));
  const wanted = new Map(live.map((t) => [taskKey(t), t]));
  const recordsByKey = group(records.filter((r) => r.alive), dirKey);
  const procsByKey = group(processes, dirKey);
  for (const [key, t] of wanted) {
    const recs = recordsByKey.get(key) ?? [];
    if (recs.length === 0) problems.push(`lost: task ${t.namespace}/${t.name} is ${t.state} on ${t.node} in etcd but its agent runs no such task`);
    if (recs.length > 1) problems.push(`doubled: task ${t.namespace}/${t.name} has ${recs.length} live records on ${t.node}`);
    if (!procsByKey.has(key)) problems.push(`lost: task ${t.namespace}/${t.name} (${t.state} on ${t.node}) has no process`);
  }
  for (const [key, recs] of recordsByKey) {
    if (!wanted.has(key)) problems.push(`orphan: ${key} runs (pid ${recs.map((r) => r.pid).join(', ')}) but no non-terminal Task in etcd is it`);
  }
  for (const [key, procs] of procsByKey) {
    if (!wanted.has(key) && !recordsByKey.has(key)) problems.push(`orphan process: ${key} (pid ${procs.map((p) => p.pid).join(', ')}) belongs to no non-terminal Task and no live record`);
  }
  return result(problems);
}

/** The App ended where it was told: `instances` RUNNING tasks of `version`, nothing else live. */
export function finalAppCheck(tasks: TaskView[], app: string, instances: number, version: string): CheckResult {
  const problems: string[] = [];
  const live = tasks.filter((t) => t.app === app && !TERMINAL.has(t.state));
  const running = live.filter((t) => t.state === 'RUNNING' && t.version === version);
  if (running.length !== instances) problems.push(`${running.length} RUNNING tasks of ${app} at ${version}, want ${instances}`);
  for (const t of live.filter((t) => !(t.state === 'RUNNING' && t.version === version))) problems.push(`left over: ${t.namespace}/${t.name} ${t.state} at ${t.version ?? '?'} on ${t.node}`);
  return result(problems);
}

/** `instances + floor(instances × maximumOverCapacity)`: the most tasks an App may have at once (reconcile.ts upgradeBounds, without its deadlock exception). */
export function capacityCeiling(instances: number, maximumOverCapacity: number, minimumHealthCapacity = 0): number {
  let surge = Math.floor(instances * maximumOverCapacity + 1e-9);
  if (surge === 0 && instances > 0 && Math.ceil(instances * minimumHealthCapacity - 1e-9) >= instances) surge = 1;
  return instances + surge;
}

/** Folds the App's Task states revision by revision (see the module comment). */
export class CapacitySampler {
  /** name → last state seen. */
  private readonly states = new Map<string, string>();
  maxLive = 0;
  maxLiveAtRevision = 0;
  readonly overCeiling: Array<{ revision: number; live: number; tasks: string[] }> = [];
  readonly resurrections: Array<{ revision: number; task: string; from: string; to: string }> = [];
  samples = 0;

  constructor(readonly ceiling: number) {}

  /** Applies one revision's changes (state undefined: the Task was deleted). */
  apply(revision: number, changes: Array<{ name: string; state?: string }>): void {
    for (const c of changes) {
      const before = this.states.get(c.name);
      if (c.state === undefined) this.states.delete(c.name);
      else {
        if (before !== undefined && TERMINAL.has(before) && !TERMINAL.has(c.state)) this.resurrections.push({ revision, task: c.name, from: before, to: c.state });
        this.states.set(c.name, c.state);
      }
    }
    const live = [...this.states].filter(([, s]) => !TERMINAL.has(s));
    this.samples++;
    if (live.length > this.maxLive) {
      this.maxLive = live.length;
      this.maxLiveAtRevision = revision;
    }
    if (live.length > this.ceiling && this.overCeiling.length < 20) this.overCeiling.push({ revision, live: live.length, tasks: live.map(([n, s]) => `${n}:${s}`) });
  }

  /** A full list at `revision` (after a relist): tasks not in it were deleted meanwhile. */
  resync(revision: number, all: Array<{ name: string; state: string }>): void {
    const present = new Set(all.map((t) => t.name));
    this.apply(revision, [...[...this.states.keys()].filter((n) => !present.has(n)).map((name) => ({ name })), ...all]);
  }

  check(): CheckResult {
    const problems = [
      ...this.overCeiling.map((o) => `over capacity at revision ${o.revision}: ${o.live} live tasks > ${this.ceiling} (${o.tasks.join(' ')})`),
      ...this.resurrections.map((r) => `resurrected at revision ${r.revision}: ${r.task} ${r.from} → ${r.to}`),
    ];
    return result(problems);
  }
}

/** One etcd write seen in a stale-leader window. */
export interface WindowWrite {
  type: 'put' | 'delete';
  /** The key without the cluster prefix, e.g. `/registry/tasks/default/web-abc`. */
  key: string;
  value?: string;
  prevValue?: string;
}

/**
 * Writes in the window that only a controller-manager makes: assignment keys, Task creations and
 * deletions, Task spec changes or the states only it sets (LOST, UNREACHABLE), App/Job/JobRun/
 * Framework writes (nobody edits them during the window), a Node marked not ready, the leader
 * key. Agents' writes (Task status, their Node, their lease) and Events (best effort, not
 * fenced: a deposed leader may still record one) are allowed.
 */
export function staleWindowViolations(writes: WindowWrite[]): string[] {
  const out: string[] = [];
  for (const w of writes) {
    const why = controllerOnly(w);
    if (why) out.push(`${w.type} ${w.key}: ${why}`);
  }
  return out;
}

function controllerOnly(w: WindowWrite): string | undefined {
  if (w.key.startsWith('/assignments/')) return 'assignment written';
  if (w.key.startsWith('/leader/')) return 'leader key written';
  if (/^\/registry\/(apps|jobs|jobruns|frameworks)\//.test(w.key)) return 'controller-owned object written';
  if (w.key.startsWith('/registry/tasks/')) {
    if (w.type === 'delete') return 'task deleted';
    if (!w.prevValue) return 'task created';
    const next = parse(w.value);
    const prev = parse(w.prevValue);
    if (JSON.stringify(next?.spec) !== JSON.stringify(prev?.spec)) return 'task spec changed';
    const state = (next?.status as { state?: string } | undefined)?.state;
    if (state === 'LOST' || state === 'UNREACHABLE') return `task marked ${state}`;
  }
  if (w.key.startsWith('/registry/nodes/') && w.type === 'put') {
    const conditions = ((parse(w.value)?.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions ?? []);
    if (conditions.some((c) => c.type === 'Ready' && c.status === 'Unknown')) return 'node marked not ready';
  }
  return undefined;
}

function parse(v: string | undefined): Record<string, unknown> | undefined {
  if (!v) return undefined;
  try {
    return JSON.parse(v) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function group<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const i of items) m.set(key(i), [...(m.get(key(i)) ?? []), i]);
  return m;
}
