/**
 * The master on the in-memory store, on a fake clock: the framework registry (register,
 * unregister, a dead driver does nothing), delivery of offers (calls to one framework never
 * overlap; a round does not wait for the binds of the previous one), kills (fenced deletes of
 * assignment keys, only the framework's own live tasks), reconciliation (asynchronous, explicit
 * and implicit), teardown, the agents a framework sees, and the batch window (demands that
 * arrive together share one DRF round).
 *
 * Rounds asked for at once run on setImmediate, so `settle()` lets them run; rounds of the
 * interval and of the batch window run when the clock is stepped.
 */
import { Registry } from 'prom-client';
import { lookupKind } from '../../pkg/api/kinds';
import type { Node, Task } from '../../pkg/api/types.generated';
import { admit, formatCauses } from '../../pkg/api/validation';
import { clusterInformers, type ClusterInformers } from '../../pkg/client/informers';
import { Binder } from '../../pkg/master/binder';
import type { AgentView, Framework, LaunchRequest, LaunchResult, Offer, SchedulerDriver, TaskRef, TaskStatusUpdate } from '../../pkg/master/framework';
import { Master } from '../../pkg/master/master';
import type { AllocatorOptions } from '../../pkg/scheduler/allocator';
import { MemoryStore } from '../../pkg/store/memory';
import { agentLeaseKey, assignmentKey, decodeKeyValue, encodeObject, leaderKey, objectKey } from '../../pkg/store/objects';
import type { Store } from '../../pkg/store/types';
import { FakeClock, settle } from '../../pkg/util/clock';
import { silentLogger } from '../../pkg/util/log';

const P = '/shoal';
const log = silentLogger();
const NODES = lookupKind('node')!;
const TASKS = lookupKind('task')!;

interface NodeOpts {
  name: string;
  cpus?: number;
  mem?: number;
  unschedulable?: boolean;
  /** false: no lease key (the agent is lost). */
  lease?: boolean;
}

function node(o: NodeOpts): Node {
  const r = admit({
    apiVersion: 'shoal/v1', kind: 'Node', metadata: { name: o.name, uid: `uid-${o.name}` }, spec: { unschedulable: o.unschedulable ?? false },
    status: { capacity: { cpus: o.cpus ?? 4, mem: o.mem ?? 4096, disk: 100, ports: [[31000, 31009]] }, runtimes: ['process'], hostname: o.name, conditions: [{ type: 'Ready', status: 'True' }] },
  });
  if (!r.ok) throw new Error(formatCauses(r.causes));
  return r.object as Node;
}

/** A store whose transactions (binds, kills) wait until opened. */
function gatedTxns(store: MemoryStore): { store: Store; open(): void; waiting(): number } {
  let waiting = 0;
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== 'txn') return typeof v === 'function' ? v.bind(target) : v;
      return async (...args: Parameters<Store['txn']>) => {
        waiting++;
        await gate;
        waiting--;
        return target.txn(...args);
      };
    },
  });
  return { store: proxy as Store, open, waiting: () => waiting };
}

interface ClusterOpts {
  nodes?: NodeOpts[];
  /** Binds and kills wait for gate.open(). */
  gated?: boolean;
  batchWindowMs?: number;
  allocationIntervalMs?: number;
  allocator?: AllocatorOptions;
}

