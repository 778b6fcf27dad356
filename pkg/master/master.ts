/**
 * The master: the I/O shell around the pure Allocator, and the framework registry. It feeds the
 * allocator from informers (agents from Node objects + lease keys, allocations from
 * non-terminal Tasks), runs allocation rounds every interval and soon after changes
 * (coalesced; a revive waits a short batch window so demands that arrive together share one
 * round), hands offers to frameworks, turns their accepts into bound Tasks through the binder,
 * carries out their kills, and answers their reconciliation. Frameworks see only the contract
 * of ./framework.ts.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { lookupKind } from '../api/kinds';
import { nameKey, objectNameKey } from '../api/keys';
import { isTerminal } from '../api/tasks';
import type { Node, Task } from '../api/types.generated';
import { FRAMEWORK_LABEL, lastSegment, TASKS_BY_FRAMEWORK, type ClusterInformers } from '../client/informers';
import { Allocator, type AllocatorOptions } from '../scheduler/allocator';
import type { AgentInfo, LaunchRequest, LaunchResult, Offer } from '../scheduler/types';
import { fencedBatches, NotLeaderError } from '../store/fenced';
import { agentLeaseKey, assignmentKey, objectKey } from '../store/objects';
import type { Fence, Store } from '../store/types';
import { realClock, type Clock, type TimerHandle } from '../util/clock';
import type { Binder } from './binder';
import type { AgentView, Framework, FrameworkRegistry, SchedulerDriver, TaskRef, TaskStatusUpdate } from './framework';

const NODES = lookupKind('node')!;
const TASKS = lookupKind('task')!;

export interface MasterOptions {
  informers: ClusterInformers;
  store: Store;
  /** etcd key prefix. */
  prefix: string;
  binder: Binder;
  fence: Fence;
  logger: Logger;
  registry: Registry;
  /** @default 1000 */
  allocationIntervalMs?: number;
  /**
   * A round asked for by a revive waits this long, so that frameworks reviving together (two
   * Apps of one `shoal apply`) compete in the same round and DRF shares the cluster between
   * them, whatever their order of arrival. Mesos batches every allocation this way (each
   * second). Rounds asked for by other changes (a task ended, an agent came) run at once,
   * unless a batch is already waiting. @default 250
   */
  batchWindowMs?: number;
  allocator?: AllocatorOptions;
  clock?: Clock;
}

export class Master implements FrameworkRegistry {
  readonly allocator: Allocator;
  private readonly frameworks = new Map<string, Framework>();
  private readonly drivers = new Map<string, SchedulerDriver>();
  private readonly offerAgents = new Map<string, { agent: string; leaseRevision: number; frameworkId: string }>();
  private readonly agentInfos = new Map<string, AgentInfo>();
  /** Per framework, its last resourceOffers call: the next one waits for it. */
  private readonly turns = new Map<string, Promise<void>>();
  private readonly clock: Clock;
  private interval?: TimerHandle;
  /** A round is coming: at once (setImmediate) or at the end of a batch window. */
  private scheduled?: { at: number; timer?: TimerHandle };
  private running = false;
  private again = false;
  private stopped = false;
  private readonly m: ReturnType<typeof metrics>;

  constructor(private readonly o: MasterOptions) {
    this.allocator = new Allocator(o.allocator ?? {});
    this.clock = o.clock ?? realClock;
    this.m = metrics(o.registry, () => {
      let alive = 0;
      for (const a of this.agentInfos.values()) if (a.leaseRevision > 0) alive++;
      return { alive, lost: this.agentInfos.size - alive };
    });
  }

  // ---- the registry ----

