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
import type { SchedulerDriver } from '../../master/framework';
import type { PendingWorkFramework, PendingWorkOwner } from '../../master/pending-framework';
import { assignmentKey, encodeObject, objectKey, prefixEnd } from '../../store/objects';
import type { TxnOp } from '../../store/types';
import { jsonEqual } from '../../util/json';
import { fencedBatches, fencedTxn, NotLeaderError, type TermContext } from '../context';
import { splitNameKey } from '../../api/keys';
import { isTerminal } from '../../api/tasks';
import { WorkQueue } from '../queue';
import type { TimerHandle } from '../../util/clock';
import { TASKS_BY_FRAMEWORK } from '../../client/informers';
import { appFramework, frameworkIdFor } from './framework';
import { reconcileApp, type AppPlan, type KillReason } from './reconcile';
import { appStatus, countsAsFailure, deadlineAt, isProgressOnly, lastFailureOf, nextFailures, seedFailures, type Failures } from './status';
import { configHash, keyOf, newTaskName, ownedBy, ownerKey, taskTemplate } from './template';

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

export interface AppControllerOptions extends TermContext {
  /** Terminal tasks kept per App for `describe` and backoff history. @default 5 */
  terminalHistory?: number;
  /** Every App is synced this often even without changes (time-based decisions). @default 30000 */
  resyncMs?: number;
}

export class AppController implements PendingWorkOwner {
  private readonly queue: WorkQueue;
  private readonly log: Logger;
  /** App key → informer keys of its tasks. */
  private readonly tasksByApp = new Map<string, Set<string>>();
  /** Informer keys of tasks whose kill was sent and that have not ended yet. */
  private readonly killing = new Set<string>();
  private readonly failures = new Map<string, Failures>();
  /** Failures seen since the App's last sync (epoch ms each). */
  private readonly failedAt = new Map<string, number[]>();
  /** When each App's status was last written (progress-only changes wait PROGRESS_STATUS_INTERVAL_MS). */
  private readonly statusWrittenAt = new Map<string, number>();
  /** Per App, the revision of our last write of it (see writeApp). */
  private readonly appWrittenAt = new Map<string, number>();
  /** The App framework of each role, registered with the master when first needed. */
  private readonly frameworks = new Map<string, { fw: PendingWorkFramework; driver: SchedulerDriver }>();
  private timer?: TimerHandle;

  constructor(private readonly o: AppControllerOptions) {
    this.log = o.logger.child({ controller: 'apps' });
    this.queue = new WorkQueue({ sync: (key) => this.sync(key), logger: this.log, workers: 16, clock: o.clock });
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
    this.timer = this.o.clock.setInterval(() => {
      for (const app of this.o.informers.apps.list()) this.queue.add(keyOf(app));
      for (const key of this.tasksByApp.keys()) this.queue.add(key);
    }, this.o.resyncMs ?? 30_000);
    this.timer.unref();
  }

  stop(): void {
    this.o.clock.clearInterval(this.timer);
    this.queue.stop();
  }

  // ---- PendingWorkOwner (read by the App frameworks) ----

  placed(appKey: string): Placed[] {
    const out: Placed[] = [];
    for (const k of this.tasksByApp.get(appKey) ?? []) {
      const t = this.o.informers.tasks.get(k);
      if (t && !isTerminal(t) && t.spec.nodeName) out.push(this.placement(t.spec.nodeName));
    }
    return out;
  }

  changed(appKey: string): void {
    this.queue.add(appKey);
  }

  // ---- informer handlers ----

