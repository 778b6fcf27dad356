/**
 * How objects look on the terminal: kubectl-style tables per kind (with `-o wide` extras and a
 * NAMESPACE column for `-A`), and `-o json|yaml|name`.
 */
import { dump } from 'js-yaml';
import { API_VERSION, type KindInfo } from '../api/kinds';
import type { App, Condition, Event, Framework, Job, JobRun, Node, Task } from '../api/types.generated';
import { isTerminal } from '../api/tasks';
import type { ShoalObject } from '../api/validation';
import { refString, type OutputFormat } from './args';
import { age, humanDuration } from './table';

/** One table column. `wide` columns appear only with `-o wide`. */
interface Column {
  header: string;
  wide?: boolean;
  cell(obj: ShoalObject, now: number, opts: TableOptions): string;
}

/** Options that shape a table. */
export interface TableOptions {
  wide: boolean;
  /** Adds NAMESPACE as the first column (`-A`). */
  allNamespaces: boolean;
  /** Epoch ms that AGE columns are measured from. */
  now: number;
  /** Resources held by non-terminal tasks, by node name (nodes' ALLOCATED column). */
  allocated?: Map<string, { cpus: number; mem: number }>;
  /** Non-terminal tasks by framework id (frameworks' TASKS column). */
  frameworkTasks?: Map<string, number>;
}

const NONE = '<none>';

const name: Column = { header: 'NAME', cell: (o) => o.metadata.name };
const ageColumn: Column = { header: 'AGE', cell: (o, now) => age(o.metadata.creationTimestamp, now) };
const num = (v: number | undefined): string => String(v ?? 0);
const orNone = (v: string | number | undefined): string => (v === undefined || v === '' ? NONE : String(v));

/** `image`, or the shell command flattened to one line and shortened, for IMAGE/CMD columns. */
export function workloadSummary(spec: { cmd?: string; container?: { image: string } } | undefined): string {
  if (spec?.container) return spec.container.image;
  const cmd = (spec?.cmd ?? '').replace(/\s+/g, ' ').trim();
  if (!cmd) return NONE;
  return cmd.length > 50 ? `${cmd.slice(0, 47)}...` : cmd;
}

/** READY: available instances (running, healthy and ready, of the current version or not) of those wanted. */
function appReady(a: App): string {
  return `${a.status?.availableInstances ?? 0}/${a.status?.instances ?? a.spec?.instances ?? 0}`;
}

const APP_COLUMNS: Column[] = [
  name,
  { header: 'READY', cell: (o) => appReady(o as App) },
  { header: 'UP-TO-DATE', cell: (o) => num((o as App).status?.updatedInstances) },
  { header: 'AVAILABLE', cell: (o) => num((o as App).status?.availableInstances) },
  ageColumn,
  { header: 'ROLE', wide: true, cell: (o) => (o as App).spec?.role ?? '*' },
  { header: 'CPUS', wide: true, cell: (o) => orNone((o as App).spec?.resources?.cpus) },
  { header: 'MEM', wide: true, cell: (o) => orNone((o as App).spec?.resources?.mem) },
  { header: 'IMAGE/CMD', wide: true, cell: (o) => workloadSummary((o as App).spec) },
];

/** `in 4m` for a future time, `4m ago` for a past one, `<none>` when absent or unparsable. */
export function relativeTime(timestamp: string | undefined, now: number): string {
  const t = timestamp ? Date.parse(timestamp) : NaN;
  if (Number.isNaN(t)) return NONE;
  return t >= now ? `in ${humanDuration(t - now)}` : `${humanDuration(now - t)} ago`;
}

/** A run's duration: from its start to its completion, or to now while it runs; `<none>` before it starts. */
export function runDuration(run: JobRun, now: number): string {
  const start = run.status?.startTime ? Date.parse(run.status.startTime) : NaN;
  if (Number.isNaN(start)) return NONE;
  const end = run.status?.completionTime ? Date.parse(run.status.completionTime) : now;
  return humanDuration((Number.isNaN(end) ? now : end) - start);
}

/** COMPLETIONS of a run: tasks succeeded of those its template needs (`1/3`). */
export function runCompletions(run: JobRun): string {
  return `${run.status?.succeeded ?? 0}/${run.spec?.template?.completions ?? 1}`;
}

const job = (o: ShoalObject) => o as Job;
const run = (o: ShoalObject) => o as JobRun;