  register(fw: Framework): SchedulerDriver {
    if (this.frameworks.has(fw.id)) throw new Error(`framework ${fw.id} is already registered`);
    const driver = this.driver(fw.id);
    this.frameworks.set(fw.id, fw);
    this.drivers.set(fw.id, driver);
    this.allocator.addFramework(fw.id, fw.role);
    this.o.logger.info({ framework: fw.id, role: fw.role }, 'framework registered');
    fw.registered?.(driver);
    // A new framework is new demand: it waits for the batch window like a revive, so frameworks
    // registering together (a new leader's term) share their first round by DRF.
    this.schedule(this.batchWindowMs());
    return driver;
  }

  unregister(id: string): void {
    const fw = this.frameworks.get(id);
    if (!fw) return;
    this.frameworks.delete(id);
    this.drivers.delete(id);
    this.turns.delete(id);
    for (const offer of this.allocator.removeFramework(id)) this.offerAgents.delete(offer.id);
    this.o.logger.info({ framework: id }, 'framework unregistered');
    fw.unregistered?.();
    this.trigger();
  }

  get(id: string): Framework | undefined {
    return this.frameworks.get(id);
  }

  list(): Framework[] {
    return [...this.frameworks.values()];
  }

  private batchWindowMs(): number {
    return this.o.batchWindowMs ?? 250;
  }

  /** Subscribes to the informers and starts the allocation loop. */
  start(): void {
    const { nodes, leases, tasks } = this.o.informers;
    const agentChanged = (key: string) => this.syncAgent(lastSegment(key));
    nodes.addHandlers({ onAdd: agentChanged, onUpdate: agentChanged, onDelete: agentChanged });
    leases.addHandlers({ onAdd: agentChanged, onUpdate: agentChanged, onDelete: agentChanged });
    tasks.addHandlers({
      onAdd: (_k, t) => this.syncTask(t),
      onUpdate: (_k, t, old) => this.syncTask(t, old),
      onDelete: (_k, t) => this.untrack(t),
    });
    for (const [key] of nodes.entries()) this.syncAgent(lastSegment(key));
    for (const t of tasks.list()) this.syncTask(t);
    this.interval = this.clock.setInterval(() => this.trigger(), this.o.allocationIntervalMs ?? 1000).unref();
    this.trigger();
  }

  /** Ends the term: no more rounds; every framework is told it is unregistered. */
  stop(): void {
    this.stopped = true;
    this.clock.clearInterval(this.interval);
    this.clock.clearTimeout(this.scheduled?.timer);
    for (const id of [...this.frameworks.keys()]) this.unregister(id);
  }

  /** Asks for an allocation round soon; many calls before it runs make one round. */
  trigger(): void {
    this.schedule(0);
  }

