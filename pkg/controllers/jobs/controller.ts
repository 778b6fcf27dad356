/**
 * The Job controller: the I/O shell around {@link planJob} and {@link planRun}, and the Jobs'
 * frameworks on the offer loop (one {@link PendingWorkFramework} per role, `jobs` for `*`).
 *
 * A Job's sync creates its runs (a fenced create that fails if the run exists, so a time is never
 * run twice), ends replaced runs, trims history and writes the Job's status. A run's sync queues
 * its tasks as pending work (a gang as one all-or-nothing piece), kills what the plan kills through
 * the master, and writes the run's status. Nothing kept in memory is needed by the next leader.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { isFinishedPhase, JOB_LABEL, JOBRUN_LABEL } from '../../api/jobs';
import { nameKey, splitNameKey } from '../../api/keys';
import { lookupKind } from '../../api/kinds';
import { isTerminal } from '../../api/tasks';
import type { Job, JobRun, Task } from '../../api/types.generated';
import { RUNS_BY_JOB, TASKS_BY_FRAMEWORK, TASKS_BY_RUN } from '../../client/informers';
import type { SchedulerDriver } from '../../master/framework';
import { PendingWorkFramework, type PendingWorkOwner } from '../../master/pending-framework';
import { demandOf, type Placed } from '../../scheduler/feasibility';
import type { LaunchTemplate } from '../../scheduler/types';
import { assignmentKey, encodeObject, objectKey } from '../../store/objects';
import type { TxnOp } from '../../store/types';
import type { TimerHandle } from '../../util/clock';
import { jsonEqual } from '../../util/json';
import { fencedBatches, fencedTxn, NotLeaderError, type TermContext } from '../context';
import { WorkQueue } from '../queue';
import { newTaskName } from '../apps/template';
import { planJob, type JobDecision } from './job';
import { ATTEMPT_ANNOTATION, planRun, type RunPlan } from './run';

const JOBS = lookupKind('job')!;
const RUNS = lookupKind('jobrun')!;
const TASKS = lookupKind('task')!;
const NODES = lookupKind('node')!;
const JOB = 'job:';
const RUN = 'run:';
/** Task events sync their run this long after the first of a burst. */
const TASK_EVENTS_COALESCE_MS = 50;
const CONFLICT_RETRY_MS = 500;

export function jobFrameworkId(role: string): string {
  return role === '*' ? 'jobs' : `jobs-${role}`;
}

/** The Job metrics, registered once per process (a controller lives for one leadership term). */
export class JobMetrics {
  readonly runs: Counter<'result'>;
  readonly missed: Counter;
  readonly lag: Histogram;
  constructor(registry: Registry) {
    const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
    this.runs = get('shoal_job_runs_total', () => new Counter({ name: 'shoal_job_runs_total', help: 'Job runs finished, by result: Succeeded, Failed, Missed.', labelNames: ['result'], registers: [registry] }));
    this.missed = get('shoal_job_missed_schedules_total', () => new Counter({ name: 'shoal_job_missed_schedules_total', help: 'Scheduled times not run: past startingDeadlineSeconds when due, or skipped by Forbid.', registers: [registry] }));
    this.lag = get('shoal_job_schedule_lag_seconds', () => new Histogram({
      name: 'shoal_job_schedule_lag_seconds', help: "From a run's scheduled time to its first task RUNNING.",
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300], registers: [registry],
    }));
  }
}

export interface JobControllerOptions extends TermContext {
  metrics?: JobMetrics;
  /** Every Job is synced this often even without changes. @default 30000 */
  resyncMs?: number;
}

export class JobController implements PendingWorkOwner {
  private readonly queue: WorkQueue;
  private readonly log: Logger;
  private readonly frameworks = new Map<string, { fw: PendingWorkFramework; driver: SchedulerDriver }>();
  /** Runs the Job ended as Replaced (concurrencyPolicy Replace), until their status says so. */
  private readonly replacing = new Set<string>();
  /** Task informer keys whose kill was sent. */
  private readonly killing = new Set<string>();
  /** Per object key, the revision of our last write (see write). */
  private readonly writtenAt = new Map<string, number>();
  private timer?: TimerHandle;

  constructor(private readonly o: JobControllerOptions) {
    this.log = o.logger.child({ controller: 'jobs' });
    this.queue = new WorkQueue({ sync: (key) => this.sync(key), logger: this.log, workers: 8, clock: o.clock });
  }