const JOB_COLUMNS: Column[] = [
  name,
  { header: 'SCHEDULE', cell: (o) => orNone(job(o).spec?.schedule) },
  { header: 'TIMEZONE', cell: (o) => job(o).spec?.timezone ?? 'UTC' },
  { header: 'SUSPEND', cell: (o) => (job(o).spec?.suspend ? 'True' : 'False') },
  { header: 'ACTIVE', cell: (o) => num(job(o).status?.active) },
  { header: 'LAST SCHEDULE', cell: (o, now) => (job(o).status?.lastScheduleTime ? age(job(o).status.lastScheduleTime, now) : NONE) },
  { header: 'NEXT RUN', cell: (o, now) => relativeTime(job(o).status?.nextScheduleTime, now) },
  { header: 'LAST RESULT', cell: (o) => orNone(job(o).status?.lastResult) },
  ageColumn,
  { header: 'ROLE', wide: true, cell: (o) => job(o).spec?.role ?? '*' },
  { header: 'IMAGE/CMD', wide: true, cell: (o) => workloadSummary(job(o).spec) },
  { header: 'PARENTS', wide: true, cell: (o) => orNone(job(o).spec?.parents?.join(',')) },
];

const JOBRUN_COLUMNS: Column[] = [
  name,
  { header: 'JOB', cell: (o) => orNone(run(o).spec?.job) },
  { header: 'TRIGGER', cell: (o) => orNone(run(o).spec?.trigger) },
  { header: 'PHASE', cell: (o) => run(o).status?.phase ?? 'Pending' },
  { header: 'COMPLETIONS', cell: (o) => runCompletions(run(o)) },
  { header: 'ATTEMPTS', cell: (o) => num(run(o).status?.attempts) },
  { header: 'DURATION', cell: (o, now) => runDuration(run(o), now) },
  ageColumn,
  { header: 'SCHEDULED', wide: true, cell: (o, now) => relativeTime(run(o).spec?.scheduledTime, now) },
  { header: 'STARTED', wide: true, cell: (o, now) => relativeTime(run(o).status?.startTime, now) },
  { header: 'REASON', wide: true, cell: (o) => orNone(run(o).status?.reason) },
];

/** Host ports as assigned (status), else as requested when fixed (spec). */
export function taskPorts(t: Task): string {
  const assigned = t.status?.hostPorts ?? [];
  const ports = assigned.length ? assigned : (t.spec?.ports ?? []).map((p) => p.hostPort).filter((p) => p > 0);
  return ports.length ? ports.join(',') : NONE;
}

/** Docker's short container id (12 characters) or `pid N`. */
export function taskRuntimeId(t: Task): string {
  if (t.status?.containerId) return t.status.containerId.slice(0, 12);
  if (t.status?.pid !== undefined) return `pid ${t.status.pid}`;
  return NONE;
}

const TASK_COLUMNS: Column[] = [
  name,
  { header: 'STATE', cell: (o) => orNone((o as Task).status?.state) },
  { header: 'HEALTHY', cell: (o) => orNone((o as Task).status?.healthy === undefined ? undefined : String((o as Task).status.healthy)) },
  { header: 'NODE', cell: (o) => orNone((o as Task).spec?.nodeName) },
  { header: 'PORTS', cell: (o) => taskPorts(o as Task) },
  ageColumn,
  { header: 'CONTAINER/PID', wide: true, cell: (o) => taskRuntimeId(o as Task) },
  { header: 'MESSAGE', wide: true, cell: (o) => orNone((o as Task).status?.message?.replace(/\s+/g, ' ')) },
];

/** `Ready`, `NotReady` or `Unknown` from the Ready condition, plus `,SchedulingDisabled` when cordoned. */
export function nodeStatus(n: Node): string {
  const ready = findCondition(n.status?.conditions, 'Ready');
  const base = ready?.status === 'True' ? 'Ready' : ready?.status === 'False' ? 'NotReady' : 'Unknown';
  return n.spec?.unschedulable ? `${base},SchedulingDisabled` : base;
}

/** `cpus=0.5 mem=64` held by the node's non-terminal tasks, when known. */
function allocatedCell(n: Node, opts: TableOptions): string {
  if (!opts.allocated) return NONE;
  const a = opts.allocated.get(n.metadata.name) ?? { cpus: 0, mem: 0 };
  return `cpus=${Math.round(a.cpus * 1000) / 1000} mem=${Math.round(a.mem)}`;
}

/** Sums the resources of non-terminal tasks per node. */
export function allocationByNode(tasks: Task[]): Map<string, { cpus: number; mem: number }> {
  const out = new Map<string, { cpus: number; mem: number }>();
  for (const t of tasks) {
    const node = t.spec?.nodeName;
    if (!node || isTerminal(t)) continue;
    const a = out.get(node) ?? { cpus: 0, mem: 0 };
    out.set(node, { cpus: a.cpus + (t.spec.resources?.cpus ?? 0), mem: a.mem + (t.spec.resources?.mem ?? 0) });
  }
  return out;
}

