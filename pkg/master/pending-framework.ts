/**
 * A framework base for owners whose work is "N more tasks like this template": a queue of
 * instances to place per owner (an App, a JobRun), in-flight reservations (launched, not yet
 * seen as Tasks), offer matching with the pure feasibility and ranking of pkg/scheduler, declines
 * with filters, suppress when idle and revive when work arrives, and a structured "why pending"
 * computed over every agent of the cluster, offered or not. The App framework is one; Jobs reuse it.
 *
 * The owner (a controller) keeps its desired state and calls {@link PendingWorkFramework.setWork}
 * on every sync with how many instances to launch now, having subtracted
 * {@link PendingWorkFramework.inflight}. The framework tells the owner when something it should
 * look at changed ({@link PendingWorkOwner.changed}).
 */
import type { Logger } from 'pino';
import type { PendingStatus, TaskPlacement } from '../api/types.generated';
import { removePorts, subtract } from '../api/resources';
import { checkOffers, placeMany, REASONS, type Demand, type OfferView, type Placed, type Placement, type Reason, type Strategy } from '../scheduler/feasibility';
import { PendingSummary } from '../scheduler/pending';
import type { Random } from '../scheduler/random';
import type { LaunchFailureReason, LaunchRequest, LaunchResult, LaunchTemplate, Offer } from '../scheduler/types';
import type { AgentView, Framework, SchedulerDriver, TaskStatusUpdate } from './framework';

/** What one owner wants placed now. */
export interface Work {
  /** The owner's key, `<namespace>/<name>`. */
  key: string;
  namespace: string;
  demand: Demand;
  template: LaunchTemplate;
  /** Instances to launch now (in-flight ones already subtracted by the owner). 0 removes the work. */
  count: number;
  /** Epoch ms since which the owner has waited (queued→bound latency; oldest work is placed first). */
  queuedAt: number;
  /** A new, unique task name for one instance. */
  newTaskName(): string;
  /**
   * All or nothing (an MPI-style gang): the whole `count` is placed in one round, on all of the
   * round's offers, or none of it is; see {@link MAX_PLACEMENTS_PER_ROUND} for the largest gang.
   */
  gang?: boolean;
}

/** What the framework needs from the owner of the work. */
export interface PendingWorkOwner {
  /** Where the owner's non-terminal tasks run (what constraints count); reservations are added by the framework. */
  placed(key: string): Placed[];
  /** Something the owner's status shows changed (a launch failed, or why-pending changed): sync it. */
  changed(key: string): void;
  /**
   * A gang was launched in one accept but the master bound only part of it (it refuses launches
   * one by one: FairShare, AgentLost, InsufficientResources, ...). `bound` are the members whose
   * Tasks were written and will start; the refused ones are no longer in flight and `changed(key)`
   * is called for them as for any refusal. The framework does not kill the bound members: the
   * owner decides (a gang Job fails the attempt and kills them, see docs/frameworks.md).
   */
  gangBroken?(key: string, bound: string[]): void;
}

export interface PendingWorkFrameworkOptions {
  id: string;
  role: string;
  owner: PendingWorkOwner;
  logger: Logger;
  /** @default 'SPREAD' */
  strategy?: Strategy;
  /** Draws dynamic host ports (see placeMany's `random`). @default one sequence for the process */
  random?: Random;
}

/** Filter on declined offers while work waits that they cannot run: the work is retried on them soon. */
export const RETRY_REFUSE_SECONDS = 5;
/**
 * Filter on declined offers while a gang waits: none. A gang needs all its agents' offers in the
 * same round; filters set in different rounds (a joining agent's offer is declined a round after
 * the others) expire in different rounds, and the gang would then never see enough offers at once.
 */
export const GANG_REFUSE_SECONDS = 0;
/** Filter when nothing waits (the framework is suppressed too; a revive clears filters). */
export const IDLE_REFUSE_SECONDS = 120;
/**
 * Instances of one owner placed per round at most. Most work places in O(offers + instances ×
 * log offers), but GROUP_BY and CLUSTER without a value check every offer for every instance,
 * and a round that takes seconds delays every other framework. The rest go in the next round.
 * A gang is never split across rounds: a larger one can never be placed (why-pending says so).
 */
