/**
 * PendingWorkFramework (the App framework, and the base of any "N more tasks like this"
 * framework) against a fake driver (the master's side, recording every call) and a fake owner
 * (the controller's side): placement on offers across owners, ports, runtimes, constraints, the
 * window of offers each owner looks at, reservations (in flight until the first status update),
 * refusals recorded from failed launches, declines and their filters, suppress and revive, and
 * "why pending" (`explain`) over the master's view of every agent. Every round is also checked
 * against invariants that hold whatever the scenario.
 */
import type { Constraint } from '../../pkg/api/types.generated';
import { rangesContain } from '../../pkg/api/resources';
import { appFramework, frameworkIdFor } from '../../pkg/controllers/apps/framework';
import type { AgentView, SchedulerDriver, TaskRef, TaskStatusUpdate } from '../../pkg/master/framework';
import {
  explain,
  IDLE_REFUSE_SECONDS,
  MAX_PLACEMENTS_PER_ROUND,
  PendingWorkFramework,
  RETRY_REFUSE_SECONDS,
  GANG_REFUSE_SECONDS,
  windowSize,
  type PendingWorkOwner,
  type Work,
} from '../../pkg/master/pending-framework';
import type { Placed, Strategy } from '../../pkg/scheduler/feasibility';
import type { LaunchFailureReason, LaunchRequest, LaunchResult, Offer, PortRange } from '../../pkg/scheduler/types';
import { FakeClock, settle } from '../../pkg/util/clock';
import { silentLogger } from '../../pkg/util/log';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const RETRY = RETRY_REFUSE_SECONDS;
const GANG = GANG_REFUSE_SECONDS;
const IDLE = IDLE_REFUSE_SECONDS;

interface WorkOpts {
  count?: number;
  cpus?: number;
  mem?: number;
  /** Host ports, 0 for any. */
  ports?: number[];
  runtime?: 'docker';
  constraints?: Constraint[];
  queuedAt?: number;
  /** All or nothing. */
  gang?: boolean;
}

/** The work of owner `default/<name>`: `count` instances named `<name>-1`, `<name>-2`, ... */
function work(name: string, o: WorkOpts = {}): Work {
  let n = 0;
  return {
    key: `default/${name}`,
    namespace: 'default',
    demand: { resources: { cpus: o.cpus ?? 1, mem: o.mem ?? 128, disk: 0 }, ports: (o.ports ?? []).map((hostPort) => ({ hostPort })), runtime: o.runtime, constraints: o.constraints ?? [] },
    template: { metadata: { labels: { app: name } }, spec: o.runtime === 'docker' ? { container: { image: 'nginx:1' } } : { cmd: 'httpd' } },
    count: o.count ?? 1,
    queuedAt: o.queuedAt ?? T0,
    newTaskName: () => `${name}-${++n}`,
    ...(o.gang ? { gang: true } : {}),
  };
}

interface OfferOpts { cpus?: number; mem?: number; ports?: PortRange[]; rack?: string; runtimes?: string[]; hostname?: string }

/** An offer of agent `agent` (offer id `o-<agent>`, hostname `<agent>.example` unless given). */
function offer(agent: string, o: OfferOpts = {}): Offer {
  return {
    id: `o-${agent}`, frameworkId: 'apps', agent, hostname: o.hostname ?? `${agent}.example`,
    attributes: { rack: o.rack ?? `r-${agent}` },
    runtimes: o.runtimes ?? ['docker', 'process'],
    resources: { cpus: o.cpus ?? 4, mem: o.mem ?? 4096, disk: 100, ports: o.ports ?? [[31000, 31099]] },
    expiresAt: T0 + 60_000,
  };
}

const at = (agent: string, rack = `r-${agent}`): Placed => ({ agent, hostname: `${agent}.example`, attributes: { rack } });

/** Everything the fakes saw, in order. */
type Call =
  | { op: 'changed'; key: string }
  | { op: 'gangBroken'; key: string; bound: string[] }
  | { op: 'accept'; offerIds: string[]; launches: LaunchRequest[] }
  | { op: 'decline'; offerIds: string[]; refuse?: number }
  | { op: 'suppress' }
  | { op: 'revive' };

class FakeDriver implements SchedulerDriver {
  /** Decides each launch's fate: undefined is success. */
  fail: (r: LaunchRequest, index: number) => LaunchFailureReason | undefined = () => undefined;
  /** accept() rejects (the master failed). */
  broken = false;
  /** accept() answers only when released. */
  hold = false;
  private held: Array<() => void> = [];
  /** What agents() returns. */
  views: AgentView[] = [];
  agentsCalls = 0;
  constructor(private readonly calls: Call[], private readonly clock: FakeClock) {}
  accept(offerIds: string[], launches: LaunchRequest[]): Promise<LaunchResult[]> {
    this.calls.push({ op: 'accept', offerIds, launches });
    if (this.broken) return Promise.reject(new Error('master gone'));
    const results = launches.map((request, i): LaunchResult => {
      const reason = this.fail(request, i);
      return reason ? { request, ok: false, reason } : { request, ok: true };
    });
    if (!this.hold) return Promise.resolve(results);
    return new Promise((resolve) => this.held.push(() => resolve(results)));
  }
  release(): void {
    for (const r of this.held.splice(0)) r();
  }
  decline(offerIds: string[], refuse?: number): void {
    this.calls.push({ op: 'decline', offerIds, refuse });
  }
  suppress(): void {
    this.calls.push({ op: 'suppress' });
  }
  revive(): void {
    this.calls.push({ op: 'revive' });
  }
  async kill(tasks: TaskRef[]) {
    return { killed: [], skipped: tasks };
  }
  reconcile(): void {}
  async teardown(): Promise<void> {}
  agents(): AgentView[] {
    this.agentsCalls++;
    return this.views;
  }
  now(): number {
    return this.clock.now();
  }
}

class FakeOwner implements PendingWorkOwner {
  /** Where each owner's non-terminal tasks run (as its informer shows them). */
  readonly running = new Map<string, Placed[]>();
  constructor(private readonly calls: Call[]) {}
  placed(key: string): Placed[] {
    return this.running.get(key) ?? [];
  }
  changed(key: string): void {
    this.calls.push({ op: 'changed', key });
  }
  gangBroken(key: string, bound: string[]): void {
    this.calls.push({ op: 'gangBroken', key, bound });
  }
}

function setup(o: { strategy?: Strategy; register?: boolean } = {}) {
  const calls: Call[] = [];
  const clock = new FakeClock(T0);
  const driver = new FakeDriver(calls, clock);
  const owner = new FakeOwner(calls);
  // random 0: dynamic host ports are the lowest free ones, so launches are exact.
  const fw = new PendingWorkFramework({ id: 'apps', role: '*', owner, logger: silentLogger(), strategy: o.strategy, random: () => 0 });
  if (o.register !== false) fw.registered(driver);
  const works = new Map<string, Work>();
  return {
    calls, clock, driver, owner, fw, works,
    /** The owner sets its work (as the controller does on every sync). */
    add(...ws: Work[]) {
      for (const w of ws) {
        // As the framework does: work set again keeps the time since which it waits (count 0 removes it).
        const prev = works.get(w.key);
        works.set(w.key, prev ? { ...w, queuedAt: prev.queuedAt } : w);
        if (w.count <= 0) works.delete(w.key);
        fw.setWork(w);
      }
    },
  };
}

type Setup = ReturnType<typeof setup>;

const only = <K extends Call['op']>(calls: Call[], op: K) => calls.filter((c): c is Extract<Call, { op: K }> => c.op === op);

interface RoundResult {
  launches: LaunchRequest[];
  accepts: Extract<Call, { op: 'accept' }>[];
  declines: Extract<Call, { op: 'decline' }>[];
  suppressed: number;
  revived: number;
  /** The calls of this round only. */
  calls: Call[];
}

