import type { Constraint } from '../../pkg/api/types.generated';
import { placeMany, type Demand, type Placed, type PlaceOptions } from '../../pkg/scheduler/feasibility';
import { randomInt, seededRandom, shuffle, type Random } from '../../pkg/scheduler/random';
import type { Offer, PortRange } from '../../pkg/scheduler/types';

interface OfferOpts {
  cpus?: number;
  mem?: number;
  ports?: PortRange[];
  rack?: string;
  runtimes?: string[];
}

/** An offer of agent `agent` (hostname = agent name, offer id `o-<agent>`). */
function offer(agent: string, o: OfferOpts = {}): Offer {
  return {
    id: `o-${agent}`,
    frameworkId: 'apps',
    agent,
    hostname: agent,
    attributes: o.rack ? { rack: o.rack } : {},
    runtimes: o.runtimes ?? ['docker', 'process'],
    resources: { cpus: o.cpus ?? 4, mem: o.mem ?? 4096, disk: 0, ports: o.ports ?? [[31000, 31099]] },
    expiresAt: 0,
  };
}

const demand = (d: Partial<Demand> = {}): Demand => ({ resources: { cpus: 1, mem: 128, disk: 0 }, ports: [], constraints: [], ...d });
const times = (n: number, d: Demand): Demand[] => Array.from({ length: n }, () => d);
const constrained = (...constraints: Constraint[]) => demand({ constraints });
const placedOn = (agent: string, rack?: string): Placed => ({ agent, hostname: agent, attributes: rack ? { rack } : {} });

/** The agent of each launch, in demand order. */
function agentsOf(demands: Demand[], offers: Offer[], placed: Placed[] = [], options?: PlaceOptions): string[] {
  return placeMany(demands, offers, placed, options).launches.map((l) => l.agent);
}

function countBy<T>(items: T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of items) out[key(t)] = (out[key(t)] ?? 0) + 1;
  return out;
}

describe('placeMany ranking', () => {
  it('spreads one task per agent before doubling up', () => {
    expect(agentsOf(times(4, demand()), [offer('a'), offer('b'), offer('c')])).toEqual(['a', 'b', 'c', 'a']);
  });

  it('spreads to the agent with most free resources among equally loaded ones', () => {
    expect(agentsOf(times(2, demand()), [offer('a', { cpus: 2, mem: 1024 }), offer('b', { cpus: 8, mem: 8192 })])).toEqual(['b', 'a']);
  });

  it('spreads away from agents that already run tasks of the app', () => {
    expect(agentsOf([demand()], [offer('a', { cpus: 16 }), offer('b')], [placedOn('a')])).toEqual(['b']);
  });

  it('binpacks onto the agent with least free resources until it is full', () => {
    const offers = [offer('a', { cpus: 4, mem: 4096 }), offer('b', { cpus: 2, mem: 4096 })];
    expect(agentsOf(times(3, demand()), offers, [], { strategy: 'BINPACK' })).toEqual(['b', 'b', 'a']);
  });

  it('binpacks regardless of how many tasks of the app an agent already runs', () => {
    const offers = [offer('a', { cpus: 2 }), offer('b', { cpus: 8 })];
    expect(agentsOf([demand()], offers, [placedOn('a'), placedOn('a')], { strategy: 'BINPACK' })).toEqual(['a']);
  });

  it('is deterministic whatever the order of the offers', () => {
    const offers = [offer('a'), offer('b', { rack: 'r2' }), offer('c', { rack: 'r1' }), offer('d', { rack: 'r1' }), offer('e', { rack: 'r2' })];
    const demands = [...times(3, constrained(['rack', 'GROUP_BY'])), ...times(3, demand())];
    const expected = placeMany(demands, offers, []);
    const random = seededRandom(7);
    for (let i = 0; i < 20; i++) expect(placeMany(demands, shuffle(random, [...offers]), [])).toEqual(expected);
  });

  it('rejects an unknown strategy naming the field', () => {
    expect(() => placeMany([], [], [], { strategy: 'RANDOM' as never })).toThrow(/PlaceOptions\.strategy/);
  });
});

