/**
 * `shoal describe` text, kubectl-like: aligned `Label:  value` blocks, sub-sections indented by
 * two spaces, conditions and events as small tables. Pure functions of the object, its events
 * and the clock, so they are easy to test.
 */
import type { KindInfo } from '../api/kinds';
import { isFinishedRun } from '../api/jobs';
import { nextTimes, parseSchedule } from '../api/schedule';
import type {
  App, Condition, Constraint, Container, Event, Framework, HealthCheck, Job, JobRun, Node, ObjectMeta, PendingStatus, Port, ReadinessCheck, Resources, Task,
} from '../api/types.generated';
import type { ShoalObject } from '../api/validation';
import type { NodeAllocation } from '../api/allocation';
import { isTerminal } from '../api/tasks';
import {
  eventTime, formatMap, MESOS_TASK_ID_ANNOTATION, nodeStatus, relativeTime, runCompletions, runDuration, secondsDuration, taskPorts,
} from './printers';
import { age, formatTable } from './table';

type Value = string | number | boolean | undefined | null | string[];

type Entry = { field: true; indent: number; label: string; lines: string[] } | { field: false; line: string };

const NONE = '<none>';

/** Collects lines; consecutive fields at one indent have their values aligned, as kubectl's tabwriter does. */
export class DescribeWriter {
  private readonly entries: Entry[] = [];

  /** `Label:  value`; arrays print one item per line, aligned; empty values print `<none>`. */
  field(label: string, value: Value, indent = 0): this {
    const lines = Array.isArray(value) ? value : [value === undefined || value === null || value === '' ? NONE : String(value)];
    this.entries.push({ field: true, indent, label, lines: lines.length ? lines : [NONE] });
    return this;
  }

  /** A heading (`Spec:`) whose fields follow, indented. */
  section(label: string, indent = 0): this {
    return this.text(`${label}:`, indent);
  }

  /** A free line. */
  text(line: string, indent = 0): this {
    this.entries.push({ field: false, line: ' '.repeat(indent) + line });
    return this;
  }

  /** A table with a dashed underline under its header (describe's Conditions and Events). */
  table(header: string[], rows: string[][], indent = 2): this {
    const underline = header.map((h) => '-'.repeat(h.length));
    for (const line of formatTable([header, underline, ...rows])) this.text(line, indent);
    return this;
  }

  /** The text, without a trailing newline. */
  render(): string {
    const out: string[] = [];
    for (let i = 0; i < this.entries.length; ) {
      const e = this.entries[i];
      if (!e.field) {
        out.push(e.line);
        i++;
        continue;
      }
      let j = i;
      while (j < this.entries.length && isFieldAt(this.entries[j], e.indent)) j++;
      out.push(...renderBlock(this.entries.slice(i, j) as Array<Extract<Entry, { field: true }>>));
      i = j;
    }
    return out.map((l) => l.trimEnd()).join('\n');
  }
}

function isFieldAt(e: Entry, indent: number): boolean {
  return e.field && e.indent === indent;
}

function renderBlock(block: Array<Extract<Entry, { field: true }>>): string[] {
  const width = Math.max(...block.map((e) => e.label.length + 1)) + 2;
  const out: string[] = [];
  for (const e of block) {
    const pad = ' '.repeat(e.indent);
    e.lines.forEach((line, k) => out.push(pad + (k === 0 ? `${e.label}:`.padEnd(width) : ' '.repeat(width)) + line));
  }
  return out;
}

/** What describe fetched besides the object and its events. */
export interface DescribeExtras {
  /** An App's tasks (label shoal.dev/app=NAME) or a JobRun's (shoal.dev/jobrun=NAME), or why they could not be listed. */
  tasks?: Task[] | string;
  /** A Job's runs (label shoal.dev/job=NAME), or why they could not be listed. */
  runs?: JobRun[] | string;
  /** The cluster's nodes (a Framework's allocation shares), or why they could not be listed. */
  nodes?: Node[] | string;
  /** What a Node's live tasks hold (the server's sum; absent: nothing), or why it could not be read. */
  allocation?: NodeAllocation | string;
}

/** Recent runs `describe job` lists. */
export const RECENT_RUNS = 10;