  private taskChanged(k: string, t: Task, old?: Task): void {
    this.index(k, t);
    const app = ownerKey(t);
    if (!app) return;
    if (isTerminal(t)) {
      this.killing.delete(k);
      const state = t.status?.state;
      if (old && !isTerminal(old) && countsAsFailure(state)) {
        const list = this.failedAt.get(app) ?? [];
        list.push(Date.parse(t.status?.finishedAt ?? '') || this.o.clock.now());
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
    const { namespace, name } = splitNameKey(appKey);
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
    const now = this.o.clock.now();
    const hash = configHash(app);
    const failures = this.trackFailures(appKey, tasks, now);
    let inflight = 0;
    for (const { fw } of this.frameworks.values()) inflight += fw.inflight(appKey);
    const killing = new Set(tasks.filter((t) => this.killing.has(objectKey(this.o.prefix, TASKS, t.metadata.namespace, t.metadata.name))).map((t) => t.metadata.name));
    const lastFailure = lastFailureOf(tasks);
    const plan = reconcileApp({ app, configHash: hash, tasks, killing, now, failures: { ...failures, lastState: lastFailure?.state }, inflight });
    this.log.debug({ app: appKey, tasks: tasks.length, inflight, launch: plan.launch, kill: plan.kill.length, step: plan.deployment.step }, 'app synced');

    // Launches are published before any await: the framework may launch from the previous work while a kill
    // is being written, and a count computed before those launches would then launch them twice.
    this.queueLaunches(appKey, app, hash, plan, now);
    await this.kill(app, tasks, plan.kill);
    if (plan.delayUntil !== undefined) this.queue.addAfter(appKey, plan.delayUntil - now + 1);
    if (plan.wakeAt !== undefined) this.queue.addAfter(appKey, plan.wakeAt - now + 1);

    if (app.metadata.deletionTimestamp) {
      if (plan.deployment.done) await this.finishDeletion(appKey, app, tasks);
      return;
    }
    await this.collectGarbage(tasks);
    await this.writeStatus(app, plan, now, failures, lastFailure);
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

  /** Sends the plan's kills through the master (by the framework that launched each task); their agents stop them. */
  private async kill(app: App, tasks: Task[], kills: AppPlan['kill']): Promise<void> {
    if (kills.length === 0) return;
    const byName = new Map(tasks.map((t) => [t.metadata.name, t]));
    const byRole = new Map<string, Array<{ task: Task; reason: KillReason }>>();
    for (const k of kills) {
      const t = byName.get(k.task);
      if (!t) continue;
      const list = byRole.get(t.spec.role) ?? [];
      list.push({ task: t, reason: k.reason });
      byRole.set(t.spec.role, list);
    }
    const byReason = new Map<KillReason, string[]>();
    for (const [role, list] of byRole) {
      const { killed } = await this.framework(role).driver.kill(list.map(({ task }) => ({ namespace: task.metadata.namespace ?? 'default', taskName: task.metadata.name })));
      const sent = new Set(killed.map((r) => r.taskName));
      for (const { task, reason } of list) {
        if (!sent.has(task.metadata.name)) continue;
        this.killing.add(objectKey(this.o.prefix, TASKS, task.metadata.namespace, task.metadata.name));
        this.log.info({ app: keyOf(app), task: task.metadata.name, node: task.spec.nodeName, reason, state: task.status?.state }, 'task kill');
        byReason.set(reason, [...(byReason.get(reason) ?? []), task.metadata.name]);
      }
    }
    for (const [reason, names] of byReason) {
      void this.o.events.record(ref(app), reason === 'Unhealthy' ? 'Warning' : 'Normal', `Killing${reason}`, `killing ${names.length} task(s) (${KILL_WHY[reason]}): ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''}`);
    }
  }

  /** Publishes the plan's launches as the App's work in its role's framework (and none in any other). */
  private queueLaunches(appKey: string, app: App, hash: string, plan: AppPlan, now: number): void {
    for (const [role, { fw }] of this.frameworks) if (role !== app.spec.role) fw.removeWork(appKey);
    if (plan.launch <= 0 && !this.frameworks.has(app.spec.role)) return;
    const { fw } = this.framework(app.spec.role);
    const before = fw.waiting(appKey);
    fw.setWork({
      key: appKey,
      namespace: app.metadata.namespace ?? 'default',
      demand: demandOf(app.spec),
      template: taskTemplate(app, hash),
      count: plan.launch,
      queuedAt: now,
      newTaskName: () => newTaskName(app.metadata.name),
    });
    if (plan.launch > before) this.log.info({ app: appKey, generation: app.metadata.generation, launch: plan.launch, step: plan.deployment.step }, 'instances queued for launch');
  }

  /** The App framework of a role, registered with the master on first use. */
  private framework(role: string): { fw: PendingWorkFramework; driver: SchedulerDriver } {
    let f = this.frameworks.get(role);
    if (!f) {
      const fw = appFramework(role, this, this.log);
      f = { fw, driver: this.o.frameworks.register(fw) };
      this.frameworks.set(role, f);
    }
    return f;
  }

  /** Unregisters role frameworks with nothing to do and no App of their role left (their tasks are all gone or others'). */
  private unregisterIdle(): void {
    const roles = new Set(this.o.informers.apps.list().map((a) => a.spec.role));
    for (const [role, { fw }] of this.frameworks) {
      if (roles.has(role) || !fw.idle() || this.o.informers.tasks.byIndex(TASKS_BY_FRAMEWORK, frameworkIdFor(role)).some((t) => !isTerminal(t))) continue;
      this.frameworks.delete(role);
      this.o.frameworks.unregister(fw.id);
    }
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
    const pending = this.frameworks.get(app.spec.role)?.fw.whyPending(appKey);
    let pendingReason: string | undefined;
    if (plan.delayUntil !== undefined) pendingReason = `backing off after ${failures.count} failed task(s): next launch in ${Math.ceil((plan.delayUntil - now) / 1000)}s`;
    // Agents that could run an instance get it within a round: only a shortage is a reason.
    else if (pending && (pending.available === 0 || pending.refusals?.length)) pendingReason = pending.message;
    const appStatusOut = appStatus({ app, plan, now, pendingReason, lastFailure });
    const { events } = appStatusOut;
    const status = pending && pendingReason !== undefined ? { ...appStatusOut.status, pending } : appStatusOut.status;
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

  private fencedBatches(ops: TxnOp[]): Promise<void> {
    return fencedBatches(this.o, ops);
  }

  private forget(appKey: string): void {
    for (const { fw } of this.frameworks.values()) fw.forget(appKey);
    this.unregisterIdle();
    this.failures.delete(appKey);
    this.failedAt.delete(appKey);
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
