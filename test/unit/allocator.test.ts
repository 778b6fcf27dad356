import { Allocator, AllocatorOptions, compileAllocatorOptions } from '../../pkg/scheduler/allocator';
import { randomInt, seededRandom } from '../../pkg/scheduler/random';
import { add, fits } from '../../pkg/api/resources';
import { dominantShare, DRFSorter, RandomSorter } from '../../pkg/scheduler/sorter';
import type { AgentInfo, LaunchRequest, Offer, PortRange, Scalars } from '../../pkg/scheduler/types';

const GiB = 1024;

const s = (cpus: number, mem: number, disk = 0): Scalars => ({ cpus, mem, disk });

function agent(name: string, cpus: number, mem: number, more: Partial<AgentInfo> & { ports?: PortRange[] } = {}): AgentInfo {
  const { ports = [[31000, 31009]], ...rest } = more;
  return { name, hostname: `${name}.local`, capacity: { cpus, mem, disk: 0, ports }, attributes: {}, runtimes: ['process'], schedulable: true, leaseRevision: 7, ...rest };
}

let taskSeq = 0;
function launch(offer: Offer | string, need: Scalars, ports: number[] = [], taskName = `t${++taskSeq}`): LaunchRequest {
  return { offerId: typeof offer === 'string' ? offer : offer.id, namespace: 'default', taskName, resources: need, ports, task: {} as LaunchRequest['task'] };
}

/** An allocator with the given agents and frameworks (`id:role`). */
function cluster(agents: AgentInfo[], frameworks: string[], options: AllocatorOptions = {}): Allocator {
  const alloc = new Allocator(options);
  for (const a of agents) alloc.upsertAgent(a);
  for (const f of frameworks) alloc.addFramework(f.split(':')[0], f.split(':')[1]);
  return alloc;
}

const byAgent = (offers: Offer[]) => Object.fromEntries(offers.map((o) => [o.agent, o.frameworkId]));

describe('Allocator: offers', () => {
  it('offers each agent whole to the first framework, only to unsuppressed ones', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a', 'fb:b']);
    alloc.suppress('fa');
    const [offer] = alloc.allocate(0);
    expect(offer).toMatchObject({ id: '1', frameworkId: 'fb', agent: 'n1', hostname: 'n1.local', expiresAt: 10_000 });
    expect(offer.resources).toEqual({ cpus: 4, mem: 8 * GiB, disk: 0, ports: [[31000, 31009]] });
  });

  it('keeps an agent in at most one outstanding offer', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB), agent('n2', 4, 8 * GiB)], ['fa:a', 'fb:b']);
    expect(alloc.allocate(0)).toHaveLength(2);
    expect(alloc.allocate(1)).toEqual([]);
    expect(alloc.outstanding('fa').map((o) => o.agent)).toEqual(['n1', 'n2']);
    expect(alloc.stats()).toMatchObject({ agents: 2, frameworks: 2, outstandingOffers: 2 });
  });

  it('offers nothing from an agent without free cpus or mem', () => {
    const alloc = cluster([agent('full-cpu', 2, 8 * GiB), agent('full-mem', 4, 2 * GiB), agent('free', 4, 8 * GiB)], ['fa:a']);
    alloc.track({ taskKey: 'x/1', agent: 'full-cpu', role: 'a', frameworkId: 'fa', resources: s(2, 1), ports: [] });
    alloc.track({ taskKey: 'x/2', agent: 'full-mem', role: 'a', frameworkId: 'fa', resources: s(1, 2 * GiB), ports: [] });
    expect(alloc.allocate(0).map((o) => o.agent)).toEqual(['free']);
  });

  it('offers capacity minus tracked allocations, ports minus held ports', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
    alloc.track({ taskKey: 'x/1', agent: 'n1', role: 'a', frameworkId: 'fa', resources: s(0.1, 100), ports: [31003] });
    alloc.track({ taskKey: 'x/2', agent: 'n1', role: 'a', frameworkId: 'fa', resources: s(0.2, 100), ports: [31000] });
    const [offer] = alloc.allocate(0);
    expect(offer.resources).toEqual({ cpus: 3.7, mem: 8 * GiB - 200, disk: 0, ports: [[31001, 31002], [31004, 31009]] });
    expect(alloc.freeOf('n1')).toEqual(offer.resources);
  });

  it('hands out frozen offers, so a framework cannot shrink in place what accept checks against', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
    const [offer] = alloc.allocate(0);
    expect(() => (offer.resources.cpus -= 1)).toThrow(TypeError);
    expect(() => offer.resources.ports.push([1, 2])).toThrow(TypeError);
    expect(() => (offer.attributes.rack = 'x')).toThrow(TypeError);
    expect(alloc.freeOf('n1').cpus).toBe(4);
  });

  it('numbers offers deterministically', () => {
    const run = () => {
      const alloc = cluster([agent('n1', 4, 8 * GiB), agent('n2', 4, 8 * GiB)], ['fa:a', 'fb:b']);
      return alloc.allocate(0).map((o) => `${o.id}:${o.agent}:${o.frameworkId}`);
    };
    expect(run()).toEqual(['1:n1:fa', '2:n2:fa']);
    expect(run()).toEqual(run());
  });
});