/** Everything `describe` prints for one object. `events` are those about it (any order). */
export function describeObject(kind: KindInfo, obj: ShoalObject, events: Event[] | string, now: number, extras: DescribeExtras = {}): string {
  const w = new DescribeWriter();
  describeMeta(w, kind, obj.metadata, now);
  switch (obj.kind) {
    case 'App': describeApp(w, obj, now); break;
    case 'Job': describeJob(w, obj, now, extras.runs ?? []); break;
    case 'JobRun': describeJobRun(w, obj, now); break;
    case 'Task': describeTask(w, obj, now); break;
    case 'Node': describeNode(w, obj, now, extras.allocation); break;
    case 'Event': describeEvent(w, obj); break;
    case 'Framework': describeFramework(w, obj, now); break;
  }
  const conditions = (obj as { status?: { conditions?: Condition[] } }).status?.conditions;
  if (obj.kind !== 'Event') describeConditions(w, conditions, now);
  if (obj.kind === 'App') describeAppTasks(w, extras.tasks ?? [], now);
  if (obj.kind === 'JobRun') describeRunTasks(w, extras.tasks ?? [], now);
  if (obj.kind === 'Framework') {
    describeFrameworkTasks(w, extras.tasks ?? [], now);
    describeFrameworkAllocation(w, obj, extras.tasks ?? [], extras.nodes ?? '<nodes not listed>');
  }
  if (obj.kind !== 'Event') describeEvents(w, events, now);
  return w.render();
}

function timestamp(ts: string | undefined, now: number): string | undefined {
  return ts ? `${ts} (${age(ts, now)} ago)` : undefined;
}

function describeMeta(w: DescribeWriter, kind: KindInfo, m: ObjectMeta, now: number): void {
  w.field('Name', m.name);
  if (kind.namespaced) w.field('Namespace', m.namespace);
  w.field('Labels', formatMap(m.labels, '\n').split('\n'));
  w.field('Annotations', formatMap(m.annotations, '\n').split('\n'));
  w.field('Created', timestamp(m.creationTimestamp, now));
  if (m.deletionTimestamp) w.field('Deleting Since', timestamp(m.deletionTimestamp, now));
  const owner = m.ownerReferences?.find((r) => r.controller) ?? m.ownerReferences?.[0];
  if (owner) w.field('Controlled By', `${owner.kind}/${owner.name}${owner.version !== undefined ? ` (version ${owner.version})` : ''}`);
  if (kind.kind !== 'Event') w.field('Generation', m.generation);
}

function resources(r: Resources | undefined): string {
  return r ? `cpus=${r.cpus ?? 0}, mem=${r.mem ?? 0} MiB, disk=${r.disk ?? 0} MiB` : NONE;
}

function workload(w: DescribeWriter, spec: { cmd?: string; container?: Container; env?: Record<string, string> }): void {
  if (spec.cmd !== undefined) w.field('Command', spec.cmd.split('\n'), 2);
  if (spec.container) {
    w.field('Image', spec.container.image, 2);
    if (spec.container.command) w.field('Entrypoint', JSON.stringify(spec.container.command), 2);
    if (spec.container.args) w.field('Args', JSON.stringify(spec.container.args), 2);
    if (spec.container.user) w.field('User', spec.container.user, 2);
  }
  w.field('Environment', formatMap({ ...spec.env, ...spec.container?.env }, '\n').split('\n'), 2);
}

function port(p: Port, i: number): string {
  const host = p.hostPort ? String(p.hostPort) : 'dynamic';
  const container = p.containerPort !== undefined ? ` -> container ${p.containerPort}` : '';
  return `${p.name ?? `#${i}`}: host ${host}${container}/${p.protocol ?? 'tcp'}`;
}

function constraint(c: Constraint): string {
  return c.filter((x) => x !== undefined).join(' ');
}

function probeTarget(p: HealthCheck | ReadinessCheck): string {
  if ('command' in p && p.protocol === 'COMMAND') return `COMMAND ${p.command?.value ?? ''}`;
  const portRef = p.portName !== undefined ? `port ${p.portName}` : `port index ${p.portIndex ?? 0}`;
  return p.protocol === 'TCP' ? `TCP ${portRef}` : `HTTP ${p.path ?? '/'} on ${portRef}`;
}

function healthCheck(h: HealthCheck): string {
  return `${probeTarget(h)}: grace ${h.gracePeriodSeconds}s, every ${h.intervalSeconds}s, timeout ${h.timeoutSeconds}s, ` +
    `unhealthy after ${h.maxConsecutiveFailures} failures`;
}

function readinessCheck(r: ReadinessCheck): string {
  return `${r.name} ${probeTarget(r)}: every ${r.intervalSeconds}s, timeout ${r.timeoutSeconds}s, ready on ${(r.httpStatusCodesForReady ?? []).join(',')}`;
}

