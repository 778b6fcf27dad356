import type { Constraint } from '../../pkg/api/types.generated';
import {
  assignPorts,
  randomPorts,
  attributeValue,
  checkOffer,
  checkOffers,
  demandOf,
  REASON_ORDER,
  type Demand,
  type Fit,
  type OfferView,
  type Placed,
  type Reason,
  type Rejection,
} from '../../pkg/scheduler/feasibility';
import { seededRandom } from '../../pkg/scheduler/random';
import type { PortRange } from '../../pkg/scheduler/types';

const offer = (o: Partial<OfferView> = {}): OfferView => ({
  agent: 'a1',
  hostname: 'h1',
  attributes: {},
  runtimes: ['docker', 'process'],
  resources: { cpus: 4, mem: 4096, disk: 1000, ports: [[31000, 31009]] },
  ...o,
});
const demand = (d: Partial<Demand> = {}): Demand => ({ resources: { cpus: 1, mem: 128, disk: 0 }, ports: [], constraints: [], ...d });
const on = (hostname: string, attributes: Record<string, string> = {}): Placed => ({ agent: `agent-${hostname}`, hostname, attributes });
const rack = (r: string, hostname = `h-${r}`): Placed => on(hostname, { rack: r });

/** `ok` or the reason: what most tables compare. */
function outcome(r: Fit | Rejection): 'ok' | Reason {
  return r.ok ? 'ok' : r.reason;
}

function rejection(r: Fit | Rejection): Rejection {
  if (r.ok) throw new Error(`expected a rejection, got ports ${r.ports.join(',')}`);
  return r;
}

describe('checkOffer stages', () => {
  it('passes a demand that fits everywhere and returns its ports', () => {
    expect(checkOffer(demand({ ports: [{ hostPort: 0 }] }), offer(), [])).toEqual({ ok: true, ports: [31000] });
  });

  it.each([
    [false, 'Unschedulable'],
    [true, 'ok'],
    [undefined, 'ok'],
  ] as const)('rejects a cordoned agent (schedulable %s → %s)', (schedulable, expected) => {
    expect(outcome(checkOffer(demand(), offer({ schedulable }), []))).toBe(expected);
  });

  it.each([
    [undefined, ['docker'], 'ok'],
    [undefined, ['process'], 'ok'],
    [undefined, ['hollow'], 'ok'],
    [undefined, [], 'RuntimeMissing'],
    [undefined, ['wasm'], 'RuntimeMissing'],
    ['docker', ['docker'], 'ok'],
    ['docker', ['process'], 'RuntimeMissing'],
    ['docker', ['hollow'], 'ok'],
    ['process', ['process'], 'ok'],
    ['process', ['docker'], 'RuntimeMissing'],
  ] as const)('runtime %s on an agent with %j → %s', (runtime, runtimes, expected) => {
    expect(outcome(checkOffer(demand({ runtime }), offer({ runtimes: [...runtimes] }), []))).toBe(expected);
  });

  it('says which runtime is missing and what the agent has', () => {
    const r = rejection(checkOffer(demand({ runtime: 'docker' }), offer({ runtimes: ['process'] }), []));
    expect(r).toMatchObject({ sentence: 'runtime docker missing', detail: 'runtime docker missing (agent has process)' });
    expect(rejection(checkOffer(demand(), offer({ runtimes: [] }), [])).detail).toBe('runtime missing (agent has none)');
  });

  it.each([
    [{ cpus: 1, mem: 0, disk: 0 }, { cpus: 0.5 }, 'InsufficientCpus', 'insufficient cpus (needs 1, 0.5 free)'],
    [{ cpus: 0, mem: 256, disk: 0 }, { mem: 128 }, 'InsufficientMem', 'insufficient mem (needs 256 MiB, 128 MiB free)'],
    [{ cpus: 0, mem: 0, disk: 10 }, { disk: 0 }, 'InsufficientDisk', 'insufficient disk (needs 10 MiB, 0 MiB free)'],
  ] as const)('rejects %j on an offer short of %j', (resources, free, reason, detail) => {
    const r = rejection(checkOffer(demand({ resources }), offer({ resources: { ...offer().resources, ...free } }), []));
    expect(r).toMatchObject({ reason, detail });
  });

  it('fits exactly on the resource grid (0.1 + 0.2 cpus free runs a 0.3 cpu task)', () => {
    const free = { cpus: 0.1 + 0.2, mem: 128, disk: 0, ports: [] };
    expect(outcome(checkOffer(demand({ resources: { cpus: 0.3, mem: 128, disk: 0 } }), offer({ resources: free }), []))).toBe('ok');
  });
});