/** Runs one offer round (and lets the accept's results arrive), checking what must hold in any round. */
async function round(s: Setup, offers: Offer[]): Promise<RoundResult> {
  const start = s.calls.length;
  const before = structuredClone(offers);
  const waiting = new Map([...s.works.keys()].map((k) => [k, { waiting: s.fw.waiting(k), inflight: s.fw.inflight(k) }]));
  await s.fw.resourceOffers(s.driver, offers);
  await settle();
  const calls = s.calls.slice(start);
  const accepts = only(calls, 'accept');
  const declines = only(calls, 'decline');
  const launches = accepts.flatMap((a) => a.launches);
  checkInvariants(s, offers, before, waiting, accepts, declines, launches);
  return { launches, accepts, declines, suppressed: only(calls, 'suppress').length, revived: only(calls, 'revive').length, calls };
}

function checkInvariants(
  s: Setup, offers: Offer[], before: Offer[], counts: Map<string, { waiting: number; inflight: number }>,
  accepts: Extract<Call, { op: 'accept' }>[], declines: Extract<Call, { op: 'decline' }>[], launches: LaunchRequest[],
): void {
  // The offers given are not modified.
  expect(offers).toEqual(before);
  // At most one accept; every offer is either accepted (used) or declined, once.
  expect(accepts.length).toBeLessThanOrEqual(1);
  const accepted = accepts.flatMap((a) => a.offerIds);
  const declined = declines.flatMap((d) => d.offerIds);
  expect([...accepted, ...declined].sort()).toEqual(offers.map((o) => o.id).sort());
  expect(new Set(accepted)).toEqual(new Set(launches.map((l) => l.offerId)));
  const byId = new Map(offers.map((o) => [o.id, o]));
  const used = new Map<string, { cpus: number; mem: number; disk: number; ports: number[] }>();
  const perOwner = new Map<string, number>();
  for (const l of launches) {
    const o = byId.get(l.offerId)!;
    // The request is its work's: template, demand, queuedAt, namespace, a task name of the work.
    const w = [...s.works.values()].find((x) => x.template === l.task)!;
    expect(w).toBeDefined();
    perOwner.set(w.key, (perOwner.get(w.key) ?? 0) + 1);
    expect(l.resources).toEqual(w.demand.resources);
    expect(l.queuedAt).toBe(w.queuedAt);
    expect(l.namespace).toBe(w.namespace);
    expect(l.taskName.startsWith(`${w.key.split('/')[1]}-`)).toBe(true);
    // Ports: one per demanded port, fixed ones as asked, all within the offer's ranges.
    expect(l.ports).toHaveLength(w.demand.ports.length);
    w.demand.ports.forEach((p, i) => { if (p.hostPort > 0) expect(l.ports[i]).toBe(p.hostPort); });
    for (const p of l.ports) expect(rangesContain(o.resources.ports, p)).toBe(true);
    // A container never goes to an agent without docker.
    if (w.demand.runtime === 'docker') expect(o.runtimes).toContain('docker');
    // Why placed: the offers looked at, how many could run it (at least the chosen one).
    expect(l.placement!.feasible).toBeGreaterThanOrEqual(1);
    expect(l.placement!.feasible).toBeLessThanOrEqual(l.placement!.offers!);
    expect(l.placement!.offers).toBeLessThanOrEqual(offers.length);
    const u = used.get(o.id) ?? { cpus: 0, mem: 0, disk: 0, ports: [] };
    used.set(o.id, { cpus: u.cpus + l.resources.cpus, mem: u.mem + l.resources.mem, disk: u.disk + l.resources.disk, ports: [...u.ports, ...l.ports] });
  }
  // No offer gives more than it has, nor a port twice.
  for (const [id, u] of used) {
    const o = byId.get(id)!;
    expect(u.cpus).toBeLessThanOrEqual(o.resources.cpus + 1e-9);
    expect(u.mem).toBeLessThanOrEqual(o.resources.mem + 1e-9);
    expect(u.disk).toBeLessThanOrEqual(o.resources.disk + 1e-9);
    expect(new Set(u.ports).size).toBe(u.ports.length);
  }
  // Task names are unique; each work waits for its launches fewer, and they are in flight unless refused.
  expect(new Set(launches.map((l) => l.taskName)).size).toBe(launches.length);
  const refused = new Map<string, number>();
  for (const l of launches) {
    const w = [...s.works.values()].find((x) => x.template === l.task)!;
    if (s.driver.broken || s.driver.fail(l, launches.indexOf(l))) refused.set(w.key, (refused.get(w.key) ?? 0) + 1);
  }
  for (const [key, c] of counts) {
    const n = perOwner.get(key) ?? 0;
    expect([key, s.fw.waiting(key)]).toEqual([key, Math.max(0, c.waiting - n)]);
    if (!s.driver.hold) expect([key, s.fw.inflight(key)]).toEqual([key, c.inflight + n - (refused.get(key) ?? 0)]);
  }
}

const agentsOf = (r: RoundResult): string[] => r.launches.map((l) => l.offerId.slice(2));
const countBy = (xs: string[]): Record<string, number> => xs.reduce<Record<string, number>>((m, x) => ({ ...m, [x]: (m[x] ?? 0) + 1 }), {});
const a = (n: number) => ['a1', 'a2', 'a3', 'a4', 'a5'].slice(0, n);

/** A scenario: works (with optional running placements), offers, and what to expect. */
interface Row {
  works: Array<{ w: Work; running?: Placed[] }>;
  offers: Offer[];
  launches: number;
  /** Launches per agent (agent name → count), when it matters. */
  perAgent?: Record<string, number>;
  /** Launches per owner name. */
  perOwner?: Record<string, number>;
  /** Instances left waiting per owner name. */
  left?: Record<string, number>;
  declined?: string[];
  refuse?: number;
  suppressed?: number;
}