/** Frameworks passed here are registered before the master starts (as a new term does). */
async function cluster(frameworks: Framework[], o: ClusterOpts = {}) {
  const clock = new FakeClock();
  const mem = new MemoryStore({ clock });
  const fence = { key: leaderKey(P), modRevision: await mem.create(leaderKey(P), 'cm') };
  const leases: Record<string, number> = {};
  for (const n of o.nodes ?? [{ name: 'n1' }, { name: 'n2' }]) {
    await mem.create(objectKey(P, NODES, undefined, n.name), encodeObject(node(n)));
    if (n.lease !== false) leases[n.name] = await mem.create(agentLeaseKey(P, n.name), '{}');
  }
  const gate = gatedTxns(mem);
  const store = o.gated ? gate.store : mem;
  const informers: ClusterInformers = clusterInformers(mem, P, log, clock);
  await informers.start();
  const master = new Master({
    informers, store, prefix: P, binder: new Binder(store, P, log, clock), fence, logger: log, registry: new Registry(), clock,
    allocationIntervalMs: o.allocationIntervalMs ?? 1000, batchWindowMs: o.batchWindowMs, allocator: o.allocator,
  });
  // Every allocation round, when (ms since the start) and with which frameworks unsuppressed.
  const rounds: Array<{ at: number; candidates: string[] }> = [];
  const t0 = clock.now();
  const allocate = master.allocator.allocate.bind(master.allocator);
  master.allocator.allocate = (now: number) => {
    rounds.push({ at: now - t0, candidates: master.list().map((f) => f.id).filter((id) => !master.allocator.isSuppressed(id)) });
    return allocate(now);
  };
  const drivers = new Map<string, SchedulerDriver>();
  for (const fw of frameworks) drivers.set(fw.id, master.register(fw));
  master.start();
  return {
    clock, mem, fence, leases, gate, informers, master, rounds, drivers,
    /** Writes a bound Task of `frameworkId` (and its assignment) as the binder does, and lets the informers see it. */
    async task(frameworkId: string, name: string, agent = 'n1', state?: string): Promise<Task> {
      const binder = new Binder(mem, P, log, clock);
      const request: LaunchRequest = { offerId: 'x', namespace: 'default', taskName: name, resources: { cpus: 0.1, mem: 16, disk: 0 }, ports: [], task: { spec: { cmd: 'sleep 1' } } };
      const [r] = await binder.bind([{ request, agent, leaseRevision: leases[agent], frameworkId }], fence);
      expect(r.ok).toBe(true);
      const key = objectKey(P, TASKS, 'default', name);
      if (state) {
        const kv = (await mem.get(key))!;
        const t = decodeKeyValue<Task>(kv);
        await mem.update(key, encodeObject({ ...t, status: { ...t.status!, state: state as NonNullable<Task['status']>['state'] } }), kv.modRevision);
      }
      await settle();
      return decodeKeyValue<Task>((await mem.get(key))!);
    },
    async stop() {
      master.stop();
      gate.open();
      await settle();
      await informers.stop();
    },
  };
}

/** A framework that records every call; what it does with offers is up to `onOffers` (default: holds them). */
class Recorder implements Framework {
  readonly offers: Offer[][] = [];
  readonly rescinded: string[] = [];
  readonly updates: TaskStatusUpdate[] = [];
  registeredCalls = 0;
  unregisteredCalls = 0;
  driver?: SchedulerDriver;
  constructor(
    readonly id: string,
    readonly role: string = id,
    public onOffers: (driver: SchedulerDriver, offers: Offer[]) => void | Promise<void> = () => undefined,
  ) {}
  resourceOffers(driver: SchedulerDriver, offers: Offer[]): void | Promise<void> {
    this.offers.push(offers);
    return this.onOffers(driver, offers);
  }
  offerRescinded(_driver: SchedulerDriver, offerId: string): void {
    this.rescinded.push(offerId);
  }
  statusUpdate(_driver: SchedulerDriver, update: TaskStatusUpdate): void {
    this.updates.push(update);
  }
  registered(driver: SchedulerDriver): void {
    this.registeredCalls++;
    this.driver = driver;
  }
  unregistered(): void {
    this.unregisteredCalls++;
  }
  /** Agents of every offer received, per call. */
  agents(): string[][] {
    return this.offers.map((list) => list.map((o) => o.agent).sort());
  }
}

const declineAll = (refuseSeconds = 0) => (driver: SchedulerDriver, offers: Offer[]) => driver.decline(offers.map((o) => o.id), refuseSeconds);
const ref = (taskName: string): TaskRef => ({ namespace: 'default', taskName });
const launch = (offerId: string, taskName: string, cpus = 0.1): LaunchRequest => ({
  offerId, namespace: 'default', taskName, resources: { cpus, mem: 16, disk: 0 }, ports: [], task: { spec: { cmd: 'sleep 1' } },
});