  start(): void {
    const { jobs, jobRuns, tasks } = this.o.informers;
    const jobChanged = (_k: string, job: Job, old?: Job) => {
      this.queue.add(JOB + nameKey(job.metadata.namespace, job.metadata.name));
      // Dependents look at their parents' last success.
      if (!old || old.status?.lastSuccessTime !== job.status?.lastSuccessTime) this.queueDependents(job);
    };
    jobs.addHandlers({ onAdd: jobChanged, onUpdate: (k, j, old) => jobChanged(k, j, old), onDelete: jobChanged });
    const runChanged = (_k: string, run: JobRun, old?: JobRun) => {
      this.queue.add(RUN + keyOf(run));
      if (!old || old.status?.phase !== run.status?.phase) this.queue.add(JOB + nameKey(run.metadata.namespace, run.spec.job));
    };
    jobRuns.addHandlers({ onAdd: runChanged, onUpdate: (k, r, old) => runChanged(k, r, old), onDelete: runChanged });
    const taskChanged = (k: string, t: Task, old?: Task) => {
      const run = t.metadata.labels?.[JOBRUN_LABEL];
      if (!run) return;
      if (isTerminal(t)) this.killing.delete(k);
      if (!old || old.status?.state !== t.status?.state) this.queue.addAfter(RUN + nameKey(t.metadata.namespace, run), TASK_EVENTS_COALESCE_MS);
    };
    tasks.addHandlers({ onAdd: taskChanged, onUpdate: taskChanged, onDelete: (k, t) => { this.killing.delete(k); taskChanged(k, t); } });
    const all = () => {
      for (const j of jobs.list()) this.queue.add(JOB + nameKey(j.metadata.namespace, j.metadata.name));
      for (const r of jobRuns.list()) this.queue.add(RUN + keyOf(r));
    };
    all();
    // Tasks of runs that are gone (deleted while this controller was down).
    for (const t of tasks.list()) {
      const run = t.metadata.labels?.[JOBRUN_LABEL];
      if (run) this.queue.add(RUN + nameKey(t.metadata.namespace, run));
    }
    this.timer = this.o.clock.setInterval(all, this.o.resyncMs ?? 30_000);
    this.timer.unref();
  }

  stop(): void {
    this.o.clock.clearInterval(this.timer);
    this.queue.stop();
  }

  // ---- PendingWorkOwner ----

  placed(runKey: string): Placed[] {
    const out: Placed[] = [];
    for (const t of this.o.informers.tasks.byIndex(TASKS_BY_RUN, runKey)) {
      if (isTerminal(t) || !t.spec.nodeName) continue;
      const n = this.o.informers.nodes.get(objectKey(this.o.prefix, NODES, undefined, t.spec.nodeName));
      out.push({ agent: t.spec.nodeName, hostname: n?.status?.hostname ?? t.spec.nodeName, attributes: { ...n?.status?.attributes } });
    }
    return out;
  }

  changed(runKey: string): void {
    this.queue.add(RUN + runKey);
  }

  // ---- sync ----

  async sync(key: string): Promise<void> {
    try {
      if (key.startsWith(JOB)) await this.syncJob(key.slice(JOB.length));
      else await this.syncRun(key.slice(RUN.length));
    } catch (err) {
      if (err instanceof NotLeaderError) return;
      throw err;
    }
  }

  private async syncJob(jobKey: string): Promise<void> {
    const { namespace, name } = splitNameKey(jobKey);
    const job = this.o.informers.jobs.get(objectKey(this.o.prefix, JOBS, namespace, name));
    const runs = this.o.informers.jobRuns.byIndex(RUNS_BY_JOB, jobKey);
    const strays = runs.filter((r) => !job || r.metadata.ownerReferences?.[0]?.uid !== job.metadata.uid);
    if (strays.length) {
      for (const r of strays) this.log.info({ job: jobKey, run: r.metadata.name, reason: job ? 'JobReplaced' : 'JobDeleted' }, 'run deleted');
      await fencedBatches(this.o, strays.flatMap((r) => this.deleteRunOps(r)));
    }
    if (!job) {
      this.writtenAt.delete(JOB + jobKey);
      return;
    }
    const owned = runs.filter((r) => !strays.includes(r));
    const parents = new Map<string, Job | undefined>();
    for (const p of job.spec.parents ?? []) parents.set(p, this.o.informers.jobs.get(objectKey(this.o.prefix, JOBS, namespace, p)));
    const now = this.o.clock.now();
    const plan = planJob({ job, runs: owned, parents, now });

    if (plan.create) {
      const created = await this.createRun(plan.create, now);
      if (!created) {
        // Already there (a leader change between create and status): the same time is the same run.
        this.log.info({ job: jobKey, run: plan.create.metadata.name }, 'run exists already; not created again');
      }
    }
    for (const r of plan.replace) {
      this.replacing.add(nameKey(namespace, r));
      this.queue.add(RUN + nameKey(namespace, r));
    }
    if (plan.delete.length) {
      const gone = owned.filter((r) => plan.delete.includes(r.metadata.name));
      await fencedBatches(this.o, gone.flatMap((r) => this.deleteRunOps(r)));
      this.log.info({ job: jobKey, runs: plan.delete }, 'run history trimmed');
    }
    this.record(job, jobKey, plan.decisions);
    if (plan.wakeAt !== undefined) this.queue.addAfter(JOB + jobKey, Math.max(0, plan.wakeAt - now) + 1);
    const status = { ...plan.status, observedGeneration: job.metadata.generation };
    if (!jsonEqual(status, job.status ?? {})) await this.write(JOB + jobKey, objectKey(this.o.prefix, JOBS, namespace, name), job, { ...job, status });
  }