describe('Allocator: DRF order', () => {
  // 3 agents of <10 cpus, 100 mem> → total cpus 30 mem 300
  // a holds 6 cpus → .2; b holds 30 mem → .1; c holds 3 cpus 45 mem → max(.1, .15) = .15
  function contended(options: AllocatorOptions = {}): Allocator {
    const alloc = cluster(['n1', 'n2', 'n3'].map((n) => agent(n, 10, 100)), ['fa:a', 'fb:b', 'fc:c'], options);
    alloc.track({ taskKey: 'x/a', agent: 'n1', role: 'a', frameworkId: 'fa', resources: s(6, 0), ports: [] });
    alloc.track({ taskKey: 'x/b', agent: 'n2', role: 'b', frameworkId: 'fb', resources: s(0, 30), ports: [] });
    alloc.track({ taskKey: 'x/c', agent: 'n3', role: 'c', frameworkId: 'fc', resources: s(3, 45), ports: [] });
    return alloc;
  }

  it('offers every agent to the lowest share first, then the next role as filters step in', () => {
    const alloc = contended();
    expect(alloc.shares()).toEqual({ a: 0.2, b: 0.1, c: 0.15 });
    // order b (.1), c (.15), a (.2); the order is fixed for the whole round
    const round1 = alloc.allocate(0);
    expect(byAgent(round1)).toEqual({ n1: 'fb', n2: 'fb', n3: 'fb' });
    alloc.decline(round1.map((o) => o.id), 60, 0);
    const round2 = alloc.allocate(1000);
    expect(byAgent(round2)).toEqual({ n1: 'fc', n2: 'fc', n3: 'fc' });
    alloc.decline(round2.map((o) => o.id), 60, 1000);
    expect(byAgent(alloc.allocate(2000))).toEqual({ n1: 'fa', n2: 'fa', n3: 'fa' });
  });

  it('divides shares by role weights', () => {
    // a weight 4: .2/4 = .05 → order a (.05), b (.1), c (.15)
    const alloc = contended({ roleWeights: { a: 4 } });
    expect(alloc.shares().a).toBeCloseTo(0.05);
    expect(byAgent(alloc.allocate(0))).toEqual({ n1: 'fa', n2: 'fa', n3: 'fa' });
  });

  it('follows allocations: a role whose task is released moves to the front', () => {
    const alloc = contended();
    alloc.untrack('x/c');
    // a .2, b .1, c 0 → c first
    expect(byAgent(alloc.allocate(0))).toEqual({ n1: 'fc', n2: 'fc', n3: 'fc' });
  });

  it('tries the frameworks of one role in id order', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['zz:r', 'aa:r']);
    expect(alloc.allocate(0)[0].frameworkId).toBe('aa');
  });
});

describe('Allocator: decline filters, suppress and revive', () => {
  it('keeps a declined agent from that framework for the refuse seconds, then offers it again', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
    const [offer] = alloc.allocate(0);
    alloc.decline([offer.id], 5, 0);
    expect(alloc.allocate(4_999)).toEqual([]);
    expect(alloc.allocate(5_000).map((o) => o.frameworkId)).toEqual(['fa']);
  });

  it('passes a filtered agent to the next framework in the meantime', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a', 'fb:b']);
    alloc.decline([alloc.allocate(0)[0].id], undefined, 0);
    // default refuse: 5 s
    const [toB] = alloc.allocate(1);
    expect(toB.frameworkId).toBe('fb');
    alloc.decline([toB.id], 0, 1);
    // fb's refuse 0 left no filter; fa's filter still holds
    expect(alloc.allocate(2)[0].frameworkId).toBe('fb');
    expect(alloc.stats().filters).toBe(1);
  });

  it('drops expired filters from its state', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB), agent('n2', 4, 8 * GiB)], ['fa:a']);
    const offers = alloc.allocate(0);
    alloc.decline([offers[0].id], 1, 0);
    alloc.decline([offers[1].id], 3, 0);
    alloc.allocate(2_000);
    expect(alloc.stats().filters).toBe(1);
    alloc.allocate(3_000);
    expect(alloc.stats().filters).toBe(0);
  });

  it("revive clears the framework's filters and resumes offers", () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
    alloc.decline([alloc.allocate(0)[0].id], 3600, 0);
    alloc.suppress('fa');
    expect(alloc.allocate(1)).toEqual([]);
    alloc.revive('fa');
    expect(alloc.allocate(2).map((o) => o.frameworkId)).toEqual(['fa']);
  });

  it("keeps a suppressed framework's outstanding offers valid", () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
    const [offer] = alloc.allocate(0);
    alloc.suppress('fa');
    expect(alloc.accept([offer.id], [launch(offer, s(1, 1))], 1).accepted).toHaveLength(1);
  });

  it('tells whether a framework is suppressed and until when an agent is filtered for it', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
    alloc.decline([alloc.allocate(0)[0].id], 5, 0);
    expect(alloc.filteredUntil('fa', 'n1', 4_999)).toBe(5_000);
    expect(alloc.filteredUntil('fa', 'n1', 5_000)).toBeUndefined();
    expect(alloc.filteredUntil('fb', 'n1', 0)).toBeUndefined();
    expect(alloc.isSuppressed('fa')).toBe(false);
    alloc.suppress('fa');
    expect(alloc.isSuppressed('fa')).toBe(true);
    alloc.revive('fa');
    expect(alloc.isSuppressed('fa')).toBe(false);
    expect(alloc.filteredUntil('fa', 'n1', 0)).toBeUndefined();
  });

  it('ignores declines of unknown offers', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
    alloc.decline(['nope'], 5, 0);
    expect(alloc.stats().filters).toBe(0);
  });
});