export const MAX_PLACEMENTS_PER_ROUND = 2_000;
/** "Why pending" over every agent is recomputed at most this often per owner. */
const WHY_PENDING_CACHE_MS = 1_000;
const MIN_WINDOW = 100;

/**
 * How many of a round's offers one owner's placement looks at, as kube-scheduler's
 * percentageOfNodesToScore: all of them on a small cluster, a share falling from 50 % towards
 * 5 % as the cluster grows, never fewer than {@link MIN_WINDOW} nor than twice the instances
 * placed. Every owner checking every offer makes a round O(owners × agents): at 500 Apps on
 * 5,000 agents, 2.5 million checks. Successive owners look at successive windows (a rotating
 * cursor), so the cluster fills evenly; work that does not fit in its window is placed on every offer.
 */
export function windowSize(offers: number, instances: number): number {
  const percent = Math.max(5, 50 - offers / 125);
  return Math.min(offers, Math.max(MIN_WINDOW, 2 * instances, Math.ceil((offers * percent) / 100)));
}

interface Refusal {
  count: number;
  lastTime: number;
  agent?: string;
}

interface Queued extends Work {
  /** The last why-pending computed, and when. */
  why?: { at: number; status: PendingStatus };
}

export class PendingWorkFramework implements Framework {
  readonly id: string;
  readonly role: string;
  private driver?: SchedulerDriver;
  private suppressed = false;
  /** Where the next owner's window of offers starts (see {@link windowSize}). */
  private cursor = 0;
  private readonly work = new Map<string, Queued>();
  /** Owner key → task name → where it goes: launched, not yet reported by the master. */
  private readonly reserved = new Map<string, Map<string, Placed>>();
  private readonly owners = new Map<string, string>();
  /** Owner key → launches the master refused since its work was queued, per reason. */
  private readonly refusals = new Map<string, Map<LaunchFailureReason, Refusal>>();
  private readonly strategy: Strategy;
  private readonly log: Logger;

  constructor(private readonly o: PendingWorkFrameworkOptions) {
    this.id = o.id;
    this.role = o.role;
    this.strategy = o.strategy ?? 'SPREAD';
    this.log = o.logger.child({ framework: o.id });
  }

  // ---- the owner's side ----

  /** Replaces the owner's work (count 0 removes it). New or grown work revives the framework. */
  setWork(w: Work): void {
    const prev = this.work.get(w.key);
    if (w.count <= 0) {
      this.work.delete(w.key);
      if (this.inflight(w.key) === 0) this.refusals.delete(w.key); // satisfied: its refusals are history
      return;
    }
    // Work placed in full (count 0, kept until the owner's next sync) is history: new work waits from now.
    // A gang's explanation names its size: it is recomputed when the size or the gang flag changes.
    const keepWhy = prev !== undefined && !!prev.gang === !!w.gang && (!w.gang || prev.count === w.count);
    this.work.set(w.key, { ...w, queuedAt: prev && prev.count > 0 ? prev.queuedAt : w.queuedAt, why: keepWhy ? prev.why : undefined });
    // Work that an idle framework could not place (a gang too large for a round) did not keep it awake.
    if (!prev || w.count > prev.count || (placeable(w) && !placeable(prev))) this.wake();
  }

  removeWork(key: string): void {
    this.work.delete(key);
  }

  /** Forgets an owner entirely (deleted): its work and reservations. */
  forget(key: string): void {
    this.work.delete(key);
    this.refusals.delete(key);
    for (const name of this.reserved.get(key)?.keys() ?? []) this.owners.delete(name);
    this.reserved.delete(key);
  }

  /** Instances launched for the owner that the master has not reported yet. */
  inflight(key: string): number {
    return this.reserved.get(key)?.size ?? 0;
  }

  /** Whether the framework has nothing waiting (the owner may unregister it). */
  idle(): boolean {
    return this.queue().length === 0 && this.owners.size === 0;
  }

  /** Instances still waiting for the owner. */
  waiting(key: string): number {
    return this.work.get(key)?.count ?? 0;
  }

  /**
   * Why the owner's waiting instances are not placed: every agent counted once, by the first
   * check it fails against its free resources, or by why it was not offered; plus launches the
   * master refused at accept time. Undefined when nothing waits.
   */
  whyPending(key: string): PendingStatus | undefined {
    const w = this.work.get(key);
    if (!w || w.count <= 0 || !this.driver) return undefined;
    const now = this.driver.now();
    if (w.why && now - w.why.at < WHY_PENDING_CACHE_MS) return { ...w.why.status, instances: w.count };
    const status = explain(w, this.driver.agents(), this.placedOf(key), this.refusals.get(key), this.strategy);
    w.why = { at: now, status };
    return status;
  }