  /**
   * Schedules a round. `delayMs` 0: at once, unless a batch window is open (its round will run
   * soon and must not be split). `delayMs` > 0 (a revive): a batch window opens unless one is
   * open already, and it also holds back a round that was about to run at once.
   */
  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    const cur = this.scheduled;
    if (cur && (delayMs === 0 || cur.timer)) return;
    const token = { at: this.clock.now() + delayMs } as { at: number; timer?: TimerHandle };
    this.scheduled = token;
    const run = () => {
      if (this.scheduled !== token) return; // replaced by a batch window
      this.scheduled = undefined;
      this.round();
    };
    if (delayMs <= 0) setImmediate(run);
    else token.timer = this.clock.setTimeout(run, delayMs);
  }

  private round(): void {
    if (this.stopped) return;
    this.running = true;
    const end = this.m.roundSeconds.startTimer();
    try {
      const now = this.clock.now();
      for (const offer of this.allocator.expire(now)) this.rescind(offer, 'expired');
      const offers = this.allocator.allocate(now);
      end();
      const byFramework = new Map<string, Offer[]>();
      for (const offer of offers) {
        this.offerAgents.set(offer.id, { agent: offer.agent, leaseRevision: this.agentInfos.get(offer.agent)?.leaseRevision ?? 0, frameworkId: offer.frameworkId });
        const list = byFramework.get(offer.frameworkId);
        if (list) list.push(offer);
        else byFramework.set(offer.frameworkId, [offer]);
        this.m.offers.inc({ result: 'offered' });
        this.o.logger.debug({ offer: offer.id, framework: offer.frameworkId, node: offer.agent, cpus: offer.resources.cpus, mem: offer.resources.mem }, 'offer made');
      }
      // Not awaited: the allocator counts accepted launches before their bind is written, so the
      // next round need not wait for etcd (Mesos' allocator also runs apart from task launches).
      // Each framework still gets its offers one call at a time.
      for (const [id, list] of byFramework) this.deliverInTurn(id, list);
    } catch (err) {
      this.o.logger.error({ err: (err as Error).message }, 'allocation round failed');
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.trigger();
      }
    }
  }

  /** Delivers after the framework's previous resourceOffers call settled (calls to one framework never overlap). */
  private deliverInTurn(frameworkId: string, offers: Offer[]): void {
    const turn = (this.turns.get(frameworkId) ?? Promise.resolve()).then(() => this.deliver(frameworkId, offers));
    this.turns.set(frameworkId, turn);
    void turn.finally(() => {
      if (this.turns.get(frameworkId) === turn) this.turns.delete(frameworkId);
    });
  }

  private async deliver(frameworkId: string, offers: Offer[]): Promise<void> {
    const fw = this.frameworks.get(frameworkId);
    const driver = this.drivers.get(frameworkId);
    if (!fw || !driver) {
      this.allocator.decline(offers.map((o) => o.id), 0, this.clock.now());
      return;
    }
    try {
      await fw.resourceOffers(driver, offers);
    } catch (err) {
      this.o.logger.error({ framework: frameworkId, err: (err as Error).message }, 'framework failed on offers; declining them');
      driver.decline(offers.map((o) => o.id), 0);
    }
  }

  /** A framework's driver: every call is checked against the registry, so a driver kept after unregister does nothing. */
  private driver(frameworkId: string): SchedulerDriver {
    const live = () => this.frameworks.has(frameworkId) && !this.stopped;
    return {
      accept: (offerIds, launches) => (live() ? this.accept(frameworkId, offerIds, launches) : Promise.resolve(launches.map((request) => ({ request, ok: false, reason: 'OfferUnknown' as const })))),
      decline: (ids, refuseSeconds) => {
        // Only this framework's own outstanding offers (none once it is unregistered).
        const offerIds = ids.filter((id) => this.offerAgents.get(id)?.frameworkId === frameworkId);
        this.allocator.decline(offerIds, refuseSeconds, this.clock.now());
        for (const id of offerIds) {
          this.o.logger.debug({ offer: id, framework: frameworkId, node: this.offerAgents.get(id)?.agent, refuseSeconds }, 'offer declined');
          this.offerAgents.delete(id);
        }
        this.m.offers.inc({ result: 'declined' }, offerIds.length);
      },
      suppress: () => {
        if (live()) this.allocator.suppress(frameworkId);
      },
      revive: () => {
        if (!live()) return;
        // Only a framework coming back from suppression brings new demand that others may be
        // bringing at the same moment: it waits for the batch window. An active framework's revive
        // (more work, filters cleared) must not hold back the rounds of a busy cluster.
        const wasSuppressed = this.allocator.isSuppressed(frameworkId);
        this.allocator.revive(frameworkId);
        this.schedule(wasSuppressed ? this.batchWindowMs() : 0);
      },
      kill: (tasks) => (live() ? this.kill(frameworkId, tasks) : Promise.resolve({ killed: [], skipped: tasks })),
      reconcile: (tasks) => {
        if (live()) this.reconcile(frameworkId, tasks);
      },
      teardown: () => this.teardown(frameworkId),
      agents: () => this.agentViews(frameworkId),
      now: () => this.clock.now(),
    };
  }

  private async accept(frameworkId: string, offerIds: string[], launches: LaunchRequest[]): Promise<LaunchResult[]> {
    // Another framework's offer is no offer of this one (the allocator checks only that the offers share one owner).
    if (offerIds.some((id) => (this.offerAgents.get(id)?.frameworkId ?? frameworkId) !== frameworkId)) return launches.map((request) => ({ request, ok: false, reason: 'OfferUnknown' as const }));
    const { accepted, rejected } = this.allocator.accept(offerIds, launches, this.clock.now());
    const where = new Map(offerIds.map((id) => [id, this.offerAgents.get(id)]));
    for (const id of offerIds) this.offerAgents.delete(id);
    this.m.offers.inc({ result: 'accepted' }, offerIds.length);
    for (const r of rejected) this.o.logger.info({ framework: frameworkId, task: nameKey(r.request.namespace, r.request.taskName), reason: r.reason }, 'launch refused');
    const role = this.frameworks.get(frameworkId)?.role;
    const items = accepted.map((request) => ({ request, frameworkId, role, agent: where.get(request.offerId)?.agent ?? '', leaseRevision: where.get(request.offerId)?.leaseRevision ?? 0 }));
    const bound = items.length ? await this.o.binder.bind(items, this.o.fence) : [];
    const boundAt = this.clock.now();
    for (const r of bound) {
      if (r.ok && r.request.queuedAt !== undefined) this.m.queuedToBound.observe((boundAt - r.request.queuedAt) / 1000);
      if (!r.ok) this.allocator.untrack(nameKey(r.request.namespace, r.request.taskName));
      this.m.launches.inc({ result: r.ok ? 'bound' : r.reason ?? 'failed' });
    }
    for (const r of rejected) this.m.launches.inc({ result: r.reason });
    this.trigger();
    return [...bound, ...rejected.map((r) => ({ request: r.request, ok: false, reason: r.reason }))];
  }

  /**
   * Kills tasks of one framework: deletes their assignment keys (fenced), and their agents stop
   * them with the task's grace period and report KILLING, then KILLED. A task the framework does
   * not own, or that is unknown or terminal, is skipped.
   */
  private async kill(frameworkId: string, refs: TaskRef[]): Promise<{ killed: TaskRef[]; skipped: TaskRef[] }> {
    const killed: TaskRef[] = [];
    const skipped: TaskRef[] = [];
    const ops = [];
    for (const ref of refs) {
      const t = this.task(ref);
      if (!t || isTerminal(t) || t.metadata.labels?.[FRAMEWORK_LABEL] !== frameworkId || !t.spec.nodeName) {
        skipped.push(ref);
        continue;
      }
      killed.push(ref);
      ops.push({ op: 'delete' as const, key: assignmentKey(this.o.prefix, t.spec.nodeName, ref.namespace, ref.taskName) });
    }
    try {
      await fencedBatches({ store: this.o.store, fence: this.o.fence }, ops);
    } catch (err) {
      if (err instanceof NotLeaderError) return { killed: [], skipped: refs };
      throw err;
    }
    for (const ref of killed) this.o.logger.info({ framework: frameworkId, task: nameKey(ref.namespace, ref.taskName) }, 'task kill sent');
    this.m.kills.inc(killed.length);
    return { killed, skipped };
  }

  /** Answers with one status update per task, after the caller's turn (as Mesos answers reconciliation asynchronously). */
  private reconcile(frameworkId: string, refs?: TaskRef[]): void {
    const updates: TaskStatusUpdate[] = [];
    if (refs) {
      for (const ref of refs) {
        const t = this.task(ref);
        if (t && t.metadata.labels?.[FRAMEWORK_LABEL] === frameworkId) updates.push({ ...statusOf(t), source: 'reconcile' });
        else updates.push({ ...ref, state: 'LOST', reason: 'ReconciliationUnknownTask', message: 'the master knows no such task of this framework', source: 'reconcile' });
      }
    } else {
      for (const t of this.o.informers.tasks.byIndex(TASKS_BY_FRAMEWORK, frameworkId)) if (!isTerminal(t)) updates.push({ ...statusOf(t), source: 'reconcile' });
    }
    setImmediate(() => {
      const fw = this.frameworks.get(frameworkId);
      const driver = this.drivers.get(frameworkId);
      if (!fw || !driver) return;
      for (const u of updates) this.safeStatusUpdate(fw, driver, u);
    });
  }

  private async teardown(frameworkId: string): Promise<void> {
    if (!this.frameworks.has(frameworkId)) return;
    const live = this.o.informers.tasks.byIndex(TASKS_BY_FRAMEWORK, frameworkId).filter((t) => !isTerminal(t));
    await this.kill(frameworkId, live.map((t) => ({ namespace: t.metadata.namespace ?? 'default', taskName: t.metadata.name })));
    this.o.logger.info({ framework: frameworkId, tasks: live.length }, 'framework torn down');
    this.unregister(frameworkId);
  }

  /** Every agent, and why this framework holds no offer of it. */
  private agentViews(frameworkId: string): AgentView[] {
    const now = this.clock.now();
    const heldBy = new Map<string, string>();
    for (const o of this.allocator.outstanding()) heldBy.set(o.agent, o.frameworkId);
    const suppressed = this.allocator.isSuppressed(frameworkId);
    const out: AgentView[] = [];
    for (const info of this.agentInfos.values()) {
      const holder = heldBy.get(info.name);
      const status: AgentView['status'] =
        info.leaseRevision === 0 ? 'lost'
        : !info.schedulable ? 'cordoned'
        : holder === frameworkId ? 'held'
        : holder !== undefined ? 'offered'
        : this.allocator.filteredUntil(frameworkId, info.name, now) !== undefined ? 'filtered'
        : suppressed ? 'suppressed'
        : 'none';
      out.push({ info, free: this.allocator.freeOf(info.name), status });
    }
    return out;
  }

  private task(ref: TaskRef): Task | undefined {
    return this.o.informers.tasks.get(objectKey(this.o.prefix, TASKS, ref.namespace, ref.taskName));
  }

  private rescind(offer: Offer, why: string): void {
    this.offerAgents.delete(offer.id);
    this.m.offers.inc({ result: 'rescinded' });
    this.o.logger.info({ offer: offer.id, framework: offer.frameworkId, node: offer.agent, why }, 'offer rescinded');
    const fw = this.frameworks.get(offer.frameworkId);
    const driver = this.drivers.get(offer.frameworkId);
    if (fw && driver) fw.offerRescinded(driver, offer.id);
  }

  /** Rebuilds one agent's view from its Node object and its lease key. */
  private syncAgent(name: string): void {
    const { nodes, leases } = this.o.informers;
    const node = nodes.get(objectKey(this.o.prefix, NODES, undefined, name));
    if (!node) {
      this.agentInfos.delete(name);
      for (const offer of this.allocator.removeAgent(name)) this.rescind(offer, 'agent removed');
      return;
    }
    const leaseRevision = leases.get(agentLeaseKey(this.o.prefix, name)) ?? 0;
    const info = agentInfo(node, leaseRevision);
    this.agentInfos.set(name, info);
    for (const offer of this.allocator.upsertAgent(info) ?? []) this.rescind(offer, leaseRevision ? 'agent unschedulable' : 'agent lost');
    this.trigger();
  }

  private syncTask(task: Task, old?: Task): void {
    const key = objectNameKey(task);
    if (isTerminal(task)) this.allocator.untrack(key);
    else {
      this.allocator.track({
        taskKey: key,
        agent: task.spec.nodeName ?? '',
        role: task.spec.role,
        frameworkId: task.metadata.labels?.[FRAMEWORK_LABEL] ?? '',
        resources: task.spec.resources,
        ports: task.status?.hostPorts ?? task.spec.ports.map((p) => p.hostPort),
      });
    }
    if (old?.status?.state !== task.status?.state) this.statusUpdate(task);
    if (isTerminal(task)) this.trigger();
  }

  private untrack(task: Task): void {
    this.allocator.untrack(objectNameKey(task));
    this.trigger();
  }

  private statusUpdate(task: Task): void {
    const id = task.metadata.labels?.[FRAMEWORK_LABEL] ?? '';
    const fw = this.frameworks.get(id);
    const driver = this.drivers.get(id);
    if (fw && driver) this.safeStatusUpdate(fw, driver, { ...statusOf(task), source: 'agent' });
  }

  private safeStatusUpdate(fw: Framework, driver: SchedulerDriver, update: TaskStatusUpdate): void {
    try {
      fw.statusUpdate(driver, update);
    } catch (err) {
      this.o.logger.error({ framework: fw.id, err: (err as Error).message }, 'framework failed on a status update');
    }
  }
}