describe('Allocator: expiry and rescinds', () => {
  it('expires unanswered offers after the offer timeout and offers the agent again', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a'], { offerTimeoutMs: 1_000 });
    const [offer] = alloc.allocate(0);
    expect(alloc.expire(1_000)).toEqual([]);
    expect(alloc.expire(1_001)).toEqual([offer]);
    expect(alloc.outstanding()).toEqual([]);
    expect(alloc.allocate(1_001)).toHaveLength(1);
  });

  it('rescinds the offer of an agent that is cordoned or loses its lease, and offers it no more', () => {
    for (const change of [{ schedulable: false }, { leaseRevision: 0 }]) {
      const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
      const [offer] = alloc.allocate(0);
      expect(alloc.upsertAgent(agent('n1', 4, 8 * GiB, change))).toEqual([offer]);
      expect(alloc.outstanding()).toEqual([]);
      expect(alloc.allocate(1)).toEqual([]);
    }
  });

  it('rescinds when the capacity changes but not when only the lease revision does', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
    alloc.allocate(0);
    expect(alloc.upsertAgent(agent('n1', 4, 8 * GiB, { leaseRevision: 8 }))).toEqual([]);
    expect(alloc.upsertAgent(agent('n1', 2, 8 * GiB))).toHaveLength(1);
  });

  it('rescinds the offer of a removed agent and drops it from the total', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB), agent('n2', 4, 8 * GiB)], ['fa:a']);
    const offers = alloc.allocate(0);
    alloc.track({ taskKey: 'x/1', agent: 'n2', role: 'a', frameworkId: 'fa', resources: s(2, 0), ports: [] });
    expect(alloc.shares().a).toBeCloseTo(2 / 8);
    expect(alloc.removeAgent('n1')).toEqual([offers[0]]);
    expect(alloc.removeAgent('n1')).toEqual([]);
    expect(alloc.shares().a).toBeCloseTo(2 / 4);
  });

  it('voids the offers of a removed framework', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a', 'fb:b']);
    const [offer] = alloc.allocate(0);
    expect(alloc.removeFramework('fa')).toEqual([offer]);
    expect(alloc.allocate(1)[0].frameworkId).toBe('fb');
    expect(alloc.shares()).toEqual({ b: 0 });
  });
});

describe('Allocator: accept', () => {
  it('tracks admitted launches at once and returns the rest of the offer to the pool', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
    const [offer] = alloc.allocate(0);
    const req = launch(offer, s(1.5, GiB), [31002], 'web-1');
    expect(alloc.accept([offer.id], [req], 1)).toEqual({ accepted: [req], rejected: [] });
    expect(alloc.outstanding()).toEqual([]);
    expect(alloc.freeOf('n1')).toEqual({ cpus: 2.5, mem: 7 * GiB, disk: 0, ports: [[31000, 31001], [31003, 31009]] });
    expect(alloc.allocate(2)[0].resources.cpus).toBe(2.5);
  });

  it('rejects every launch when an offer is unknown, expired or already used', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a'], { offerTimeoutMs: 1_000 });
    const [offer] = alloc.allocate(0);
    const unknown = alloc.accept(['nope', offer.id], [launch(offer, s(1, 1))], 1);
    expect(unknown.rejected.map((r) => r.reason)).toEqual(['OfferUnknown']);
    // the framework thinks the offer spent, so (as in Mesos) its valid offers went back to the pool
    expect(alloc.outstanding()).toEqual([]);
    const [late] = alloc.allocate(2);
    expect(alloc.accept([late.id], [launch(late, s(1, 1))], 1_003).rejected[0].reason).toBe('OfferUnknown');
    alloc.expire(1_004);
    const [used] = alloc.allocate(1_004);
    alloc.accept([used.id], [], 1_005);
    expect(alloc.accept([used.id], [launch(used, s(1, 1))], 1_006).rejected[0].reason).toBe('OfferUnknown');
    expect(alloc.freeOf('n1').cpus).toBe(4);
  });

  it('rejects an accept whose offers belong to two frameworks, and voids neither', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB), agent('n2', 4, 8 * GiB)], ['fa:a', 'fb:b']);
    const [toA, n2] = alloc.allocate(0);
    alloc.decline([n2.id], 60, 0);
    const [toB] = alloc.allocate(1);
    expect(toB.frameworkId).toBe('fb');
    const result = alloc.accept([toA.id, toB.id], [launch(toA, s(1, 1)), launch(toB, s(1, 1))], 2);
    expect(result.rejected.map((r) => r.reason)).toEqual(['OfferUnknown', 'OfferUnknown']);
    expect(alloc.outstanding()).toHaveLength(2);
  });

  it('rejects a launch naming an offer outside the accept', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB), agent('n2', 4, 8 * GiB)], ['fa:a']);
    const [o1, o2] = alloc.allocate(0);
    const result = alloc.accept([o1.id], [launch(o2, s(1, 1)), launch(o1, s(1, 1))], 1);
    expect(result.rejected.map((r) => r.reason)).toEqual(['OfferUnknown']);
    expect(result.accepted.map((r) => r.offerId)).toEqual([o1.id]);
  });

  it('rejects launches that need more than what remains of their offer', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a'], { fairnessQuantum: Infinity });
    const [offer] = alloc.allocate(0);
    const result = alloc.accept(
      [offer.id],
      [launch(offer, s(3, GiB)), launch(offer, s(1.5, GiB)), launch(offer, s(1, 8 * GiB)), launch(offer, s(0.5, 10, 1)), launch(offer, s(-1, 1)), launch(offer, s(1, GiB))],
      1,
    );
    // 3 cpus fit; 1.5 more does not (1 left); 8 GiB does not (7 left); disk 1 of 0 does not; -1 cpus is nonsense; 1 cpu fits
    expect(result.accepted.map((r) => r.resources.cpus)).toEqual([3, 1]);
    expect(result.rejected.map((r) => r.reason)).toEqual(Array(4).fill('InsufficientResources'));
    expect(alloc.freeOf('n1').cpus).toBe(0);
  });

  it('adds fractional cpus up exactly', () => {
    const alloc = cluster([agent('n1', 1, 8 * GiB)], ['fa:a'], { fairnessQuantum: Infinity });
    const [offer] = alloc.allocate(0);
    const tenths = Array.from({ length: 10 }, () => launch(offer, s(0.1, 1)));
    expect(alloc.accept([offer.id], tenths, 1).accepted).toHaveLength(10);
    expect(alloc.freeOf('n1').cpus).toBe(0);
  });

  it('gives each port exactly once: inside the offer, not twice in one accept, not held by another task', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB, { ports: [[31000, 31003]] })], ['fa:a'], { fairnessQuantum: Infinity });
    alloc.track({ taskKey: 'x/old', agent: 'n1', role: 'a', frameworkId: 'fa', resources: s(0, 0), ports: [31003] });
    const [offer] = alloc.allocate(0);
    expect(offer.resources.ports).toEqual([[31000, 31002]]);
    const result = alloc.accept(
      [offer.id],
      [launch(offer, s(0.1, 1), [31000, 31001]), launch(offer, s(0.1, 1), [31001]), launch(offer, s(0.1, 1), [31003]), launch(offer, s(0.1, 1), [30999]), launch(offer, s(0.1, 1), [31002, 31002]), launch(offer, s(0.1, 1), [31002])],
      1,
    );
    expect(result.accepted.map((r) => r.ports)).toEqual([[31000, 31001], [31002]]);
    expect(result.rejected.map((r) => r.request.ports)).toEqual([[31001], [31003], [30999], [31002, 31002]]);
    expect(alloc.freeOf('n1').ports).toEqual([]);
  });

  it('does not double-book resources tracked while the offer was out', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a'], { fairnessQuantum: Infinity });
    const [offer] = alloc.allocate(0);
    alloc.track({ taskKey: 'x/recovered', agent: 'n1', role: 'a', frameworkId: 'fa', resources: s(3, 0), ports: [31000] });
    const result = alloc.accept([offer.id], [launch(offer, s(2, 1)), launch(offer, s(1, 1), [31000]), launch(offer, s(1, 1), [31001])], 1);
    expect(result.rejected.map((r) => r.reason)).toEqual(['InsufficientResources', 'InsufficientResources']);
    expect(result.accepted.map((r) => r.ports)).toEqual([[31001]]);
  });

  it('refuses a launch under the key of a live task, so a failed bind cannot release the live one', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
    alloc.track({ taskKey: 'default/web-1', agent: 'n1', role: 'a', frameworkId: 'fa', resources: s(1, 1), ports: [] });
    const [offer] = alloc.allocate(0);
    expect(alloc.accept([offer.id], [launch(offer, s(1, 1), [], 'web-1')], 1).rejected[0].reason).toBe('BindFailed');
    expect(alloc.freeOf('n1').cpus).toBe(3);
  });

  it('returns the same answer for the same history', () => {
    const run = () => {
      const alloc = cluster([agent('n1', 9, 18), agent('n2', 9, 18)], ['fa:a', 'fb:b']);
      const offers = alloc.allocate(0);
      return alloc.accept(offers.map((o) => o.id), offers.flatMap((o) => [1, 2, 3].map((i) => launch(o, s(1, 4), [], `${o.agent}-${i}`))), 1);
    };
    expect(run()).toEqual(run());
  });
});