  // ---- Framework ----

  registered(driver: SchedulerDriver): void {
    this.driver = driver;
  }

  unregistered(): void {
    this.driver = undefined;
  }

  async resourceOffers(driver: SchedulerDriver, offers: Offer[]): Promise<void> {
    this.driver = driver;
    const work = this.queue();
    if (!work.some(placeable)) {
      // Nothing waits, or only gangs too large to place in any round (why-pending says so).
      driver.decline(offers.map((o) => o.id), IDLE_REFUSE_SECONDS);
      this.suppress(driver);
      return;
    }
    const left = offers.map((o) => ({ ...o, resources: { ...o.resources } }));
    const byId = new Map(left.map((o) => [o.id, o]));
    const launches: LaunchRequest[] = [];
    /** Task name → owner key, for the members of gangs launched in this round. */
    const gangs = new Map<string, string>();
    let waiting = false;
    let gangWaiting = false;
    for (const w of work) {
      if (!placeable(w)) continue;
      let placement: Placement;
      let looked: number;
      if (w.gang) {
        // All of it on all of the round's offers (no window, no per-round cap), or nothing:
        // what a gang that does not fit would have taken stays in `left` for the next work.
        placement = placeMany(new Array<Demand>(w.count).fill(w.demand), left, this.placedOf(w.key), { strategy: this.strategy, random: this.o.random });
        looked = left.length;
        if (placement.unplaced.length) {
          this.log.debug({ owner: w.key, gang: w.count, fit: placement.launches.length }, 'gang waits: not all of it fits the offers');
          waiting = true;
          gangWaiting = true;
          continue;
        }
      } else {
        const n = Math.min(w.count, MAX_PLACEMENTS_PER_ROUND);
        ({ placement, looked } = this.place(new Array<Demand>(n).fill(w.demand), left, this.placedOf(w.key)));
      }
      for (const l of placement.launches) {
        const offer = byId.get(l.offerId)!;
        offer.resources = { ...subtract(offer.resources, w.demand.resources), ports: removePorts(offer.resources.ports, l.ports) };
        const taskName = w.newTaskName();
        if (w.gang) gangs.set(taskName, w.key);
        this.reserve(w.key, taskName, { agent: offer.agent, hostname: offer.hostname, attributes: offer.attributes });
        launches.push({
          offerId: l.offerId, namespace: w.namespace, taskName, resources: w.demand.resources, ports: l.ports, task: w.template, queuedAt: w.queuedAt,
          placement: placementOf(this.strategy, looked, l),
        });
      }
      w.count -= placement.launches.length;
      if (placement.launches.length) w.why = undefined;
      if (placement.unplaced.length) this.log.debug({ owner: w.key, unplaced: placement.unplaced.length }, 'instances wait for offers');
      if (w.count > 0) waiting = true;
    }
    const used = new Set(launches.map((l) => l.offerId));
    const unused = offers.filter((o) => !used.has(o.id)).map((o) => o.id);
    if (unused.length) driver.decline(unused, gangWaiting ? GANG_REFUSE_SECONDS : waiting ? RETRY_REFUSE_SECONDS : IDLE_REFUSE_SECONDS);
    // The launches are reserved (in flight) already: the next offers need not wait for the binds.
    if (launches.length) {
      const agents = new Map(offers.map((o) => [o.id, o.agent]));
      void driver.accept([...used], launches).then(
        (results) => this.launched(results, agents, gangs),
        (err: Error) => {
          this.log.error({ err: err.message, launches: launches.length }, 'accept failed');
          this.launched(launches.map((request) => ({ request, ok: false, reason: 'BindFailed' as const })), agents, gangs);
        },
      );
    }
    if (!this.queue().some(placeable)) this.suppress(driver);
  }

  offerRescinded(): void {
    // Offers are used or declined within the round they arrive in; nothing is held.
  }

  /** The first update of a launched task means the master (and the owner's informer) has it: it is no longer in flight. */
  statusUpdate(_driver: SchedulerDriver, update: TaskStatusUpdate): void {
    this.release(update.taskName);
  }