function list<T>(items: T[] | undefined, fmt: (t: T, i: number) => string): string[] {
  return (items ?? []).map(fmt);
}

function describeApp(w: DescribeWriter, app: App, now: number): void {
  const s = app.spec ?? ({} as App['spec']);
  w.section('Spec');
  w.field('Instances', s.instances, 2).field('Role', s.role, 2);
  workload(w, s);
  w.field('Resources', resources(s.resources), 2);
  w.field('Ports', list(s.ports, port), 2);
  w.field('Constraints', list(s.constraints, constraint), 2);
  w.field('Health Checks', list(s.healthChecks, healthCheck), 2);
  w.field('Readiness Checks', list(s.readinessChecks, readinessCheck), 2);
  const u = s.upgradeStrategy;
  w.field('Upgrade Strategy', u && `minimumHealthCapacity=${u.minimumHealthCapacity}, maximumOverCapacity=${u.maximumOverCapacity}`, 2);
  const b = s.backoff;
  w.field('Backoff', b && `${b.seconds}s, factor ${b.factor}, max ${b.maxLaunchDelaySeconds}s`, 2);
  w.field('Kill Selection', s.killSelection, 2).field('Kill Grace Period', s.taskKillGracePeriodSeconds !== undefined ? `${s.taskKillGracePeriodSeconds}s` : undefined, 2);
  const st = app.status ?? {};
  w.section('Status');
  w.field('Observed Generation', st.observedGeneration, 2);
  w.field('Tasks', `${st.tasksStaged ?? 0} staged, ${st.tasksRunning ?? 0} running, ${st.tasksHealthy ?? 0} healthy, ${st.tasksUnhealthy ?? 0} unhealthy`, 2);
  w.field('Up-to-date', st.updatedInstances ?? 0, 2).field('Available', st.availableInstances ?? 0, 2);
  if (st.pendingReason) w.field('Pending', st.pendingReason, 2);
  if (st.pending && st.pendingReason) whyPending(w, st.pending);
  if (st.lastFailure) w.field('Last Failure', lastFailure(st.lastFailure, now), 2);
  const d = st.deployment;
  if (!d) {
    w.field('Deployment', NONE);
    return;
  }
  w.section('Deployment');
  w.field('ID', d.id, 2).field('Target Version', d.targetVersion, 2).field('Step', d.step, 2).field('State', d.state, 2);
  w.field('Updated', `${d.updated ?? 0}/${d.total ?? 0}`, 2);
  w.field('Started', timestamp(d.startedAt, now), 2);
  if (d.finishedAt) w.field('Finished', timestamp(d.finishedAt, now), 2);
  if (d.message) w.field('Message', d.message.split('\n'), 2);
}

/**
 * The agents behind the pending line, per reason with a few example agents each, and the
 * launches the master refused at accept time.
 */
function whyPending(w: DescribeWriter, p: PendingStatus): void {
  const rows: string[][] = [];
  for (const r of p.reasons ?? []) {
    const examples = (r.agents ?? []).map((a) => a.detail ? `${a.name}: ${a.detail}` : a.name);
    const more = r.count > examples.length ? [`(${r.count - examples.length} more)`] : [];
    rows.push([String(r.count), r.message, [...examples, ...more].join('; ')]);
  }
  if (rows.length) {
    w.section('Why Pending', 2);
    w.table(['Agents', 'Reason', 'Examples'], rows, 4);
  }
  for (const r of p.refusals ?? []) w.field(`Refused (${r.reason})`, `${r.count} launch(es)${r.agent ? `, last on ${r.agent}` : ''}`, 4);
}

/** `task on node: STATE (reason), when` and the message below it (Marathon's lastTaskFailure). */
function lastFailure(f: NonNullable<App['status']['lastFailure']>, now: number): string[] {
  const why = f.reason ?? (f.exitCode !== undefined ? `exit code ${f.exitCode}` : undefined);
  const head = `${f.task}${f.node ? ` on ${f.node}` : ''}: ${f.state}${why ? ` (${why})` : ''}${f.at ? `, ${age(f.at, now)} ago` : ''}`;
  return [head, ...(f.message ? f.message.split('\n') : [])];
}

/**
 * A listed section's items, or undefined once the field says why there are none to show: the
 * listing failed (its message; describe still succeeds) or it is empty.
 */
function listedOrSaid<T>(w: DescribeWriter, label: string, items: T[] | string): T[] | undefined {
  if (typeof items === 'string') {
    w.field(label, items);
    return undefined;
  }
  if (!items.length) {
    w.field(label, NONE);
    return undefined;
  }
  return items;
}