describe('Allocator: track and untrack', () => {
  const task = { taskKey: 'default/t', agent: 'n1', role: 'a', frameworkId: 'fa', resources: s(1, GiB), ports: [31000] };

  it('counts a key once however often it is tracked, and releases it once', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
    alloc.track(task);
    alloc.track(task);
    expect(alloc.freeOf('n1')).toMatchObject({ cpus: 3, mem: 7 * GiB, ports: [[31001, 31009]] });
    expect(alloc.untrack(task.taskKey)).toBe(true);
    expect(alloc.untrack(task.taskKey)).toBe(false);
    expect(alloc.freeOf('n1')).toEqual({ cpus: 4, mem: 8 * GiB, disk: 0, ports: [[31000, 31009]] });
    expect(alloc.stats().allocations).toBe(0);
  });

  it('replaces an allocation tracked again under the same key', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB), agent('n2', 4, 8 * GiB)], ['fa:a']);
    alloc.track(task);
    alloc.track({ ...task, agent: 'n2', resources: s(2, GiB), ports: [] });
    expect(alloc.freeOf('n1').cpus).toBe(4);
    expect(alloc.freeOf('n2').cpus).toBe(2);
    // total cpus 8: 2/8
    expect(alloc.shares()).toEqual({ a: 0.25 });
  });

  it('knows roles by their allocations alone until the last one goes', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], []);
    alloc.track({ ...task, role: 'orphan' });
    expect(alloc.shares()).toEqual({ orphan: 0.25 });
    alloc.untrack(task.taskKey);
    expect(alloc.shares()).toEqual({});
  });

  it('untracks a launch whose bind failed, restoring the agent', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB)], ['fa:a']);
    const [offer] = alloc.allocate(0);
    const { accepted } = alloc.accept([offer.id], [launch(offer, s(2, GiB), [31000], 'doomed')], 1);
    expect(alloc.freeOf('n1').cpus).toBe(2);
    alloc.untrack(`default/${accepted[0].taskName}`);
    expect(alloc.freeOf('n1')).toEqual(agent('n1', 4, 8 * GiB).capacity);
  });
});