  // ---- internals ----

  /** Waiting work, oldest first. */
  private queue(): Queued[] {
    return [...this.work.values()].filter((w) => w.count > 0).sort((a, b) => a.queuedAt - b.queuedAt);
  }

  private wake(): void {
    if (!this.driver) return;
    this.suppressed = false;
    this.driver.revive();
  }

  private suppress(driver: SchedulerDriver): void {
    if (this.suppressed) return;
    this.suppressed = true;
    driver.suppress();
  }

  private placedOf(key: string): Placed[] {
    return [...this.o.owner.placed(key), ...(this.reserved.get(key)?.values() ?? [])];
  }

  private reserve(key: string, taskName: string, where: Placed): void {
    let m = this.reserved.get(key);
    if (!m) this.reserved.set(key, (m = new Map()));
    m.set(taskName, where);
    this.owners.set(taskName, key);
  }

  /** Drops a reservation; returns its owner. */
  private release(taskName: string): string | undefined {
    const key = this.owners.get(taskName);
    if (key === undefined) return undefined;
    this.owners.delete(taskName);
    const m = this.reserved.get(key);
    m?.delete(taskName);
    if (m?.size === 0) this.reserved.delete(key);
    return key;
  }

  /**
   * Bind results: what did not happen is no longer in flight, is counted as a refusal, and its
   * owner syncs again. A gang of which some members bound and others did not is reported to its
   * owner ({@link PendingWorkOwner.gangBroken}).
   */
  private launched(results: LaunchResult[], agents: Map<string, string>, gangs: ReadonlyMap<string, string>): void {
    const now = this.driver?.now() ?? Date.now();
    const members = new Map<string, { bound: string[]; refused: number }>();
    for (const r of results) {
      const gang = gangs.get(r.request.taskName);
      if (gang !== undefined) {
        let m = members.get(gang);
        if (!m) members.set(gang, (m = { bound: [], refused: 0 }));
        if (r.ok) m.bound.push(r.request.taskName);
        else m.refused++;
      }
      if (r.ok) continue;
      const key = this.release(r.request.taskName);
      if (key === undefined) continue;
      const reason = r.reason ?? 'BindFailed';
      this.log.info({ owner: key, task: r.request.taskName, reason }, 'launch refused');
      let m = this.refusals.get(key);
      if (!m) this.refusals.set(key, (m = new Map()));
      m.set(reason, { count: (m.get(reason)?.count ?? 0) + 1, lastTime: now, agent: agents.get(r.request.offerId) });
      const w = this.work.get(key);
      if (w) w.why = undefined;
      this.o.owner.changed(key);
    }
    for (const [key, m] of members) {
      if (m.bound.length === 0 || m.refused === 0) continue;
      this.log.warn({ owner: key, bound: m.bound.length, refused: m.refused }, 'gang bound in part');
      this.o.owner.gangBroken?.(key, m.bound);
    }
  }

  /** placeMany on this owner's window of the offers, or on all of them when the window cannot take every instance. */
  private place(demands: Demand[], offers: Offer[], placed: Placed[]): { placement: Placement; looked: number } {
    const options = { strategy: this.strategy, random: this.o.random };
    const size = windowSize(offers.length, demands.length);
    if (size >= offers.length) return { placement: placeMany(demands, offers, placed, options), looked: offers.length };
    const start = this.cursor % offers.length;
    this.cursor = start + size;
    const window = offers.slice(start, start + size);
    if (window.length < size) window.push(...offers.slice(0, size - window.length));
    const placement = placeMany(demands, window, placed, options);
    return placement.unplaced.length === 0 ? { placement, looked: window.length } : { placement: placeMany(demands, offers, placed, options), looked: offers.length };
  }
}

/** Whether the work can be placed in some round: a gang larger than a round's placements never can. */
function placeable(w: Pick<Work, 'count' | 'gang'>): boolean {
  return !(w.gang && w.count > MAX_PLACEMENTS_PER_ROUND);
}

