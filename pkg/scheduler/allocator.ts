/**
 * The first level of two-level scheduling (the Mesos master's allocator), as pure state:
 * agents, tracked allocations, frameworks, outstanding offers and decline filters. Time is
 * always an argument (`now`, epoch ms); nothing here does I/O, starts timers or calls a
 * framework — the master shell feeds events in and delivers the offers that come out.
 */
import { add, fits, isValidDemand, rangesContain, removePorts, round, subtract, zero } from '../api/resources';
import { nameKey } from '../api/keys';
import { checkWeight, DRFSorter, Sorter } from './sorter';
import type { AgentInfo, Allocation, LaunchFailureReason, LaunchRequest, Offer, PortRange, Resources, Scalars } from './types';

/** Options of {@link Allocator}. */
export interface AllocatorOptions {
  /** How long an unanswered offer stays outstanding before {@link Allocator.expire} rescinds it. @default 10000 */
  offerTimeoutMs?: number;
  /** Refuse seconds of a decline that names none (Mesos' default filter). @default 5 */
  defaultRefuseSeconds?: number;
  /**
   * Slack of the accept-time fairness check, in weighted dominant share: a role may launch
   * while its share is at most the lowest competing role's share plus this. `Infinity`
   * turns the check off (e.g. together with a `RandomSorter`). @default 0.01
   */
  fairnessQuantum?: number;
  /** Role weights (DRF divides a role's share by its weight). @default every role 1 */
  roleWeights?: Record<string, number>;
  /**
   * The offer order of roles, and the one ledger of their allocations and of the pool: both
   * the offer order and the accept-time fairness check read it. @default new DRFSorter()
   */
  sorter?: Sorter;
  /**
   * Makes the sorter of the frameworks within one role (called once per role, as Mesos keeps
   * one framework sorter per role). @default () => new DRFSorter()
   */
  frameworkSorter?: () => Sorter;
}

/** {@link AllocatorOptions} with every default filled in. */
export interface CompiledAllocatorOptions {
  offerTimeoutMs: number;
  defaultRefuseSeconds: number;
  fairnessQuantum: number;
  roleWeights: Record<string, number>;
  sorter: Sorter;
  frameworkSorter: () => Sorter;
}

/** Fills the defaults of {@link AllocatorOptions}; throws a `TypeError` naming a bad field. */
export function compileAllocatorOptions(options: AllocatorOptions = {}): CompiledAllocatorOptions {
  const compiled = {
    offerTimeoutMs: options.offerTimeoutMs ?? 10_000,
    defaultRefuseSeconds: options.defaultRefuseSeconds ?? 5,
    fairnessQuantum: options.fairnessQuantum ?? 0.01,
    roleWeights: { ...options.roleWeights },
    sorter: options.sorter ?? new DRFSorter(),
    frameworkSorter: options.frameworkSorter ?? (() => new DRFSorter()),
  };
  for (const field of ['offerTimeoutMs', 'defaultRefuseSeconds', 'fairnessQuantum'] as const) {
    const v = compiled[field];
    if (Number.isNaN(v) || v < 0) throw new TypeError(`AllocatorOptions.${field} must be a number ≥ 0, got ${v}`);
  }
  for (const [role, w] of Object.entries(compiled.roleWeights)) checkWeight(`AllocatorOptions.roleWeights.${role}`, w);
  return compiled;
}

/** What {@link Allocator.accept} did with each launch, in the order the launches were given. */
export interface AcceptResult {
  /** Launches admitted and already tracked as allocations (untrack them if the bind fails). */
  accepted: LaunchRequest[];
  rejected: Array<{ request: LaunchRequest; reason: LaunchFailureReason }>;
}

/** Counters for metrics and tests. */
export interface AllocatorStats {
  agents: number;
  frameworks: number;
  roles: number;
  allocations: number;
  outstandingOffers: number;
  filters: number;
}

/** The allocation key of a task: `<namespace>/<name>` ({@link nameKey}). */
export function taskKeyOf(namespace: string | undefined, taskName: string): string {
  return nameKey(namespace, taskName);
}