describe('ports', () => {
  const r = (...ranges: PortRange[]) => ranges;
  it.each([
    ['no ports', [], r([31000, 31009]), []],
    ['dynamic ports take the lowest', [0, 0], r([31000, 31009]), [31000, 31001]],
    ['a fixed port inside the range', [31005, 0], r([31000, 31009]), [31005, 31000]],
    ['a fixed port at the range end', [31009], r([31000, 31009]), [31009]],
    ['a dynamic port never takes a fixed one', [0, 31000], r([31000, 31009]), [31001, 31000]],
    ['dynamic ports across split ranges', [0, 0], r([32000, 32001], [31000, 31000]), [31000, 32000]],
    ['a fixed port outside the ranges', [80], r([31000, 31009]), 'hostPort 80 not offered'],
    ['the same fixed port twice', [31000, 31000], r([31000, 31009]), 'hostPort 31000 asked for twice'],
    ['more dynamic ports than offered', [0, 0, 0], r([31000, 31001]), 'needs 3 dynamic port(s), 2 free'],
    ['fixed ports leave too few for dynamic ones', [31000, 0, 0], r([31000, 31001]), 'needs 2 dynamic port(s), 1 free'],
    ['no port ranges at all', [0], r(), 'needs 1 dynamic port(s), 0 free'],
  ])('%s', (_name, hostPorts, ranges, expected) => {
    expect(assignPorts(hostPorts.map((hostPort) => ({ hostPort })), ranges)).toEqual(expected);
  });

  it('with a random source: dynamic ports drawn among the free ones, fixed ones unchanged, same errors', () => {
    const random = seededRandom(5);
    const wanted = [{ hostPort: 0 }, { hostPort: 31003 }, { hostPort: 0 }];
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const ports = assignPorts(wanted, [[31000, 31004]], random) as number[];
      expect(ports[1]).toBe(31003);
      expect(ports[0]).not.toBe(ports[2]);
      seen.add(ports[0]).add(ports[2]);
    }
    expect([...seen].sort()).toEqual([31000, 31001, 31002, 31004]); // every free port, never the fixed one
    expect(assignPorts(wanted, [[31002, 31003]], random)).toBe('needs 2 dynamic port(s), 1 free');
    expect(assignPorts([{ hostPort: 0 }], [[31000, 31001]], seededRandom(5))).toEqual(assignPorts([{ hostPort: 0 }], [[31000, 31001]], seededRandom(5)));
  });

  it('randomPorts: distinct ports over split ranges, undefined when too few', () => {
    const ports = randomPorts([[31000, 31000], [32000, 32001]], 3, seededRandom(1))!;
    expect([...ports].sort()).toEqual([31000, 32000, 32001]);
    expect(randomPorts([[31000, 31001]], 3, seededRandom(1))).toBeUndefined();
    expect(randomPorts([], 0, seededRandom(1))).toEqual([]);
  });

  it('rejects unavailable ports as PortsUnavailable with the reason in the detail', () => {
    const r = rejection(checkOffer(demand({ ports: [{ hostPort: 80 }] }), offer(), []));
    expect(r).toMatchObject({ reason: 'PortsUnavailable', sentence: 'ports unavailable', detail: 'ports unavailable (hostPort 80 not offered)' });
  });
});

type Row = [name: string, constraint: Constraint, offer: Partial<OfferView>, placed: Placed[], expected: 'ok' | Reason];
const r1 = { attributes: { rack: 'r1' } };
const r2 = { attributes: { rack: 'r2' } };
const r3 = { attributes: { rack: 'r3' } };
const noRack = { attributes: {} };