  /** One log line (and event) per decision. */
  private record(job: Job, jobKey: string, decisions: JobDecision[]): void {
    const ref = { kind: 'Job', namespace: job.metadata.namespace, name: job.metadata.name, uid: job.metadata.uid };
    for (const d of decisions) {
      switch (d.kind) {
        case 'fired':
          this.log.info({ job: jobKey, run: d.run, trigger: d.trigger, scheduledTime: iso(d.scheduledTime) }, 'run fired');
          void this.o.events.record(ref, 'Normal', 'RunCreated', `run ${d.run} created (${d.trigger}, due ${iso(d.scheduledTime)})`);
          break;
        case 'skipped':
          this.o.metrics?.missed.inc();
          this.log.info({ job: jobKey, scheduledTime: iso(d.scheduledTime), active: d.active }, 'fire time skipped: a run is active (Forbid)');
          void this.o.events.record(ref, 'Normal', 'RunSkipped', `time ${iso(d.scheduledTime)} skipped: ${d.active.join(', ')} still active (concurrencyPolicy Forbid)`);
          break;
        case 'replaced':
          this.log.info({ job: jobKey, runs: d.runs, scheduledTime: iso(d.scheduledTime) }, 'active runs replaced (Replace)');
          void this.o.events.record(ref, 'Normal', 'RunReplaced', `${d.runs.join(', ')} replaced by the run due ${iso(d.scheduledTime)} (concurrencyPolicy Replace)`);
          break;
        case 'missed': {
          this.o.metrics?.missed.inc(d.count);
          const span = d.first !== undefined && d.last !== undefined ? ` between ${iso(d.first)} and ${iso(d.last)}` : '';
          this.log.warn({ job: jobKey, missed: d.count, capped: d.capped, first: d.first && iso(d.first), last: d.last && iso(d.last) }, 'fire times missed');
          void this.o.events.record(ref, 'Warning', 'RunsMissed', `${d.capped ? 'at least ' : ''}${d.count} scheduled time(s)${span} not run: past startingDeadlineSeconds, or older than a later due time (one run per catch-up)`);
          break;
        }
        case 'suspended':
          this.log.info({ job: jobKey, through: iso(d.through) }, 'fire times passed while suspended');
          break;
        case 'waitingForParents':
          this.log.debug({ job: jobKey, missing: d.missing }, 'parents not found');
          break;
        case 'invalidSchedule':
          this.log.warn({ job: jobKey, err: d.message }, 'schedule cannot be read');
          break;
      }
    }
  }

  /** Creates a run unless it exists; false if it did. */
  private async createRun(run: JobRun, now: number): Promise<boolean> {
    const key = objectKey(this.o.prefix, RUNS, run.metadata.namespace, run.metadata.name);
    const stored: JobRun = { ...run, metadata: { ...run.metadata, uid: randomUUID(), generation: 1, creationTimestamp: new Date(now).toISOString() } };
    return (await fencedTxn(this.o, [{ key, modRevision: 0 }], [{ op: 'put', key, value: encodeObject(stored) }])) !== undefined;
  }