/** Everything the allocator knows about one agent, in one record so a round does one lookup. */
interface AgentState {
  name: string;
  /** Undefined while the agent is known only through allocations on it (e.g. before its Node is seen). */
  info?: AgentInfo;
  used: Scalars;
  /** Held host port → number of allocations holding it (more than one only after a caller bug). */
  ports: Map<number, number>;
  /** Free port ranges, frozen and shared by offers; dropped whenever the held ports change. */
  freePorts?: PortRange[];
  /** The one outstanding offer of this agent. */
  offer?: Offer;
  tasks: number;
}

interface FrameworkState {
  id: string;
  role: string;
  suppressed: boolean;
}

/**
 * A role: its registered frameworks and how many tracked tasks it has. What it holds is not
 * here: the role sorter keeps the role's allocation, and the role's framework sorter keeps
 * each framework's (a client there from registration or first task until neither is left).
 */
interface RoleState {
  name: string;
  frameworks: Map<string, FrameworkState>;
  /** Orders the role's frameworks (Mesos' per-role framework sorter). */
  sorter: Sorter;
  tasks: number;
  /** Tracked tasks per framework id, registered or not (tasks outlive their framework's registration). */
  frameworkTasks: Map<string, number>;
}

/** What is left of one offer while the launches of an accept are checked against it. */
interface Room {
  offer: Offer;
  agent: AgentState;
  free: Scalars;
  taken: Set<number>;
}

/** Weighted shares are compared with this much slack, so float noise never flips a decision. */
const SHARE_EPSILON = 1e-9;

/**
 * The allocator: turns agents' free resources into offers in weighted-DRF order of roles,
 * and admits launches from accepted offers only while they keep roles near their DRF share.
 *
 * Typical round in the master shell: `expire(now)` (rescind what it returns), `allocate(now)`
 * (deliver offers), then feed each framework's `accept`/`decline`/`suppress`/`revive` back.
 * Offers are frozen: a framework reads them (and copies what it wants to count down).
 */
export class Allocator {
  private readonly options: CompiledAllocatorOptions;
  private readonly sorter: Sorter;
  private readonly agents = new Map<string, AgentState>();
  private readonly allocations = new Map<string, Allocation>();
  private readonly frameworks = new Map<string, FrameworkState>();
  private readonly roles = new Map<string, RoleState>();
  private readonly offers = new Map<string, Offer>();
  /**
   * frameworkId → agent → epoch ms until which that agent is not offered to that framework.
   * Keyed by framework first: a round looks each candidate's map up once, and a few large maps
   * churn far less garbage than one small map per agent.
   */
  private readonly filters = new Map<string, Map<string, number>>();
  private nextFilterExpiry = Infinity;
  private seq = 0;

  constructor(options: AllocatorOptions = {}) {
    this.options = compileAllocatorOptions(options);
    this.sorter = this.options.sorter;
  }

  // ---- agents ----

  /**
   * Adds or updates an agent. Returns its outstanding offer when it is no longer valid
   * (agent cordoned, lease gone, or capacity/attributes changed), for the caller to rescind.
   */
  upsertAgent(info: AgentInfo): Offer[] {
    const st = this.agent(info.name);
    const prev = st.info;
    // Frozen, because every offer of this agent shares them rather than copying (10k offers a round).
    st.info = { ...info, capacity: cloneResources(info.capacity), attributes: frozen({ ...info.attributes }), runtimes: frozen([...info.runtimes]) };
    st.freePorts = undefined;
    this.setTotal(add(subtract(this.sorter.total(), prev?.capacity ?? zero()), st.info.capacity));
    return !offerable(st.info) || (prev !== undefined && !sameOfferedView(prev, st.info)) ? this.rescind(st) : [];
  }