/** Why one task went where it did, for `shoal describe task`. */
function placementOf(strategy: Strategy, looked: number, l: Placement['launches'][number]): TaskPlacement {
  const { groupLoad, appTasks, free } = l.rank;
  const keys = [`${appTasks} task(s) of its owner there`, `free share ${free}`];
  if (groupLoad > 0) keys.unshift(`${groupLoad} task(s) on its GROUP_BY value`);
  return {
    strategy,
    offers: looked,
    feasible: l.feasible,
    rank: { groupLoad, appTasks, free },
    message: `${l.feasible} of ${looked} offered agent(s) could run it; ranked first by ${strategy}: ${keys.join(', ')}`,
  };
}

/** The reason for an agent that could run the work but was not offered to this framework. */
const NOT_OFFERED: Partial<Record<AgentView['status'], Reason>> = {
  filtered: 'DeclineFilter',
  offered: 'OfferedElsewhere',
};

/**
 * Why-pending over every agent: pure, given the master's view of the agents. For a gang the
 * message starts with its size and how many of it fit the agents' free resources now.
 */
export function explain(w: Pick<Work, 'count' | 'demand' | 'gang'>, agents: AgentView[], placed: Placed[], refused?: ReadonlyMap<LaunchFailureReason, Refusal>, strategy?: Strategy): PendingStatus {
  const summary = new PendingSummary();
  const alive = agents.filter((a) => a.status !== 'lost');
  for (const a of agents) if (a.status === 'lost') summary.record(a.info.name, { reason: 'AgentLost', detail: `${REASONS.AgentLost} (lease expired)` });
  const views = alive.map((a) => ({ agent: a.info.name, hostname: a.info.hostname, attributes: a.info.attributes, runtimes: a.info.runtimes, resources: a.free, schedulable: a.info.schedulable }));
  const results = checkOffers(w.demand, views, placed);
  alive.forEach((a, i) => {
    const r = results[i];
    if (!r.ok) return summary.record(a.info.name, r);
    const why = NOT_OFFERED[a.status];
    summary.record(a.info.name, why ? { reason: why } : 'ok');
  });
  const report = summary.summary();
  const refusals = [...(refused ?? new Map<LaunchFailureReason, Refusal>()).entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([reason, r]) => ({ reason, count: r.count, lastTime: new Date(r.lastTime).toISOString(), ...(r.agent ? { agent: r.agent } : {}) }));
  let message = summary.message();
  if (w.gang) message = `${gangHead(w, views, placed, strategy)}: ${message}`;
  if (refusals.length) message = `${message.replace(/\.$/, '')}; launches refused at accept: ${refusals.map((r) => `${r.count} ${REFUSAL_SENTENCE[r.reason as LaunchFailureReason] ?? r.reason}`).join(', ')}.`;
  return {
    instances: w.count,
    agents: report.agentsSeen,
    available: report.available,
    message,
    reasons: report.reasons.slice(0, 64).map((r) => ({ reason: r.reason, count: r.count, message: r.sentence, agents: r.agents.map((a) => ({ name: a.name, detail: a.detail })) })),
    ...(refusals.length ? { refusals } : {}),
  };
}

/**
 * `gang of 4: needs 4 task(s) placed together; 3 fit now`: how many of the gang placeMany puts on
 * the agents' free resources (every live agent, offered to this framework now or not; cordoned
 * ones fit nothing), with constraints counting the owner's placed and in-flight tasks, as a
 * round offered every agent would. Exact for the greedy placement rounds use.
 */
function gangHead(w: Pick<Work, 'count' | 'demand'>, views: OfferView[], placed: Placed[], strategy?: Strategy): string {
  const head = `gang of ${w.count}: needs ${w.count} task(s) placed together`;
  if (w.count > MAX_PLACEMENTS_PER_ROUND) return `${head}, more than the ${MAX_PLACEMENTS_PER_ROUND} one round places at most: it can never be placed (make it smaller)`;
  const offers = views.map((v): Offer & { schedulable?: boolean } => ({ ...v, id: v.agent, frameworkId: '', expiresAt: 0 }));
  const fit = placeMany(new Array<Demand>(w.count).fill(w.demand), offers, placed, { strategy }).launches.length;
  return `${head}; ${fit} fit now`;
}

const REFUSAL_SENTENCE: Record<LaunchFailureReason, string> = {
  OfferUnknown: 'offer gone (expired or rescinded)',
  InsufficientResources: 'larger than the offer',
  FairShare: 'role above its fair share',
  AgentLost: 'agent lost before the bind',
  NotLeader: 'leader changed',
  BindFailed: 'bind failed',
};