/** An App's tasks as a table: NAME, NODE, STATE, HEALTH, PORTS, VERSION (the App generation it runs), AGE. */
function describeAppTasks(w: DescribeWriter, tasks: Task[] | string, now: number): void {
  const listed = listedOrSaid(w, 'Tasks', tasks);
  if (!listed) return;
  w.section('Tasks');
  const sorted = [...listed].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const rows = sorted.map((t) => {
    const healthy = t.status?.healthy;
    const version = t.metadata.ownerReferences?.[0]?.version;
    return [
      t.metadata.name, t.spec?.nodeName ?? NONE, t.status?.state ?? NONE,
      healthy === undefined ? '-' : healthy ? 'healthy' : 'unhealthy',
      t.status?.hostPorts?.length ? t.status.hostPorts.join(',') : NONE,
      version === undefined ? NONE : String(version), age(t.metadata.creationTimestamp, now),
    ];
  });
  w.table(['Name', 'Node', 'State', 'Health', 'Ports', 'Version', 'Age'], rows);
}

function describeJob(w: DescribeWriter, job: Job, now: number, runs: JobRun[] | string): void {
  const s = job.spec ?? ({} as Job['spec']);
  w.section('Spec');
  w.field('Schedule', s.schedule ?? (s.parents?.length ? '<none> (runs after its parents)' : '<none> (runs once)'), 2).field('Timezone', s.timezone, 2).field('Suspend', s.suspend ?? false, 2);
  w.field('Concurrency Policy', s.concurrencyPolicy, 2);
  w.field('Parents', s.parents?.length ? s.parents.join(', ') : undefined, 2);
  w.field('Completions', s.completions ?? 1, 2).field('Parallelism', s.parallelism ?? 1, 2).field('Gang', s.gang ?? false, 2);
  w.field('Retries', s.retries, 2);
  const b = s.backoff;
  w.field('Backoff', b && `${b.seconds}s, factor ${b.factor}, max ${b.maxLaunchDelaySeconds}s`, 2);
  if (s.startingDeadlineSeconds !== undefined) w.field('Starting Deadline', `${s.startingDeadlineSeconds}s`, 2);
  if (s.activeDeadlineSeconds !== undefined) w.field('Active Deadline', `${s.activeDeadlineSeconds}s`, 2);
  w.field('History Limits', `${s.successfulRunsHistoryLimit} succeeded, ${s.failedRunsHistoryLimit} failed`, 2).field('Role', s.role, 2);
  workload(w, s);
  w.field('Resources', resources(s.resources), 2).field('Constraints', list(s.constraints, constraint), 2);
  const st = job.status ?? {};
  w.section('Status');
  w.field('Active', st.active ?? 0, 2).field('Succeeded', st.succeeded ?? 0, 2).field('Failed', st.failed ?? 0, 2);
  w.field('Missed', st.missed ?? 0, 2).field('Skipped', st.skipped ?? 0, 2);
  w.field('Last Run', st.lastRun, 2).field('Last Result', st.lastResult, 2);
  w.field('Last Schedule', timestamp(st.lastScheduleTime, now), 2);
  w.field('Next Schedule', st.nextScheduleTime ? `${st.nextScheduleTime} (${relativeTime(st.nextScheduleTime, now)})` : undefined, 2);
  w.field('Last Success', timestamp(st.lastSuccessTime, now), 2).field('Last Failure', timestamp(st.lastFailureTime, now), 2);
  if (st.lastMissedTime) w.field('Last Missed', timestamp(st.lastMissedTime, now), 2);
  if (st.message) w.field('Message', st.message.split('\n'), 2);
  if (s.schedule !== undefined) w.field('Next Fire Times', fireTimes(job, now), 0);
  describeRecentRuns(w, runs, now);
}

/**
 * The next three times the schedule fires after now, computed here from the spec (in the Job's
 * zone, from its creation for ISO schedules without a start): `ISO (zone-local time)`.
 */
export function fireTimes(job: Job, now: number, n = 3): string[] {
  const s = job.spec;
  if (!s?.schedule) return [];
  const zone = s.timezone ?? 'UTC';
  try {
    const created = Date.parse(job.metadata.creationTimestamp ?? '') || now;
    const times = nextTimes(parseSchedule(s.schedule, zone, created), now, n);
    if (!times.length) return ['<none> (the schedule has no more times)'];
    const note = s.suspend ? ' [suspended: will not run]' : '';
    return times.map((t) => `${new Date(t).toISOString()} (${zoneTime(t, zone)})${note}`);
  } catch (err) {
    return [`<unable to compute: ${(err as Error).message}>`];
  }
}

