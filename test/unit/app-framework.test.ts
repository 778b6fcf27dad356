/**
 * The App framework on the offer loop, with a fake launch queue (the App controller's side) and a
 * fake scheduler driver (the master's side): placement across offers and Apps, ports, runtimes,
 * constraints, declines and their filters, reservations around accept, suppress and revive.
 * Every round is also checked against invariants that hold whatever the scenario.
 */
import type { App } from '../../pkg/api/types.generated';
import { admit, formatCauses } from '../../pkg/api/validation';
import { AppFramework, frameworkIdFor, MAX_PLACEMENTS_PER_ROUND, windowSize, type LaunchQueue, type PendingWork } from '../../pkg/controllers/apps/framework';
import { configHash, keyOf, taskTemplate } from '../../pkg/controllers/apps/template';
import { demandOf, type Placed } from '../../pkg/scheduler/feasibility';
import { PendingSummary } from '../../pkg/scheduler/pending';
import { rangesContain } from '../../pkg/api/resources';
import type { LaunchFailureReason, LaunchRequest, LaunchResult, Offer, PortRange, SchedulerDriver } from '../../pkg/scheduler/types';
import { silentLogger } from '../../pkg/util/log';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const RETRY = 5;
const IDLE = 120;

function mkApp(name: string, spec: Record<string, unknown> = {}): App {
  const r = admit({ apiVersion: 'shoal/v1', kind: 'App', metadata: { name, namespace: 'default', uid: `uid-${name}`, generation: 1 }, spec: { cmd: 'httpd', resources: { cpus: 1, mem: 128 }, ...spec } });
  if (!r.ok) throw new Error(formatCauses(r.causes));
  return r.object as App;
}