const rows: Array<[string, Row]> = [
  ['spreadsThreeInstancesOverThreeAgents', {
    works: [{ w: work('web', { count: 3, cpus: 0.5 }) }],
    offers: a(3).map((x) => offer(x)), launches: 3, perAgent: { a1: 1, a2: 1, a3: 1 }, left: { web: 0 }, declined: [], suppressed: 1,
  }],
  ['spreadsOverTheLeastUsedAgentsFirst', {
    works: [{ w: work('web', { count: 2 }), running: [at('a1')] }],
    offers: a(3).map((x) => offer(x)), launches: 2, perAgent: { a2: 1, a3: 1 }, declined: ['o-a1'], refuse: IDLE, suppressed: 1,
  }],
  ['fillsTheCapacityOfTwoAgents', {
    works: [{ w: work('web', { count: 4 }) }],
    offers: a(2).map((x) => offer(x, { cpus: 2 })), launches: 4, perAgent: { a1: 2, a2: 2 }, left: { web: 0 }, declined: [], suppressed: 1,
  }],
  ['placesWhatFitsAndRetriesTheRest', {
    works: [{ w: work('web', { count: 5 }) }],
    offers: a(2).map((x) => offer(x, { cpus: 2 })), launches: 4, left: { web: 1 }, declined: [], suppressed: 0,
  }],
  ['uniqueHostnameLeavesOneWaiting', {
    works: [{ w: work('web', { count: 4, constraints: [['hostname', 'UNIQUE']] }) }],
    offers: [...a(3).map((x) => offer(x)), offer('a4', { cpus: 0.5 })],
    launches: 3, perAgent: { a1: 1, a2: 1, a3: 1 }, left: { web: 1 }, declined: ['o-a4'], refuse: RETRY, suppressed: 0,
  }],
  ['uniqueHostnameCountsRunningTasks', {
    works: [{ w: work('web', { count: 2, constraints: [['hostname', 'UNIQUE']] }), running: [at('a2')] }],
    offers: a(3).map((x) => offer(x)), launches: 2, perAgent: { a1: 1, a3: 1 }, declined: ['o-a2'], refuse: IDLE, suppressed: 1,
  }],
  ['uniqueRackOverAgentsSharingRacks', {
    works: [{ w: work('web', { count: 3, constraints: [['rack', 'UNIQUE']] }) }],
    offers: [offer('a1', { rack: 'r1' }), offer('a2', { rack: 'r1' }), offer('a3', { rack: 'r2' })],
    launches: 2, left: { web: 1 }, refuse: RETRY, declined: ['o-a2'],
  }],
  ['dynamicPortsAreDistinctOnOneOffer', {
    works: [{ w: work('web', { count: 3, cpus: 0.1, ports: [0, 0] }) }],
    offers: [offer('a1', { ports: [[31000, 31002], [31010, 31012]] })], launches: 3, perAgent: { a1: 3 }, left: { web: 0 },
  }],
  ['dynamicPortsRunOut', {
    works: [{ w: work('web', { count: 4, cpus: 0.1, ports: [0, 0] }) }],
    offers: [offer('a1', { ports: [[31000, 31002], [31010, 31012]] })], launches: 3, left: { web: 1 },
  }],
  ['fixedHostPortOnlyWhereOffered', {
    works: [{ w: work('web', { count: 2, ports: [8080] }) }],
    offers: [offer('a1', { ports: [[31000, 32000]] }), offer('a2', { ports: [[8000, 9000]] }), offer('a3', { ports: [] })],
    launches: 1, perAgent: { a2: 1 }, left: { web: 1 }, declined: ['o-a1', 'o-a3'], refuse: RETRY,
  }],
  ['fixedHostPortNowhere', {
    works: [{ w: work('web', { count: 1, ports: [80] }) }],
    offers: a(3).map((x) => offer(x)), launches: 0, left: { web: 1 }, declined: ['o-a1', 'o-a2', 'o-a3'], refuse: RETRY, suppressed: 0,
  }],
  ['containersOnlyOnDockerAgents', {
    works: [{ w: work('nginx', { count: 3, runtime: 'docker' }) }],
    offers: [offer('a1', { runtimes: ['process'] }), offer('a2'), offer('a3', { runtimes: ['process'] })],
    launches: 3, perAgent: { a2: 3 }, declined: ['o-a1', 'o-a3'], refuse: IDLE, suppressed: 1,
  }],
  ['containersWaitWithoutDocker', {
    works: [{ w: work('nginx', { count: 1, runtime: 'docker' }) }],
    offers: [offer('a1', { runtimes: ['process'] }), offer('a2', { runtimes: ['process'] })],
    launches: 0, left: { nginx: 1 }, declined: ['o-a1', 'o-a2'], refuse: RETRY, suppressed: 0,
  }],
  ['processWorkRunsOnProcessOnlyAgents', {
    works: [{ w: work('web', { count: 2 }) }],
    offers: [offer('a1', { runtimes: ['process'] }), offer('a2', { runtimes: ['process'] })], launches: 2, perAgent: { a1: 1, a2: 1 },
  }],
  ['twoOwnersShareAnOffer', {
    works: [{ w: work('first', { count: 2, queuedAt: T0 }) }, { w: work('second', { count: 1, queuedAt: T0 + 1 }) }],
    offers: [offer('a1', { cpus: 2 })], launches: 2, perOwner: { first: 2 }, left: { first: 0, second: 1 }, suppressed: 0,
  }],
  ['theOldestWorkGoesFirst', {
    works: [{ w: work('first', { count: 2, queuedAt: T0 + 1 }) }, { w: work('second', { count: 1, queuedAt: T0 }) }],
    offers: [offer('a1', { cpus: 2 })], launches: 2, perOwner: { first: 1, second: 1 }, left: { first: 1, second: 0 },
  }],
  ['twoOwnersNeverShareAPort', {
    works: [{ w: work('first', { count: 1, cpus: 0.1, ports: [0] }) }, { w: work('second', { count: 2, cpus: 0.1, ports: [0], queuedAt: T0 + 1 }) }],
    offers: [offer('a1', { ports: [[31000, 31001]] })], launches: 2, perOwner: { first: 1, second: 1 }, left: { second: 1 },
  }],
  ['twoOwnersNeverShareAFixedPort', {
    works: [{ w: work('first', { count: 1, ports: [8080] }) }, { w: work('second', { count: 1, ports: [8080], queuedAt: T0 + 1 }) }],
    offers: [offer('a1', { ports: [[8080, 8080]] }), offer('a2', { ports: [[8080, 8081]] })], launches: 2, perAgent: { a1: 1, a2: 1 }, suppressed: 1,
  }],
  ['twoOwnersSpreadOverSpareOffers', {
    works: [{ w: work('first', { count: 2, cpus: 2 }) }, { w: work('second', { count: 2, cpus: 2, queuedAt: T0 + 1 }) }],
    offers: a(4).map((x) => offer(x, { cpus: 2 })), launches: 4, perAgent: { a1: 1, a2: 1, a3: 1, a4: 1 }, declined: [],
  }],
  // Gangs: all of `count` in one round, or nothing.
  ['gangLargerThanTheOffersLaunchesNothing', {
    works: [{ w: work('mpi', { count: 4, gang: true }) }],
    offers: a(3).map((x) => offer(x, { cpus: 1 })), launches: 0, left: { mpi: 4 }, declined: ['o-a1', 'o-a2', 'o-a3'], refuse: GANG, suppressed: 0,
  }],
  ['gangThatFitsLaunchesWhole', {
    works: [{ w: work('mpi', { count: 4, gang: true }) }],
    offers: a(4).map((x) => offer(x, { cpus: 1 })), launches: 4, perAgent: { a1: 1, a2: 1, a3: 1, a4: 1 }, left: { mpi: 0 }, declined: [], suppressed: 1,
  }],
  ['gangPacksSeveralMembersPerAgent', {
    works: [{ w: work('mpi', { count: 4, gang: true }) }],
    offers: a(2).map((x) => offer(x, { cpus: 2 })), launches: 4, perAgent: { a1: 2, a2: 2 }, left: { mpi: 0 },
  }],
  ['gangThatDoesNotFitLeavesItsOffersToLaterWork', {
    works: [{ w: work('mpi', { count: 4, gang: true, queuedAt: T0 }) }, { w: work('web', { count: 2, queuedAt: T0 + 1 }) }],
    offers: a(3).map((x) => offer(x, { cpus: 1 })), launches: 2, perOwner: { web: 2 }, left: { mpi: 4, web: 0 }, refuse: GANG, suppressed: 0,
  }],
  ['gangThatFitsGoesFirstAndLaterWorkTakesTheRest', {
    works: [{ w: work('mpi', { count: 3, gang: true, queuedAt: T0 }) }, { w: work('web', { count: 3, queuedAt: T0 + 1 }) }],
    offers: a(4).map((x) => offer(x, { cpus: 1 })), launches: 4, perOwner: { mpi: 3, web: 1 }, left: { mpi: 0, web: 2 }, declined: [],
  }],
  ['laterGangThatNoLongerFitsWaits', {
    works: [{ w: work('web', { count: 2, queuedAt: T0 }) }, { w: work('mpi', { count: 3, gang: true, queuedAt: T0 + 1 }) }],
    offers: a(4).map((x) => offer(x, { cpus: 1 })), launches: 2, perOwner: { web: 2 }, left: { mpi: 3, web: 0 }, refuse: GANG,
  }],
  ['uniqueHostnameGangWaitsForEnoughDistinctHosts', {
    works: [{ w: work('mpi', { count: 3, gang: true, constraints: [['hostname', 'UNIQUE']] }) }],
    offers: [offer('a1'), offer('a2'), offer('a3', { hostname: 'a1.example' })], launches: 0, left: { mpi: 3 }, declined: ['o-a1', 'o-a2', 'o-a3'], refuse: GANG,
  }],
  ['uniqueHostnameGangOnDistinctHosts', {
    works: [{ w: work('mpi', { count: 3, gang: true, constraints: [['hostname', 'UNIQUE']] }) }],
    offers: [offer('a1'), offer('a2'), offer('a3', { hostname: 'a1.example' }), offer('a4')],
    launches: 3, perAgent: { a1: 1, a2: 1, a4: 1 }, left: { mpi: 0 }, declined: ['o-a3'], refuse: IDLE, suppressed: 1,
  }],
  ['uniqueHostnameGangCountsRunningMembers', {
    works: [{ w: work('mpi', { count: 2, gang: true, constraints: [['hostname', 'UNIQUE']] }), running: [at('a1')] }],
    offers: [offer('a1'), offer('a2')], launches: 0, left: { mpi: 2 }, refuse: GANG,
  }],
];