describe('constraints (Marathon semantics)', () => {
  const rows: Row[] = [
    ['UNIQUE hostname: no task yet', ['hostname', 'UNIQUE'], {}, [], 'ok'],
    ['UNIQUE hostname: a task on another host', ['hostname', 'UNIQUE'], {}, [on('h2')], 'ok'],
    ['UNIQUE hostname: a task on this host', ['hostname', 'UNIQUE'], {}, [on('h1')], 'ConstraintUnique'],
    ['UNIQUE rack: a task on another rack', ['rack', 'UNIQUE'], r1, [rack('r2')], 'ok'],
    ['UNIQUE rack: a task on this rack, other host', ['rack', 'UNIQUE'], r1, [rack('r1', 'h9')], 'ConstraintUnique'],
    ['UNIQUE rack: tasks lacking the attribute never conflict', ['rack', 'UNIQUE'], r1, [on('h2')], 'ok'],
    ['CLUSTER rack r1: offer on r1', ['rack', 'CLUSTER', 'r1'], r1, [], 'ok'],
    ['CLUSTER rack r1: offer on r2', ['rack', 'CLUSTER', 'r1'], r2, [], 'ConstraintCluster'],
    ['CLUSTER rack r1: placed tasks do not matter', ['rack', 'CLUSTER', 'r1'], r1, [rack('r2')], 'ok'],
    ['CLUSTER hostname h1: on h1', ['hostname', 'CLUSTER', 'h1'], {}, [], 'ok'],
    ['CLUSTER hostname h2: on h1', ['hostname', 'CLUSTER', 'h2'], {}, [], 'ConstraintCluster'],
    ['CLUSTER rack: the first task picks any value', ['rack', 'CLUSTER'], r2, [], 'ok'],
    ['CLUSTER rack: follows the first task', ['rack', 'CLUSTER'], r1, [rack('r1')], 'ok'],
    ['CLUSTER rack: other values are rejected', ['rack', 'CLUSTER'], r2, [rack('r1')], 'ConstraintCluster'],
    ['CLUSTER rack: the first task, not a later one, decides', ['rack', 'CLUSTER'], r2, [rack('r1'), rack('r2')], 'ConstraintCluster'],
    ['CLUSTER rack: a first task without the attribute matches nothing', ['rack', 'CLUSTER'], r1, [on('h2')], 'ConstraintCluster'],
    ['CLUSTER hostname: follows the first task', ['hostname', 'CLUSTER'], {}, [on('h1')], 'ok'],
    ['GROUP_BY rack: no task yet', ['rack', 'GROUP_BY'], r1, [], 'ok'],
    ['GROUP_BY rack: a value no task has yet', ['rack', 'GROUP_BY'], r2, [rack('r1')], 'ok'],
    ['GROUP_BY rack: the only value seen is the least loaded', ['rack', 'GROUP_BY'], r1, [rack('r1')], 'ok'],
    ['GROUP_BY rack: a tie is fine', ['rack', 'GROUP_BY'], r1, [rack('r1'), rack('r2')], 'ok'],
    ['GROUP_BY rack: the most loaded value is rejected', ['rack', 'GROUP_BY'], r1, [rack('r1'), rack('r1'), rack('r2')], 'ConstraintGroupBy'],
    ['GROUP_BY rack: the least loaded value is accepted', ['rack', 'GROUP_BY'], r2, [rack('r1'), rack('r1'), rack('r2')], 'ok'],
    ['GROUP_BY rack: tasks lacking the attribute are no group', ['rack', 'GROUP_BY'], r1, [on('h8'), rack('r1'), rack('r2')], 'ok'],
    ['GROUP_BY rack 3: a seen value waits until 3 values are seen', ['rack', 'GROUP_BY', '3'], r1, [rack('r1'), rack('r2')], 'ConstraintGroupBy'],
    ['GROUP_BY rack 3: an unseen value is welcome', ['rack', 'GROUP_BY', '3'], r3, [rack('r1'), rack('r2')], 'ok'],
    ['GROUP_BY rack 3: all 3 seen, least loaded', ['rack', 'GROUP_BY', '3'], r1, [rack('r1'), rack('r2'), rack('r3')], 'ok'],
    ['GROUP_BY hostname: spreads over hosts', ['hostname', 'GROUP_BY'], {}, [on('h1'), on('h1'), on('h2')], 'ConstraintGroupBy'],
    ['LIKE rack r[12]: r1', ['rack', 'LIKE', 'r[12]'], r1, [], 'ok'],
    ['LIKE rack r[12]: r3', ['rack', 'LIKE', 'r[12]'], r3, [], 'ConstraintLike'],
    ['LIKE rack r[12]: r12 (the whole value must match)', ['rack', 'LIKE', 'r[12]'], { attributes: { rack: 'r12' } }, [], 'ConstraintLike'],
    ['LIKE hostname h.*: h1', ['hostname', 'LIKE', 'h.*'], {}, [], 'ok'],
    ['LIKE hostname 1: h1 (no substring match)', ['hostname', 'LIKE', '1'], {}, [], 'ConstraintLike'],
    ['LIKE without a value matches nothing', ['rack', 'LIKE'], r1, [], 'ConstraintLike'],
    ['LIKE with an invalid pattern matches nothing', ['rack', 'LIKE', '('], r1, [], 'ConstraintLike'],
    ['LIKE alternation is anchored as a whole', ['rack', 'LIKE', 'r1|r2'], { attributes: { rack: 'r1x' } }, [], 'ConstraintLike'],
    ['UNLIKE rack r1: r2', ['rack', 'UNLIKE', 'r1'], r2, [], 'ok'],
    ['UNLIKE rack r1: r1', ['rack', 'UNLIKE', 'r1'], r1, [], 'ConstraintUnlike'],
    ['UNLIKE rack r1: xr1 (the whole value must match)', ['rack', 'UNLIKE', 'r1'], { attributes: { rack: 'xr1' } }, [], 'ok'],
    ['UNLIKE hostname h[0-9]: h1', ['hostname', 'UNLIKE', 'h[0-9]'], {}, [], 'ConstraintUnlike'],
    ['UNLIKE without a value matches nothing', ['rack', 'UNLIKE'], r1, [], 'ConstraintUnlike'],
    ['MAX_PER rack 2: one task there', ['rack', 'MAX_PER', '2'], r1, [rack('r1')], 'ok'],
    ['MAX_PER rack 2: two tasks there', ['rack', 'MAX_PER', '2'], r1, [rack('r1'), rack('r1', 'h9')], 'ConstraintMaxPer'],
    ['MAX_PER rack 2: two tasks elsewhere', ['rack', 'MAX_PER', '2'], r2, [rack('r1'), rack('r1', 'h9')], 'ok'],
    ['MAX_PER hostname 1: a task on this host', ['hostname', 'MAX_PER', '1'], {}, [on('h1')], 'ConstraintMaxPer'],
    ['MAX_PER with a bad value matches nothing', ['rack', 'MAX_PER', 'x'], r1, [], 'ConstraintMaxPer'],
    ['IS rack r1: r1', ['rack', 'IS', 'r1'], r1, [], 'ok'],
    ['IS rack r1: r2', ['rack', 'IS', 'r1'], r2, [], 'ConstraintIs'],
    ['IS rack r1: r10 (exact, no prefix)', ['rack', 'IS', 'r1'], { attributes: { rack: 'r10' } }, [], 'ConstraintIs'],
    ['IS without a value matches nothing', ['rack', 'IS'], r1, [], 'ConstraintIs'],
    ['IS compares scalars as Mesos does: 1.0 is 1', ['gen', 'IS', '1.0'], { attributes: { gen: '1' } }, [], 'ok'],
    ['IS compares scalars as Mesos does: 1.50 is 1.5', ['gen', 'IS', '1.5'], { attributes: { gen: '1.50' } }, [], 'ok'],
    ['IS compares scalars as Mesos does: 2 is not 1', ['gen', 'IS', '2'], { attributes: { gen: '1' } }, [], 'ConstraintIs'],
    ['IS hostname h1: h1', ['hostname', 'IS', 'h1'], {}, [], 'ok'],
  ];
  it.each(rows)('%s', (_name, constraint, o, placed, expected) => {
    expect(outcome(checkOffer(demand({ constraints: [constraint] }), offer(o), placed))).toBe(expected);
  });

  // Marathon: an agent lacking the field matches no operator but UNLIKE.
  it.each([
    [['rack', 'UNIQUE'], 'AttributeMissing'],
    [['rack', 'CLUSTER'], 'AttributeMissing'],
    [['rack', 'CLUSTER', 'r1'], 'AttributeMissing'],
    [['rack', 'GROUP_BY'], 'AttributeMissing'],
    [['rack', 'GROUP_BY', '2'], 'AttributeMissing'],
    [['rack', 'LIKE', 'r1'], 'AttributeMissing'],
    [['rack', 'MAX_PER', '1'], 'AttributeMissing'],
    [['rack', 'IS', 'r1'], 'AttributeMissing'],
    [['rack', 'UNLIKE', 'r1'], 'ok'],
    [['rack', 'UNLIKE'], 'ok'],
    [['constructor', 'IS', 'x'], 'AttributeMissing'],
  ] as Array<[Constraint, 'ok' | Reason]>)('an agent without the attribute: %j → %s', (constraint, expected) => {
    expect(outcome(checkOffer(demand({ constraints: [constraint] }), offer(noRack), [rack('r1')]))).toBe(expected);
  });

  it('counts this round’s placements like placed tasks', () => {
    const d = demand({ constraints: [['hostname', 'UNIQUE']] });
    expect(outcome(checkOffer(d, offer(), [], [on('h1')]))).toBe('ConstraintUnique');
    const cluster = demand({ constraints: [['rack', 'CLUSTER']] });
    expect(outcome(checkOffer(cluster, offer(r2), [], [rack('r1')]))).toBe('ConstraintCluster');
    // placed tasks come before this round's: the first placed one picks the CLUSTER value
    expect(outcome(checkOffer(cluster, offer(r2), [rack('r2')], [rack('r1')]))).toBe('ok');
  });

  it('names the constraint and the agent’s value in sentence and detail', () => {
    const unique = rejection(checkOffer(demand({ constraints: [['hostname', 'UNIQUE']] }), offer(), [on('h1')]));
    expect(unique).toEqual({
      ok: false,
      reason: 'ConstraintUnique',
      sentence: 'constraint UNIQUE hostname',
      detail: 'constraint UNIQUE hostname (agent agent-h1 already runs a task of this app with hostname h1)',
    });
    const like = rejection(checkOffer(demand({ constraints: [['rack', 'LIKE', 'r[12]']] }), offer(r3), []));
    expect(like).toMatchObject({ sentence: 'constraint LIKE rack r[12]', detail: 'constraint LIKE rack r[12] (rack is r3)' });
    const missing = rejection(checkOffer(demand({ constraints: [['rack', 'MAX_PER', '2']] }), offer(noRack), []));
    expect(missing).toMatchObject({ sentence: 'attribute rack missing', detail: 'attribute rack missing (needed by constraint MAX_PER rack 2)' });
    const groupBy = rejection(checkOffer(demand({ constraints: [['rack', 'GROUP_BY', '3']] }), offer(r1), [rack('r1')]));
    expect(groupBy.detail).toBe('constraint GROUP_BY rack 3 (tasks seen on 1 of 3 rack values; waiting for an offer from another)');
  });

  it('checks every constraint (all must hold)', () => {
    const d = demand({ constraints: [['rack', 'LIKE', 'r.*'], ['rack', 'UNLIKE', 'r2']] });
    expect(outcome(checkOffer(d, offer(r1), []))).toBe('ok');
    expect(outcome(checkOffer(d, offer(r2), []))).toBe('ConstraintUnlike');
  });

  it.each([
    ['1', '1'],
    ['1.0', '1'],
    ['01.500', '1.5'],
    ['2.0006', '2.001'],
    ['r1', 'r1'],
    ['1.0.0', '1.0.0'],
    ['-1', '-1'],
  ])('reads attribute %s as %s', (text, value) => {
    expect(attributeValue(text)).toBe(value);
  });
});