describe('Allocator: fairness at accept time', () => {
  // one agent <10 cpus, 100 mem>; b already holds 3 cpus → .3
  function withB(options: AllocatorOptions = {}): { alloc: Allocator; offer: Offer } {
    const alloc = cluster([agent('n1', 10, 100)], ['fa:a', 'fb:b'], options);
    alloc.track({ taskKey: 'x/b', agent: 'n1', role: 'b', frameworkId: 'fb', resources: s(3, 0), ports: [] });
    return { alloc, offer: alloc.allocate(0)[0] };
  }

  it('admits launches while the role is not above the lowest competitor, then FairShare', () => {
    const { alloc, offer } = withB();
    expect(offer.frameworkId).toBe('fa');
    // a: 0 → .2 → .4 (before .2 ≤ .3 + .01: admitted, may overshoot by that one task) → .4 > .31: FairShare
    const result = alloc.accept([offer.id], [1, 2, 3].map(() => launch(offer, s(2, 1))), 1);
    expect(result.accepted).toHaveLength(2);
    expect(result.rejected.map((r) => r.reason)).toEqual(['FairShare']);
    expect(alloc.shares()).toEqual({ a: 0.4, b: 0.3 });
  });

  it('cannot be bypassed by accepting one offer per call', () => {
    // two agents <10, 100> (total 20 cpus); b holds 3 cpus → .15; a gets both offers in one round
    const alloc = cluster([agent('n1', 10, 100), agent('n2', 10, 100)], ['fa:a', 'fb:b']);
    alloc.track({ taskKey: 'x/b', agent: 'n1', role: 'b', frameworkId: 'fb', resources: s(3, 0), ports: [] });
    const [o1, o2] = alloc.allocate(0);
    // a: 0 → .2 on n1 (0 ≤ .16); on n2, before .2 > .15 + .01 → FairShare, although first in its call
    expect(alloc.accept([o1.id], [launch(o1, s(4, 1))], 1).accepted).toHaveLength(1);
    expect(alloc.accept([o2.id], [launch(o2, s(4, 1))], 1).rejected[0].reason).toBe('FairShare');
  });

  it('lets a role past a competitor that declined the agent', () => {
    const { alloc, offer } = withB();
    alloc.decline([offer.id], 60, 0);
    const [toB] = alloc.allocate(1);
    alloc.decline([toB.id], 60, 1);
    alloc.revive('fa');
    // b declined n1, so a (0) is held to nobody on n1: .2, .4, .6
    const [toA] = alloc.allocate(2);
    expect(alloc.accept([toA.id], [1, 2, 3].map(() => launch(toA, s(2, 1))), 3).accepted).toHaveLength(3);
  });

  it('lets a role past a competitor that is suppressed', () => {
    const { alloc, offer } = withB();
    alloc.suppress('fb');
    expect(alloc.accept([offer.id], [1, 2, 3].map(() => launch(offer, s(2, 1))), 1).accepted).toHaveLength(3);
  });

  it('can be turned off with an infinite quantum', () => {
    const { alloc, offer } = withB({ fairnessQuantum: Infinity });
    expect(alloc.accept([offer.id], [1, 2, 3].map(() => launch(offer, s(2, 1))), 1).accepted).toHaveLength(3);
  });

  it('rejects bad options naming the field', () => {
    expect(() => compileAllocatorOptions({ offerTimeoutMs: -1 })).toThrow(/offerTimeoutMs/);
    expect(() => compileAllocatorOptions({ roleWeights: { a: 0 } })).toThrow(/roleWeights\.a/);
  });
});

describe('Allocator: the sorter is the one share ledger', () => {
  it('keeps role allocations and the pool in the role sorter, and only there', () => {
    const sorter = new DRFSorter();
    const alloc = cluster([agent('n1', 4, 8 * GiB), agent('n2', 6, 8 * GiB)], ['fa:a'], { sorter });
    expect(sorter.total()).toEqual(s(10, 16 * GiB));
    alloc.track({ taskKey: 'x/1', agent: 'n1', role: 'a', frameworkId: 'fa', resources: s(2, GiB), ports: [] });
    alloc.track({ taskKey: 'x/2', agent: 'n2', role: 'b', frameworkId: 'fb', resources: s(1, 4 * GiB), ports: [] });
    // a: max(2/10, 1/16) = .2; b: max(1/10, 4/16) = .25
    expect(sorter.allocation('a')).toEqual(s(2, GiB));
    expect(alloc.shares()).toEqual({ a: sorter.share('a'), b: sorter.share('b') });
    expect(alloc.shares()).toEqual({ a: 0.2, b: 0.25 });
    // n1 gone: pool <6, 8 GiB>; a: 2/6 = .333; b: 4/8 = .5
    alloc.removeAgent('n1');
    expect(sorter.total()).toEqual(s(6, 8 * GiB));
    expect(alloc.shares()).toEqual({ a: expect.closeTo(1 / 3), b: 0.5 });
    // b's last task gone and no framework of b: b leaves the sorter
    alloc.untrack('x/2');
    expect(sorter.contains('b')).toBe(false);
    expect(sorter.sort()).toEqual(['a']);
  });

  it('orders offers and checks fairness at accept time with the same numbers', () => {
    // A sorter that counts b's share at a quarter: both the offer order and the accept-time
    // check must see b at .3 / 4 = .075, not the .3 an allocator-side ledger would compute.
    class Lenient extends DRFSorter {
      override share(client: string): number {
        return client === 'b' ? super.share(client) / 4 : super.share(client);
      }
    }
    const alloc = cluster([agent('n1', 10, 100)], ['fa:a', 'fb:b'], { sorter: new Lenient() });
    alloc.track({ taskKey: 'x/b', agent: 'n1', role: 'b', frameworkId: 'fb', resources: s(3, 0), ports: [] });
    expect(alloc.shares()).toEqual({ a: 0, b: 0.075 });
    const [offer] = alloc.allocate(0);
    expect(offer.frameworkId).toBe('fa');
    // a: 0 ≤ .075 + .01 → admitted (.2); .2 > .085 → FairShare (with b at .3 the second would pass)
    const result = alloc.accept([offer.id], [1, 2].map(() => launch(offer, s(2, 1))), 1);
    expect(result.accepted).toHaveLength(1);
    expect(result.rejected.map((r) => r.reason)).toEqual(['FairShare']);
  });

  it('keeps the ledger under a random order too (shares are reported, the order ignores them)', () => {
    const sorter = new RandomSorter(3);
    const alloc = cluster([agent('n1', 10, 100)], ['fa:a', 'fb:b'], { sorter, fairnessQuantum: Infinity });
    const [offer] = alloc.allocate(0);
    alloc.accept([offer.id], [launch(offer, s(4, 10))], 1);
    const role = offer.frameworkId === 'fa' ? 'a' : 'b';
    expect(sorter.allocation(role)).toEqual(s(4, 10));
    expect(alloc.shares()[role]).toBeCloseTo(0.4);
  });
});