describe('PendingWorkFramework rounds', () => {
  it.each(rows)('%s', async (_name, r) => {
    const s = setup();
    for (const { w, running } of r.works) {
      s.add(w);
      if (running) s.owner.running.set(w.key, running);
    }
    const out = await round(s, r.offers);
    expect(out.launches).toHaveLength(r.launches);
    if (r.perAgent) expect(countBy(agentsOf(out))).toEqual(r.perAgent);
    if (r.perOwner) expect(countBy(out.launches.map((l) => l.taskName.replace(/-\d+$/, '')))).toEqual(r.perOwner);
    for (const [name, n] of Object.entries(r.left ?? {})) expect([name, s.fw.waiting(`default/${name}`)]).toEqual([name, n]);
    if (r.declined) expect(out.declines.flatMap((d) => d.offerIds).sort()).toEqual(r.declined);
    if (r.refuse !== undefined) {
      expect(out.declines).toHaveLength(1);
      expect(out.declines[0].refuse).toBe(r.refuse);
    }
    // Filters: retry soon while work waits, idle otherwise; suppressed once nothing waits.
    const waiting = [...s.works.keys()].some((k) => s.fw.waiting(k) > 0);
    for (const d of out.declines) expect(d.refuse).toBe(r.refuse ?? (waiting ? RETRY : IDLE));
    if (r.suppressed !== undefined) expect(out.suppressed).toBe(r.suppressed);
    expect(out.suppressed).toBe(waiting ? 0 : 1);
    expect(s.fw.idle()).toBe(false); // launches in flight, or work waiting
  });
});

describe('PendingWorkFramework launches', () => {
  it('names the App framework by role', () => {
    const owner = new FakeOwner([]);
    expect(appFramework('*', owner, silentLogger()).id).toBe('apps');
    expect(appFramework('prod', owner, silentLogger())).toMatchObject({ id: 'apps-prod', role: 'prod' });
    expect(frameworkIdFor('gpu')).toBe('apps-gpu');
  });

  it('builds launch requests from the work, with why each went where it did', async () => {
    const s = setup();
    const w = { ...work('web', { count: 1, cpus: 0.5, mem: 64, ports: [0, 31050] }), queuedAt: T0 - 1234 };
    s.add(w);
    const out = await round(s, [offer('a1')]);
    expect(out.accepts).toHaveLength(1);
    expect(out.accepts[0].offerIds).toEqual(['o-a1']);
    expect(out.launches).toEqual([{
      offerId: 'o-a1', namespace: 'default', taskName: 'web-1', resources: { cpus: 0.5, mem: 64, disk: 0 }, ports: [31000, 31050], task: w.template, queuedAt: T0 - 1234,
      placement: {
        strategy: 'SPREAD', offers: 1, feasible: 1, rank: { groupLoad: 0, appTasks: 0, free: 1 },
        message: '1 of 1 offered agent(s) could run it; ranked first by SPREAD: 0 task(s) of its owner there, free share 1',
      },
    }]);
    expect(out.launches[0].task).toBe(w.template);
  });

  it('records in each placement how many offers could run the instance and the chosen agent’s ranking keys', async () => {
    const s = setup();
    s.owner.running.set('default/web', [at('a1', 'r1')]);
    s.add(work('web', { count: 2, constraints: [['rack', 'GROUP_BY']] }));
    const offers = [offer('a1', { rack: 'r1' }), offer('a2', { rack: 'r1', cpus: 2 }), offer('a3', { rack: 'r2' }), offer('a4', { cpus: 0.5, rack: 'r3' })];
    const out = await round(s, offers);
    expect(out.launches.map((l) => [l.offerId, l.placement])).toEqual([
      ['o-a3', {
        strategy: 'SPREAD', offers: 4, feasible: 3, rank: { groupLoad: 0, appTasks: 0, free: 1 },
        message: '3 of 4 offered agent(s) could run it; ranked first by SPREAD: 0 task(s) of its owner there, free share 1',
      }],
      ['o-a2', {
        strategy: 'SPREAD', offers: 4, feasible: 3, rank: { groupLoad: 1, appTasks: 0, free: 0.833 },
        message: '3 of 4 offered agent(s) could run it; ranked first by SPREAD: 1 task(s) on its GROUP_BY value, 0 task(s) of its owner there, free share 0.833',
      }],
    ]);
  });

  it('ranks by BINPACK when asked', async () => {
    const s = setup({ strategy: 'BINPACK' });
    s.add(work('web', { count: 3 }));
    const out = await round(s, [offer('a1', { cpus: 4 }), offer('a2', { cpus: 2 })]);
    expect(agentsOf(out)).toEqual(['a2', 'a2', 'a1']);
    expect(out.launches[0].placement).toMatchObject({ strategy: 'BINPACK', offers: 2, feasible: 2 });
    expect(out.launches[0].placement!.message).toMatch(/ranked first by BINPACK/);
    expect(out.launches[2].placement).toMatchObject({ feasible: 1 });
  });

  it('places at most MAX_PLACEMENTS_PER_ROUND instances of one owner per round', async () => {
    const s = setup();
    s.add(work('big', { count: MAX_PLACEMENTS_PER_ROUND + 5, cpus: 0.001, mem: 1 }));
    const out = await round(s, [offer('a1', { cpus: 100, mem: 100_000 })]);
    expect(out.launches).toHaveLength(MAX_PLACEMENTS_PER_ROUND);
    expect(s.fw.waiting('default/big')).toBe(5);
    expect(out.suppressed).toBe(0);
  });

  it('ignores rescinds: offers are answered within their round', async () => {
    const s = setup();
    s.fw.offerRescinded();
    expect(s.calls).toEqual([]);
  });
});

describe('PendingWorkFramework windows of offers', () => {
  it('looks at a window of offers that shrinks as the cluster grows', () => {
    expect(windowSize(50, 3)).toBe(50); // small: every offer
    expect(windowSize(1000, 100)).toBe(420); // 42 %
    expect(windowSize(5000, 100)).toBe(500); // 10 %
    expect(windowSize(20_000, 10)).toBe(1000); // 5 % at least
    expect(windowSize(5000, 400)).toBe(800); // twice the instances
    expect(windowSize(150, 1000)).toBe(150); // never more than there are
    expect(windowSize(150, 1)).toBe(100); // never fewer than 100
  });

  const agents = Array.from({ length: 1000 }, (_, i) => `a${String(i).padStart(4, '0')}`);

  it('gives successive owners successive windows of a large cluster', async () => {
    const s = setup();
    for (const name of ['one', 'two', 'three']) s.add(work(name, { count: 1 }));
    const out = await round(s, agents.map((x) => offer(x)));
    const used = agentsOf(out).map((x) => agents.indexOf(x));
    expect(used).toHaveLength(3);
    // Windows of 420 from a cursor: [0, 420), [420, 840), [840, 1000) + [0, 260).
    expect(used[0]).toBeLessThan(420);
    expect(used[1]).toBeGreaterThanOrEqual(420);
    expect(used[1]).toBeLessThan(840);
    expect(used[2] >= 840 || used[2] < 260).toBe(true);
    expect(out.launches.map((l) => l.placement!.offers)).toEqual([420, 420, 420]);
    expect(out.launches.map((l) => l.placement!.feasible)).toEqual([420, 420, 420]);
  });

  it('continues from the cursor in the next round', async () => {
    const s = setup();
    s.add(work('one', { count: 1 }), work('two', { count: 1, queuedAt: T0 + 1 }));
    await round(s, agents.map((x) => offer(x)));
    s.add(work('three', { count: 1, queuedAt: T0 + 2 }));
    const out = await round(s, agents.map((x) => offer(x)));
    const used = agents.indexOf(agentsOf(out)[0]);
    expect(used >= 840 || used < 260).toBe(true);
  });

  it('places work that fits no offer of its window on the rest of the cluster', async () => {
    const s = setup();
    s.add(work('pinned', { count: 1, constraints: [['hostname', 'LIKE', 'a0999.example']] }));
    const out = await round(s, agents.map((x) => offer(x)));
    expect(agentsOf(out)).toEqual(['a0999']);
    expect(out.launches[0].placement).toMatchObject({ offers: 1000, feasible: 1 });
    expect(s.fw.waiting('default/pinned')).toBe(0);
  });
});