describe('Master: delivering offers', () => {
  it('never calls a framework again before its previous resourceOffers settled', async () => {
    let active = 0;
    let peak = 0;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const fw = new Recorder('slow', '*', async (driver, offers) => {
      peak = Math.max(peak, ++active);
      driver.decline(offers.map((o) => o.id), 0); // the agents go back to the pool at once
      if (fw.offers.length === 1) await held; // but the framework is busy with its first offers
      active--;
    });
    const c = await cluster([fw]);
    await c.clock.stepAsync(250); // the registration's batch window: the first round
    expect(fw.offers).toHaveLength(1);
    await c.clock.stepAsync(5000); // five interval rounds: the next round's offers wait for the framework
    expect(c.rounds).toHaveLength(6);
    expect(fw.offers).toHaveLength(1);
    release();
    await settle();
    expect(fw.offers).toHaveLength(2); // the offers of the second round, outstanding meanwhile
    expect(fw.agents()).toEqual([['n1', 'n2'], ['n1', 'n2']]);
    await c.clock.stepAsync(1000);
    expect(fw.offers).toHaveLength(3);
    expect(peak).toBe(1);
    await c.stop();
  });

  it('makes the next round while the binds of the previous one are still being written', async () => {
    const fw = new Recorder('quick', '*', (driver, offers) => {
      if (fw.offers.length > 3) return driver.decline(offers.map((o) => o.id), 0); // enough
      const [first, ...rest] = offers;
      // Accepts one small task on the first offer without waiting for its bind; gives the rest back.
      void driver.accept([first.id], [launch(first.id, `t${fw.offers.length}`)]);
      driver.decline(rest.map((o) => o.id), 0);
    });
    const c = await cluster([fw], { gated: true });
    await c.clock.stepAsync(250);
    await c.clock.stepAsync(2000); // interval rounds at 1 s and 2 s
    expect(fw.offers).toHaveLength(3);
    expect(c.gate.waiting()).toBe(3); // three binds held at once: the rounds went on
    c.gate.open();
    await settle();
    expect(c.gate.waiting()).toBe(0);
    expect(c.informers.tasks.list().map((t) => t.metadata.name).sort()).toEqual(['t1', 't2', 't3']);
    await c.stop();
  });
});