  private async syncRun(runKey: string): Promise<void> {
    const { namespace, name } = splitNameKey(runKey);
    const runObjKey = objectKey(this.o.prefix, RUNS, namespace, name);
    const run = this.o.informers.jobRuns.get(runObjKey);
    const tasks = this.o.informers.tasks.byIndex(TASKS_BY_RUN, runKey);
    if (!run) {
      // Deleted (by a user, history, or with its Job): its tasks go too; their agents stop them.
      for (const { fw } of this.frameworks.values()) fw.forget(runKey);
      this.replacing.delete(runKey);
      this.writtenAt.delete(RUN + runKey);
      const live = tasks.filter((t) => !isTerminal(t));
      if (live.length) this.log.info({ run: runKey, tasks: live.map((t) => t.metadata.name) }, 'run deleted: its tasks are stopped');
      if (tasks.length) await fencedBatches(this.o, tasks.flatMap((t) => this.deleteTaskOps(t)));
      this.unregisterIdle();
      return;
    }
    const role = run.spec.template.role ?? '*';
    const inflight = this.frameworks.get(role)?.fw.inflight(runKey) ?? 0;
    const now = this.o.clock.now();
    const plan = planRun({ run, tasks, inflight, now, replaced: this.replacing.has(runKey) });
    this.queueLaunches(runKey, run, plan, now);
    await this.kill(run, tasks, plan);
    if (plan.wakeAt !== undefined) this.queue.addAfter(RUN + runKey, Math.max(0, plan.wakeAt - now) + 1);

    const pending = plan.launch > 0 || this.frameworks.get(role)?.fw.waiting(runKey) ? this.frameworks.get(role)?.fw.whyPending(runKey) : undefined;
    const status = { ...plan.status };
    if (plan.waiting) status.message = plan.waiting;
    if (pending && !plan.finished) {
      status.pending = pending;
      if (!plan.waiting && (pending.available === 0 || pending.refusals?.length || run.spec.template.gang)) status.message = pending.message;
    }
    if (plan.finished) this.replacing.delete(runKey);
    if (jsonEqual(status, run.status ?? {})) return;
    if (!(await this.write(RUN + runKey, runObjKey, run, { ...run, status }))) return;
    this.recordRun(run, status, plan);
  }

  /** Logs, events and metrics of a run's status change (written). */
  private recordRun(run: JobRun, status: JobRun['status'], plan: RunPlan): void {
    const ref = { kind: 'JobRun', namespace: run.metadata.namespace, name: run.metadata.name, uid: run.metadata.uid };
    const runKey = keyOf(run);
    if (status.startTime && !run.status?.startTime) {
      const lag = (Date.parse(status.startTime) - Date.parse(run.spec.scheduledTime)) / 1000;
      if (Number.isFinite(lag) && run.spec.trigger !== 'Manual') this.o.metrics?.lag.observe(Math.max(0, lag));
      this.log.info({ run: runKey, job: run.spec.job, lagSeconds: lag }, 'run started');
      void this.o.events.record(ref, 'Normal', 'Started', `first task running ${lag.toFixed(1)}s after its scheduled time ${run.spec.scheduledTime}`);
    }
    if (plan.finished) {
      this.o.metrics?.runs.inc({ result: plan.finished.phase });
      const log = plan.finished.phase === 'Succeeded' ? this.log.info.bind(this.log) : this.log.warn.bind(this.log);
      log({ run: runKey, job: run.spec.job, phase: plan.finished.phase, reason: plan.finished.reason, attempts: status.attempts }, `run ${plan.finished.phase.toLowerCase()}`);
      void this.o.events.record(ref, plan.finished.phase === 'Succeeded' ? 'Normal' : 'Warning', plan.finished.phase === 'Succeeded' ? 'Succeeded' : plan.finished.reason, plan.finished.message);
    }
  }

  /** Publishes the plan's launches as the run's work in its role's framework. */
  private queueLaunches(runKey: string, run: JobRun, plan: RunPlan, now: number): void {
    const role = run.spec.template.role ?? '*';
    if (plan.launch <= 0) {
      this.frameworks.get(role)?.fw.removeWork(runKey);
      return;
    }
    const { fw } = this.framework(role);
    const before = fw.waiting(runKey);
    fw.setWork({
      key: runKey,
      namespace: run.metadata.namespace ?? 'default',
      demand: demandOf({ ...run.spec.template, ports: [] }),
      template: taskTemplate(run, plan.attempt),
      count: plan.launch,
      gang: plan.gang,
      queuedAt: now,
      newTaskName: () => newTaskName(run.metadata.name),
    });
    if (plan.launch > before) this.log.info({ run: runKey, launch: plan.launch, gang: plan.gang, attempt: plan.attempt }, 'tasks queued for launch');
  }

  private async kill(run: JobRun, tasks: Task[], plan: RunPlan): Promise<void> {
    const names = new Set(plan.kill.map((k) => k.task));
    const targets = tasks.filter((t) => names.has(t.metadata.name) && !this.killing.has(this.taskKey(t)));
    if (!targets.length) return;
    const role = run.spec.template.role ?? '*';
    const { killed } = await this.framework(role).driver.kill(targets.map((t) => ({ namespace: t.metadata.namespace ?? 'default', taskName: t.metadata.name })));
    const reasons = new Map(plan.kill.map((k) => [k.task, k.reason]));
    for (const r of killed) {
      const t = targets.find((x) => x.metadata.name === r.taskName);
      if (!t) continue;
      this.killing.add(this.taskKey(t));
      this.log.info({ run: keyOf(run), task: t.metadata.name, node: t.spec.nodeName, reason: reasons.get(t.metadata.name) }, 'task kill');
    }
  }