describe('PendingWorkFramework reservations', () => {
  it('counts launches in flight from the accept until their first status update', async () => {
    const s = setup();
    s.driver.hold = true; // the binds are still being written
    s.add(work('web', { count: 3 }));
    const out = await round(s, a(3).map((x) => offer(x)));
    expect(out.launches).toHaveLength(3);
    expect(s.fw.inflight('default/web')).toBe(3);
    expect(s.fw.waiting('default/web')).toBe(0);
    s.driver.release();
    await settle();
    expect(s.fw.inflight('default/web')).toBe(3); // bound, but the master has not reported them yet
    const update = (taskName: string, state = 'STAGING'): TaskStatusUpdate => ({ namespace: 'default', taskName, state, agent: 'a1', source: 'agent' });
    s.fw.statusUpdate(s.driver, update('web-1'));
    expect(s.fw.inflight('default/web')).toBe(2);
    s.fw.statusUpdate(s.driver, update('web-1', 'RUNNING')); // only the first update counts
    s.fw.statusUpdate(s.driver, update('other-1')); // not one of its launches
    expect(s.fw.inflight('default/web')).toBe(2);
    s.fw.statusUpdate(s.driver, update('web-2'));
    s.fw.statusUpdate(s.driver, update('web-3', 'FAILED'));
    expect(s.fw.inflight('default/web')).toBe(0);
    expect(only(s.calls, 'changed')).toEqual([]);
    s.add(work('web', { count: 0 })); // the owner's next sync: nothing more to launch
    expect(s.fw.idle()).toBe(true);
  });

  it('counts this owner’s launches of earlier rounds as placed (constraints) until the owner sees them', async () => {
    const s = setup();
    s.add(work('web', { count: 2, constraints: [['hostname', 'UNIQUE']] }));
    const first = await round(s, [offer('a1')]);
    expect(agentsOf(first)).toEqual(['a1']);
    const second = await round(s, [offer('a1'), offer('a2')]);
    expect(agentsOf(second)).toEqual(['a2']);
  });

  it('reserves nothing for launches whose bind failed, counts them as refusals and tells the owner', async () => {
    const s = setup();
    s.add(work('web', { count: 4 }));
    const reasons: LaunchFailureReason[] = ['FairShare', 'AgentLost', 'BindFailed'];
    s.driver.fail = (_r, i) => reasons[i];
    const out = await round(s, a(4).map((x) => offer(x)));
    expect(out.launches).toHaveLength(4);
    expect(s.fw.inflight('default/web')).toBe(1);
    // One change notice per failed launch, after the accept.
    const acceptAt = out.calls.findIndex((c) => c.op === 'accept');
    expect(out.calls.slice(acceptAt + 1).filter((c) => c.op !== 'suppress')).toEqual([
      { op: 'changed', key: 'default/web' }, { op: 'changed', key: 'default/web' }, { op: 'changed', key: 'default/web' },
    ]);
    // The owner syncs: 3 instances to launch again. Why pending lists the refusals, by reason.
    s.add({ ...work('web', { count: 3 }), key: 'default/web' });
    s.driver.views = [view('a1', 'none', { cpus: 0 })];
    const why = s.fw.whyPending('default/web')!;
    const time = new Date(T0).toISOString();
    expect(why.refusals).toEqual([
      { reason: 'AgentLost', count: 1, lastTime: time, agent: agentsOf(out)[1] },
      { reason: 'BindFailed', count: 1, lastTime: time, agent: agentsOf(out)[2] },
      { reason: 'FairShare', count: 1, lastTime: time, agent: agentsOf(out)[0] },
    ]);
    expect(why.message).toBe('0/1 agents available: 1 insufficient cpus; launches refused at accept: 1 agent lost before the bind, 1 bind failed, 1 role above its fair share.');
  });

  it('releases every failed launch of each owner', async () => {
    const s = setup();
    s.add(work('first', { count: 1 }), work('second', { count: 1, queuedAt: T0 + 1 }));
    s.driver.fail = () => 'AgentLost';
    await round(s, a(2).map((x) => offer(x)));
    expect([s.fw.inflight('default/first'), s.fw.inflight('default/second')]).toEqual([0, 0]);
    expect(only(s.calls, 'changed').map((c) => c.key).sort()).toEqual(['default/first', 'default/second']);
  });

  it('counts every launch as failed when accept itself fails', async () => {
    const s = setup();
    s.add(work('web', { count: 2 }));
    s.driver.broken = true;
    await round(s, a(2).map((x) => offer(x)));
    expect(s.fw.inflight('default/web')).toBe(0);
    expect(only(s.calls, 'changed')).toHaveLength(2);
    s.add({ ...work('web', { count: 2 }) });
    s.driver.views = [view('a1', 'none')];
    expect(s.fw.whyPending('default/web')!.refusals).toEqual([{ reason: 'BindFailed', count: 2, lastTime: new Date(T0).toISOString(), agent: 'a2' }]);
  });

  it('keeps counting refusals of one reason, with the last time and agent', async () => {
    const s = setup();
    s.driver.fail = () => 'FairShare';
    s.add(work('web', { count: 1 }));
    await round(s, [offer('a1')]);
    s.clock.step(2000);
    s.add(work('web', { count: 1 }));
    await round(s, [offer('a2')]);
    s.add(work('web', { count: 1 }));
    s.driver.views = [view('a1', 'none'), view('a2', 'none')];
    const why = s.fw.whyPending('default/web')!;
    expect(why.refusals).toEqual([{ reason: 'FairShare', count: 2, lastTime: new Date(T0 + 2000).toISOString(), agent: 'a2' }]);
    expect(why.message).toBe('2/2 agents available; launches refused at accept: 2 role above its fair share.');
  });

  it('forgets refusals once the work is satisfied, and everything of a deleted owner', async () => {
    const s = setup();
    s.driver.fail = () => 'AgentLost';
    s.add(work('web', { count: 1 }));
    await round(s, [offer('a1')]);
    s.add(work('web', { count: 0 })); // satisfied (nothing in flight either)
    s.add(work('web', { count: 1 }));
    s.driver.views = [view('a1', 'none')];
    expect(s.fw.whyPending('default/web')!.refusals).toBeUndefined();
    // forget: work, reservations and refusals.
    s.driver.fail = () => undefined;
    s.driver.hold = true;
    await round(s, [offer('a1')]);
    expect(s.fw.inflight('default/web')).toBe(1);
    s.fw.forget('default/web');
    expect([s.fw.inflight('default/web'), s.fw.waiting('default/web'), s.fw.idle()]).toEqual([0, 0, true]);
    s.driver.release();
    await settle();
  });
});