describe('Master: the registry', () => {
  it('registers a framework once, tells it before any offer, and lists it', async () => {
    const calls: string[] = [];
    const fw = new Recorder('a');
    fw.registered = (driver) => {
      calls.push(`registered:${fw.offers.length}`);
      fw.driver = driver;
    };
    const c = await cluster([fw]);
    expect(calls).toEqual(['registered:0']);
    expect(c.master.get('a')).toBe(fw);
    expect(c.master.list()).toEqual([fw]);
    expect(() => c.master.register(new Recorder('a'))).toThrow(/already registered/);
    expect(c.master.list()).toEqual([fw]);
    await c.stop();
  });

  it('waits the batch window before the first round after a registration', async () => {
    const fw = new Recorder('a');
    const c = await cluster([fw]);
    await settle(); // start() asked for a round at once: the window holds it back
    expect(c.rounds).toHaveLength(0);
    await c.clock.stepAsync(249);
    expect(c.rounds).toHaveLength(0);
    await c.clock.stepAsync(1);
    expect(c.rounds).toHaveLength(1);
    expect(fw.agents()).toEqual([['n1', 'n2']]);
    await c.stop();
  });

  it('unregisters: the outstanding offers are void, the driver does nothing, and no offer comes again', async () => {
    const a = new Recorder('a'); // holds its offers
    const b = new Recorder('b', 'b');
    const c = await cluster([a, b]);
    await c.clock.stepAsync(250);
    expect(a.agents()).toEqual([['n1', 'n2']]); // role a sorts first
    expect(b.offers).toHaveLength(0);
    const held = a.offers[0];
    const driver = c.drivers.get('a')!;
    const ta = await c.task('a', 'ta');
    a.updates.length = 0;

    c.master.unregister('a');
    expect(a.unregisteredCalls).toBe(1);
    expect(c.master.get('a')).toBeUndefined();
    expect(c.master.list().map((f) => f.id)).toEqual(['b']);
    expect(a.rescinded).toEqual([]); // it gets no further calls at all
    c.master.unregister('a'); // twice: nothing
    expect(a.unregisteredCalls).toBe(1);

    // The dead driver: accept refuses every launch, kill skips everything, the rest does nothing.
    const results = await driver.accept([held[0].id], [launch(held[0].id, 'late')]);
    expect(results).toEqual([{ request: launch(held[0].id, 'late'), ok: false, reason: 'OfferUnknown' }]);
    expect(await driver.kill([ref('ta')])).toEqual({ killed: [], skipped: [ref('ta')] });
    expect(await c.mem.get(assignmentKey(P, ta.spec.nodeName!, 'default', 'ta'))).toBeDefined();
    driver.reconcile();
    driver.reconcile([ref('ta')]);
    driver.revive();
    driver.suppress();
    await driver.teardown();
    await settle();
    expect(a.updates).toEqual([]);
    expect(c.master.list().map((f) => f.id)).toEqual(['b']);

    // Its agents go back to the pool: b gets them in the next round; a never gets another offer.
    await c.clock.stepAsync(1000);
    expect(b.agents()).toEqual([['n1', 'n2']]);
    // A dead driver cannot decline another framework's offers either.
    driver.decline(b.offers[0].map((o) => o.id), 60);
    expect(c.master.allocator.outstanding('b').map((o) => o.agent).sort()).toEqual(['n1', 'n2']);
    await c.clock.stepAsync(5000);
    expect(a.offers).toHaveLength(1);
    expect(a.updates).toEqual([]);
    await c.stop();
  });

  it('does not let a framework accept or decline the offers of another', async () => {
    const a = new Recorder('a');
    const b = new Recorder('b', 'b');
    const c = await cluster([a, b]);
    await c.clock.stepAsync(250);
    const [offer] = a.offers[0];
    const bDriver = c.drivers.get('b')!;
    expect(await bDriver.accept([offer.id], [launch(offer.id, 'stolen')])).toEqual([{ request: launch(offer.id, 'stolen'), ok: false, reason: 'OfferUnknown' }]);
    bDriver.decline([offer.id], 60);
    expect(c.master.allocator.outstanding('a').map((o) => o.id)).toContain(offer.id);
    expect(c.master.allocator.filteredUntil('a', offer.agent, c.clock.now())).toBeUndefined();
    // a's own accept still works.
    const [r] = await c.drivers.get('a')!.accept([offer.id], [launch(offer.id, 'mine')]);
    expect(r.ok).toBe(true);
    await c.stop();
  });

  it('stop ends the term: every framework is unregistered and no round runs', async () => {
    const a = new Recorder('a');
    const b = new Recorder('b');
    const c = await cluster([a, b]);
    c.master.stop();
    expect([a.unregisteredCalls, b.unregisteredCalls]).toEqual([1, 1]);
    expect(c.master.list()).toEqual([]);
    await c.clock.stepAsync(5000);
    expect(c.rounds).toHaveLength(0);
    await c.stop();
  });
});