describe('Allocator: frameworks within a role', () => {
  it('offers to the framework of a role with the lowest share first (DRF within the role)', () => {
    // role r: fa holds 2 cpus (.2 of 10), fz nothing → fz first, although fa sorts first by id
    const alloc = cluster([agent('n1', 10, 100)], ['fa:r', 'fz:r']);
    alloc.track({ taskKey: 'x/1', agent: 'n1', role: 'r', frameworkId: 'fa', resources: s(2, 0), ports: [] });
    expect(alloc.frameworkShares('r')).toEqual({ fa: 0.2, fz: 0 });
    expect(alloc.allocate(0)[0].frameworkId).toBe('fz');
  });

  it("passes the agent to the role's next framework while the first has it filtered", () => {
    const alloc = cluster([agent('n1', 10, 100)], ['fa:r', 'fz:r']);
    const [toA] = alloc.allocate(0);
    alloc.decline([toA.id], 60, 0);
    expect(alloc.allocate(1)[0].frameworkId).toBe('fz');
  });

  it("counts a removed framework's tasks for its role until they are untracked", () => {
    const alloc = cluster([agent('n1', 10, 100)], ['fa:a', 'fb:b']);
    alloc.track({ taskKey: 'x/1', agent: 'n1', role: 'a', frameworkId: 'fa', resources: s(3, 0), ports: [] });
    alloc.removeFramework('fa');
    expect(alloc.shares()).toEqual({ a: 0.3, b: 0 });
    expect(alloc.frameworkShares('a')).toEqual({ fa: 0.3 });
    // a is still held to its share: nobody of a is offered anything, b gets the agent
    expect(alloc.allocate(0)[0].frameworkId).toBe('fb');
    alloc.untrack('x/1');
    expect(alloc.shares()).toEqual({ b: 0 });
    expect(alloc.frameworkShares('a')).toEqual({});
  });

  it('releases the offers and decline filters of a removed framework', () => {
    const alloc = cluster([agent('n1', 4, 8 * GiB), agent('n2', 4, 8 * GiB)], ['fa:a']);
    const [o1, o2] = alloc.allocate(0);
    alloc.decline([o1.id], 3600, 0);
    expect(alloc.stats()).toMatchObject({ outstandingOffers: 1, filters: 1 });
    expect(alloc.removeFramework('fa')).toEqual([o2]);
    expect(alloc.stats()).toMatchObject({ frameworks: 0, roles: 0, outstandingOffers: 0, filters: 0 });
    expect(alloc.accept([o2.id], [launch(o2, s(1, 1))], 1).rejected[0].reason).toBe('OfferUnknown');
    // registered again, it starts without the old filter
    alloc.addFramework('fa', 'a');
    expect(alloc.allocate(2).map((o) => o.agent)).toEqual(['n1', 'n2']);
    expect(alloc.removeFramework('ghost')).toEqual([]);
  });

  it('moves a framework re-registered under another role, leaving its tasks with the old role', () => {
    const alloc = cluster([agent('n1', 10, 100)], ['f:a']);
    alloc.track({ taskKey: 'x/1', agent: 'n1', role: 'a', frameworkId: 'f', resources: s(1, 0), ports: [] });
    alloc.addFramework('f', 'b');
    expect(alloc.shares()).toEqual({ a: 0.1, b: 0 });
    expect(alloc.frameworkShares('b')).toEqual({ f: 0 });
    expect(alloc.stats()).toMatchObject({ frameworks: 1, roles: 2 });
  });
});

// ---- greedy frameworks: each launches as many tasks as fit in every offer ----

interface Greedy {
  id: string;
  role: string;
  task: Scalars;
  /** Tasks still wanted. */
  pending: number;
  /** Answer each offer in its own accept call instead of one call for all. */
  perOffer?: boolean;
}

interface Placed {
  framework: string;
  role: string;
  agent: string;
  resources: Scalars;
}

/** How many tasks of `task` fit in `free`. */
function howMany(task: Scalars, free: Scalars): number {
  const per = (need: number, have: number) => (need > 0 ? Math.floor(have / need + 1e-9) : Infinity);
  return Math.min(per(task.cpus, free.cpus), per(task.mem, free.mem), per(task.disk, free.disk));
}

