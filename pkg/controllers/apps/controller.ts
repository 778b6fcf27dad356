/**
 * The App controller: the I/O shell around {@link reconcileApp}. Apps and Tasks come from
 * informers; each App key goes through a work queue to `sync`, which plans, kills (deletes
 * assignment keys, so agents stop the tasks with their grace period), hands launches to the App
 * framework as pending work, garbage-collects old terminal tasks, finishes deletions and writes
 * App status. Every write is fenced on the leader key. Nothing it keeps in memory is needed by
 * the next leader: pending work is derived from the Apps and Tasks on every sync.
 */
import type { Logger } from 'pino';
import { APP_FINALIZER, appHistoryPrefix } from '../../api/apps';
import { lookupKind } from '../../api/kinds';
import type { App, Task, TaskFailure } from '../../api/types.generated';
import { demandOf, type Placed } from '../../scheduler/feasibility';
import { PendingSummary } from '../../scheduler/pending';
import type { Framework, SchedulerDriver } from '../../scheduler/types';
import { assignmentKey, encodeObject, objectKey, prefixEnd } from '../../store/objects';
import type { TxnOp } from '../../store/types';
import { jsonEqual } from '../../util/json';
import { fencedTxn, NotLeaderError, type TermContext } from '../context';
import { isTerminal } from '../../api/tasks';
import { WorkQueue } from '../queue';
import { AppFramework, type LaunchQueue, type PendingWork } from './framework';
import { reconcileApp, type AppPlan, type KillReason } from './reconcile';
import { appStatus, countsAsFailure, deadlineAt, isProgressOnly, lastFailureOf, nextFailures, seedFailures, type Failures } from './status';
import { configHash, keyOf, ownedBy, ownerKey, taskTemplate } from './template';

const APPS = lookupKind('app')!;
const TASKS = lookupKind('task')!;
const NODES = lookupKind('node')!;
/** Least time between two status writes of one App that change only counts and progress. */
const PROGRESS_STATUS_INTERVAL_MS = 1000;
/**
 * Task events sync their App this long after the first of a burst: an App of 100 instances
 * starting at once is then synced a few times, not 200 (each sync reads all its tasks).
 */
const TASK_EVENTS_COALESCE_MS = 50;
/** A write of the App lost its compare: sync again after this long if no newer App arrived by then. */
const APP_CONFLICT_RETRY_MS = 500;
/** Deletes per transaction: within etcd's 128 ops with the fence compare. */
const BATCH = 120;

export interface AppControllerOptions extends TermContext {
  /** Registers a framework with the master; returns its driver. */
  registerFramework(fw: Framework): SchedulerDriver;
  /** Terminal tasks kept per App for `describe` and backoff history. @default 5 */
  terminalHistory?: number;
  /** Every App is synced this often even without changes (time-based decisions). @default 30000 */
  resyncMs?: number;
  now?: () => number;
}