  /** Forgets an agent; returns its outstanding offer for the caller to rescind. Its allocations stay tracked until untracked. */
  removeAgent(name: string): Offer[] {
    const st = this.agents.get(name);
    if (!st?.info) return [];
    this.setTotal(subtract(this.sorter.total(), st.info.capacity));
    st.info = undefined;
    st.freePorts = undefined;
    for (const perAgent of this.filters.values()) perAgent.delete(name);
    const rescinded = this.rescind(st);
    this.releaseAgentIfIdle(st);
    return rescinded;
  }

  // ---- bookkeeping: the only place allocations are counted ----

  /** Counts an allocation against its agent, its role and its framework. Tracking an existing key replaces it. */
  track(allocation: Allocation): void {
    this.untrack(allocation.taskKey);
    const a: Allocation = { ...allocation, resources: scalarsOf(allocation.resources), ports: [...allocation.ports] };
    this.allocations.set(a.taskKey, a);
    const st = this.agent(a.agent);
    st.used = add(st.used, a.resources);
    st.tasks++;
    for (const p of a.ports) st.ports.set(p, (st.ports.get(p) ?? 0) + 1);
    if (a.ports.length > 0) st.freePorts = undefined;
    const r = this.role(a.role);
    r.tasks++;
    r.frameworkTasks.set(a.frameworkId, (r.frameworkTasks.get(a.frameworkId) ?? 0) + 1);
    if (!r.sorter.contains(a.frameworkId)) r.sorter.add(a.frameworkId);
    r.sorter.allocated(a.frameworkId, a.resources);
    this.sorter.allocated(a.role, a.resources);
  }

  /** Releases an allocation; returns whether it was tracked (untracking twice is harmless). */
  untrack(taskKey: string): boolean {
    const a = this.allocations.get(taskKey);
    if (!a) return false;
    this.allocations.delete(taskKey);
    const st = this.agent(a.agent);
    st.used = subtract(st.used, a.resources);
    st.tasks--;
    for (const p of a.ports) decrement(st.ports, p);
    if (a.ports.length > 0) st.freePorts = undefined;
    this.releaseAgentIfIdle(st);
    const r = this.role(a.role);
    r.tasks--;
    decrement(r.frameworkTasks, a.frameworkId);
    r.sorter.unallocated(a.frameworkId, a.resources);
    this.sorter.unallocated(a.role, a.resources);
    this.releaseFrameworkIfIdle(r, a.frameworkId);
    this.releaseRoleIfIdle(r);
    return true;
  }

  // ---- frameworks ----

  /** Registers a framework under a role (re-registering with another role moves it). */
  addFramework(id: string, role: string): void {
    const prev = this.frameworks.get(id);
    if (prev?.role === role) return;
    if (prev) this.detach(prev);
    const fw: FrameworkState = { id, role, suppressed: prev?.suppressed ?? false };
    this.frameworks.set(id, fw);
    const r = this.role(role);
    r.frameworks.set(id, fw);
    if (!r.sorter.contains(id)) r.sorter.add(id);
  }

  /**
   * Unregisters a framework; returns its outstanding offers (now void, for the caller to
   * rescind) and drops its filters. Its tasks stay tracked (and count for its role) until untracked.
   */
  removeFramework(id: string): Offer[] {
    const fw = this.frameworks.get(id);
    if (!fw) return [];
    const removed = this.outstanding(id);
    for (const o of removed) this.removeOffer(o);
    this.filters.delete(id);
    this.frameworks.delete(id);
    this.detach(fw);
    return removed;
  }

  /** Stops offers to a framework until {@link revive}. Its outstanding offers stay valid. */
  suppress(id: string): void {
    const fw = this.frameworks.get(id);
    if (fw) fw.suppressed = true;
  }

  /** Resumes offers to a framework and clears its decline filters (it has new work). */
  revive(id: string): void {
    const fw = this.frameworks.get(id);
    if (fw) fw.suppressed = false;
    this.filters.delete(id);
  }

  // ---- the offer cycle ----