/** Pending work for `app` as the controller builds it. */
function workOf(app: App, queuedAt = T0, count = app.spec.instances): PendingWork {
  const hash = configHash(app);
  return {
    key: keyOf(app), namespace: app.metadata.namespace ?? 'default', appName: app.metadata.name, role: app.spec.role,
    demand: demandOf(app.spec), template: taskTemplate(app, hash), hash, count, queuedAt, summary: new PendingSummary(),
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

/** Everything the fakes saw, in order. */
type Call =
  | { op: 'reserve'; key: string; task: string; where: Placed }
  | { op: 'release'; key: string; task: string }
  | { op: 'changed'; key: string }
  | { op: 'accept'; offerIds: string[]; launches: LaunchRequest[] }
  | { op: 'decline'; offerIds: string[]; refuse?: number }
  | { op: 'suppress' }
  | { op: 'revive' };

class FakeQueue implements LaunchQueue {
  readonly work: PendingWork[] = [];
  readonly running = new Map<string, Placed[]>();
  readonly inflight = new Map<string, Map<string, Placed>>();
  constructor(private readonly calls: Call[]) {}
  pending(role: string): PendingWork[] {
    return this.work.filter((w) => w.role === role && w.count > 0).sort((a, b) => a.queuedAt - b.queuedAt);
  }
  placed(appKey: string): Placed[] {
    return [...(this.running.get(appKey) ?? []), ...(this.inflight.get(appKey)?.values() ?? [])];
  }
  reserve(key: string, task: string, where: Placed): void {
    this.calls.push({ op: 'reserve', key, task, where });
    let m = this.inflight.get(key);
    if (!m) this.inflight.set(key, (m = new Map()));
    m.set(task, where);
  }
  release(key: string, task: string): void {
    this.calls.push({ op: 'release', key, task });
    this.inflight.get(key)?.delete(task);
  }
  changed(key: string): void {
    this.calls.push({ op: 'changed', key });
  }
}

class FakeDriver implements SchedulerDriver {
  /** Decides each launch's fate: undefined is success. */
  fail: (r: LaunchRequest, index: number) => LaunchFailureReason | undefined = () => undefined;
  constructor(private readonly calls: Call[]) {}
  async accept(offerIds: string[], launches: LaunchRequest[]): Promise<LaunchResult[]> {
    this.calls.push({ op: 'accept', offerIds, launches });
    return launches.map((request, i) => {
      const reason = this.fail(request, i);
      return reason ? { request, ok: false, reason } : { request, ok: true };
    });
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
}

function setup(role = '*') {
  const calls: Call[] = [];
  const queue = new FakeQueue(calls);
  const driver = new FakeDriver(calls);
  const fw = new AppFramework(role, queue, silentLogger());
  return { calls, queue, driver, fw };
}

type Setup = ReturnType<typeof setup>;

interface RoundResult {
  launches: LaunchRequest[];
  accepts: Extract<Call, { op: 'accept' }>[];
  declines: Extract<Call, { op: 'decline' }>[];
  suppressed: number;
  revived: number;
  /** The calls of this round only. */
  calls: Call[];
}

const only = <K extends Call['op']>(calls: Call[], op: K) => calls.filter((c): c is Extract<Call, { op: K }> => c.op === op);

/** Runs one offer round and checks what must hold in any round. */
async function round(s: Setup, offers: Offer[]): Promise<RoundResult> {
  const start = s.calls.length;
  const before = structuredClone(offers);
  const work = new Map(s.queue.pending(s.fw.role).map((w) => [w.key, { w, count: w.count, why: w.summary.message() }]));
  await s.fw.resourceOffers(s.driver, offers);
  const calls = s.calls.slice(start);
  const accepts = only(calls, 'accept');
  const declines = only(calls, 'decline');
  const launches = accepts.flatMap((a) => a.launches);
  checkInvariants(offers, before, work, calls, accepts, declines, launches);
  return { launches, accepts, declines, suppressed: only(calls, 'suppress').length, revived: only(calls, 'revive').length, calls };
}

function checkInvariants(
  offers: Offer[], before: Offer[], work: Map<string, { w: PendingWork; count: number; why: string }>,
  calls: Call[], accepts: Extract<Call, { op: 'accept' }>[], declines: Extract<Call, { op: 'decline' }>[], launches: LaunchRequest[],
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
  const acceptAt = calls.findIndex((c) => c.op === 'accept');
  const reserveAt = new Map<string, number>();
  calls.forEach((c, i) => { if (c.op === 'reserve') reserveAt.set(c.task, i); });
  const owners = new Map<string, PendingWork>();
  for (const { w } of work.values()) owners.set(w.key, w);
  const used = new Map<string, { cpus: number; mem: number; disk: number; ports: number[] }>();
  for (const l of launches) {
    const o = byId.get(l.offerId)!;
    // Reserved (with the offer's agent) before the accept went out.
    const r = reserveAt.get(l.taskName) ?? -1;
    expect(r).toBeGreaterThanOrEqual(0);
    expect(r).toBeLessThan(acceptAt);
    const res = calls[r] as Extract<Call, { op: 'reserve' }>;
    expect(res.where).toEqual({ agent: o.agent, hostname: o.hostname, attributes: o.attributes });
    // The request is the work's: template, demand, queuedAt, namespace, a task name of the App.
    const w = owners.get(res.key)!;
    expect(l.task).toBe(w.template);
    expect(l.resources).toEqual(w.demand.resources);
    expect(l.queuedAt).toBe(w.queuedAt);
    expect(l.namespace).toBe(w.namespace);
    expect(l.taskName.startsWith(`${w.appName}-`)).toBe(true);
    expect(l.taskName.length).toBeLessThanOrEqual(63);
    // Ports: one per demanded port, fixed ones as asked, all within the offer's ranges.
    expect(l.ports).toHaveLength(w.demand.ports.length);
    w.demand.ports.forEach((p, i) => { if (p.hostPort > 0) expect(l.ports[i]).toBe(p.hostPort); });
    for (const p of l.ports) expect(rangesContain(o.resources.ports, p)).toBe(true);
    // A container never goes to an agent without docker.
    if (w.demand.runtime === 'docker') expect(o.runtimes).toContain('docker');
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
  // Task names are unique; each work's count went down by its launches.
  expect(new Set(launches.map((l) => l.taskName)).size).toBe(launches.length);
  // A change notice for a work exactly when its "why pending" changed or one of its launches failed.
  for (const { w, count, why } of work.values()) {
    const mine = only(calls, 'reserve').filter((c) => c.key === w.key).length;
    expect(w.count).toBe(count - mine);
    const released = only(calls, 'release').some((c) => c.key === w.key);
    expect(only(calls, 'changed').some((c) => c.key === w.key)).toBe(released || w.summary.message() !== why);
  }
}

const agentsOf = (r: RoundResult): string[] => r.launches.map((l) => l.offerId.slice(2));
const countBy = (xs: string[]): Record<string, number> => xs.reduce<Record<string, number>>((m, x) => ({ ...m, [x]: (m[x] ?? 0) + 1 }), {});

/** A scenario: Apps (with optional queuedAt and running placements), offers, and what to expect. */
interface Row {
  apps: Array<{ app: App; queuedAt?: number; running?: Placed[] }>;
  offers: Offer[];
  launches: number;
  /** Launches per agent (agent name → count), when it matters. */
  perAgent?: Record<string, number>;
  /** Launches per app. */
  perApp?: Record<string, number>;
  /** Work left per app. */
  left?: Record<string, number>;
  declined?: string[];
  refuse?: number;
  suppressed?: number;
  /** Substrings the pending summary message of each app must contain. */
  message?: Record<string, string>;
}

const a4 = (n: number) => ['a1', 'a2', 'a3', 'a4', 'a5'].slice(0, n);

const rows: Array<[string, Row]> = [
  ['spreadsThreeInstancesOverThreeAgents', {
    apps: [{ app: mkApp('web', { instances: 3, resources: { cpus: 0.5 } }) }],
    offers: a4(3).map((a) => offer(a)), launches: 3, perAgent: { a1: 1, a2: 1, a3: 1 }, left: { web: 0 }, declined: [], suppressed: 1,
  }],
  ['spreadsOverTheLeastUsedAgentsFirst', {
    apps: [{ app: mkApp('web', { instances: 2 }), running: [{ agent: 'a1', hostname: 'a1.example', attributes: { rack: 'r-a1' } }] }],
    offers: a4(3).map((a) => offer(a)), launches: 2, perAgent: { a2: 1, a3: 1 }, declined: ['o-a1'], refuse: IDLE, suppressed: 1,
  }],
  ['fillsTheCapacityOfTwoAgents', {
    apps: [{ app: mkApp('web', { instances: 4 }) }],
    offers: a4(2).map((a) => offer(a, { cpus: 2 })), launches: 4, perAgent: { a1: 2, a2: 2 }, left: { web: 0 }, declined: [], suppressed: 1,
  }],
  ['placesWhatFitsAndRetriesTheRest', {
    apps: [{ app: mkApp('web', { instances: 5 }) }],
    offers: a4(2).map((a) => offer(a, { cpus: 2 })), launches: 4, left: { web: 1 }, declined: [], suppressed: 0,
    message: { web: '0/2 agents available: 2 insufficient cpus.' },
  }],
  ['uniqueHostnameLeavesOneWaiting', {
    apps: [{ app: mkApp('web', { instances: 4, constraints: [['hostname', 'UNIQUE']] }) }],
    offers: [...a4(3).map((a) => offer(a)), offer('a4', { cpus: 0.5 })],
    launches: 3, perAgent: { a1: 1, a2: 1, a3: 1 }, left: { web: 1 }, declined: ['o-a4'], refuse: RETRY, suppressed: 0,
    message: { web: '0/4 agents available: 3 constraint UNIQUE hostname, 1 insufficient cpus.' },
  }],
  ['uniqueHostnameOnThreeOffers', {
    apps: [{ app: mkApp('web', { instances: 4, constraints: [['hostname', 'UNIQUE']] }) }],
    offers: a4(3).map((a) => offer(a)), launches: 3, left: { web: 1 }, declined: [], suppressed: 0,
    message: { web: '0/3 agents available: 3 constraint UNIQUE hostname.' },
  }],
  ['uniqueHostnameCountsRunningTasks', {
    apps: [{ app: mkApp('web', { instances: 2, constraints: [['hostname', 'UNIQUE']] }), running: [{ agent: 'a2', hostname: 'a2.example', attributes: {} }] }],
    offers: a4(3).map((a) => offer(a)), launches: 2, perAgent: { a1: 1, a3: 1 }, declined: ['o-a2'], refuse: IDLE, suppressed: 1,
  }],
  ['uniqueRackOverAgentsSharingRacks', {
    apps: [{ app: mkApp('web', { instances: 3, constraints: [['rack', 'UNIQUE']] }) }],
    offers: [offer('a1', { rack: 'r1' }), offer('a2', { rack: 'r1' }), offer('a3', { rack: 'r2' })],
    launches: 2, left: { web: 1 }, refuse: RETRY, declined: ['o-a2'], message: { web: 'constraint UNIQUE rack' },
  }],
  ['dynamicPortsAreDistinctOnOneOffer', {
    apps: [{ app: mkApp('web', { instances: 3, resources: { cpus: 0.1 }, ports: [{ hostPort: 0 }, { hostPort: 0 }] }) }],
    offers: [offer('a1', { ports: [[31000, 31002], [31010, 31012]] })], launches: 3, perAgent: { a1: 3 }, left: { web: 0 },
  }],
  ['dynamicPortsRunOut', {
    apps: [{ app: mkApp('web', { instances: 4, resources: { cpus: 0.1 }, ports: [{ hostPort: 0 }, { hostPort: 0 }] }) }],
    offers: [offer('a1', { ports: [[31000, 31002], [31010, 31012]] })], launches: 3, left: { web: 1 }, message: { web: 'ports unavailable' },
  }],
  ['fixedHostPortOnlyWhereOffered', {
    apps: [{ app: mkApp('web', { instances: 2, ports: [{ hostPort: 8080 }] }) }],
    offers: [offer('a1', { ports: [[31000, 32000]] }), offer('a2', { ports: [[8000, 9000]] }), offer('a3', { ports: [] })],
    launches: 1, perAgent: { a2: 1 }, left: { web: 1 }, declined: ['o-a1', 'o-a3'], refuse: RETRY, message: { web: '0/3 agents available: 3 ports unavailable.' },
  }],
  ['fixedHostPortNowhere', {
    apps: [{ app: mkApp('web', { instances: 1, ports: [{ hostPort: 80 }] }) }],
    offers: a4(3).map((a) => offer(a)), launches: 0, left: { web: 1 }, declined: ['o-a1', 'o-a2', 'o-a3'], refuse: RETRY, suppressed: 0,
  }],
  ['containersOnlyOnDockerAgents', {
    apps: [{ app: mkApp('nginx', { instances: 3, container: { image: 'nginx:1' }, cmd: undefined, resources: { cpus: 1 } }) }],
    offers: [offer('a1', { runtimes: ['process'] }), offer('a2'), offer('a3', { runtimes: ['process'] })],
    launches: 3, perAgent: { a2: 3 }, declined: ['o-a1', 'o-a3'], refuse: IDLE, suppressed: 1,
  }],
  ['containersWaitWithoutDocker', {
    apps: [{ app: mkApp('nginx', { instances: 1, container: { image: 'nginx:1' }, cmd: undefined }) }],
    offers: [offer('a1', { runtimes: ['process'] }), offer('a2', { runtimes: ['process'] })],
    launches: 0, left: { nginx: 1 }, declined: ['o-a1', 'o-a2'], refuse: RETRY, suppressed: 0, message: { nginx: '0/2 agents available: 2 runtime docker missing.' },
  }],
  ['processAppsRunOnProcessOnlyAgents', {
    apps: [{ app: mkApp('web', { instances: 2 }) }],
    offers: [offer('a1', { runtimes: ['process'] }), offer('a2', { runtimes: ['process'] })], launches: 2, perAgent: { a1: 1, a2: 1 },
  }],
  ['twoAppsShareAnOffer', {
    apps: [{ app: mkApp('first', { instances: 2 }), queuedAt: T0 }, { app: mkApp('second', { instances: 1 }), queuedAt: T0 + 1 }],
    offers: [offer('a1', { cpus: 2 })], launches: 2, perApp: { first: 2 }, left: { first: 0, second: 1 }, suppressed: 0,
    message: { second: 'insufficient cpus' },
  }],
  ['theOldestWorkGoesFirst', {
    apps: [{ app: mkApp('first', { instances: 2 }), queuedAt: T0 + 1 }, { app: mkApp('second', { instances: 1 }), queuedAt: T0 }],
    offers: [offer('a1', { cpus: 2 })], launches: 2, perApp: { first: 1, second: 1 }, left: { first: 1, second: 0 },
  }],
  ['twoAppsNeverShareAPort', {
    apps: [{ app: mkApp('first', { instances: 1, resources: { cpus: 0.1 }, ports: [{ hostPort: 0 }] }) }, { app: mkApp('second', { instances: 2, resources: { cpus: 0.1 }, ports: [{ hostPort: 0 }] }), queuedAt: T0 + 1 }],
    offers: [offer('a1', { ports: [[31000, 31001]] })], launches: 2, perApp: { first: 1, second: 1 }, left: { second: 1 },
  }],
  ['twoAppsNeverShareAFixedPort', {
    apps: [{ app: mkApp('first', { instances: 1, ports: [{ hostPort: 8080 }] }) }, { app: mkApp('second', { instances: 1, ports: [{ hostPort: 8080 }] }), queuedAt: T0 + 1 }],
    offers: [offer('a1', { ports: [[8080, 8080]] }), offer('a2', { ports: [[8080, 8081]] })], launches: 2, perAgent: { a1: 1, a2: 1 }, suppressed: 1,
  }],
  ['twoAppsSpreadOverSpareOffers', {
    apps: [{ app: mkApp('first', { instances: 2, resources: { cpus: 2 } }) }, { app: mkApp('second', { instances: 2, resources: { cpus: 2 } }), queuedAt: T0 + 1 }],
    offers: a4(4).map((a) => offer(a, { cpus: 2 })), launches: 4, perAgent: { a1: 1, a2: 1, a3: 1, a4: 1 }, declined: [],
  }],
  ['otherRolesAreNotServed', {
    apps: [{ app: mkApp('web', { instances: 1, role: 'prod' }) }],
    offers: a4(2).map((a) => offer(a)), launches: 0, left: { web: 1 }, declined: ['o-a1', 'o-a2'], refuse: IDLE, suppressed: 1,
  }],
];

describe('AppFramework rounds', () => {
  it.each(rows)('%s', async (_name, r) => {
    const s = setup();
    for (const { app, queuedAt, running } of r.apps) {
      s.queue.work.push(workOf(app, queuedAt));
      if (running) s.queue.running.set(keyOf(app), running);
    }
    const out = await round(s, r.offers);
    expect(out.launches).toHaveLength(r.launches);
    if (r.perAgent) expect(countBy(agentsOf(out))).toEqual(r.perAgent);
    if (r.perApp) expect(countBy(out.launches.map((l) => l.taskName.replace(/-[0-9a-z]{8}$/, '')))).toEqual(r.perApp);
    const byName = new Map(s.queue.work.map((w) => [w.appName, w]));
    for (const [name, n] of Object.entries(r.left ?? {})) expect([name, byName.get(name)!.count]).toEqual([name, n]);
    if (r.declined) expect(out.declines.flatMap((d) => d.offerIds).sort()).toEqual(r.declined);
    if (r.refuse !== undefined) {
      expect(out.declines).toHaveLength(1);
      expect(out.declines[0].refuse).toBe(r.refuse);
    }
    // Filters: retry soon while work waits, idle otherwise.
    const waiting = s.queue.pending(s.fw.role).length > 0;
    for (const d of out.declines) expect(d.refuse).toBe(waiting ? RETRY : IDLE);
    if (r.suppressed !== undefined) expect(out.suppressed).toBe(r.suppressed);
    expect(out.suppressed).toBe(waiting ? 0 : 1);
    for (const [name, text] of Object.entries(r.message ?? {})) expect(byName.get(name)!.summary.message()).toContain(text);
  });
});

describe('AppFramework', () => {
  it('namesItselfByRole', () => {
    expect(setup().fw.id).toBe('apps');
    expect(setup('prod').fw.id).toBe('apps-prod');
    expect(frameworkIdFor('gpu')).toBe('apps-gpu');
  });

  it('buildsLaunchRequestsFromTheWork', async () => {
    const s = setup();
    const app = mkApp('web', { instances: 1, resources: { cpus: 0.5, mem: 64, disk: 1 }, ports: [{ name: 'http', hostPort: 0 }, { hostPort: 31050 }], env: { A: 'b' } });
    const w = workOf(app, T0 - 1234);
    s.queue.work.push(w);
    const out = await round(s, [offer('a1')]);
    expect(out.accepts).toHaveLength(1);
    expect(out.accepts[0].offerIds).toEqual(['o-a1']);
    const [l] = out.launches;
    expect(l).toEqual({
      offerId: 'o-a1', namespace: 'default', taskName: expect.stringMatching(/^web-[0-9a-z]{8}$/),
      resources: { cpus: 0.5, mem: 64, disk: 1 }, ports: [31000, 31050], task: w.template, queuedAt: T0 - 1234,
    });
    expect(l.task).toBe(w.template);
    expect(w.summary.message()).toBe('1/1 agents available.');
  });

  it('reservesEveryLaunchBeforeAcceptAndReleasesTheFailedOnes', async () => {
    const s = setup();
    s.queue.work.push(workOf(mkApp('web', { instances: 4 })));
    s.driver.fail = (_r, i) => (i % 2 === 1 ? 'AgentLost' : undefined);
    const out = await round(s, a4(4).map((a) => offer(a)));
    const ops = out.calls.map((c) => c.op);
    const acceptAt = ops.indexOf('accept');
    expect(ops.slice(0, acceptAt).filter((o) => o === 'reserve')).toHaveLength(4);
    expect(ops.slice(acceptAt).filter((o) => o === 'reserve')).toHaveLength(0);
    const failed = out.launches.filter((_l, i) => i % 2 === 1).map((l) => l.taskName);
    const released = only(out.calls, 'release');
    expect(released.map((c) => c.task)).toEqual(failed);
    expect(released.every((c) => c.key === 'default/web')).toBe(true);
    // Each release is followed by a change notice, after the accept.
    for (const rel of released) {
      const i = out.calls.indexOf(rel);
      expect(i).toBeGreaterThan(acceptAt);
      expect(out.calls[i + 1]).toEqual({ op: 'changed', key: 'default/web' });
    }
    // What is still in flight: the launches that went through.
    expect([...s.queue.inflight.get('default/web')!.keys()].sort()).toEqual(out.launches.filter((_l, i) => i % 2 === 0).map((l) => l.taskName).sort());
  });

  it('releasesNothingWhenEveryLaunchSucceeds', async () => {
    const s = setup();
    s.queue.work.push(workOf(mkApp('web', { instances: 3 })));
    const out = await round(s, a4(3).map((a) => offer(a)));
    expect(only(out.calls, 'release')).toEqual([]);
    expect(s.queue.inflight.get('default/web')!.size).toBe(3);
  });

  it('releasesEveryFailedLaunchOfEachApp', async () => {
    const s = setup();
    s.queue.work.push(workOf(mkApp('first', { instances: 1 })), workOf(mkApp('second', { instances: 1 }), T0 + 1));
    s.driver.fail = () => 'AgentLost';
    const out = await round(s, a4(2).map((a) => offer(a)));
    expect(only(out.calls, 'release').map((c) => c.key).sort()).toEqual(['default/first', 'default/second']);
    expect(s.queue.inflight.get('default/first')!.size + s.queue.inflight.get('default/second')!.size).toBe(0);
  });

  it('declinesEverythingAndSuppressesOnceWhenIdle', async () => {
    const s = setup();
    const offers = a4(3).map((a) => offer(a));
    const first = await round(s, offers);
    expect(first.declines).toEqual([{ op: 'decline', offerIds: ['o-a1', 'o-a2', 'o-a3'], refuse: IDLE }]);
    expect(first.suppressed).toBe(1);
    expect(first.accepts).toEqual([]);
    const second = await round(s, offers);
    expect(second.declines).toEqual([{ op: 'decline', offerIds: ['o-a1', 'o-a2', 'o-a3'], refuse: IDLE }]);
    expect(second.suppressed).toBe(0);
  });

  it('wakeRevivesAndAllowsTheNextSuppress', async () => {
    const s = setup();
    await round(s, [offer('a1')]);
    s.fw.wake(s.driver);
    expect(only(s.calls, 'revive')).toHaveLength(1);
    s.queue.work.push(workOf(mkApp('web', { instances: 1 })));
    const busy = await round(s, [offer('a1')]);
    expect(busy.launches).toHaveLength(1);
    // The work is all placed: the framework suppresses itself again.
    expect(busy.suppressed).toBe(1);
    const idle = await round(s, [offer('a1')]);
    expect(idle.suppressed).toBe(0);
    s.fw.wake(s.driver);
    s.fw.wake(s.driver);
    expect(only(s.calls, 'revive')).toHaveLength(3);
    expect((await round(s, [offer('a1')])).suppressed).toBe(1);
  });

  it('staysUnsuppressedWhileWorkWaits', async () => {
    const s = setup();
    s.queue.work.push(workOf(mkApp('web', { instances: 3, constraints: [['hostname', 'UNIQUE']] })));
    for (let i = 0; i < 3; i++) {
      const r = await round(s, [offer('a1')]);
      expect(r.suppressed).toBe(0);
    }
    expect(s.queue.work[0].count).toBe(2);
  });

  it('countsThisRoundsLaunchesOfEarlierRoundsAsPlaced', async () => {
    const s = setup();
    s.queue.work.push(workOf(mkApp('web', { instances: 2, constraints: [['hostname', 'UNIQUE']] })));
    const first = await round(s, [offer('a1')]);
    expect(agentsOf(first)).toEqual(['a1']);
    const second = await round(s, [offer('a1'), offer('a2')]);
    expect(agentsOf(second)).toEqual(['a2']);
  });

  it('placesAtMostMaxPlacementsPerRoundOfOneApp', async () => {
    const s = setup();
    const app = mkApp('big', { instances: MAX_PLACEMENTS_PER_ROUND + 5, resources: { cpus: 0.001, mem: 1, disk: 0 } });
    s.queue.work.push(workOf(app));
    const out = await round(s, [offer('a1', { cpus: 100, mem: 100_000 })]);
    expect(out.launches).toHaveLength(MAX_PLACEMENTS_PER_ROUND);
    expect(s.queue.work[0].count).toBe(5);
    expect(out.suppressed).toBe(0);
  });

  it('looksAtAWindowOfOffersThatShrinksAsTheClusterGrows', () => {
    expect(windowSize(50, 3)).toBe(50); // small: every offer
    expect(windowSize(1000, 100)).toBe(420); // 42 %
    expect(windowSize(5000, 100)).toBe(500); // 10 %
    expect(windowSize(20_000, 10)).toBe(1000); // 5 % at least
    expect(windowSize(5000, 400)).toBe(800); // twice the instances
    expect(windowSize(150, 1000)).toBe(150); // never more than there are
  });

  it('givesSuccessiveAppsSuccessiveWindowsOfALargeCluster', async () => {
    const s = setup();
    const agents = Array.from({ length: 1000 }, (_, i) => `a${String(i).padStart(4, '0')}`);
    for (const name of ['one', 'two', 'three']) s.queue.work.push(workOf(mkApp(name, { instances: 1 })));
    const out = await round(s, agents.map((a) => offer(a)));
    const used = agentsOf(out).map((a) => agents.indexOf(a));
    expect(used).toHaveLength(3);
    // Windows of 420 from a cursor: [0, 420), [420, 840), [840, 1000) + [0, 260).
    expect(used[0]).toBeLessThan(420);
    expect(used[1]).toBeGreaterThanOrEqual(420);
    expect(used[1]).toBeLessThan(840);
    expect(used[2] >= 840 || used[2] < 260).toBe(true);
  });

  it('placesAnAppThatFitsNoOfferOfItsWindowOnTheRestOfTheCluster', async () => {
    const s = setup();
    const agents = Array.from({ length: 1000 }, (_, i) => `a${String(i).padStart(4, '0')}`);
    s.queue.work.push(workOf(mkApp('pinned', { instances: 1, constraints: [['hostname', 'LIKE', 'a0999.example']] })));
    const out = await round(s, agents.map((a) => offer(a)));
    expect(agentsOf(out)).toEqual(['a0999']);
    expect(s.queue.work[0].count).toBe(0);
  });

  it('ignoresRescindsAndStatusUpdates', () => {
    const s = setup();
    s.fw.offerRescinded();
    s.fw.statusUpdate();
    expect(s.calls).toEqual([]);
  });
});