/** A greedy framework's answer: accept what fits, decline (for good: free only shrinks) what does not. */
function answer(alloc: Allocator, fw: Greedy, offers: Offer[], now: number, placed: Placed[]): void {
  if (fw.pending === 0) {
    alloc.decline(offers.map((o) => o.id), 0, now);
    return alloc.suppress(fw.id);
  }
  let budget = fw.pending;
  const plan = offers.map((o) => {
    const fit = howMany(fw.task, o.resources);
    const n = Math.min(fit, budget);
    budget -= n;
    return { o, n, fit };
  });
  // An agent where the task does not fit is refused for good (free space only shrinks here);
  // one left over because the framework already has enough elsewhere only for now.
  alloc.decline(plan.filter((p) => p.fit === 0).map((p) => p.o.id), Infinity, now);
  alloc.decline(plan.filter((p) => p.fit > 0 && p.n === 0).map((p) => p.o.id), 0, now);
  const useful = plan.filter((p) => p.n > 0);
  const calls = fw.perOffer ? useful.map((p) => [p]) : [useful];
  for (const call of calls.filter((c) => c.length > 0)) {
    const launches = call.flatMap((p) => Array.from({ length: p.n }, () => launch(p.o, fw.task)));
    const { accepted } = alloc.accept(call.map((p) => p.o.id), launches, now);
    for (const req of accepted) placed.push({ framework: fw.id, role: fw.role, agent: call.find((p) => p.o.id === req.offerId)!.o.agent, resources: req.resources });
    fw.pending -= accepted.length;
  }
}

/** Allocation rounds a second apart until no offer is made; returns the tasks placed. */
function converge(alloc: Allocator, frameworks: Greedy[]): Placed[] {
  const placed: Placed[] = [];
  const byId = new Map(frameworks.map((f) => [f.id, f]));
  for (const f of frameworks) alloc.addFramework(f.id, f.role);
  for (let now = 1_000; now < 10_000_000; now += 1_000) {
    const offers = alloc.allocate(now);
    if (offers.length === 0) return placed;
    const ids = [...new Set(offers.map((o) => o.frameworkId))];
    for (const id of ids) answer(alloc, byId.get(id)!, offers.filter((o) => o.frameworkId === id), now, placed);
  }
  throw new Error('did not converge');
}

const countBy = (placed: Placed[]) => placed.reduce<Record<string, number>>((acc, p) => ({ ...acc, [p.role]: (acc[p.role] ?? 0) + 1 }), {});

describe('Allocator: convergence to DRF progressive filling on one agent', () => {
  const greedy = (id: string, role: string, task: Scalars, more: Partial<Greedy> = {}): Greedy => ({ id, role, task, pending: Infinity, ...more });

  it('gives A 3 tasks and B 2 in the DRF paper example', () => {
    // one agent <9 cpus, 18 GiB>; A's tasks <1 cpu, 4 GiB> (dominant mem: 4/18 = .222 each);
    // B's tasks <3 cpus, 1 GiB> (dominant cpu: 3/9 = .333 each). Progressive filling:
    //   a .222 | b .333 | a .444 | b .667 | a .667 → cpus 9/9 used, nothing more fits
    const alloc = cluster([agent('n1', 9, 18 * GiB)], []);
    const placed = converge(alloc, [greedy('A', 'a', s(1, 4 * GiB)), greedy('B', 'b', s(3, GiB))]);
    expect(countBy(placed)).toEqual({ a: 3, b: 2 });
    expect(alloc.shares().a).toBeCloseTo(2 / 3);
    expect(alloc.shares().b).toBeCloseTo(2 / 3);
  });

  it('gives the same answer however the framework groups its launches into accept calls', () => {
    const alloc = cluster([agent('n1', 9, 18 * GiB)], []);
    const placed = converge(alloc, [greedy('A', 'a', s(1, 4 * GiB), { perOffer: true }), greedy('B', 'b', s(3, GiB), { perOffer: true })]);
    expect(countBy(placed)).toEqual({ a: 3, b: 2 });
  });

  it('gives a role of weight 2 twice the share: A 4 tasks, B 1', () => {
    // a weight 2: each A task .222/2 = .111; each B task .333. Progressive filling:
    //   a .111 | b .333 | a .222, .333 (tie with b, a first by name), .444
    //   → used <7 cpus, 17 GiB>: B's 3 cpus and A's 4 GiB no longer fit
    const alloc = cluster([agent('n1', 9, 18 * GiB)], [], { roleWeights: { a: 2 } });
    const placed = converge(alloc, [greedy('A', 'a', s(1, 4 * GiB)), greedy('B', 'b', s(3, GiB))]);
    expect(countBy(placed)).toEqual({ a: 4, b: 1 });
    expect(alloc.shares()).toEqual({ a: expect.closeTo(4 / 9), b: expect.closeTo(1 / 3) });
  });

  it('fills three roles: A 2, B 2, C 2', () => {
    // one agent <12 cpus, 24 GiB>; A <1, 4 GiB> = .167 (mem); B <3, 1 GiB> = .25 (cpu); C <2, 2 GiB> = .167 (cpu)
    //   a .167 | b .25 | c .167 | a .333 | c .333 | b .5 → cpus 12/12 used
    const alloc = cluster([agent('n1', 12, 24 * GiB)], []);
    const placed = converge(alloc, [greedy('A', 'a', s(1, 4 * GiB)), greedy('B', 'b', s(3, GiB)), greedy('C', 'c', s(2, 2 * GiB))]);
    expect(countBy(placed)).toEqual({ a: 2, b: 2, c: 2 });
  });

  it('hands the rest to the others once a role has all it wants', () => {
    // as in the paper example, but B wants 1 task: b .333 then suppresses; A takes what fits:
    // 8 cpus and 17 GiB left → 4 more A tasks (mem-bound)
    const alloc = cluster([agent('n1', 9, 18 * GiB)], []);
    const placed = converge(alloc, [greedy('A', 'a', s(1, 4 * GiB)), greedy('B', 'b', s(3, GiB), { pending: 1 })]);
    expect(countBy(placed)).toEqual({ a: 4, b: 1 });
  });
});