  /**
   * One allocation round: every schedulable, live agent that is not in an outstanding offer
   * and has cpus and mem free is offered, whole, to the first eligible framework in sorter
   * order (roles by the role sorter, then the frameworks of each role by its framework sorter:
   * weighted DRF by default). Sorted once per round, as Mesos does; call {@link expire} first.
   */
  allocate(now: number): Offer[] {
    this.dropExpiredFilters(now);
    const candidates = this.candidates();
    const out: Offer[] = [];
    if (candidates.length === 0) return out;
    // Looked up once per round, so the per-agent loop below does no lookup by framework.
    const filterMaps = candidates.map((fw) => this.filters.get(fw.id));
    for (const st of this.agents.values()) {
      const info = st.info;
      if (!info || st.offer || !offerable(info)) continue;
      const cpus = left(info.capacity.cpus, st.used.cpus);
      const mem = left(info.capacity.mem, st.used.mem);
      if (cpus <= 0 || mem <= 0) continue;
      const i = firstUnfiltered(filterMaps, st.name, now);
      if (i >= 0) out.push(this.makeOffer(candidates[i], st, info, { cpus, mem, disk: left(info.capacity.disk, st.used.disk), ports: this.freePorts(st) }, now));
    }
    return out;
  }

  /**
   * Launches tasks from offers of one framework. Launches are checked in order: against what
   * remains of their offer (and of the agent), then against fairness (see
   * {@link fairShareAllows}). Admitted launches are tracked at once; every offer of the call
   * is then used up, its remainder returning to the pool for the next round.
   */
  accept(offerIds: string[], launches: LaunchRequest[], now: number): AcceptResult {
    const offers = this.claim(offerIds, now);
    if (!offers) return { accepted: [], rejected: launches.map((request) => ({ request, reason: 'OfferUnknown' as const })) };
    const role = this.frameworks.get(offers[0].frameworkId)?.role ?? '*';
    const rooms = new Map(offers.map((o): [string, Room] => [o.id, { offer: o, agent: this.agent(o.agent), free: scalarsOf(o.resources), taken: new Set() }]));
    const floors = new Map<string, number>();
    const result: AcceptResult = { accepted: [], rejected: [] };
    for (const request of launches) {
      const reason = this.admit(request, rooms, role, floors, now);
      if (reason) result.rejected.push({ request, reason });
      else result.accepted.push(request);
    }
    for (const o of offers) this.removeOffer(o);
    return result;
  }

  /**
   * Declines offers: they return to the pool, and each (framework, agent) pair is filtered
   * until `now + refuseSeconds` (default {@link AllocatorOptions.defaultRefuseSeconds}; 0 means
   * no filter, Infinity until revive). Unknown offer ids are ignored: declining is idempotent.
   */
  decline(offerIds: string[], refuseSeconds: number | undefined, now: number): void {
    const seconds = refuseSeconds ?? this.options.defaultRefuseSeconds;
    for (const id of offerIds) {
      const offer = this.offers.get(id);
      if (!offer) continue;
      this.removeOffer(offer);
      if (seconds > 0) this.addFilter(offer.frameworkId, offer.agent, now + seconds * 1000);
    }
  }

  /** Removes and returns the offers whose `expiresAt` is past, for the caller to rescind. */
  expire(now: number): Offer[] {
    const expired: Offer[] = [];
    for (const o of this.offers.values()) if (o.expiresAt < now) expired.push(o);
    for (const o of expired) this.removeOffer(o);
    return expired;
  }

  // ---- views ----

  /** Outstanding offers, oldest first; only `frameworkId`'s when given. */
  outstanding(frameworkId?: string): Offer[] {
    const all = [...this.offers.values()];
    return frameworkId === undefined ? all : all.filter((o) => o.frameworkId === frameworkId);
  }

  /** An agent's capacity minus its tracked allocations (nothing for an unknown agent). */
  freeOf(agent: string): Resources {
    const st = this.agents.get(agent);
    if (!st?.info) return { ...zero(), ports: [] };
    return { ...this.freeScalars(st), ports: this.freePorts(st).map(([b, e]): PortRange => [b, e]) };
  }

  /** Until when (epoch ms) `agent` is filtered for `frameworkId` by a decline, if it is at `now`. */
  filteredUntil(frameworkId: string, agent: string, now: number): number | undefined {
    const until = this.filters.get(frameworkId)?.get(agent);
    return until !== undefined && until > now ? until : undefined;
  }