describe('placeMany consumes offers as it launches', () => {
  it('takes scalars from an offer launch after launch', () => {
    const out = placeMany(times(3, demand()), [offer('a', { cpus: 2 })], []);
    expect(out.launches.map((l) => l.demandIndex)).toEqual([0, 1]);
    expect(out.unplaced).toMatchObject([{ demandIndex: 2, reasons: { InsufficientCpus: 1 } }]);
    expect(out.unplaced[0].rejections[0].rejection.detail).toBe('insufficient cpus (needs 1, 0 free)');
  });

  it('gives each launch on one offer its own dynamic ports, drawn from the free ones', () => {
    const d = demand({ ports: [{ hostPort: 0 }, { hostPort: 0 }] });
    const out = placeMany(times(3, d), [offer('a', { ports: [[31000, 31004]] })], [], { random: seededRandom(1) });
    const ports = out.launches.map((l) => l.ports);
    expect(ports).toHaveLength(2);
    expect(new Set(ports.flat()).size).toBe(4);
    for (const p of ports.flat()) expect(p).toBeGreaterThanOrEqual(31000), expect(p).toBeLessThanOrEqual(31004);
    expect(out.unplaced).toMatchObject([{ demandIndex: 2, reasons: { PortsUnavailable: 1 } }]);
    expect(out.unplaced[0].rejections[0].rejection.detail).toBe('ports unavailable (needs 2 dynamic port(s), 1 free)');
  });

  it('launches a fixed host port once per offer and moves the next one elsewhere', () => {
    const d = demand({ ports: [{ hostPort: 31000 }, { hostPort: 0 }] });
    const out = placeMany(times(3, d), [offer('a'), offer('b')], [], { strategy: 'BINPACK' });
    expect(out.launches.map((l) => [l.agent, l.ports[0]])).toEqual([
      ['a', 31000],
      ['b', 31000],
    ]);
    for (const l of out.launches) expect(l.ports[1]).not.toBe(31000), expect(l.ports[1]).toBeGreaterThan(31000), expect(l.ports[1]).toBeLessThanOrEqual(31099);
    expect(out.unplaced).toMatchObject([{ demandIndex: 2, reasons: { PortsUnavailable: 2 } }]);
  });

  it('places demands of different sizes in order, each on what is left', () => {
    const demands = [demand({ resources: { cpus: 3, mem: 128, disk: 0 } }), demand(), demand({ resources: { cpus: 2, mem: 128, disk: 0 } })];
    const out = placeMany(demands, [offer('a', { cpus: 4 }), offer('b', { cpus: 2 })], []);
    expect(out.launches.map((l) => [l.demandIndex, l.agent])).toEqual([
      [0, 'a'],
      [1, 'b'],
    ]);
    expect(out.unplaced).toMatchObject([{ demandIndex: 2, reasons: { InsufficientCpus: 2 } }]);
  });
});

describe('placeMany: dynamic host ports are drawn at random (issue 16)', () => {
  const d = demand({ ports: [{ hostPort: 0 }] });
  const portsOf = (random: Random, o = offer('a', { ports: [[31000, 31009]] }), n = 1) => placeMany(times(n, d), [o], [], { random }).launches.map((l) => l.ports[0]);

  it('replays the same ports from the same seed', () => {
    expect(portsOf(seededRandom(42), undefined, 5)).toEqual(portsOf(seededRandom(42), undefined, 5));
  });

  it('covers the whole free range over many rounds, not only the lowest port', () => {
    const random = seededRandom(3);
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) seen.add(portsOf(random)[0]);
    expect([...seen].sort()).toEqual(Array.from({ length: 10 }, (_, i) => 31000 + i));
  });

  it('never draws a port the offer does not hold (used by a task) and spans split ranges', () => {
    const random = seededRandom(9);
    const o = offer('a', { ports: [[31000, 31000], [31005, 31006], [32000, 32000]] }); // 31001-31004 taken by tasks
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) for (const p of portsOf(random, o, 4)) seen.add(p);
    expect([...seen].sort()).toEqual([31000, 31005, 31006, 32000]);
    expect(new Set(portsOf(random, o, 4)).size).toBe(4); // one round never draws a port twice
  });

  it('a retried launch on an unchanged offer does not get the same port every time (the default generator)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) seen.add(placeMany([d], [offer('a', { ports: [[31000, 31999]] })], []).launches[0].ports[0]);
    expect(seen.size).toBeGreaterThan(10);
  });

  it('rejects a random that is not a function, naming the field', () => {
    expect(() => placeMany([], [], [], { random: 3 as never })).toThrow(/PlaceOptions\.random/);
  });
});

