/**
 * The master: the I/O shell around the pure Allocator. It feeds the allocator from informers
 * (agents from Node objects + lease keys, allocations from non-terminal Tasks), runs allocation
 * rounds every interval and right after changes (coalesced), hands offers to frameworks,
 * and turns their accepts into bound Tasks through the binder.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Node, Task } from '../api/types.generated';
import type { ClusterInformers } from '../client/informers';
import { lastSegment } from '../client/informers';
import { isTerminal } from '../api/tasks';
import type { Fence } from '../store/types';
import { Allocator, type AllocatorOptions } from '../scheduler/allocator';
import { Binder, FRAMEWORK_LABEL } from './binder';
import type { AgentInfo, Framework, LaunchRequest, LaunchResult, Offer, SchedulerDriver } from '../scheduler/types';
import { lookupKind } from '../api/kinds';
import { agentLeaseKey, objectKey } from '../store/objects';

const NODES = lookupKind('node')!;

export interface MasterOptions {
  informers: ClusterInformers;
  /** etcd key prefix. */
  prefix: string;
  binder: Binder;
  fence: Fence;
  logger: Logger;
  registry: Registry;
  /** @default 1000 */
  allocationIntervalMs?: number;
  allocator?: AllocatorOptions;
  now?: () => number;
}

export class Master {
  readonly allocator: Allocator;
  private readonly frameworks = new Map<string, Framework>();
  private readonly offerAgents = new Map<string, { agent: string; leaseRevision: number }>();
  private readonly agents = new Map<string, AgentInfo>();
  /** Per framework, its last resourceOffers call: the next one waits for it. */
  private readonly turns = new Map<string, Promise<void>>();
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private stopped = false;
  private readonly m: ReturnType<typeof metrics>;

  constructor(private readonly o: MasterOptions) {
    this.allocator = new Allocator(o.allocator ?? {});
    this.now = o.now ?? Date.now;
    this.m = metrics(o.registry, () => {
      let alive = 0;
      for (const a of this.agents.values()) if (a.leaseRevision > 0) alive++;
      return { alive, lost: this.agents.size - alive };
    });
  }

  /** Registers a framework; it gets offers from the next round on. Returns its driver (for revive and suppress at any time). */
  registerFramework(fw: Framework): SchedulerDriver {
    this.frameworks.set(fw.id, fw);
    this.allocator.addFramework(fw.id, fw.role);
    this.trigger();
    return this.driver(fw.id);
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
    this.timer = setInterval(() => this.trigger(), this.o.allocationIntervalMs ?? 1000);
    this.timer.unref();
    this.trigger();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** Asks for an allocation round soon; many calls before it runs make one round. */
  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    setImmediate(() => void this.round());
  }