  /** Whether a framework is suppressed (gets no offers until it revives). */
  isSuppressed(frameworkId: string): boolean {
    return this.frameworks.get(frameworkId)?.suppressed ?? false;
  }

  /** Weighted dominant share of every role the allocator knows (by frameworks or allocations), as the role sorter has it. */
  shares(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of [...this.roles.keys()].sort()) out[name] = this.sorter.share(name);
    return out;
  }

  /** Dominant share of each framework of `role` (registered, or holding tasks), as the role's framework sorter has it. */
  frameworkShares(role: string): Record<string, number> {
    const r = this.roles.get(role);
    const out: Record<string, number> = {};
    if (!r) return out;
    for (const id of [...r.frameworkTasks.keys(), ...r.frameworks.keys()].sort()) out[id] = r.sorter.share(id);
    return out;
  }

  /** Sizes of the allocator's state, for metrics. */
  stats(): AllocatorStats {
    let agents = 0;
    let filters = 0;
    for (const st of this.agents.values()) if (st.info) agents++;
    for (const perAgent of this.filters.values()) filters += perAgent.size;
    const { frameworks, roles, allocations, offers } = this;
    return { agents, frameworks: frameworks.size, roles: roles.size, allocations: allocations.size, outstandingOffers: offers.size, filters };
  }

  // ---- offers ----

  /** Offers are frozen: accept checks launches against them, so a framework must not shrink them in place. */
  private makeOffer(fw: FrameworkState, st: AgentState, info: AgentInfo, free: Resources, now: number): Offer {
    const offer: Offer = frozen({
      id: `${++this.seq}`,
      frameworkId: fw.id,
      agent: st.name,
      hostname: info.hostname,
      attributes: info.attributes,
      runtimes: info.runtimes,
      resources: frozen(free),
      expiresAt: now + this.options.offerTimeoutMs,
    });
    this.offers.set(offer.id, offer);
    st.offer = offer;
    return offer;
  }

  private removeOffer(offer: Offer): void {
    this.offers.delete(offer.id);
    const st = this.agents.get(offer.agent);
    if (st?.offer === offer) st.offer = undefined;
  }

  private rescind(st: AgentState): Offer[] {
    const offer = st.offer;
    if (!offer) return [];
    this.removeOffer(offer);
    return [offer];
  }

  /**
   * The offers of an accept, or undefined when one is unknown or expired or they span
   * frameworks. Then, as in Mesos, the valid ones are used up anyway (the framework thinks
   * them spent) — but only when they all belong to one framework: with several we cannot
   * tell who called, and one framework must not be able to void another's offer.
   */
  private claim(offerIds: string[], now: number): Offer[] | undefined {
    const known = offerIds.map((id) => this.offers.get(id)).filter((o): o is Offer => o !== undefined);
    const live = known.filter((o) => o.expiresAt >= now);
    const owners = new Set(known.map((o) => o.frameworkId));
    if (live.length > 0 && live.length === offerIds.length && owners.size === 1) return [...new Set(live)];
    if (owners.size === 1) for (const o of live) this.removeOffer(o);
    return undefined;
  }

  // ---- launches ----

  private admit(request: LaunchRequest, rooms: Map<string, Room>, role: string, floors: Map<string, number>, now: number): LaunchFailureReason | undefined {
    const room = rooms.get(request.offerId);
    if (!room) return 'OfferUnknown';
    const taskKey = taskKeyOf(request.namespace, request.taskName);
    // A second task under a live key would make the binder's create fail, and its untrack
    // would then release the first task's resources: refuse it here instead.
    if (this.allocations.has(taskKey)) return 'BindFailed';
    if (!this.fitsRoom(request, room)) return 'InsufficientResources';
    if (!this.fairShareAllows(role, room.agent, floors, now)) return 'FairShare';
    room.free = subtract(room.free, request.resources);
    for (const p of request.ports) room.taken.add(p);
    const { agent, frameworkId } = room.offer;
    this.track({ taskKey, agent, role, frameworkId, resources: request.resources, ports: request.ports });
    return undefined;
  }

  /**
   * Whether a launch fits what remains of its offer — and of its agent right now, so that an
   * allocation tracked while the offer was out can never be double-booked.
   */
  private fitsRoom(request: LaunchRequest, room: Room): boolean {
    const need = request.resources;
    const st = room.agent;
    if (!st.info || !isValidDemand(need) || !fits(need, room.free) || !fits(need, this.freeScalars(st))) return false;
    const ports = request.ports;
    if (new Set(ports).size !== ports.length) return false;
    return ports.every((p) => Number.isInteger(p) && rangesContain(room.offer.resources.ports, p) && !room.taken.has(p) && !st.ports.has(p));
  }

  /**
   * DRF progressive filling, checked at accept time so it holds even when every contended
   * resource sits on one agent: a role may launch while its weighted dominant share (before
   * this launch, as the role sorter has it: the offer order's own ledger, so the two never
   * disagree) is at most the lowest share among the roles it competes with on this agent,
   * plus the fairness quantum. So the role whose turn it is always gets its next task (and
   * may overshoot by that one task), and nobody else does — however launches are grouped into
   * accept calls. Competitors are other roles with a framework that is unsuppressed and not
   * filtered for this agent: a role that declined the agent cannot use it and must not
   * hold it back.
   */
  private fairShareAllows(role: string, st: AgentState, floors: Map<string, number>, now: number): boolean {
    if (this.options.fairnessQuantum === Infinity) return true;
    // Within one accept only this role's share moves, so the competitors' floor per agent is fixed.
    let floor = floors.get(st.name);
    if (floor === undefined) floors.set(st.name, (floor = this.competitorFloor(role, st, now)));
    return this.sorter.share(role) <= floor + this.options.fairnessQuantum + SHARE_EPSILON;
  }

  private competitorFloor(role: string, st: AgentState, now: number): number {
    let floor = Infinity;
    for (const r of this.roles.values()) {
      if (r.name === role || !this.competes(r, st.name, now)) continue;
      floor = Math.min(floor, this.sorter.share(r.name));
    }
    return floor;
  }

  /** Whether a role has a framework that could take an offer of `agent` now: unsuppressed and not filtered for it. */
  private competes(r: RoleState, agent: string, now: number): boolean {
    for (const fw of r.frameworks.values()) if (!fw.suppressed && !isFiltered(this.filters.get(fw.id), agent, now)) return true;
    return false;
  }

  // ---- filters ----

  private addFilter(frameworkId: string, agent: string, until: number): void {
    let perAgent = this.filters.get(frameworkId);
    if (!perAgent) this.filters.set(frameworkId, (perAgent = new Map()));
    perAgent.set(agent, Math.max(perAgent.get(agent) ?? 0, until));
    this.nextFilterExpiry = Math.min(this.nextFilterExpiry, until);
  }

  /** Sweeps only when some filter is due, so a round with thousands of live filters stays cheap. */
  private dropExpiredFilters(now: number): void {
    if (now < this.nextFilterExpiry) return;
    let next = Infinity;
    for (const [fw, perAgent] of this.filters) {
      for (const [agent, until] of perAgent) {
        if (until <= now) perAgent.delete(agent);
        else next = Math.min(next, until);
      }
      if (perAgent.size === 0) this.filters.delete(fw);
    }
    this.nextFilterExpiry = next;
  }

  // ---- roles and agents ----

  /** Unsuppressed registered frameworks: roles in role-sorter order, each role's frameworks in its sorter's order. */
  private candidates(): FrameworkState[] {
    const out: FrameworkState[] = [];
    for (const name of this.sorter.sort()) {
      const r = this.roles.get(name);
      if (!r || r.frameworks.size === 0) continue;
      for (const id of r.sorter.sort()) {
        const fw = r.frameworks.get(id);
        if (fw && !fw.suppressed) out.push(fw);
      }
    }
    return out;
  }

  private role(name: string): RoleState {
    let r = this.roles.get(name);
    if (!r) {
      r = { name, frameworks: new Map(), sorter: this.options.frameworkSorter(), tasks: 0, frameworkTasks: new Map() };
      r.sorter.setTotal(this.sorter.total());
      this.roles.set(name, r);
      this.sorter.add(name, this.options.roleWeights[name] ?? 1);
    }
    return r;
  }

  private detach(fw: FrameworkState): void {
    const r = this.role(fw.role);
    r.frameworks.delete(fw.id);
    this.releaseFrameworkIfIdle(r, fw.id);
    this.releaseRoleIfIdle(r);
  }

  /** Drops a framework from its role's sorter once it is neither registered in the role nor holds tasks there. */
  private releaseFrameworkIfIdle(r: RoleState, id: string): void {
    if (!r.frameworks.has(id) && !r.frameworkTasks.has(id)) r.sorter.remove(id);
  }

  private releaseRoleIfIdle(r: RoleState): void {
    if (r.frameworks.size > 0 || r.tasks > 0) return;
    this.roles.delete(r.name);
    this.sorter.remove(r.name);
  }

  /** The pool lives in the role sorter; each role's framework sorter gets a copy to weigh resources by. */
  private setTotal(total: Scalars): void {
    this.sorter.setTotal(total);
    for (const r of this.roles.values()) r.sorter.setTotal(total);
  }

  private agent(name: string): AgentState {
    let st = this.agents.get(name);
    if (!st) this.agents.set(name, (st = { name, used: zero(), ports: new Map(), tasks: 0 }));
    return st;
  }

  /** Drops an agent neither reported nor holding allocations. */
  private releaseAgentIfIdle(st: AgentState): void {
    if (!st.info && st.tasks === 0) this.agents.delete(st.name);
  }

  private freeScalars(st: AgentState): Scalars {
    const cap = st.info?.capacity ?? zero();
    return { cpus: left(cap.cpus, st.used.cpus), mem: left(cap.mem, st.used.mem), disk: left(cap.disk, st.used.disk) };
  }

  private freePorts(st: AgentState): PortRange[] {
    if (!st.freePorts) st.freePorts = frozen(removePorts(st.info?.capacity.ports ?? [], st.ports.keys()).map((r) => frozen(r)));
    return st.freePorts;
  }
}