describe('placeMany constraints within a round', () => {
  it('keeps UNIQUE hostname across the round and leaves the rest pending', () => {
    const out = placeMany(times(5, constrained(['hostname', 'UNIQUE'])), [offer('a'), offer('b'), offer('c')], []);
    expect(out.launches.map((l) => l.agent).sort()).toEqual(['a', 'b', 'c']);
    expect(out.unplaced).toMatchObject([
      { demandIndex: 3, reasons: { ConstraintUnique: 3 } },
      { demandIndex: 4, reasons: { ConstraintUnique: 3 } },
    ]);
  });

  it('keeps UNIQUE hostname against tasks already placed', () => {
    expect(agentsOf(times(2, constrained(['hostname', 'UNIQUE'])), [offer('a'), offer('b')], [placedOn('a')])).toEqual(['b']);
  });

  it.each<[string, PlaceOptions]>([
    ['SPREAD', { strategy: 'SPREAD' }],
    ['BINPACK', { strategy: 'BINPACK' }],
  ])('GROUP_BY rack evens racks out even when one rack has more and bigger agents (%s)', (_name, options) => {
    // rack r1: three agents of 8 cpus; rack r2: one agent of 4
    const offers = [...['a1', 'a2', 'a3'].map((a) => offer(a, { rack: 'r1', cpus: 8 })), offer('b1', { rack: 'r2', cpus: 4 })];
    const out = placeMany(times(4, constrained(['rack', 'GROUP_BY'])), offers, [], options);
    const rackOf = (agent: string) => offers.find((o) => o.agent === agent)!.attributes.rack;
    expect(countBy(out.launches, (l) => rackOf(l.agent))).toEqual({ r1: 2, r2: 2 });
  });

  it('GROUP_BY rack catches up a rack that is behind before using the others', () => {
    const placed = [placedOn('x', 'r1'), placedOn('y', 'r1'), placedOn('z', 'r2')];
    const offers = [offer('a', { rack: 'r1' }), offer('b', { rack: 'r2' })];
    expect(agentsOf(times(3, constrained(['rack', 'GROUP_BY'])), offers, placed)).toEqual(['b', 'a', 'b']);
  });

  it('GROUP_BY rack 3 waits for a third rack before a second task on any rack', () => {
    const out = placeMany(times(4, constrained(['rack', 'GROUP_BY', '3'])), [offer('a', { rack: 'r1' }), offer('b', { rack: 'r2' })], []);
    expect(out.launches.map((l) => l.agent).sort()).toEqual(['a', 'b']);
    expect(out.unplaced.map((u) => u.reasons)).toEqual([{ ConstraintGroupBy: 2 }, { ConstraintGroupBy: 2 }]);
  });

  it('MAX_PER hostname 2 puts at most two tasks on each agent', () => {
    const out = placeMany(times(5, constrained(['hostname', 'MAX_PER', '2'])), [offer('a'), offer('b')], []);
    expect(countBy(out.launches, (l) => l.agent)).toEqual({ a: 2, b: 2 });
    expect(out.unplaced).toMatchObject([{ demandIndex: 4, reasons: { ConstraintMaxPer: 2 } }]);
  });

  it('MAX_PER rack 1 counts placed tasks and this round together', () => {
    const offers = [offer('a', { rack: 'r1' }), offer('b', { rack: 'r2' }), offer('c', { rack: 'r3' })];
    expect(agentsOf(times(3, constrained(['rack', 'MAX_PER', '1'])), offers, [placedOn('x', 'r2')])).toEqual(['a', 'c']);
  });

  it('CLUSTER rack without value keeps the round on the rack of the first task', () => {
    const offers = [offer('a', { rack: 'r1', cpus: 1 }), offer('b', { rack: 'r2', cpus: 8 }), offer('c', { rack: 'r1', cpus: 1 })];
    const out = placeMany(times(3, constrained(['rack', 'CLUSTER'])), offers, [placedOn('x', 'r1')]);
    expect(out.launches.map((l) => l.agent)).toEqual(['a', 'c']);
    expect(out.unplaced).toMatchObject([{ demandIndex: 2, reasons: { InsufficientCpus: 2, ConstraintCluster: 1 } }]);
  });
});