function statusOf(t: Task): Omit<TaskStatusUpdate, 'source'> {
  const s = t.status;
  return {
    namespace: t.metadata.namespace ?? 'default',
    taskName: t.metadata.name,
    state: s?.state ?? 'STAGING',
    agent: t.spec.nodeName,
    ...(s?.reason !== undefined ? { reason: s.reason } : {}),
    ...(s?.message !== undefined ? { message: s.message } : {}),
    ...(s?.healthy !== undefined ? { healthy: s.healthy } : {}),
  };
}

/** The allocator's view of an agent. */
export function agentInfo(node: Node, leaseRevision: number): AgentInfo {
  const cap = node.status?.capacity ?? {};
  return {
    name: node.metadata.name,
    hostname: node.status?.hostname ?? node.metadata.name,
    capacity: { cpus: cap.cpus ?? 0, mem: cap.mem ?? 0, disk: cap.disk ?? 0, ports: (cap.ports ?? []).map(([a, b]) => [a, b] as [number, number]) },
    attributes: { ...node.status?.attributes },
    runtimes: node.status?.runtimes ?? [],
    schedulable: !node.spec?.unschedulable,
    leaseRevision,
  };
}

/**
 * The master's metrics on the component's registry. A master lives for one leadership term and a
 * controller-manager may lead again later: the previous term's metrics are replaced (counters
 * restart from zero, which Prometheus' rate() treats as a reset).
 */