describe('stage order: the reason reported is the cheapest failing check', () => {
  const starved = { cpus: 0, mem: 0, disk: 0, ports: [] as PortRange[] };
  const big = demand({ resources: { cpus: 1, mem: 128, disk: 10 }, ports: [{ hostPort: 80 }], constraints: [['rack', 'LIKE', 'r1'], ['hostname', 'UNIQUE']] });
  it.each([
    ['cordoned and without runtime', 'Unschedulable', { schedulable: false, runtimes: [] }],
    ['no runtime and no cpus', 'RuntimeMissing', { runtimes: [], resources: starved }],
    ['no cpus and no mem', 'InsufficientCpus', { resources: starved }],
    ['no mem and no disk', 'InsufficientMem', { resources: { ...starved, cpus: 1 } }],
    ['no disk and a LIKE mismatch', 'InsufficientDisk', { resources: { ...starved, cpus: 1, mem: 128 }, ...r2 }],
    ['a LIKE mismatch and no port', 'ConstraintLike', { resources: { cpus: 1, mem: 128, disk: 10, ports: [] }, ...r2 }],
    ['a missing attribute and no port', 'AttributeMissing', { resources: { cpus: 1, mem: 128, disk: 10, ports: [] }, ...noRack }],
    ['no port and a UNIQUE conflict', 'PortsUnavailable', { resources: { cpus: 1, mem: 128, disk: 10, ports: [] }, ...r1 }],
    ['only a UNIQUE conflict', 'ConstraintUnique', { resources: { cpus: 1, mem: 128, disk: 10, ports: [[80, 80]] }, ...r1 }],
    ['nothing wrong but a fresh host', 'ok', { hostname: 'h2', resources: { cpus: 1, mem: 128, disk: 10, ports: [[80, 80]] }, ...r1 }],
  ] as Array<[string, 'ok' | Reason, Partial<OfferView>]>)('%s → %s', (_name, expected, o) => {
    expect(outcome(checkOffer(big, offer(o), [on('h1')]))).toBe(expected);
  });

  it('reports an attribute check of a later constraint before a placement check of an earlier one', () => {
    const d = demand({ constraints: [['hostname', 'UNIQUE'], ['rack', 'IS', 'r1']] });
    expect(outcome(checkOffer(d, offer(r2), [on('h1')]))).toBe('ConstraintIs');
  });

  it('lists the reasons in stage order: a lost agent first, why an able agent was not offered last', () => {
    expect(REASON_ORDER).toEqual([
      'AgentLost',
      'Unschedulable',
      'RuntimeMissing',
      'InsufficientCpus',
      'InsufficientMem',
      'InsufficientDisk',
      'AttributeMissing',
      'ConstraintLike',
      'ConstraintUnlike',
      'ConstraintIs',
      'ConstraintCluster',
      'PortsUnavailable',
      'ConstraintUnique',
      'ConstraintGroupBy',
      'ConstraintMaxPer',
      'DeclineFilter',
      'OfferedElsewhere',
    ]);
  });
});