describe('Master: kill', () => {
  it('deletes the assignment keys of the framework’s own live tasks and skips the others', async () => {
    const a = new Recorder('a');
    const b = new Recorder('b');
    const c = await cluster([a, b]);
    await c.task('a', 'a1', 'n1');
    await c.task('a', 'a2', 'n2');
    await c.task('a', 'done', 'n1', 'FINISHED');
    await c.task('b', 'b1', 'n1');
    const result = await c.drivers.get('a')!.kill([ref('a1'), ref('a2'), ref('done'), ref('b1'), ref('nope')]);
    expect(result).toEqual({ killed: [ref('a1'), ref('a2')], skipped: [ref('done'), ref('b1'), ref('nope')] });
    expect(await c.mem.get(assignmentKey(P, 'n1', 'default', 'a1'))).toBeUndefined();
    expect(await c.mem.get(assignmentKey(P, 'n2', 'default', 'a2'))).toBeUndefined();
    // The Tasks themselves stay: their agents report KILLING, then KILLED.
    expect(await c.mem.get(objectKey(P, TASKS, 'default', 'a1'))).toBeDefined();
    // Skipped tasks keep their assignments.
    expect(await c.mem.get(assignmentKey(P, 'n1', 'default', 'done'))).toBeDefined();
    expect(await c.mem.get(assignmentKey(P, 'n1', 'default', 'b1'))).toBeDefined();
    expect(await c.drivers.get('a')!.kill([])).toEqual({ killed: [], skipped: [] });
    await c.stop();
  });

  it('kills nothing when the master is no longer the leader', async () => {
    const a = new Recorder('a');
    const c = await cluster([a]);
    await c.task('a', 'a1');
    await c.mem.update(c.fence.key, 'another-cm', c.fence.modRevision); // a successor's term
    expect(await c.drivers.get('a')!.kill([ref('a1')])).toEqual({ killed: [], skipped: [ref('a1')] });
    expect(await c.mem.get(assignmentKey(P, 'n1', 'default', 'a1'))).toBeDefined();
    await c.stop();
  });

  it('resolves only once the kill is written', async () => {
    const a = new Recorder('a');
    const c = await cluster([a], { gated: true });
    await c.task('a', 'a1'); // written on the ungated store
    let done = false;
    const killing = c.drivers.get('a')!.kill([ref('a1')]).then((r) => ((done = true), r));
    await settle();
    expect(done).toBe(false);
    expect(c.gate.waiting()).toBe(1);
    c.gate.open();
    expect(await killing).toEqual({ killed: [ref('a1')], skipped: [] });
    expect(await c.mem.get(assignmentKey(P, 'n1', 'default', 'a1'))).toBeUndefined();
    await c.stop();
  });
});

describe('Master: reconcile', () => {
  async function withTasks() {
    const a = new Recorder('a');
    const b = new Recorder('b');
    const c = await cluster([a, b]);
    await c.task('a', 'run', 'n2', 'RUNNING');
    await c.task('a', 'stage', 'n1');
    await c.task('a', 'done', 'n1', 'FINISHED');
    await c.task('b', 'other', 'n1', 'RUNNING');
    a.updates.length = 0; // the updates of the tasks appearing (source agent)
    return { a, b, c };
  }

  it('explicit: one update per task after the call returns; unknown and others’ tasks are LOST', async () => {
    const { a, c } = await withTasks();
    c.drivers.get('a')!.reconcile([ref('run'), ref('done'), ref('other'), ref('nope')]);
    expect(a.updates).toEqual([]); // asynchronous, as Mesos answers
    await settle();
    const lost = { state: 'LOST', reason: 'ReconciliationUnknownTask', message: 'the master knows no such task of this framework', source: 'reconcile' };
    expect(a.updates).toEqual([
      { ...ref('run'), state: 'RUNNING', agent: 'n2', source: 'reconcile' },
      { ...ref('done'), state: 'FINISHED', agent: 'n1', source: 'reconcile' },
      { ...ref('other'), ...lost },
      { ...ref('nope'), ...lost },
    ]);
    await c.stop();
  });

  it('implicit: every non-terminal task of the framework, and only its own', async () => {
    const { a, b, c } = await withTasks();
    c.drivers.get('a')!.reconcile();
    expect(a.updates).toEqual([]);
    await settle();
    expect(a.updates.sort((x, y) => x.taskName.localeCompare(y.taskName))).toEqual([
      { ...ref('run'), state: 'RUNNING', agent: 'n2', source: 'reconcile' },
      { ...ref('stage'), state: 'STAGING', agent: 'n1', source: 'reconcile' },
    ]);
    expect(b.updates.filter((u) => u.source === 'reconcile')).toEqual([]);
    await c.stop();
  });

  it('answers nobody when the framework is unregistered before the answer', async () => {
    const { a, c } = await withTasks();
    c.drivers.get('a')!.reconcile();
    c.master.unregister('a');
    await settle();
    expect(a.updates).toEqual([]);
    await c.stop();
  });

  it('tells a framework of its tasks’ changes with source agent', async () => {
    const { a, c } = await withTasks();
    const key = objectKey(P, TASKS, 'default', 'stage');
    const kv = (await c.mem.get(key))!;
    const t = decodeKeyValue<Task>(kv);
    await c.mem.update(key, encodeObject({ ...t, status: { ...t.status!, state: 'FAILED', reason: 'CommandFailed', message: 'exit 1' } }), kv.modRevision);
    await settle();
    expect(a.updates).toEqual([{ ...ref('stage'), state: 'FAILED', agent: 'n1', reason: 'CommandFailed', message: 'exit 1', source: 'agent' }]);
    await c.stop();
  });
});