describe('placeMany unplaced reasons', () => {
  it('counts the reason of every offer that rejected a demand, with each agent’s rejection', () => {
    const offers = [
      offer('a', { cpus: 0.5 }),
      offer('b', { runtimes: ['process'] }),
      offer('c', { rack: 'r9' }),
      offer('d', { cpus: 0 }),
      offer('e', { rack: 'r1', ports: [] }),
    ];
    const d = demand({ runtime: 'docker', ports: [{ hostPort: 0 }], constraints: [['rack', 'LIKE', 'r[0-3]']] });
    const out = placeMany([d], offers, []);
    expect(out.launches).toEqual([]);
    expect(out.unplaced[0].reasons).toEqual({ InsufficientCpus: 2, RuntimeMissing: 1, ConstraintLike: 1, PortsUnavailable: 1 });
    expect(out.unplaced[0].rejections.map((r) => [r.agent, r.offerId, r.rejection.reason])).toEqual([
      ['a', 'o-a', 'InsufficientCpus'],
      ['b', 'o-b', 'RuntimeMissing'],
      ['c', 'o-c', 'ConstraintLike'],
      ['d', 'o-d', 'InsufficientCpus'],
      ['e', 'o-e', 'PortsUnavailable'],
    ]);
  });

  it('reports every repeat of a failed demand with the same reasons, as separate records', () => {
    const d = constrained(['hostname', 'UNIQUE']);
    const out = placeMany([d, d, d, d], [offer('a'), offer('b')], []);
    expect(out.unplaced.map((u) => u.demandIndex)).toEqual([2, 3]);
    expect(out.unplaced[1].reasons).toEqual(out.unplaced[0].reasons);
    expect(out.unplaced[1].rejections).toEqual(out.unplaced[0].rejections);
    expect(out.unplaced[1].reasons).not.toBe(out.unplaced[0].reasons);
  });

  it('checks a different demand afresh after one failed', () => {
    const big = demand({ resources: { cpus: 8, mem: 128, disk: 0 } });
    const out = placeMany([big, demand()], [offer('a', { cpus: 4 })], []);
    expect(out.unplaced).toMatchObject([{ demandIndex: 0, reasons: { InsufficientCpus: 1 } }]);
    expect(out.launches).toMatchObject([{ demandIndex: 1, agent: 'a' }]);
  });

  it('leaves every demand unplaced with no reasons when there are no offers', () => {
    expect(placeMany(times(2, demand()), [], [])).toEqual({
      launches: [],
      unplaced: [
        { demandIndex: 0, reasons: {}, rejections: [] },
        { demandIndex: 1, reasons: {}, rejections: [] },
      ],
    });
  });

  it('does nothing without demands', () => {
    expect(placeMany([], [offer('a')], [])).toEqual({ launches: [], unplaced: [] });
  });
});

describe('placeMany: why placed (feasible offers and ranking keys of each launch)', () => {
  const feasibleOf = (demands: Demand[], offers: Offer[], placed: Placed[] = [], options?: PlaceOptions) =>
    placeMany(demands, offers, placed, options).launches.map((l) => [l.agent, l.feasible]);

  it.each([['indexed', false], ['exhaustive', true]] as const)('counts the offers that could run each instance when it was placed (%s)', (_path, exhaustive) => {
    // Every agent keeps room for more: all three stay feasible.
    expect(feasibleOf(times(4, demand()), [offer('a'), offer('b'), offer('c')], [], { exhaustive })).toEqual([['a', 3], ['b', 3], ['c', 3], ['a', 3]]);
    // UNIQUE hostname: each launch takes its agent out of the running.
    expect(feasibleOf(times(4, constrained(['hostname', 'UNIQUE'])), [offer('a'), offer('b'), offer('c')], [placedOn('d')], { exhaustive })).toEqual([['a', 3], ['b', 2], ['c', 1]]);
    // Scalars run out: the big agent is the only one left for the third.
    expect(feasibleOf(times(3, demand({ resources: { cpus: 2, mem: 128, disk: 0 } })), [offer('a', { cpus: 4 }), offer('b', { cpus: 2 })], [], { exhaustive })).toEqual([['a', 2], ['b', 2], ['a', 1]]);
  });

  it('counts feasible offers and group load on the exhaustive path GROUP_BY takes', () => {
    const offers = [offer('a1', { rack: 'r1' }), offer('a2', { rack: 'r1' }), offer('b1', { rack: 'r2' })];
    const out = placeMany(times(3, constrained(['rack', 'GROUP_BY'])), offers, [placedOn('x', 'r1')]);
    expect(out.launches.map((l) => [l.agent, l.feasible, l.rank.groupLoad])).toEqual([
      ['b1', 3, 0], // r1 holds the fewest of the values seen (its only one) and r2 none: all may; the emptiest value ranks first
      ['a1', 3, 1], // tied at one each: every agent may, r1's first by name
      ['b1', 1, 1], // r1 has two now: r2 only
    ]);
  });

  it('records the chosen agent’s ranking keys: tasks of the app there and its free share', () => {
    const out = placeMany(times(2, demand()), [offer('a', { cpus: 2, mem: 2048 }), offer('b', { cpus: 4, mem: 4096 })], [placedOn('b')]);
    expect(out.launches.map((l) => [l.agent, l.rank])).toEqual([
      ['a', { groupLoad: 0, appTasks: 0, free: 0.5 }],
      ['b', { groupLoad: 0, appTasks: 1, free: 1 }],
    ]);
  });
});