/** `2024-05-01 14:00:00 CEST`: wall time in an IANA zone. */
export function zoneTime(ms: number, zone: string): string {
  try {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'short',
    }).formatToParts(new Date(ms));
    const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${p.timeZoneName}`;
  } catch {
    return `unknown zone ${zone}`;
  }
}

/** Newest first: by creation, then by name. */
function newestFirst<T extends { metadata: ObjectMeta }>(items: T[]): T[] {
  const t = (o: T) => Date.parse(o.metadata.creationTimestamp ?? '') || 0;
  return [...items].sort((a, b) => t(b) - t(a) || b.metadata.name.localeCompare(a.metadata.name));
}

/** A Job's recent runs as a table, then why its newest active run is pending (if it is). */
function describeRecentRuns(w: DescribeWriter, runs: JobRun[] | string, now: number): void {
  const listed = listedOrSaid(w, 'Recent Runs', runs);
  if (!listed) return;
  const sorted = newestFirst(listed);
  w.section(`Recent Runs${listed.length > RECENT_RUNS ? ` (newest ${RECENT_RUNS} of ${listed.length})` : ''}`);
  const rows = sorted.slice(0, RECENT_RUNS).map((r) => [
    r.metadata.name, r.status?.phase ?? 'Pending', r.spec?.trigger ?? NONE, relativeTime(r.status?.startTime, now), runDuration(r, now),
  ]);
  w.table(['Name', 'Phase', 'Trigger', 'Started', 'Duration'], rows);
  const pending = sorted.find((r) => !isFinishedRun(r) && r.status?.pending);
  if (pending?.status.pending) {
    w.field('Pending Run', `${pending.metadata.name}: ${pending.status.pending.message ?? 'waiting to be placed'}`);
    whyPending(w, pending.status.pending);
  }
}

function describeJobRun(w: DescribeWriter, run: JobRun, now: number): void {
  const s = run.spec ?? ({} as JobRun['spec']);
  const st = run.status ?? {};
  const t = s.template ?? ({} as JobRun['spec']['template']);
  w.field('Job', s.job).field('Trigger', s.trigger).field('Scheduled', timestamp(s.scheduledTime, now));
  if (s.parentRuns?.length) w.field('Parent Runs', s.parentRuns);
  w.field('Phase', st.phase ?? 'Pending');
  w.field('Completions', `${runCompletions(run)} (parallelism ${t.parallelism ?? 1}${t.gang ? ', gang' : ''})`);
  w.field('Counts', `${st.active ?? 0} active, ${st.succeeded ?? 0} succeeded, ${st.failed ?? 0} failed`);
  w.field('Attempts', `${st.attempts ?? 0} (retries ${t.retries ?? 0})`);
  w.field('Started', timestamp(st.startTime, now)).field('Completed', timestamp(st.completionTime, now));
  w.field('Duration', runDuration(run, now));
  w.field('Reason', st.reason).field('Message', st.message?.split('\n'));
  if (st.pending && !isFinishedRun(run)) {
    w.field('Pending', st.pending.message ?? 'waiting to be placed');
    whyPending(w, st.pending);
  }
  if (st.lastFailure) w.field('Last Failure', lastFailure(st.lastFailure, now));
  w.section('Template');
  w.field('Role', t.role, 2);
  workload(w, t);
  w.field('Resources', resources(t.resources), 2);
  if (t.activeDeadlineSeconds !== undefined) w.field('Active Deadline', `${t.activeDeadlineSeconds}s`, 2);
}

/** Tasks as a table, oldest first: NAME, NODE, STATE, one column of the caller's, AGE (or the listing error, or <none>). */
function taskTable(w: DescribeWriter, tasks: Task[] | string, now: number, column: [string, (t: Task) => string]): void {
  const listed = listedOrSaid(w, 'Tasks', tasks);
  if (!listed) return;
  w.section('Tasks');
  const rows = oldestFirst(listed).map((t) => [
    t.metadata.name, t.spec?.nodeName ?? NONE, t.status?.state ?? NONE, column[1](t), age(t.metadata.creationTimestamp, now),
  ]);
  w.table(['Name', 'Node', 'State', column[0], 'Age'], rows);
}

/** A run's tasks: NAME, NODE, STATE, EXIT CODE, AGE. */
function describeRunTasks(w: DescribeWriter, tasks: Task[] | string, now: number): void {
  taskTable(w, tasks, now, ['Exit Code', (t) => (t.status?.exitCode === undefined ? '-' : String(t.status.exitCode))]);
}

/** Oldest first: by creation, then by name. */
export function oldestFirst<T extends { metadata: ObjectMeta }>(items: T[]): T[] {
  return newestFirst(items).reverse();
}

function describeTask(w: DescribeWriter, task: Task, now: number): void {
  const s = task.spec ?? ({} as Task['spec']);
  const st = task.status ?? {};
  w.field('Node', s.nodeName).field('State', st.state);
  if (s.placement) w.field('Placed', placement(s.placement));
  w.field('Healthy', st.healthy === undefined ? '<none> (no health checks)' : st.healthy);
  if (st.ready !== undefined) w.field('Ready', st.ready);
  w.field('Host Ports', taskPorts(task));
  if (st.containerId) w.field('Container ID', st.containerId);
  if (st.pid !== undefined) w.field('PID', st.pid);
  if (!st.containerId && st.pid === undefined) w.field('Container/PID', undefined);
  if (st.exitCode !== undefined) w.field('Exit Code', st.exitCode);
  w.field('Reason', st.reason).field('Message', st.message?.split('\n'));
  w.field('Staged', timestamp(st.stagedAt, now)).field('Started', timestamp(st.startedAt, now)).field('Finished', timestamp(st.finishedAt, now));
  w.section('Spec');
  w.field('Runtime', s.runtime, 2).field('Role', s.role, 2);
  workload(w, s);
  w.field('Resources', resources(s.resources), 2);
  w.field('Ports', list(s.ports, port), 2).field('Health Checks', list(s.healthChecks, healthCheck), 2);
}

/** Why the task is on its node: the framework's ranking and how many agents could have run it. */
function placement(p: NonNullable<Task['spec']['placement']>): string {
  if (p.message) return p.message;
  const r = p.rank;
  return `${p.feasible ?? '?'} of ${p.offers ?? '?'} offered agent(s) could run it; ranked first by ${p.strategy ?? '?'}${r ? ` (groupLoad ${r.groupLoad}, appTasks ${r.appTasks}, free ${r.free})` : ''}`;
}

function describeNode(w: DescribeWriter, node: Node, now: number, allocation: NodeAllocation | string | undefined): void {
  const st = node.status ?? {};
  const cap = st.capacity;
  w.field('Status', nodeStatus(node)).field('Unschedulable', node.spec?.unschedulable ?? false);
  w.field('Address', st.address).field('Hostname', st.hostname).field('Agent Version', st.agentVersion);
  w.field('Runtimes', st.runtimes?.length ? st.runtimes.join(', ') : undefined);
  w.field('Last Heartbeat', lastHeartbeat(node, now));
  w.section('Capacity');
  w.field('cpus', cap?.cpus, 2).field('mem', cap?.mem !== undefined ? `${cap.mem} MiB` : undefined, 2);
  w.field('disk', cap?.disk !== undefined ? `${cap.disk} MiB` : undefined, 2);
  w.field('ports', cap?.ports?.length ? cap.ports.map((r) => `${r[0]}-${r[1]}`).join(', ') : undefined, 2);
  describeNodeAllocation(w, node, allocation);
  w.field('Attributes', formatMap(st.attributes, '\n').split('\n'));
}

/**
 * Allocated: what the node's live tasks hold, as `kubectl describe node` shows (there from the
 * pods on the node; here from the apiserver's sum, which any user who may read nodes may read).
 */
function describeNodeAllocation(w: DescribeWriter, node: Node, allocation: NodeAllocation | string | undefined): void {
  if (typeof allocation === 'string') {
    w.field('Allocated', allocation);
    return;
  }
  const a = allocation?.allocated ?? { cpus: 0, mem: 0, disk: 0, ports: [] };
  const cap = node.status?.capacity;
  const of = (used: number, total: number | undefined, unit = '') => `${round(used)}${unit}${total ? ` (${Math.round((used / total) * 100)}% of ${total}${unit})` : ''}`;
  w.section(`Allocated (${allocation?.tasks ?? 0} live task(s))`);
  w.field('cpus', of(a.cpus, cap?.cpus), 2).field('mem', of(a.mem, cap?.mem, ' MiB'), 2).field('disk', of(a.disk, cap?.disk, ' MiB'), 2);
  w.field('ports', a.ports.length ? a.ports.join(', ') : NONE, 2);
}

/**
 * How often an agent refreshes Node.status.lastHeartbeatTime while its lease lives (the agent's
 * DEFAULT_HEARTBEAT_INTERVAL_SECONDS; the lease itself is renewed every TTL/3 without Node writes).
 */
const HEARTBEAT_REFRESH_SECONDS = 30;

/**
 * When the agent was last heard from. A Ready node whose time has not moved for three refresh
 * periods says why: its agent does not refresh it (an older agent, a host of hollow agents), and
 * Ready (the lease) is what tells liveness.
 */
function lastHeartbeat(node: Node, now: number): string | undefined {
  const ts = node.status?.lastHeartbeatTime;
  const at = ts ? Date.parse(ts) : NaN;
  if (!ts || Number.isNaN(at)) return timestamp(ts, now);
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  if (!ready || now - at <= 3 * HEARTBEAT_REFRESH_SECONDS * 1000) return timestamp(ts, now);
  return `${ts} (${age(ts, now)} ago; not refreshed every ${HEARTBEAT_REFRESH_SECONDS}s by this agent: Ready, from its lease, tells it is alive)`;
}

function describeFramework(w: DescribeWriter, f: Framework, now: number): void {
  const s = f.spec ?? ({} as Framework['spec']);
  const st = f.status ?? {};
  w.field('State', st.state).field('Leader', st.leader);
  w.field('Registered', timestamp(st.registeredTime, now));
  if (st.reregisteredTime) w.field('Reregistered', timestamp(st.reregisteredTime, now));
  w.field('Last Seen', timestamp(st.lastSeenTime, now));
  if (st.disconnectedTime && st.state !== 'connected') {
    w.field('Disconnected', timestamp(st.disconnectedTime, now));
    const deadline = Date.parse(st.disconnectedTime) + (s.failoverTimeoutSeconds ?? 0) * 1000;
    if (st.state === 'disconnected' && !Number.isNaN(deadline)) w.field('Failover Deadline', `${new Date(deadline).toISOString()} (${relativeTime(new Date(deadline).toISOString(), now)})`);
  }
  if (st.message) w.field('Message', st.message.split('\n'));
  w.section('Spec');
  w.field('Name', s.name, 2).field('User', s.user, 2).field('Role', s.role, 2).field('Principal', s.principal, 2);
  w.field('Task Namespace', s.namespace, 2);
  w.field('Failover Timeout', s.failoverTimeoutSeconds === undefined ? undefined : `${secondsDuration(s.failoverTimeoutSeconds)} (${s.failoverTimeoutSeconds}s)`, 2);
  w.field('Capabilities', s.capabilities?.length ? s.capabilities.join(', ') : undefined, 2);
  w.field('Checkpoint', s.checkpoint ?? false, 2);
  if (s.hostname) w.field('Hostname', s.hostname, 2);
  if (s.webuiUrl) w.field('Web UI', s.webuiUrl, 2);
}

/** A framework's tasks: NAME, NODE, STATE, MESOS TASK ID, AGE. */
function describeFrameworkTasks(w: DescribeWriter, tasks: Task[] | string, now: number): void {
  taskTable(w, tasks, now, ['Mesos Task ID', (t) => t.metadata.annotations?.[MESOS_TASK_ID_ANNOTATION] ?? NONE]);
}

interface Totals { cpus: number; mem: number; disk: number }

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;
const percent = (share: number) => `${round(share * 100, 1)}%`;

/**
 * What a framework holds: the resources of its non-terminal tasks, their share of the cluster's
 * capacity (all Nodes) per resource, and the largest of those, its dominant share (DRF).
 */
export function frameworkAllocation(tasks: Task[], nodes: Node[]): { used: Totals; total: Totals; shares: Totals; dominant?: { resource: keyof Totals; share: number } } {
  const used: Totals = { cpus: 0, mem: 0, disk: 0 };
  for (const t of tasks) {
    if (isTerminal(t)) continue;
    used.cpus += t.spec?.resources?.cpus ?? 0;
    used.mem += t.spec?.resources?.mem ?? 0;
    used.disk += t.spec?.resources?.disk ?? 0;
  }
  const total: Totals = { cpus: 0, mem: 0, disk: 0 };
  for (const n of nodes) {
    total.cpus += n.status?.capacity?.cpus ?? 0;
    total.mem += n.status?.capacity?.mem ?? 0;
    total.disk += n.status?.capacity?.disk ?? 0;
  }
  const shares: Totals = { cpus: 0, mem: 0, disk: 0 };
  let dominant: { resource: keyof Totals; share: number } | undefined;
  for (const r of ['cpus', 'mem', 'disk'] as const) {
    shares[r] = total[r] > 0 ? used[r] / total[r] : 0;
    if (total[r] > 0 && (!dominant || shares[r] > dominant.share)) dominant = { resource: r, share: shares[r] };
  }
  return { used: { cpus: round(used.cpus), mem: round(used.mem), disk: round(used.disk) }, total, shares, dominant };
}

function describeFrameworkAllocation(w: DescribeWriter, f: Framework, tasks: Task[] | string, nodes: Node[] | string): void {
  w.section(`Allocation (role ${f.spec?.role ?? NONE})`);
  if (typeof tasks === 'string') {
    w.field('Tasks', tasks, 2);
    return;
  }
  const a = frameworkAllocation(tasks, typeof nodes === 'string' ? [] : nodes);
  w.field('Resources', `cpus=${a.used.cpus}, mem=${a.used.mem} MiB, disk=${a.used.disk} MiB (${tasks.filter((t) => !isTerminal(t)).length} non-terminal task(s))`, 2);
  if (typeof nodes === 'string') {
    w.field('Cluster Capacity', nodes, 2);
    return;
  }
  w.field('Cluster Capacity', `cpus=${round(a.total.cpus)}, mem=${round(a.total.mem)} MiB, disk=${round(a.total.disk)} MiB (${nodes.length} node(s))`, 2);
  // Only resources the cluster has count (as in the allocator's DRF).
  const shares = (['cpus', 'mem', 'disk'] as const).filter((r) => a.total[r] > 0).map((r) => `${r} ${percent(a.shares[r])}`);
  w.field('Shares', shares.length ? shares.join(', ') : undefined, 2);
  w.field('DRF dominant share (this framework\'s tasks)', a.dominant ? `${percent(a.dominant.share)} (${a.dominant.resource})` : NONE, 2);
}

function describeEvent(w: DescribeWriter, e: Event): void {
  const o = e.involvedObject;
  w.field('Type', e.type).field('Reason', e.reason).field('Object', o && `${o.kind.toLowerCase()}/${o.name}`);
  w.field('Message', e.message?.split('\n')).field('Source', [e.source?.component, e.source?.host].filter(Boolean).join(', '));
  w.field('Count', e.count).field('First Seen', e.firstTimestamp).field('Last Seen', e.lastTimestamp);
}

function describeConditions(w: DescribeWriter, conditions: Condition[] | undefined, now: number): void {
  if (!conditions?.length) {
    w.field('Conditions', NONE);
    return;
  }
  w.section('Conditions');
  const rows = conditions.map((c) => [
    c.type, c.status, c.reason ?? '', (c.message ?? '').replace(/\s+/g, ' '), c.lastTransitionTime ? `${age(c.lastTransitionTime, now)} ago` : '',
  ]);
  w.table(['Type', 'Status', 'Reason', 'Message', 'Last Transition'], rows);
}

function describeEvents(w: DescribeWriter, events: Event[] | string, now: number): void {
  const listed = listedOrSaid(w, 'Events', events);
  if (!listed) return;
  w.section('Events');
  const sorted = [...listed].sort((a, b) => (Date.parse(eventTime(a) ?? '') || 0) - (Date.parse(eventTime(b) ?? '') || 0));
  const rows = sorted.map((e) => [
    e.type ?? '', e.reason ?? '', countedAge(e, now), e.source?.component ?? '', (e.message ?? '').replace(/\s+/g, ' '),
  ]);
  w.table(['Type', 'Reason', 'Age', 'From', 'Message'], rows);
}

/** kubectl: `5m`, or `5m (x3 over 10m)` for a repeated event. */
function countedAge(e: Event, now: number): string {
  const last = age(eventTime(e), now);
  return (e.count ?? 1) > 1 && e.firstTimestamp ? `${last} (x${e.count} over ${age(e.firstTimestamp, now)})` : last;
}

/** True when an event is about `obj` (same kind and name, and the same uid when both are known). */
export function eventIsAbout(e: Event, obj: ShoalObject): boolean {
  const ref = e.involvedObject;
  if (!ref || ref.kind !== obj.kind || ref.name !== obj.metadata.name) return false;
  if (ref.namespace && obj.metadata.namespace && ref.namespace !== obj.metadata.namespace) return false;
  return !(ref.uid && obj.metadata.uid && ref.uid !== obj.metadata.uid);
}