/** `k=v,k=v` sorted by key, or `<none>`. */
export function formatMap(map: Record<string, string> | undefined, sep = ','): string {
  const entries = Object.entries(map ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(sep) : NONE;
}

const NODE_COLUMNS: Column[] = [
  name,
  { header: 'STATUS', cell: (o) => nodeStatus(o as Node) },
  { header: 'CPUS', cell: (o) => orNone((o as Node).status?.capacity?.cpus) },
  { header: 'MEM', cell: (o) => orNone((o as Node).status?.capacity?.mem) },
  { header: 'ALLOCATED', cell: (o, _now, opts) => allocatedCell(o as Node, opts) },
  { header: 'ATTRIBUTES', cell: (o) => formatMap((o as Node).status?.attributes) },
  ageColumn,
  { header: 'ADDRESS', wide: true, cell: (o) => orNone((o as Node).status?.address) },
  { header: 'RUNTIMES', wide: true, cell: (o) => orNone((o as Node).status?.runtimes?.join(',')) },
  { header: 'VERSION', wide: true, cell: (o) => orNone((o as Node).status?.agentVersion) },
];

/** The label a framework's tasks carry: its framework id (the Framework's name). */
export const FRAMEWORK_TASK_LABEL = 'shoal.dev/framework';
/** The annotation that keeps the Mesos TaskID an external framework gave a task. */
export const MESOS_TASK_ID_ANNOTATION = 'mesos.shoal.dev/task-id';

/** Counts non-terminal tasks per framework id (label shoal.dev/framework). */
export function tasksByFramework(tasks: Task[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of tasks) {
    const id = t.metadata.labels?.[FRAMEWORK_TASK_LABEL];
    if (!id || isTerminal(t)) continue;
    out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

/** True when a kind's table has columns computed from tasks (nodes' ALLOCATED, frameworks' TASKS). */
export function tableNeedsTasks(kind: KindInfo): boolean {
  return kind.kind === 'Node' || kind.kind === 'Framework';
}

/** Fills the task-derived table options of a kind from all tasks (see {@link tableNeedsTasks}). */
export function addTaskColumns(kind: KindInfo, opts: TableOptions, tasks: Task[]): void {
  if (kind.kind === 'Node') opts.allocated = allocationByNode(tasks);
  if (kind.kind === 'Framework') opts.frameworkTasks = tasksByFramework(tasks);
}

/** A number of seconds as a duration (`1w` is `7d`), `<none>` when absent. */
export function secondsDuration(seconds: number | undefined): string {
  return seconds === undefined ? NONE : humanDuration(seconds * 1000);
}

const fw = (o: ShoalObject) => o as Framework;

/** Age of disconnectedTime while the framework is not connected. */
function disconnectedCell(f: Framework, now: number): string {
  const t = f.status?.disconnectedTime;
  return t && f.status?.state !== 'connected' ? age(t, now) : NONE;
}

const FRAMEWORK_COLUMNS: Column[] = [
  name,
  { header: 'FRAMEWORK', cell: (o) => orNone(fw(o).spec?.name) },
  { header: 'ROLE', cell: (o) => orNone(fw(o).spec?.role) },
  { header: 'STATE', cell: (o) => orNone(fw(o).status?.state) },
  { header: 'PRINCIPAL', cell: (o) => orNone(fw(o).spec?.principal) },
  { header: 'TASKS', cell: (o, _now, opts) => (opts.frameworkTasks ? String(opts.frameworkTasks.get(o.metadata.name) ?? 0) : NONE) },
  ageColumn,
  { header: 'USER', wide: true, cell: (o) => orNone(fw(o).spec?.user) },
  { header: 'FAILOVER', wide: true, cell: (o) => secondsDuration(fw(o).spec?.failoverTimeoutSeconds) },
  { header: 'LEADER', wide: true, cell: (o) => orNone(fw(o).status?.leader) },
  { header: 'DISCONNECTED', wide: true, cell: (o, now) => disconnectedCell(fw(o), now) },
];

/** When an event last happened: lastTimestamp, else firstTimestamp, else when it was stored. */
export function eventTime(e: Event): string | undefined {
  return e.lastTimestamp ?? e.firstTimestamp ?? e.metadata.creationTimestamp;
}

const EVENT_COLUMNS: Column[] = [
  { header: 'LAST SEEN', cell: (o, now) => age(eventTime(o as Event), now) },
  { header: 'TYPE', cell: (o) => orNone((o as Event).type) },
  { header: 'REASON', cell: (o) => orNone((o as Event).reason) },
  { header: 'OBJECT', cell: (o) => `${(o as Event).involvedObject?.kind?.toLowerCase()}/${(o as Event).involvedObject?.name}` },
  { header: 'MESSAGE', cell: (o) => orNone((o as Event).message?.replace(/\s+/g, ' ')) },
  { header: 'SOURCE', wide: true, cell: (o) => orNone((o as Event).source?.component) },
  { header: 'COUNT', wide: true, cell: (o) => num((o as Event).count) },
  { header: 'FIRST SEEN', wide: true, cell: (o, now) => age((o as Event).firstTimestamp, now) },
];

const COLUMNS: Record<string, Column[]> = {
  App: APP_COLUMNS, Job: JOB_COLUMNS, JobRun: JOBRUN_COLUMNS, Framework: FRAMEWORK_COLUMNS, Task: TASK_COLUMNS, Node: NODE_COLUMNS, Event: EVENT_COLUMNS,
};

function columnsFor(kind: KindInfo, opts: TableOptions): Column[] {
  const cols = (COLUMNS[kind.kind] ?? [name, ageColumn]).filter((c) => opts.wide || !c.wide);
  if (opts.allNamespaces && kind.namespaced) cols.unshift({ header: 'NAMESPACE', cell: (o) => o.metadata.namespace ?? '' });
  return cols;
}

/** The header row of a kind's table. */
export function tableHeader(kind: KindInfo, opts: TableOptions): string[] {
  return columnsFor(kind, opts).map((c) => c.header);
}

/** One object's table row. */
export function tableRow(kind: KindInfo, obj: ShoalObject, opts: TableOptions): string[] {
  return columnsFor(kind, opts).map((c) => c.cell(obj, opts.now, opts));
}

/** Header plus one row per object, unaligned (see formatTable). */
export function tableRows(kind: KindInfo, objs: ShoalObject[], opts: TableOptions): string[][] {
  return [tableHeader(kind, opts), ...objs.map((o) => tableRow(kind, o, opts))];
}

/** Events oldest first (kubectl events); JobRuns by creation (manual and scheduled names do not sort by time); other kinds keep the server's order. */
export function sortForDisplay(kind: KindInfo, items: ShoalObject[]): ShoalObject[] {
  if (kind.kind === 'JobRun') {
    const created = (o: ShoalObject) => Date.parse(o.metadata.creationTimestamp ?? '') || 0;
    return [...items].sort((a, b) => created(a) - created(b) || a.metadata.name.localeCompare(b.metadata.name));
  }
  if (kind.kind !== 'Event') return items;
  const time = (o: ShoalObject) => Date.parse(eventTime(o as Event) ?? '') || 0;
  return [...items].sort((a, b) => time(a) - time(b));
}

/** A single object as `-o json` (pretty), `-o yaml` or `-o name` prints it. */
export function formatObject(kind: KindInfo, obj: ShoalObject, format: 'json' | 'yaml' | 'name'): string {
  if (format === 'name') return refString(kind, obj.metadata.name);
  if (format === 'json') return JSON.stringify(obj, null, 2);
  return toYaml(obj);
}

/** A list as `-o json` (an `AppList`), `-o yaml` (a kubectl `List`) or `-o name` (one line each). */
export function formatList(kind: KindInfo, items: ShoalObject[], resourceVersion: string | undefined, format: 'json' | 'yaml' | 'name'): string {
  if (format === 'name') return items.map((o) => refString(kind, o.metadata.name)).join('\n');
  const metadata = { resourceVersion: resourceVersion ?? '' };
  if (format === 'json') return JSON.stringify({ kind: `${kind.kind}List`, apiVersion: API_VERSION, metadata, items }, null, 2);
  return toYaml({ apiVersion: API_VERSION, kind: 'List', items, metadata });
}

function toYaml(value: unknown): string {
  // Unlimited width: folded long commands would read differently when copied back into a manifest.
  return dump(value, { noRefs: true, lineWidth: -1 }).trimEnd();
}

/** kubectl's message for an empty list, printed on stderr. */
export function emptyListMessage(kind: KindInfo, namespace: string | undefined): string {
  return kind.namespaced && namespace !== undefined ? `No resources found in ${namespace} namespace.` : 'No resources found';
}

/** True for a non-table format that prints objects instead of rows. */
export function isObjectFormat(format: OutputFormat): format is 'json' | 'yaml' | 'name' {
  return format === 'json' || format === 'yaml' || format === 'name';
}

/** The condition of a type, if present. */
export function findCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