describe('placeMany: the indexed path picks exactly what checking every offer picks', () => {
  const CONSTRAINTS: Constraint[] = [
    ['hostname', 'UNIQUE'], ['rack', 'UNIQUE'], ['rack', 'MAX_PER', '2'], ['hostname', 'MAX_PER', '3'], ['rack', 'LIKE', 'r[12]'],
    ['rack', 'UNLIKE', 'r0'], ['rack', 'IS', 'r1'], ['rack', 'CLUSTER', 'r2'], ['zone', 'UNIQUE'], ['rack', 'GROUP_BY'], ['rack', 'CLUSTER'],
  ];

  /** Offers with shared hostnames, missing attributes, several offers of one agent, and scarce ports. */
  function randomOffers(random: Random): Offer[] {
    return Array.from({ length: randomInt(random, 0, 14) }, (_, i) => {
      const agent = `a${randomInt(random, 0, 9)}`;
      const attributes: Record<string, string> = {};
      if (random() < 0.8) attributes.rack = `r${randomInt(random, 0, 3)}`;
      if (random() < 0.5) attributes.zone = `z${randomInt(random, 0, 1)}`;
      const from = 31000 + randomInt(random, 0, 3);
      return {
        id: `o${i}`, frameworkId: 'apps', agent, hostname: random() < 0.2 ? 'shared' : agent, attributes,
        runtimes: random() < 0.8 ? ['docker', 'process'] : ['process'],
        resources: { cpus: randomInt(random, 0, 8) / 2, mem: randomInt(random, 0, 8) * 256, disk: 0, ports: random() < 0.9 ? [[from, from + randomInt(random, 0, 4)]] : [] },
        expiresAt: 0,
      };
    });
  }

  function randomDemand(random: Random): Demand {
    const constraints = CONSTRAINTS.filter(() => random() < 0.15);
    return {
      resources: { cpus: randomInt(random, 1, 4) / 4, mem: randomInt(random, 0, 4) * 128, disk: 0 },
      ports: Array.from({ length: randomInt(random, 0, 2) }, () => ({ hostPort: random() < 0.2 ? 31000 + randomInt(random, 0, 3) : 0 })),
      runtime: random() < 0.3 ? 'docker' : undefined,
      constraints,
    };
  }

  it.each([['SPREAD'], ['BINPACK']] as const)('agrees on 400 random rounds with %s', (strategy) => {
    const random = seededRandom(strategy === 'SPREAD' ? 11 : 12);
    let launches = 0;
    for (let round = 0; round < 400; round++) {
      const offers = randomOffers(random);
      // Runs of one demand object (an App's instances), sometimes two Apps' runs in a row.
      const demands: Demand[] = [];
      for (let r = randomInt(random, 1, 3); r > 0; r--) demands.push(...times(randomInt(random, 1, 12), randomDemand(random)));
      const placed = Array.from({ length: randomInt(random, 0, 3) }, () => placedOn(`a${randomInt(random, 0, 9)}`, `r${randomInt(random, 0, 3)}`));
      // The same port draws on both paths: one per launch, in launch order.
      const indexed = placeMany(demands, offers, placed, { strategy, random: seededRandom(round) });
      expect({ round, placement: indexed }).toEqual({ round, placement: placeMany(demands, offers, placed, { strategy, exhaustive: true, random: seededRandom(round) }) });
      launches += indexed.launches.length;
    }
    expect(launches).toBeGreaterThan(500); // the rounds place a lot, not only fail
  });

  it('places thousands of instances on thousands of offers in well under a second', () => {
    // Not a timing assertion: a guard that the indexed path is taken (the exhaustive one needs ~10^7 checks here).
    const offers = Array.from({ length: 2000 }, (_, i) => offer(`n${i}`, { cpus: 8, mem: 16384 }));
    const out = placeMany(times(5000, demand({ resources: { cpus: 0.01, mem: 1, disk: 0 } })), offers, []);
    expect(out.launches).toHaveLength(5000);
    expect(new Set(out.launches.map((l) => l.agent)).size).toBe(2000);
  });
});