describe('PendingWorkFramework suppress and revive', () => {
  it('declines everything and suppresses once when idle', async () => {
    const s = setup();
    const offers = a(3).map((x) => offer(x));
    const first = await round(s, offers);
    expect(first.declines).toEqual([{ op: 'decline', offerIds: ['o-a1', 'o-a2', 'o-a3'], refuse: IDLE }]);
    expect(first.suppressed).toBe(1);
    expect(first.accepts).toEqual([]);
    const second = await round(s, offers);
    expect(second.declines).toEqual([{ op: 'decline', offerIds: ['o-a1', 'o-a2', 'o-a3'], refuse: IDLE }]);
    expect(second.suppressed).toBe(0);
  });

  it('revives on new or grown work only, and suppresses again once it is all placed', async () => {
    const s = setup();
    await round(s, [offer('a1')]); // idle: suppressed
    s.add(work('web', { count: 1 }));
    expect(only(s.calls, 'revive')).toHaveLength(1);
    s.add(work('web', { count: 1 })); // the same: no revive
    expect(only(s.calls, 'revive')).toHaveLength(1);
    s.add(work('web', { count: 2 })); // grown
    expect(only(s.calls, 'revive')).toHaveLength(2);
    s.add(work('web', { count: 1 })); // shrunk
    expect(only(s.calls, 'revive')).toHaveLength(2);
    const busy = await round(s, [offer('a1')]);
    expect(busy.launches).toHaveLength(1);
    expect(busy.suppressed).toBe(1); // all placed: suppressed again
    const idle = await round(s, [offer('a1')]);
    expect(idle.suppressed).toBe(0);
    s.add(work('api', { count: 1 })); // another owner's new work
    expect(only(s.calls, 'revive')).toHaveLength(3);
    expect((await round(s, [offer('a1')])).suppressed).toBe(1);
  });

  it('keeps the queue time of work that is set again', async () => {
    const s = setup();
    s.add(work('late', { count: 1, queuedAt: T0 + 10 }), work('early', { count: 1, queuedAt: T0 + 5 }));
    s.add(work('late', { count: 1, queuedAt: T0 + 20 })); // still queued since T0 + 10
    const out = await round(s, [offer('a1', { cpus: 1 })]);
    expect(out.launches.map((l) => [l.taskName, l.queuedAt])).toEqual([['early-1', T0 + 5]]);
    const next = await round(s, [offer('a1', { cpus: 1 })]);
    expect(next.launches.map((l) => l.queuedAt)).toEqual([T0 + 10]);
  });

  it('stays unsuppressed while work waits', async () => {
    const s = setup();
    s.add(work('web', { count: 3, constraints: [['hostname', 'UNIQUE']] }));
    for (let i = 0; i < 3; i++) {
      const r = await round(s, [offer('a1')]);
      expect(r.suppressed).toBe(0);
    }
    expect(s.fw.waiting('default/web')).toBe(2);
  });

  it('removeWork stops placing it', async () => {
    const s = setup();
    s.add(work('web', { count: 2 }));
    s.fw.removeWork('default/web');
    const out = await round(s, [offer('a1')]);
    expect(out.launches).toEqual([]);
    expect(out.suppressed).toBe(1);
  });

  it('does not revive nor explain before it is registered, nor after it is unregistered', () => {
    const s = setup({ register: false });
    s.add(work('web', { count: 1 }));
    expect(only(s.calls, 'revive')).toEqual([]);
    expect(s.fw.whyPending('default/web')).toBeUndefined();
    s.fw.registered(s.driver);
    s.driver.views = [view('a1', 'none')];
    expect(s.fw.whyPending('default/web')).toMatchObject({ instances: 1, agents: 1, available: 1 });
    s.fw.unregistered();
    expect(s.fw.whyPending('default/web')).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// Why pending

interface ViewOpts { cpus?: number; mem?: number; ports?: PortRange[]; runtimes?: string[]; schedulable?: boolean; hostname?: string; rack?: string }

/** The master's view of agent `name` for this framework. */
function view(name: string, status: AgentView['status'], o: ViewOpts = {}): AgentView {
  return {
    info: {
      name, hostname: o.hostname ?? `${name}.example`, attributes: { rack: o.rack ?? `r-${name}` }, runtimes: o.runtimes ?? ['docker', 'process'],
      capacity: { cpus: 4, mem: 4096, disk: 100, ports: [[31000, 31099]] },
      schedulable: o.schedulable ?? status !== 'cordoned', leaseRevision: status === 'lost' ? 0 : 7,
    },
    free: { cpus: o.cpus ?? 4, mem: o.mem ?? 4096, disk: 100, ports: o.ports ?? [[31000, 31099]] },
    status,
  };
}

const demandOf = (o: WorkOpts = {}) => work('web', o).demand;

describe('explain: why pending over every agent', () => {
  it.each<[string, { demand?: WorkOpts; agents: AgentView[]; placed?: Placed[]; message: string; available?: number }]>([
    ['a full cluster (no offers): a reason for every agent', {
      agents: [view('a1', 'none', { cpus: 0.5 }), view('a2', 'none', { cpus: 0 }), view('a3', 'none', { cpus: 0.5 }), view('a4', 'cordoned'), view('a5', 'lost')],
      message: '0/5 agents available: 3 insufficient cpus, 1 agent lost, 1 agent unschedulable.',
    }],
    ['no agents at all', { agents: [], message: '0/0 agents available: no agents registered.' }],
    ['agents that will be offered, or are held, can run it', {
      agents: [view('a1', 'none'), view('a2', 'held'), view('a3', 'suppressed')], message: '3/3 agents available.', available: 3,
    }],
    ['UNIQUE hostname counts placed tasks', {
      demand: { constraints: [['hostname', 'UNIQUE']] }, placed: [at('a1'), at('a2')],
      agents: [view('a1', 'none'), view('a2', 'none'), view('a3', 'none')],
      message: '1/3 agents available: 2 constraint UNIQUE hostname.', available: 1,
    }],
    ['an agent this framework declined is filtered', {
      agents: [view('a1', 'filtered'), view('a2', 'filtered')], message: '0/2 agents available: 2 declined recently (offer filter).',
    }],
    ['an agent offered to another framework', {
      agents: [view('a1', 'offered'), view('a2', 'none')], message: '1/2 agents available: 1 offered to another framework.', available: 1,
    }],
    ['a check that fails comes before why the agent was not offered', {
      agents: [view('a1', 'filtered', { cpus: 0 }), view('a2', 'offered', { mem: 0 }), view('a3', 'cordoned', { cpus: 0 })],
      message: '0/3 agents available: 1 agent unschedulable, 1 insufficient cpus, 1 insufficient mem.',
    }],
    ['a lost agent is lost, whatever it has free', {
      agents: [view('a1', 'lost'), view('a2', 'lost', { cpus: 0 })], message: '0/2 agents available: 2 agent lost.',
    }],
    ['containers need docker', {
      demand: { runtime: 'docker' }, agents: [view('a1', 'none', { runtimes: ['process'] }), view('a2', 'held')],
      message: '1/2 agents available: 1 runtime docker missing.', available: 1,
    }],
    ['fixed host ports', {
      demand: { ports: [8080] }, agents: [view('a1', 'none'), view('a2', 'none', { ports: [[8000, 9000]] })],
      message: '1/2 agents available: 1 ports unavailable.', available: 1,
    }],
  ])('%s', (_name, r) => {
    const why = explain({ count: 2, demand: demandOf(r.demand) }, r.agents, r.placed ?? []);
    expect(why.message).toBe(r.message);
    expect(why.instances).toBe(2);
    expect(why.agents).toBe(r.agents.length);
    expect(why.available).toBe(r.available ?? 0);
    expect(why.refusals).toBeUndefined();
    // Every agent counted once: available, or under exactly one reason.
    expect((why.reasons ?? []).reduce((n, x) => n + x.count, 0) + why.available!).toBe(r.agents.length);
  });

  it('lists each reason with its constant, count, sentence and up to three example agents with their details', () => {
    const agents = [
      view('a5', 'none', { cpus: 0.5 }), view('a4', 'none', { cpus: 0.25 }), view('a3', 'none', { cpus: 0 }), view('a2', 'none', { cpus: 0.5 }), view('a1', 'none', { cpus: 0.5 }),
      view('c1', 'cordoned'), view('l1', 'lost'), view('f1', 'filtered'), view('o1', 'offered'),
      view('u1', 'none'),
    ];
    const why = explain({ count: 1, demand: demandOf({ constraints: [['hostname', 'UNIQUE']] }) }, agents, [at('u1')]);
    expect(why).toEqual({
      instances: 1,
      agents: 10,
      available: 0,
      message: '0/10 agents available: 5 insufficient cpus, 1 agent lost, 1 agent unschedulable, 1 constraint UNIQUE hostname, 1 declined recently (offer filter), 1 offered to another framework.',
      reasons: [
        {
          reason: 'InsufficientCpus', count: 5, message: 'insufficient cpus',
          agents: [
            { name: 'a1', detail: 'insufficient cpus (needs 1, 0.5 free)' },
            { name: 'a2', detail: 'insufficient cpus (needs 1, 0.5 free)' },
            { name: 'a3', detail: 'insufficient cpus (needs 1, 0 free)' },
          ],
        },
        { reason: 'AgentLost', count: 1, message: 'agent lost', agents: [{ name: 'l1', detail: 'agent lost (lease expired)' }] },
        { reason: 'Unschedulable', count: 1, message: 'agent unschedulable', agents: [{ name: 'c1', detail: 'agent unschedulable (cordoned)' }] },
        {
          reason: 'ConstraintUnique', count: 1, message: 'constraint UNIQUE hostname',
          agents: [{ name: 'u1', detail: 'constraint UNIQUE hostname (agent u1 already runs a task of this app with hostname u1.example)' }],
        },
        { reason: 'DeclineFilter', count: 1, message: 'declined recently (offer filter)', agents: [{ name: 'f1', detail: 'declined recently (offer filter)' }] },
        { reason: 'OfferedElsewhere', count: 1, message: 'offered to another framework', agents: [{ name: 'o1', detail: 'offered to another framework' }] },
      ],
    });
  });

  it('appends the refusals of launches at accept time to the message', () => {
    const refused = new Map<LaunchFailureReason, { count: number; lastTime: number; agent?: string }>([
      ['FairShare', { count: 2, lastTime: T0 + 1000, agent: 'a1' }],
      ['NotLeader', { count: 1, lastTime: T0 }],
      ['AgentLost', { count: 1, lastTime: T0 + 500, agent: 'a2' }],
    ]);
    const why = explain({ count: 1, demand: demandOf() }, [view('a1', 'none', { cpus: 0 })], [], refused);
    expect(why.message).toBe('0/1 agents available: 1 insufficient cpus; launches refused at accept: 1 agent lost before the bind, 2 role above its fair share, 1 leader changed.');
    expect(why.refusals).toEqual([
      { reason: 'AgentLost', count: 1, lastTime: new Date(T0 + 500).toISOString(), agent: 'a2' },
      { reason: 'FairShare', count: 2, lastTime: new Date(T0 + 1000).toISOString(), agent: 'a1' },
      { reason: 'NotLeader', count: 1, lastTime: new Date(T0).toISOString() },
    ]);
    expect(explain({ count: 1, demand: demandOf() }, [view('a1', 'none')], [], refused).message).toBe(
      '1/1 agents available; launches refused at accept: 1 agent lost before the bind, 2 role above its fair share, 1 leader changed.',
    );
  });
});

describe('PendingWorkFramework.whyPending', () => {
  it('explains over the master’s view of every agent, counting reservations as placed', async () => {
    const s = setup();
    s.driver.hold = true;
    s.add(work('web', { count: 3, constraints: [['hostname', 'UNIQUE']] }));
    await round(s, [offer('a1')]);
    s.driver.views = [view('a1', 'none'), view('a2', 'filtered'), view('a3', 'lost')];
    expect(s.fw.whyPending('default/web')).toEqual({
      instances: 2, agents: 3, available: 0,
      message: '0/3 agents available: 1 agent lost, 1 constraint UNIQUE hostname, 1 declined recently (offer filter).',
      reasons: [
        { reason: 'AgentLost', count: 1, message: 'agent lost', agents: [{ name: 'a3', detail: 'agent lost (lease expired)' }] },
        { reason: 'ConstraintUnique', count: 1, message: 'constraint UNIQUE hostname', agents: [{ name: 'a1', detail: 'constraint UNIQUE hostname (agent a1 already runs a task of this app with hostname a1.example)' }] },
        { reason: 'DeclineFilter', count: 1, message: 'declined recently (offer filter)', agents: [{ name: 'a2', detail: 'declined recently (offer filter)' }] },
      ],
    });
    s.driver.release();
    await settle();
  });

  it('recomputes at most once a second, unless a launch or a refusal changed it', async () => {
    const s = setup();
    s.add(work('web', { count: 2, cpus: 2 }));
    s.driver.views = [view('a1', 'none', { cpus: 1 })];
    expect(s.fw.whyPending('default/web')!.message).toBe('0/1 agents available: 1 insufficient cpus.');
    expect(s.driver.agentsCalls).toBe(1);
    s.driver.views = [view('a1', 'none')];
    s.clock.step(999);
    expect(s.fw.whyPending('default/web')!.message).toBe('0/1 agents available: 1 insufficient cpus.'); // cached
    s.add(work('web', { count: 3, cpus: 2 }));
    expect(s.fw.whyPending('default/web')!.instances).toBe(3); // the count is always today's
    expect(s.driver.agentsCalls).toBe(1);
    s.clock.step(1);
    expect(s.fw.whyPending('default/web')!.message).toBe('1/1 agents available.');
    expect(s.driver.agentsCalls).toBe(2);
    // A launch invalidates it at once.
    await round(s, [offer('a1', { cpus: 2 })]);
    s.driver.views = [view('a1', 'none', { cpus: 0 })];
    expect(s.fw.whyPending('default/web')).toMatchObject({ instances: 2, message: '0/1 agents available: 1 insufficient cpus.' });
    expect(s.driver.agentsCalls).toBe(3);
  });

  it('is undefined when nothing waits', async () => {
    const s = setup();
    expect(s.fw.whyPending('default/none')).toBeUndefined();
    s.add(work('web', { count: 1 }));
    await round(s, [offer('a1')]);
    expect(s.fw.whyPending('default/web')).toBeUndefined();
  });
});

describe('PendingWorkFramework gangs', () => {
  const gang = (count: number, o: WorkOpts = {}) => work('mpi', { count, gang: true, ...o });

  it('launches nothing of a gang of 4 on 3 agents, says 3 fit, then launches all 4 in one accept when a 4th agent is offered', async () => {
    const s = setup();
    s.add(gang(4));
    const three = a(3).map((x) => offer(x, { cpus: 1 }));
    const first = await round(s, three);
    expect(first.accepts).toEqual([]);
    expect(first.declines).toEqual([{ op: 'decline', offerIds: ['o-a1', 'o-a2', 'o-a3'], refuse: GANG }]);
    expect([s.fw.waiting('default/mpi'), s.fw.inflight('default/mpi'), first.suppressed]).toEqual([4, 0, 0]);
    s.driver.views = a(3).map((x) => view(x, 'filtered', { cpus: 1 }));
    expect(s.fw.whyPending('default/mpi')).toMatchObject({
      instances: 4, agents: 3, available: 0,
      message: 'gang of 4: needs 4 task(s) placed together; 3 fit now: 0/3 agents available: 3 declined recently (offer filter).',
    });
    const second = await round(s, [...three, offer('a4', { cpus: 1 })]);
    expect(second.accepts).toHaveLength(1);
    expect(second.accepts[0].offerIds.sort()).toEqual(['o-a1', 'o-a2', 'o-a3', 'o-a4']);
    expect(second.launches.map((l) => l.taskName)).toEqual(['mpi-1', 'mpi-2', 'mpi-3', 'mpi-4']);
    expect(second.launches.map((l) => l.placement!.offers)).toEqual([4, 4, 4, 4]);
    expect([s.fw.waiting('default/mpi'), s.fw.inflight('default/mpi'), second.suppressed]).toEqual([0, 4, 1]);
    expect(only(s.calls, 'gangBroken')).toEqual([]);
    expect(s.fw.whyPending('default/mpi')).toBeUndefined();
  });

  it('places a gang on all of the round’s offers, not on its window', async () => {
    const s = setup();
    const agents = Array.from({ length: 1000 }, (_, i) => `a${String(i).padStart(4, '0')}`);
    s.add(gang(3, { constraints: [['hostname', 'LIKE', 'a099[789].example']] }));
    const out = await round(s, agents.map((x) => offer(x)));
    expect(agentsOf(out).sort()).toEqual(['a0997', 'a0998', 'a0999']);
    expect(out.launches.map((l) => l.placement)).toEqual(Array(3).fill(expect.objectContaining({ offers: 1000 })));
  });

  it('explains a gang larger than a round can place, declines its offers as idle, and revives once it is small enough', async () => {
    const s = setup();
    const big = MAX_PLACEMENTS_PER_ROUND + 1;
    s.add(gang(big, { cpus: 0.001, mem: 1 }));
    const out = await round(s, [offer('a1', { cpus: 100, mem: 100_000 })]);
    expect(out.accepts).toEqual([]);
    expect(out.declines).toEqual([{ op: 'decline', offerIds: ['o-a1'], refuse: IDLE }]);
    expect(out.suppressed).toBe(1);
    expect(s.fw.idle()).toBe(false); // the owner still has work: it must not unregister the framework
    s.driver.views = [view('a1', 'suppressed', { cpus: 100, mem: 100_000 })];
    expect(s.fw.whyPending('default/mpi')).toMatchObject({
      instances: big, agents: 1, available: 1,
      message: `gang of ${big}: needs ${big} task(s) placed together, more than the ${MAX_PLACEMENTS_PER_ROUND} one round places at most: it can never be placed (make it smaller): 1/1 agents available.`,
    });
    const revives = only(s.calls, 'revive').length;
    s.add(gang(MAX_PLACEMENTS_PER_ROUND, { cpus: 0.001, mem: 1 })); // shrunk, but now placeable: revive
    expect(only(s.calls, 'revive')).toHaveLength(revives + 1);
    const next = await round(s, [offer('a1', { cpus: 100, mem: 100_000 })]);
    expect(next.launches).toHaveLength(MAX_PLACEMENTS_PER_ROUND);
    expect(s.fw.waiting('default/mpi')).toBe(0);
  });

  it('tells the owner when the master binds only part of a gang, naming the bound members', async () => {
    const s = setup();
    s.add(gang(3), work('web', { count: 2, queuedAt: T0 + 1 }));
    // The master refuses one member (DRF share reached after the first) and a plain instance.
    s.driver.fail = (r) => (r.taskName === 'mpi-2' || r.taskName === 'web-1' ? 'FairShare' : undefined);
    const out = await round(s, a(5).map((x) => offer(x)));
    expect(out.launches).toHaveLength(5);
    expect(only(out.calls, 'gangBroken')).toEqual([{ op: 'gangBroken', key: 'default/mpi', bound: ['mpi-1', 'mpi-3'] }]);
    expect(only(out.calls, 'changed').map((c) => c.key).sort()).toEqual(['default/mpi', 'default/web']);
    expect([s.fw.inflight('default/mpi'), s.fw.inflight('default/web')]).toEqual([2, 1]);
  });

  it('does not report a gang refused whole, nor one bound whole', async () => {
    const s = setup();
    s.add(gang(2));
    s.driver.fail = () => 'AgentLost';
    await round(s, a(2).map((x) => offer(x)));
    s.driver.fail = () => undefined;
    s.add(gang(2));
    await round(s, a(2).map((x) => offer(x)));
    s.driver.broken = true;
    s.add(work('other', { count: 2, gang: true }));
    await round(s, a(2).map((x) => offer(x)));
    expect(only(s.calls, 'gangBroken')).toEqual([]);
    expect(only(s.calls, 'changed')).toHaveLength(4);
  });

  it('recomputes a gang’s explanation at once when its size changes', () => {
    const s = setup();
    s.driver.views = a(3).map((x) => view(x, 'none', { cpus: 1 }));
    s.add(gang(4));
    expect(s.fw.whyPending('default/mpi')!.message).toBe('gang of 4: needs 4 task(s) placed together; 3 fit now: 3/3 agents available.');
    s.add(gang(5));
    expect(s.fw.whyPending('default/mpi')).toMatchObject({ instances: 5, message: 'gang of 5: needs 5 task(s) placed together; 3 fit now: 3/3 agents available.' });
    s.add(gang(5));
    expect(s.driver.agentsCalls).toBe(2); // the same gang again: cached
  });
});

describe('explain: gangs', () => {
  it.each<[string, { count: number; demand?: WorkOpts; agents: AgentView[]; placed?: Placed[]; message: string; available: number }]>([
    ['room for one member per agent', {
      count: 4, agents: a(3).map((x) => view(x, 'none', { cpus: 1 })),
      message: 'gang of 4: needs 4 task(s) placed together; 3 fit now: 3/3 agents available.', available: 3,
    }],
    ['several members per agent', {
      count: 4, agents: [view('a1', 'none', { cpus: 2 }), view('a2', 'held', { cpus: 1.5 })],
      message: 'gang of 4: needs 4 task(s) placed together; 3 fit now: 2/2 agents available.', available: 2,
    }],
    ['the whole gang fits (it waits for offers)', {
      count: 2, agents: [view('a1', 'filtered'), view('a2', 'offered')],
      message: 'gang of 2: needs 2 task(s) placed together; 2 fit now: 0/2 agents available: 1 declined recently (offer filter), 1 offered to another framework.', available: 0,
    }],
    ['UNIQUE hostname counts distinct hosts, and lost or cordoned agents fit nothing', {
      count: 4, demand: { constraints: [['hostname', 'UNIQUE']] },
      agents: [view('a1', 'none'), view('a2', 'none', { hostname: 'a1.example' }), view('a3', 'none'), view('a4', 'cordoned'), view('a5', 'lost')],
      message: 'gang of 4: needs 4 task(s) placed together; 2 fit now: 3/5 agents available: 1 agent lost, 1 agent unschedulable.', available: 3,
    }],
    ['UNIQUE hostname counts the owner’s placed tasks', {
      count: 3, demand: { constraints: [['hostname', 'UNIQUE']] }, placed: [at('a1')],
      agents: a(4).map((x) => view(x, 'none')),
      message: 'gang of 3: needs 3 task(s) placed together; 3 fit now: 3/4 agents available: 1 constraint UNIQUE hostname.', available: 3,
    }],
    ['MAX_PER rack', {
      count: 5, demand: { cpus: 0.5, constraints: [['rack', 'MAX_PER', '2']] },
      agents: [view('a1', 'none', { rack: 'r1' }), view('a2', 'none', { rack: 'r1' }), view('a3', 'none', { rack: 'r2' })],
      message: 'gang of 5: needs 5 task(s) placed together; 4 fit now: 3/3 agents available.', available: 3,
    }],
    ['nothing fits', {
      count: 2, agents: [view('a1', 'none', { cpus: 0 })],
      message: 'gang of 2: needs 2 task(s) placed together; 0 fit now: 0/1 agents available: 1 insufficient cpus.', available: 0,
    }],
  ])('%s', (_name, r) => {
    const why = explain({ count: r.count, demand: demandOf(r.demand), gang: true }, r.agents, r.placed ?? []);
    expect(why.message).toBe(r.message);
    expect(why.instances).toBe(r.count);
    expect(why.agents).toBe(r.agents.length);
    expect(why.available).toBe(r.available);
    expect((why.reasons ?? []).reduce((n, x) => n + x.count, 0) + why.available!).toBe(r.agents.length);
  });

  it('puts refusals after the gang’s reasons', () => {
    const refused = new Map<LaunchFailureReason, { count: number; lastTime: number; agent?: string }>([['FairShare', { count: 1, lastTime: T0, agent: 'a1' }]]);
    const why = explain({ count: 2, demand: demandOf(), gang: true }, [view('a1', 'none', { cpus: 1 })], [], refused);
    expect(why.message).toBe('gang of 2: needs 2 task(s) placed together; 1 fit now: 1/1 agents available; launches refused at accept: 1 role above its fair share.');
  });
});