function metrics(registry: Registry, agentCounts: () => { alive: number; lost: number }) {
  for (const name of ['shoal_offers_total', 'shoal_launches_total', 'shoal_kills_total', 'shoal_scheduling_latency_seconds', 'shoal_allocation_round_duration_seconds', 'shoal_agents']) registry.removeSingleMetric(name);
  return {
    offers: new Counter({ name: 'shoal_offers_total', help: 'Offers by result: offered, accepted, declined, rescinded.', labelNames: ['result'], registers: [registry] }),
    launches: new Counter({ name: 'shoal_launches_total', help: 'Launch requests by result: bound, or why not.', labelNames: ['result'], registers: [registry] }),
    kills: new Counter({ name: 'shoal_kills_total', help: 'Task kills frameworks sent through the master.', registers: [registry] }),
    queuedToBound: new Histogram({ name: 'shoal_scheduling_latency_seconds', help: 'Time from a framework queueing work to its task being bound.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 15, 30, 60], registers: [registry] }),
    roundSeconds: new Histogram({ name: 'shoal_allocation_round_duration_seconds', help: 'Duration of one allocation round (allocator only).', buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: [registry] }),
    agents: new Gauge({
      name: 'shoal_agents',
      help: 'Agents by state (alive: lease present; lost: lease gone).',
      labelNames: ['state'],
      registers: [registry],
      collect(this: Gauge<'state'>) {
        const c = agentCounts();
        this.set({ state: 'alive' }, c.alive);
        this.set({ state: 'lost' }, c.lost);
      },
    }),
  };
}