  /** The Jobs framework of a role, registered with the master on first use. */
  private framework(role: string): { fw: PendingWorkFramework; driver: SchedulerDriver } {
    let f = this.frameworks.get(role);
    if (!f) {
      const fw = new PendingWorkFramework({ id: jobFrameworkId(role), role, owner: this, logger: this.log });
      f = { fw, driver: this.o.frameworks.register(fw) };
      this.frameworks.set(role, f);
    }
    return f;
  }

  private unregisterIdle(): void {
    const roles = new Set(this.o.informers.jobRuns.list().filter((r) => !isFinishedPhase(r.status?.phase)).map((r) => r.spec.template.role ?? '*'));
    for (const [role, { fw }] of this.frameworks) {
      if (roles.has(role) || !fw.idle() || this.o.informers.tasks.byIndex(TASKS_BY_FRAMEWORK, fw.id).some((t) => !isTerminal(t))) continue;
      this.frameworks.delete(role);
      this.o.frameworks.unregister(fw.id);
    }
  }

  private queueDependents(parent: Job): void {
    for (const j of this.o.informers.jobs.list()) {
      if ((j.metadata.namespace ?? 'default') === (parent.metadata.namespace ?? 'default') && j.spec.parents?.includes(parent.metadata.name)) {
        this.queue.add(JOB + nameKey(j.metadata.namespace, j.metadata.name));
      }
    }
  }

  /**
   * Writes an object with a compare on the revision it was read at; false if it changed since
   * (the informer brings the newer one, and a sync). Nothing is written while the informer has
   * not shown our own last write yet.
   */
  private async write(queueKey: string, key: string, obj: Job | JobRun, next: Job | JobRun): Promise<boolean> {
    if (Number(obj.metadata.resourceVersion) < (this.writtenAt.get(queueKey) ?? 0)) return false;
    const revision = await fencedTxn(this.o, [{ key, modRevision: Number(obj.metadata.resourceVersion) }], [{ op: 'put', key, value: encodeObject(next) }]);
    if (revision === undefined) {
      this.queue.addAfter(queueKey, CONFLICT_RETRY_MS);
      return false;
    }
    this.writtenAt.set(queueKey, revision);
    return true;
  }

  private deleteRunOps(run: JobRun): TxnOp[] {
    const tasks = this.o.informers.tasks.byIndex(TASKS_BY_RUN, keyOf(run));
    return [{ op: 'delete', key: objectKey(this.o.prefix, RUNS, run.metadata.namespace, run.metadata.name) }, ...tasks.flatMap((t) => this.deleteTaskOps(t))];
  }

  private deleteTaskOps(t: Task): TxnOp[] {
    const ops: TxnOp[] = [{ op: 'delete', key: this.taskKey(t) }];
    if (t.spec.nodeName) ops.push({ op: 'delete', key: assignmentKey(this.o.prefix, t.spec.nodeName, t.metadata.namespace ?? 'default', t.metadata.name) });
    return ops;
  }

  private taskKey(t: Task): string {
    return objectKey(this.o.prefix, TASKS, t.metadata.namespace, t.metadata.name);
  }
}

/** What the binder needs to write one task of the run. */
export function taskTemplate(run: JobRun, attempt: number): LaunchTemplate {
  const s = run.spec.template;
  return {
    metadata: {
      labels: { ...run.metadata.labels, [JOB_LABEL]: run.spec.job, [JOBRUN_LABEL]: run.metadata.name },
      ...(s.gang ? { annotations: { [ATTEMPT_ANNOTATION]: String(attempt) } } : {}),
      ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'JobRun', name: run.metadata.name, uid: run.metadata.uid ?? '', controller: true }],
    },
    spec: {
      role: s.role,
      ...(s.container ? { runtime: 'docker' as const, container: s.container } : {}),
      ...(s.cmd !== undefined ? { cmd: s.cmd } : {}),
      ...(s.env ? { env: s.env } : {}),
      ports: [],
      taskKillGracePeriodSeconds: s.taskKillGracePeriodSeconds,
    },
  };
}

function keyOf(obj: { metadata: { namespace?: string; name: string } }): string {
  return nameKey(obj.metadata.namespace, obj.metadata.name);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