describe('Master: teardown', () => {
  it('kills every live task of the framework, then unregisters it', async () => {
    const a = new Recorder('a');
    const b = new Recorder('b');
    const c = await cluster([a, b]);
    await c.task('a', 'a1', 'n1');
    await c.task('a', 'a2', 'n2', 'RUNNING');
    await c.task('a', 'done', 'n1', 'FAILED');
    await c.task('b', 'b1', 'n2');
    await c.drivers.get('a')!.teardown();
    expect(await c.mem.get(assignmentKey(P, 'n1', 'default', 'a1'))).toBeUndefined();
    expect(await c.mem.get(assignmentKey(P, 'n2', 'default', 'a2'))).toBeUndefined();
    expect(await c.mem.get(assignmentKey(P, 'n1', 'default', 'done'))).toBeDefined();
    expect(await c.mem.get(assignmentKey(P, 'n2', 'default', 'b1'))).toBeDefined();
    expect(a.unregisteredCalls).toBe(1);
    expect(c.master.list().map((f) => f.id)).toEqual(['b']);
    await c.stop();
  });
});

describe('Master: agents()', () => {
  it('says, for every agent, why the framework holds no offer of it', async () => {
    const nodes: NodeOpts[] = [
      { name: 'n1', lease: false },
      { name: 'n2', unschedulable: true },
      { name: 'n3' }, { name: 'n4' }, { name: 'n5' }, { name: 'n6' },
    ];
    // Round 1 offers every live agent to a (role a sorts first): a keeps n3, declines the rest for a minute.
    const a = new Recorder('a', 'a', (driver, offers) => driver.decline(offers.filter((o) => o.agent !== 'n3').map((o) => o.id), 60));
    // Round 2 offers what a declined to b: b keeps n4, declines n5 without a filter and n6 with one.
    const b = new Recorder('b', 'b', (driver, offers) => {
      driver.decline(offers.filter((o) => o.agent === 'n5').map((o) => o.id), 0);
      driver.decline(offers.filter((o) => o.agent === 'n6').map((o) => o.id), 60);
    });
    const c = await cluster([a, b], { nodes });
    await c.clock.stepAsync(250);
    await c.clock.stepAsync(1000);
    expect(a.agents()).toEqual([['n3', 'n4', 'n5', 'n6']]);
    expect(b.agents()).toEqual([['n4', 'n5', 'n6']]);
    const statuses = (d: SchedulerDriver) => Object.fromEntries(d.agents().map((v) => [v.info.name, v.status]));
    expect(statuses(c.drivers.get('b')!)).toEqual({ n1: 'lost', n2: 'cordoned', n3: 'offered', n4: 'held', n5: 'none', n6: 'filtered' });
    expect(statuses(c.drivers.get('a')!)).toEqual({ n1: 'lost', n2: 'cordoned', n3: 'held', n4: 'offered', n5: 'filtered', n6: 'filtered' });
    c.drivers.get('b')!.suppress();
    expect(statuses(c.drivers.get('b')!).n5).toBe('suppressed');
    // Each view carries the agent's info and what is unallocated on it.
    const n3: AgentView = c.drivers.get('b')!.agents().find((v) => v.info.name === 'n3')!;
    expect(n3.info).toMatchObject({ name: 'n3', hostname: 'n3', schedulable: true, runtimes: ['process'] });
    expect(n3.free).toEqual({ cpus: 4, mem: 4096, disk: 100, ports: [[31000, 31009]] });
    await c.stop();
  });

  it('counts the tasks on an agent out of its free resources, and sees an agent lost when its lease goes', async () => {
    const a = new Recorder('a', 'a', declineAll());
    const c = await cluster([a]);
    await c.task('a', 't1', 'n1');
    const view = () => Object.fromEntries(c.drivers.get('a')!.agents().map((v) => [v.info.name, v]));
    expect(view().n1.free).toMatchObject({ cpus: 3.9, mem: 4080 });
    await c.mem.delete(agentLeaseKey(P, 'n2'));
    await settle();
    expect(view().n2.status).toBe('lost');
    expect(view().n1.status).toBe('none');
    await c.stop();
  });
});