  private round(): void {
    const end = this.m.roundSeconds.startTimer();
    try {
      const now = this.now();
      for (const offer of this.allocator.expire(now)) this.rescind(offer, 'expired');
      const offers = this.allocator.allocate(now);
      end();
      const byFramework = new Map<string, Offer[]>();
      for (const offer of offers) {
        this.offerAgents.set(offer.id, { agent: offer.agent, leaseRevision: this.agents.get(offer.agent)?.leaseRevision ?? 0 });
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
    const driver = this.driver(frameworkId);
    if (!fw) return driver.decline(offers.map((o) => o.id), 0);
    try {
      await fw.resourceOffers(driver, offers);
    } catch (err) {
      this.o.logger.error({ framework: frameworkId, err: (err as Error).message }, 'framework failed on offers; declining them');
      driver.decline(offers.map((o) => o.id), 0);
    }
  }

  private driver(frameworkId: string): SchedulerDriver {
    return {
      accept: (offerIds, launches) => this.accept(frameworkId, offerIds, launches),
      decline: (offerIds, refuseSeconds) => {
        this.allocator.decline(offerIds, refuseSeconds, this.now());
        for (const id of offerIds) {
          this.o.logger.debug({ offer: id, framework: frameworkId, node: this.offerAgents.get(id)?.agent, refuseSeconds }, 'offer declined');
          this.offerAgents.delete(id);
        }
        this.m.offers.inc({ result: 'declined' }, offerIds.length);
      },
      suppress: () => this.allocator.suppress(frameworkId),
      revive: () => {
        this.allocator.revive(frameworkId);
        this.trigger();
      },
    };
  }

  private async accept(frameworkId: string, offerIds: string[], launches: LaunchRequest[]): Promise<LaunchResult[]> {
    const { accepted, rejected } = this.allocator.accept(offerIds, launches, this.now());
    const where = new Map(offerIds.map((id) => [id, this.offerAgents.get(id)]));
    for (const id of offerIds) this.offerAgents.delete(id);
    this.m.offers.inc({ result: 'accepted' }, offerIds.length);
    for (const r of rejected) this.o.logger.info({ framework: frameworkId, task: `${r.request.namespace}/${r.request.taskName}`, reason: r.reason }, 'launch refused');
    const items = accepted.map((request) => ({ request, frameworkId, agent: where.get(request.offerId)?.agent ?? '', leaseRevision: where.get(request.offerId)?.leaseRevision ?? 0 }));
    const bound = items.length ? await this.o.binder.bind(items, this.o.fence) : [];
    const boundAt = this.now();
    for (const r of bound) {
      if (r.ok && r.request.queuedAt !== undefined) this.m.queuedToBound.observe((boundAt - r.request.queuedAt) / 1000);
      if (!r.ok) this.allocator.untrack(`${r.request.namespace}/${r.request.taskName}`);
      this.m.launches.inc({ result: r.ok ? 'bound' : r.reason ?? 'failed' });
    }
    for (const r of rejected) this.m.launches.inc({ result: r.reason });
    this.trigger();
    return [...bound, ...rejected.map((r) => ({ request: r.request, ok: false, reason: r.reason }))];
  }

  private rescind(offer: Offer, why: string): void {
    this.offerAgents.delete(offer.id);
    this.m.offers.inc({ result: 'rescinded' });
    this.o.logger.info({ offer: offer.id, framework: offer.frameworkId, node: offer.agent, why }, 'offer rescinded');
    const fw = this.frameworks.get(offer.frameworkId);
    if (fw) fw.offerRescinded(this.driver(fw.id), offer.id);
  }

  /** Rebuilds one agent's view from its Node object and its lease key. */
  private syncAgent(name: string): void {
    const { nodes, leases } = this.o.informers;
    const node = nodes.get(objectKey(this.o.prefix, NODES, undefined, name));
    if (!node) {
      this.agents.delete(name);
      for (const offer of this.allocator.removeAgent(name)) this.rescind(offer, 'agent removed');
      return;
    }
    const leaseRevision = leases.get(agentLeaseKey(this.o.prefix, name)) ?? 0;
    const info = agentInfo(node, leaseRevision);
    this.agents.set(name, info);
    for (const offer of this.allocator.upsertAgent(info) ?? []) this.rescind(offer, leaseRevision ? 'agent unschedulable' : 'agent lost');
    this.trigger();
  }

  private syncTask(task: Task, old?: Task): void {
    const key = `${task.metadata.namespace}/${task.metadata.name}`;
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
    this.allocator.untrack(`${task.metadata.namespace}/${task.metadata.name}`);
    this.trigger();
  }

  private statusUpdate(task: Task): void {
    const fw = this.frameworks.get(task.metadata.labels?.[FRAMEWORK_LABEL] ?? '');
    if (!fw) return;
    try {
      fw.statusUpdate(this.driver(fw.id), { namespace: task.metadata.namespace ?? 'default', taskName: task.metadata.name, state: task.status?.state ?? '', reason: task.status?.reason, message: task.status?.message });
    } catch (err) {
      this.o.logger.error({ framework: fw.id, err: (err as Error).message }, 'framework failed on a status update');
    }
  }
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
  for (const name of ['shoal_offers_total', 'shoal_launches_total', 'shoal_scheduling_latency_seconds', 'shoal_allocation_round_duration_seconds', 'shoal_agents']) registry.removeSingleMetric(name);
  return {
    offers: new Counter({ name: 'shoal_offers_total', help: 'Offers by result: offered, accepted, declined, rescinded.', labelNames: ['result'], registers: [registry] }),
    launches: new Counter({ name: 'shoal_launches_total', help: 'Launch requests by result: bound, or why not.', labelNames: ['result'], registers: [registry] }),
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