describe('Allocator: the DRF paper example, both demands in one round', () => {
  // <9 cpus, 18 GiB> in all; A's tasks <1 cpu, 4 GiB>, B's <3 cpus, 1 GiB>. Progressive filling
  // ends at A 3 tasks (mem 12/18 = .667), B 2 (cpus 6/9 = .667), whoever comes first, as long as
  // the agents can hold that packing (two agents of <4.5, 9 GiB> hold only 4 of these tasks).
  const layouts: Record<string, Array<[number, number]>> = {
    'one agent': [[9, 18]],
    'two agents': [[4, 8], [5, 10]],
    'two agents, larger first': [[5, 10], [4, 8]],
    'two agents, lopsided': [[1, 4], [8, 14]],
    'three agents': [[3, 12], [3, 3], [3, 3]],
    'three agents, mem-rich last': [[3, 3], [3, 3], [3, 12]],
    'three uneven agents': [[1, 4], [4, 5], [4, 9]],
  };
  const cases = Object.keys(layouts).flatMap((layout) =>
    (['AB', 'BA'] as const).flatMap((first) => [false, true].map((perOffer) => ({ layout, first, perOffer }))),
  );

  it.each(cases)('$layout, $first registered and revived first, accepts per offer: $perOffer', ({ layout, first, perOffer }) => {
    const alloc = cluster(layouts[layout].map(([c, m], i) => agent(`n${i}`, c, m * GiB)), []);
    const fws = { A: { id: 'A', role: 'a', task: s(1, 4 * GiB), pending: Infinity, perOffer }, B: { id: 'B', role: 'b', task: s(3, GiB), pending: Infinity, perOffer } };
    const order = first === 'AB' ? [fws.A, fws.B] : [fws.B, fws.A];
    // Registered suppressed (nothing to do yet), then both revive before the next round.
    for (const f of order) {
      alloc.addFramework(f.id, f.role);
      alloc.suppress(f.id);
    }
    for (const f of order) alloc.revive(f.id);
    const placed = converge(alloc, order);
    expect(countBy(placed)).toEqual({ a: 3, b: 2 });
    expect(alloc.shares()).toEqual({ a: expect.closeTo(2 / 3), b: expect.closeTo(2 / 3) });
  });

  it('is not DRF when one demand misses the round: the first takes what fits (the master batches revives for this)', () => {
    // B revives and is offered the agent while A is still suppressed: A does not compete, so B
    // launches 3 tasks (all 9 cpus) and A, reviving a round later, finds no cpus left.
    const alloc = cluster([agent('n1', 9, 18 * GiB)], ['A:a', 'B:b']);
    alloc.suppress('A');
    const [toB] = alloc.allocate(0);
    expect(toB.frameworkId).toBe('B');
    expect(alloc.accept([toB.id], [1, 2, 3].map(() => launch(toB, s(3, GiB))), 1).accepted).toHaveLength(3);
    alloc.revive('A');
    expect(alloc.allocate(1000)).toEqual([]);
  });
});

describe('Allocator: DRF invariants at convergence (seeded random clusters)', () => {
  const q = 0.01;

  /** A random cluster: 1–4 agents, 2–5 roles (one or two frameworks each), random weights and tasks. */
  function scenario(seed: number): { alloc: Allocator; agents: AgentInfo[]; frameworks: Greedy[]; weights: Record<string, number> } {
    const rnd = seededRandom(seed);
    const agents = Array.from({ length: randomInt(rnd, 1, 4) }, (_, i) => agent(`n${i}`, randomInt(rnd, 4, 32), randomInt(rnd, 4, 64) * GiB));
    const roles = Array.from({ length: randomInt(rnd, 2, 5) }, (_, i) => `r${i}`);
    const weights = Object.fromEntries(roles.map((r) => [r, randomInt(rnd, 1, 3)]));
    const frameworks = roles.flatMap((role) =>
      Array.from({ length: randomInt(rnd, 1, 2) }, (_, k) => ({
        id: `${role}-f${k}`,
        role,
        task: s(randomInt(rnd, 1, 8) / 2, randomInt(rnd, 1, 16) * 512),
        pending: rnd() < 0.3 ? randomInt(rnd, 1, 10) : Infinity,
        perOffer: rnd() < 0.5,
      })),
    );
    return { alloc: cluster(agents, [], { roleWeights: weights, fairnessQuantum: q }), agents, frameworks, weights };
  }

  it.each(Array.from({ length: 200 }, (_, i) => i + 1))('seed %i', (seed) => {
    const { alloc, agents, frameworks, weights } = scenario(seed);
    const placed = converge(alloc, frameworks);
    const agentNames = agents.map((a) => a.name);
    const totalCap = agents.reduce((t, a) => add(t, a.capacity), s(0, 0));
    const shares = alloc.shares();
    for (const i of frameworks.filter((f) => f.pending > 0)) {
      // work conservation: nothing a framework still wants fits anywhere
      for (const n of agentNames) expect(fits(i.task, alloc.freeOf(n))).toBe(false);
      for (const j of Object.keys(shares).filter((r) => r !== i.role)) {
        // DRF: j ends at most one task (+ quantum) above i — unless j's last task went where i had no
        // use for its place (i had declined that agent: its task fits neither there nor in j's task's room)
        const last = placed.filter((p) => p.role === j).pop();
        if (!last) continue;
        const within = shares[j] <= shares[i.role] + dominantShare(last.resources, totalCap, weights[j]) + q + 1e-9;
        const inIsWay = fits(i.task, add(alloc.freeOf(last.agent), last.resources));
        expect({ seed, i: i.id, j, within, inIsWay }).not.toMatchObject({ within: false, inIsWay: true });
      }
    }
  });
});