/** Index of the first candidate whose filter map does not hold `agent` past `now`, or -1. */
function firstUnfiltered(filterMaps: Array<Map<string, number> | undefined>, agent: string, now: number): number {
  for (let i = 0; i < filterMaps.length; i++) if (!isFiltered(filterMaps[i], agent, now)) return i;
  return -1;
}

function isFiltered(perAgent: Map<string, number> | undefined, agent: string, now: number): boolean {
  const until = perAgent?.get(agent);
  return until !== undefined && until > now;
}

function offerable(agent: AgentInfo): boolean {
  return agent.schedulable && agent.leaseRevision > 0;
}

/** Whether an offer made from `a` would still describe `b` (lease revision aside). */
function sameOfferedView(a: AgentInfo, b: AgentInfo): boolean {
  const view = (x: AgentInfo) => JSON.stringify([x.hostname, x.capacity, x.attributes, x.runtimes]);
  return view(a) === view(b);
}

/** What is left of `capacity` after `used`, on the grid, never negative. */
function left(capacity: number, used: number): number {
  return Math.max(0, round(capacity - used));
}

/** `Object.freeze` keeping the mutable type, for state shared read-only with offers. */
function frozen<T extends object>(x: T): T {
  return Object.freeze(x) as T;
}

function scalarsOf(s: Scalars): Scalars {
  return { cpus: s.cpus, mem: s.mem, disk: s.disk };
}

function cloneResources(r: Resources): Resources {
  return { ...scalarsOf(r), ports: r.ports.map(([b, e]): PortRange => [b, e]) };
}

function decrement<K>(counts: Map<K, number>, key: K): void {
  const n = (counts.get(key) ?? 0) - 1;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