export class AppController implements LaunchQueue {
  private readonly queue: WorkQueue;
  private readonly now: () => number;
  private readonly log: Logger;
  /** App key → informer keys of its tasks. */
  private readonly tasksByApp = new Map<string, Set<string>>();
  /** App key → task name → where it was placed: launched, not yet in the informer. */
  private readonly inflight = new Map<string, Map<string, Placed>>();
  /** Informer keys of tasks whose kill was sent and that have not ended yet. */
  private readonly killing = new Set<string>();
  private readonly failures = new Map<string, Failures>();
  /** Failures seen since the App's last sync (epoch ms each). */
  private readonly failedAt = new Map<string, number[]>();
  private readonly work = new Map<string, PendingWork>();
  /** When each App's status was last written (progress-only changes wait PROGRESS_STATUS_INTERVAL_MS). */
  private readonly statusWrittenAt = new Map<string, number>();
  /** Per App, the revision of our last write of it (see writeApp). */
  private readonly appWrittenAt = new Map<string, number>();
  private readonly frameworks = new Map<string, { fw: AppFramework; driver: SchedulerDriver }>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly o: AppControllerOptions) {
    this.now = o.now ?? Date.now;
    this.log = o.logger.child({ controller: 'apps' });
    this.queue = new WorkQueue({ sync: (key) => this.sync(key), logger: this.log, workers: 16 });
  }

  start(): void {
    const { apps, tasks } = this.o.informers;
    const appChanged = (_k: string, app: App) => this.queue.add(keyOf(app));
    apps.addHandlers({ onAdd: appChanged, onUpdate: appChanged, onDelete: appChanged });
    tasks.addHandlers({
      onAdd: (k, t) => this.taskChanged(k, t),
      onUpdate: (k, t, old) => this.taskChanged(k, t, old),
      onDelete: (k, t) => this.taskDeleted(k, t),
    });
    for (const [k, t] of tasks.entries()) this.index(k, t);
    for (const app of apps.list()) this.queue.add(keyOf(app));
    for (const key of this.tasksByApp.keys()) this.queue.add(key);
    this.timer = setInterval(() => {
      for (const app of this.o.informers.apps.list()) this.queue.add(keyOf(app));
      for (const key of this.tasksByApp.keys()) this.queue.add(key);
    }, this.o.resyncMs ?? 30_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.queue.stop();
  }

  // ---- LaunchQueue (read by the frameworks) ----

  pending(role: string): PendingWork[] {
    return [...this.work.values()].filter((w) => w.role === role && w.count > 0).sort((a, b) => a.queuedAt - b.queuedAt);
  }

  placed(appKey: string): Placed[] {
    const out: Placed[] = [];
    for (const k of this.tasksByApp.get(appKey) ?? []) {
      const t = this.o.informers.tasks.get(k);
      if (t && !isTerminal(t) && t.spec.nodeName) out.push(this.placement(t.spec.nodeName));
    }
    out.push(...(this.inflight.get(appKey)?.values() ?? []));
    return out;
  }

  reserve(appKey: string, taskName: string, where: Placed): void {
    let m = this.inflight.get(appKey);
    if (!m) this.inflight.set(appKey, (m = new Map()));
    m.set(taskName, where);
  }

  release(appKey: string, taskName: string): void {
    this.inflight.get(appKey)?.delete(taskName);
  }

  changed(appKey: string): void {
    this.queue.add(appKey);
  }

  // ---- informer handlers ----

  private taskChanged(k: string, t: Task, old?: Task): void {
    this.index(k, t);
    const app = ownerKey(t);
    if (!app) return;
    this.inflight.get(app)?.delete(t.metadata.name);
    if (isTerminal(t)) {
      this.killing.delete(k);
      const state = t.status?.state;
      if (old && !isTerminal(old) && countsAsFailure(state)) {
        const list = this.failedAt.get(app) ?? [];
        list.push(Date.parse(t.status?.finishedAt ?? '') || this.now());
        this.failedAt.set(app, list);
      }
    }
    if (!old || old.status?.state !== t.status?.state || old.status?.healthy !== t.status?.healthy || old.status?.ready !== t.status?.ready) this.queue.addAfter(app, TASK_EVENTS_COALESCE_MS);
  }

  private taskDeleted(k: string, t: Task): void {
    this.killing.delete(k);
    const app = ownerKey(t);
    if (!app) return;
    const set = this.tasksByApp.get(app);
    set?.delete(k);
    if (set?.size === 0) this.tasksByApp.delete(app);
    this.queue.addAfter(app, TASK_EVENTS_COALESCE_MS);
  }

  private index(k: string, t: Task): void {
    const app = ownerKey(t);
    if (!app) return;
    let set = this.tasksByApp.get(app);
    if (!set) this.tasksByApp.set(app, (set = new Set()));
    set.add(k);
  }

  // ---- sync ----

  /** Converges one App (`<namespace>/<name>`). */
  async sync(appKey: string): Promise<void> {
    const [namespace, name] = appKey.split('/') as [string, string];
    const app = this.o.informers.apps.get(objectKey(this.o.prefix, APPS, namespace, name));
    const all = [...(this.tasksByApp.get(appKey) ?? [])].map((k) => this.o.informers.tasks.get(k)).filter((t): t is Task => t !== undefined);
    try {
      if (!app) {
        this.forget(appKey);
        await this.removeStrays(appKey, all, 'AppGone');
        return;
      }
      const strays = all.filter((t) => !ownedBy(t, app));
      if (strays.length) await this.removeStrays(appKey, strays, 'AppReplaced');
      if (!app.metadata.deletionTimestamp && !app.metadata.finalizers?.includes(APP_FINALIZER)) {
        await this.writeApp(app, { ...app, metadata: { ...app.metadata, finalizers: [...(app.metadata.finalizers ?? []), APP_FINALIZER] } });
        return;
      }
      await this.reconcile(appKey, app, all.filter((t) => ownedBy(t, app)));
    } catch (err) {
      if (err instanceof NotLeaderError) return; // the term is ending; the next leader starts over
      throw err;
    }
  }

  private async reconcile(appKey: string, app: App, tasks: Task[]): Promise<void> {
    const now = this.now();
    const hash = configHash(app);
    const failures = this.trackFailures(appKey, tasks, now);
    const inflight = this.inflight.get(appKey)?.size ?? 0;
    const killing = new Set(tasks.filter((t) => this.killing.has(objectKey(this.o.prefix, TASKS, t.metadata.namespace, t.metadata.name))).map((t) => t.metadata.name));
    const plan = reconcileApp({ app, configHash: hash, tasks, killing, now, failures, inflight });
    this.log.debug({ app: appKey, tasks: tasks.length, inflight, launch: plan.launch, kill: plan.kill.length, step: plan.deployment.step }, 'app synced');

    // Launches are published before any await: the framework may launch from the previous work while a kill
    // is being written, and a count computed before those launches would then launch them twice.
    this.queueLaunches(appKey, app, hash, plan, now);
    await this.kill(app, tasks, plan.kill);
    if (plan.delayUntil !== undefined) this.queue.addAfter(appKey, plan.delayUntil - now + 1);

    if (app.metadata.deletionTimestamp) {
      if (plan.deployment.done) await this.finishDeletion(appKey, app, tasks);
      return;
    }
    await this.collectGarbage(tasks);
    await this.writeStatus(app, plan, now, failures, lastFailureOf(tasks));
  }

  private trackFailures(appKey: string, tasks: Task[], now: number): Failures {
    const prev = this.failures.get(appKey) ?? seedFailures(tasks);
    const healthySince = tasks
      .filter((t) => t.status?.state === 'RUNNING' && t.status.healthy !== false && t.status.startedAt)
      .map((t) => Date.parse(t.status.startedAt!));
    const next = nextFailures(prev, { failedAt: this.failedAt.get(appKey) ?? [], healthySince }, now);
    this.failedAt.delete(appKey);
    this.failures.set(appKey, next);
    if (next.count > prev.count) this.log.info({ app: appKey, failures: next.count }, 'task failed; launches back off');
    return next;
  }

  /** Sends the plan's kills: each task's assignment key is deleted, its agent stops it. */
  private async kill(app: App, tasks: Task[], kills: AppPlan['kill']): Promise<void> {
    if (kills.length === 0) return;
    const byName = new Map(tasks.map((t) => [t.metadata.name, t]));
    const ops: TxnOp[] = [];
    const sent: Array<{ key: string; task: Task; reason: KillReason }> = [];
    for (const k of kills) {
      const t = byName.get(k.task);
      if (!t) continue;
      const key = objectKey(this.o.prefix, TASKS, t.metadata.namespace, t.metadata.name);
      if (t.spec.nodeName) ops.push({ op: 'delete', key: assignmentKey(this.o.prefix, t.spec.nodeName, t.metadata.namespace ?? 'default', t.metadata.name) });
      sent.push({ key, task: t, reason: k.reason });
    }
    await this.fencedBatches(ops);
    const byReason = new Map<KillReason, string[]>();
    for (const s of sent) {
      this.killing.add(s.key);
      this.log.info({ app: keyOf(app), task: s.task.metadata.name, node: s.task.spec.nodeName, reason: s.reason, state: s.task.status?.state }, 'task kill');
      byReason.set(s.reason, [...(byReason.get(s.reason) ?? []), s.task.metadata.name]);
    }
    for (const [reason, names] of byReason) {
      void this.o.events.record(ref(app), reason === 'Unhealthy' ? 'Warning' : 'Normal', `Killing${reason}`, `killing ${names.length} task(s) (${KILL_WHY[reason]}): ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''}`);
    }
  }

  /** Publishes the plan's launches as pending work for the App's role framework. */
  private queueLaunches(appKey: string, app: App, hash: string, plan: AppPlan, now: number): void {
    const prev = this.work.get(appKey);
    if (plan.launch <= 0) {
      if (prev) this.work.delete(appKey);
      return;
    }
    const sameWork = prev && prev.hash === hash && prev.role === app.spec.role;
    const w: PendingWork = {
      key: appKey,
      namespace: app.metadata.namespace ?? 'default',
      appName: app.metadata.name,
      role: app.spec.role,
      demand: demandOf(app.spec),
      template: taskTemplate(app, hash),
      hash,
      count: plan.launch,
      queuedAt: prev?.queuedAt ?? now,
      summary: sameWork ? prev.summary : new PendingSummary(),
    };
    this.work.set(appKey, w);
    if (!prev || !sameWork || plan.launch > prev.count) {
      this.log.info({ app: appKey, generation: app.metadata.generation, launch: plan.launch, step: plan.deployment.step }, 'instances queued for launch');
      this.wake(app.spec.role);
    }
  }

  private wake(role: string): void {
    let f = this.frameworks.get(role);
    if (!f) {
      const fw = new AppFramework(role, this, this.log);
      f = { fw, driver: this.o.registerFramework(fw) };
      this.frameworks.set(role, f);
    }
    f.fw.wake(f.driver);
  }

  /** Deletes terminal tasks beyond the App's short history (newest kept). */
  private async collectGarbage(tasks: Task[]): Promise<void> {
    const keep = this.o.terminalHistory ?? 5;
    const ended = tasks.filter(isTerminal).sort((a, b) => finished(b) - finished(a));
    if (ended.length <= keep) return;
    await this.fencedBatches(ended.slice(keep).flatMap((t) => this.deleteTaskOps(t)));
  }

  /** The App's tasks have all ended: delete them, its history and the App itself (its finalizer done). */
  private async finishDeletion(appKey: string, app: App, tasks: Task[]): Promise<void> {
    const history = appHistoryPrefix(this.o.prefix, app.metadata.namespace ?? 'default', app.metadata.name);
    await this.fencedBatches([...tasks.flatMap((t) => this.deleteTaskOps(t)), { op: 'deleteRange', key: history, end: prefixEnd(history) }]);
    const others = (app.metadata.finalizers ?? []).filter((f) => f !== APP_FINALIZER);
    const key = objectKey(this.o.prefix, APPS, app.metadata.namespace, app.metadata.name);
    if (others.length) await this.writeApp(app, { ...app, metadata: { ...app.metadata, finalizers: others } });
    else if (!(await fencedTxn(this.o, [{ key, modRevision: Number(app.metadata.resourceVersion) }], [{ op: 'delete', key }]))) return this.queue.addAfter(appKey, 50);
    this.forget(appKey);
    this.log.info({ app: appKey, tasks: tasks.length }, 'app deleted: tasks stopped and removed');
  }

  /**
   * Tasks of no App (deleted without its finalizer, or an earlier App of the same name): deleted
   * with their assignment keys, so their agents stop them (as `shoal delete task` does).
   */
  private async removeStrays(appKey: string, tasks: Task[], why: string): Promise<void> {
    for (const t of tasks.filter((x) => !isTerminal(x))) this.log.info({ app: appKey, task: t.metadata.name, node: t.spec.nodeName, reason: why }, 'task kill');
    await this.fencedBatches(tasks.flatMap((t) => this.deleteTaskOps(t)));
  }

  private deleteTaskOps(t: Task): TxnOp[] {
    const ops: TxnOp[] = [{ op: 'delete', key: objectKey(this.o.prefix, TASKS, t.metadata.namespace, t.metadata.name) }];
    if (t.spec.nodeName) ops.push({ op: 'delete', key: assignmentKey(this.o.prefix, t.spec.nodeName, t.metadata.namespace ?? 'default', t.metadata.name) });
    return ops;
  }

  private async writeStatus(app: App, plan: AppPlan, now: number, failures: Failures, lastFailure: TaskFailure | undefined): Promise<void> {
    const appKey = keyOf(app);
    const w = this.work.get(appKey);
    let pendingReason: string | undefined;
    if (plan.delayUntil !== undefined) pendingReason = `backing off after ${failures.count} failed task(s): next launch in ${Math.ceil((plan.delayUntil - now) / 1000)}s`;
    else if (w && w.count > 0 && w.summary.summary().reasons.length > 0) pendingReason = w.summary.message();
    const { status, events } = appStatus({ app, plan, now, pendingReason, lastFailure });
    const at = deadlineAt(app, status.deployment);
    if (at !== undefined) this.queue.addAfter(appKey, Math.max(0, at - now));
    if (jsonEqual(status, app.status ?? {})) return;
    const wait = (this.statusWrittenAt.get(appKey) ?? -Infinity) + PROGRESS_STATUS_INTERVAL_MS - now;
    if (wait > 0 && events.length === 0 && isProgressOnly(app.status, status)) {
      // Counts only: written with the next significant change, or by a sync in `wait` ms.
      this.queue.addAfter(appKey, wait);
      return;
    }
    if (!(await this.writeApp(app, { ...app, status }))) return;
    this.statusWrittenAt.set(appKey, now);
    for (const e of events) {
      this.log.info({ app: appKey, reason: e.reason, generation: app.metadata.generation }, e.message);
      void this.o.events.record(ref(app), e.type, e.reason, e.message);
    }
  }

  /**
   * Writes the App with a compare on the revision it was read at; false if it changed since (the
   * informer brings the newer App, and with it a sync). Nothing is written while the informer has
   * not yet shown our own last write: that compare could only fail, and under a watch lag of
   * seconds such retries would spin on etcd.
   */
  private async writeApp(app: App, next: App): Promise<boolean> {
    const appKey = keyOf(app);
    if (Number(app.metadata.resourceVersion) < (this.appWrittenAt.get(appKey) ?? 0)) return false; // its echo brings a sync
    const key = objectKey(this.o.prefix, APPS, app.metadata.namespace, app.metadata.name);
    const revision = await fencedTxn(this.o, [{ key, modRevision: Number(app.metadata.resourceVersion) }], [{ op: 'put', key, value: encodeObject(next) }]);
    if (revision === undefined) {
      this.queue.addAfter(appKey, APP_CONFLICT_RETRY_MS); // in case the newer App never comes (deleted meanwhile)
      return false;
    }
    this.appWrittenAt.set(appKey, revision);
    return true;
  }

  private async fencedBatches(ops: TxnOp[]): Promise<void> {
    for (let i = 0; i < ops.length; i += BATCH) await fencedTxn(this.o, [], ops.slice(i, i + BATCH));
  }

  private forget(appKey: string): void {
    this.work.delete(appKey);
    this.failures.delete(appKey);
    this.failedAt.delete(appKey);
    this.inflight.delete(appKey);
    this.statusWrittenAt.delete(appKey);
    this.appWrittenAt.delete(appKey);
  }

  private placement(node: string): Placed {
    const n = this.o.informers.nodes.get(objectKey(this.o.prefix, NODES, undefined, node));
    return { agent: node, hostname: n?.status?.hostname ?? node, attributes: { ...n?.status?.attributes } };
  }
}

const KILL_WHY: Record<KillReason, string> = {
  ScaleDown: 'scaled down',
  Upgrade: 'replaced by the new version',
  Unhealthy: 'failing health checks',
  AppDeleted: 'app deleted',
};

function ref(app: App) {
  return { kind: 'App', namespace: app.metadata.namespace, name: app.metadata.name, uid: app.metadata.uid };
}

function finished(t: Task): number {
  return Date.parse(t.status?.finishedAt ?? '') || Date.parse(t.metadata.creationTimestamp ?? '') || 0;
}