describe('checkOffers', () => {
  it('answers for each offer (or agent view) what checkOffer answers, counting the placed tasks once', () => {
    const d = demand({ ports: [{ hostPort: 0 }], constraints: [['hostname', 'UNIQUE'], ['rack', 'MAX_PER', '2']] });
    const placed = [on('h1', { rack: 'r1' }), on('h2', { rack: 'r1' })];
    const views: OfferView[] = [
      offer({ agent: 'a1', hostname: 'h1', attributes: { rack: 'r2' } }),
      offer({ agent: 'a2', hostname: 'h3', attributes: { rack: 'r1' } }),
      offer({ agent: 'a3', hostname: 'h4', attributes: { rack: 'r2' } }),
      offer({ agent: 'a4', hostname: 'h5', attributes: { rack: 'r2' }, schedulable: false }),
      offer({ agent: 'a5', hostname: 'h6', attributes: { rack: 'r3' }, resources: { cpus: 0.5, mem: 4096, disk: 0, ports: [] } }),
    ];
    const results = checkOffers(d, views, placed);
    expect(results.map(outcome)).toEqual(['ConstraintUnique', 'ConstraintMaxPer', 'ok', 'Unschedulable', 'InsufficientCpus']);
    expect(results).toEqual(views.map((v) => checkOffer(d, v, placed)));
    expect(results[2]).toEqual({ ok: true, ports: [31000] });
    expect(rejection(results[3]).detail).toBe('agent unschedulable (cordoned)');
  });

  it('answers nothing for no offers', () => {
    expect(checkOffers(demand(), [], [])).toEqual([]);
  });
});

describe('demandOf', () => {
  const base = {
    resources: { cpus: 0.5, mem: 64, disk: 1 },
    ports: [{ hostPort: 0, protocol: 'tcp' as const }, { hostPort: 8080, protocol: 'tcp' as const }],
    constraints: [] as Constraint[],
  };
  it('needs docker for a container and any runtime for a plain cmd', () => {
    expect(demandOf({ ...base, container: { image: 'busybox' } }).runtime).toBe('docker');
    expect(demandOf(base).runtime).toBeUndefined();
  });

  it('copies resources, host ports and constraints', () => {
    expect(demandOf({ ...base, constraints: [['hostname', 'UNIQUE']] })).toEqual({
      resources: { cpus: 0.5, mem: 64, disk: 1 },
      ports: [{ hostPort: 0 }, { hostPort: 8080 }],
      runtime: undefined,
      constraints: [['hostname', 'UNIQUE']],
    });
  });
});