describe('Master: the batch window', () => {
  /**
   * The DRF paper's example on one agent <9 cpus, 18 GiB>: role a's tasks <1 cpu, 4 GiB>, role
   * b's <3 cpus, 1 GiB>. Each framework wants as many tasks as fit, starts suppressed, and on
   * each offer launches as many as fit; the master refuses those above the role's fair share.
   */
  class Greedy extends Recorder {
    bound = 0;
    readonly refused: string[] = [];
    private seq = 0;
    constructor(id: string, size: { cpus: number; mem: number }, trace: string[]) {
      super(id, id);
      this.onOffers = async (driver, offers) => {
        for (const o of offers) {
          const n = Math.floor(Math.min(o.resources.cpus / size.cpus, o.resources.mem / size.mem) + 1e-9);
          trace.push(`${id}:${n}`);
          if (n === 0) {
            driver.decline([o.id], 5);
            continue;
          }
          const launches = Array.from({ length: n }, () => ({ ...launch(o.id, `${id}-${this.seq++}`), resources: { ...size, disk: 0 } }));
          const results: LaunchResult[] = await driver.accept([o.id], launches);
          for (const r of results) {
            if (r.ok) this.bound++;
            else this.refused.push(r.reason!);
          }
        }
      };
    }
    override registered(driver: SchedulerDriver): void {
      super.registered(driver);
      driver.suppress();
    }
  }

  /** Both frameworks registered and suppressed; the registration's round (at 250 ms) offered nothing. */
  async function drf() {
    const trace: string[] = [];
    const a = new Greedy('a', { cpus: 1, mem: 4096 }, trace);
    const b = new Greedy('b', { cpus: 3, mem: 1024 }, trace);
    const c = await cluster([a, b], { nodes: [{ name: 'n1', cpus: 9, mem: 18432 }], allocationIntervalMs: 60_000 });
    await c.clock.stepAsync(250);
    expect(c.rounds).toEqual([{ at: 250, candidates: [] }]);
    expect(a.offers.length + b.offers.length).toBe(0);
    c.rounds.length = 0;
    return { a, b, c, trace };
  }

  it('two frameworks reviving 100 ms apart compete in one round: DRF gives a 3 tasks, b 2', async () => {
    const { a, b, c, trace } = await drf();
    a.driver!.revive(); // at 250 ms: the window closes at 500
    await c.clock.stepAsync(100);
    b.driver!.revive(); // at 350 ms: within the window, which it does not extend
    await c.clock.stepAsync(149);
    expect(c.rounds).toEqual([]);
    await c.clock.stepAsync(1);
    await settle(50);
    // One round at the end of the window with both frameworks in it; then each bind asks for
    // the next round, at once, until no cpu is left (no offer, no further round).
    expect(c.rounds).toEqual(Array.from({ length: 6 }, () => ({ at: 500, candidates: ['a', 'b'] })));
    // The agent goes whole to the role with the lowest share, which launches what fits; the
    // master admits one task per turn, refusing the rest (FairShare) while the other role waits.
    expect(trace).toEqual(['a:4', 'b:2', 'a:3', 'b:1', 'a:1']);
    expect([a.bound, b.bound]).toEqual([3, 2]);
    expect(a.refused).toEqual(['FairShare', 'FairShare', 'FairShare', 'FairShare', 'FairShare']);
    expect(b.refused).toEqual(['FairShare']);
    const shares = c.master.allocator.shares();
    expect(shares.a).toBeCloseTo(2 / 3, 6);
    expect(shares.b).toBeCloseTo(2 / 3, 6);
    await c.stop();
  });

  it('a revive after the window closed makes a new round: the first framework takes what it wants alone (a 4, b 1)', async () => {
    const { a, b, c, trace } = await drf();
    a.driver!.revive();
    await c.clock.stepAsync(250);
    await settle(50);
    // a alone: 4 tasks (all the memory), then an offer it cannot use, declined.
    expect(trace).toEqual(['a:4', 'a:0']);
    // The window's round, then the round the bind asked for; the decline asks for none.
    expect(c.rounds).toEqual([{ at: 500, candidates: ['a'] }, { at: 500, candidates: ['a'] }]);
    expect(a.bound).toBe(4);
    await c.clock.stepAsync(50);
    b.driver!.revive(); // at 550 ms: the window is closed, a new one opens
    await c.clock.stepAsync(249);
    expect(c.rounds).toHaveLength(2);
    await c.clock.stepAsync(1);
    await settle(50);
    expect(trace).toEqual(['a:4', 'a:0', 'b:1', 'b:0']);
    expect(c.rounds.slice(2)).toEqual([{ at: 800, candidates: ['a', 'b'] }, { at: 800, candidates: ['a', 'b'] }]);
    expect([a.bound, b.bound]).toEqual([4, 1]);
    expect(a.refused).toEqual([]);
    await c.stop();
  });

  it('a round asked for at once during an open window waits for the window', async () => {
    const { a, c } = await drf();
    a.driver!.revive(); // at 250 ms
    await c.clock.stepAsync(100);
    c.master.trigger(); // e.g. a task ended
    await c.mem.create(objectKey(P, NODES, undefined, 'n2'), encodeObject(node({ name: 'n2' }))); // an agent came
    await c.mem.create(agentLeaseKey(P, 'n2'), '{}');
    await settle();
    expect(c.rounds).toEqual([]);
    await c.clock.stepAsync(149);
    expect(c.rounds).toEqual([]);
    await c.clock.stepAsync(1);
    expect(c.rounds[0]).toEqual({ at: 500, candidates: ['a'] });
    expect(a.agents()[0]).toEqual(['n1', 'n2']);
    await c.stop();
  });

  it('a revive holds back a round that was about to run at once', async () => {
    const { a, c } = await drf();
    c.master.trigger();
    a.driver!.revive();
    await settle();
    expect(c.rounds).toEqual([]);
    await c.clock.stepAsync(250);
    expect(c.rounds.map((r) => r.at)).toEqual([500, 500]); // the window's round, and the one a's bind asked for
    expect(a.bound).toBe(4);
    await c.stop();
  });

  it('a revive from a framework that is not suppressed asks for a round at once, without a window', async () => {
    const { a, c } = await drf();
    a.driver!.revive(); // from suppressed: the window
    await c.clock.stepAsync(250);
    expect(c.rounds.map((r) => r.at)).toContain(500);
    const before = c.rounds.length;
    a.driver!.revive(); // active now: more work, filters cleared, but no window
    await settle();
    expect(c.rounds.length).toBe(before + 1);
    expect(c.rounds[c.rounds.length - 1]!.at).toBe(500);
    await c.stop();
  });

  it('rounds asked for at once run at once, coalesced, when no window is open', async () => {
    const { c } = await drf();
    c.master.trigger();
    c.master.trigger();
    await settle();
    expect(c.rounds).toEqual([{ at: 250, candidates: [] }]);
    await c.stop();
  });
});
