import { checkOffer, placeMany, type Demand, type Reason } from '../../pkg/scheduler/feasibility';
import { EXAMPLES_PER_REASON, PendingSummary, type Outcome } from '../../pkg/scheduler/pending';
import type { Offer } from '../../pkg/scheduler/types';

function summaryOf(outcomes: Array<[string, Outcome]>): PendingSummary {
  const s = new PendingSummary();
  for (const [agent, outcome] of outcomes) s.record(agent, outcome);
  return s;
}

const uniqueHostname = { reason: 'ConstraintUnique' as Reason, sentence: 'constraint UNIQUE hostname', detail: 'constraint UNIQUE hostname (agent d …)' };

describe('PendingSummary', () => {
  it('says how many agents could run the work and why the others could not, Kubernetes style', () => {
    const s = summaryOf([
      ['a', 'InsufficientCpus'],
      ['b', 'InsufficientCpus'],
      ['c', 'InsufficientCpus'],
      ['d', uniqueHostname],
      ['e', { ...uniqueHostname, detail: 'constraint UNIQUE hostname (agent e …)' }],
    ]);
    expect(s.message()).toBe('0/5 agents available: 3 insufficient cpus, 2 constraint UNIQUE hostname.');
    expect(s.summary()).toEqual({
      agentsSeen: 5,
      available: 0,
      reasons: [
        {
          reason: 'InsufficientCpus', count: 3, sentence: 'insufficient cpus',
          agents: [{ name: 'a', detail: 'insufficient cpus' }, { name: 'b', detail: 'insufficient cpus' }, { name: 'c', detail: 'insufficient cpus' }],
        },
        {
          reason: 'ConstraintUnique', count: 2, sentence: 'constraint UNIQUE hostname',
          agents: [{ name: 'd', detail: 'constraint UNIQUE hostname (agent d …)' }, { name: 'e', detail: 'constraint UNIQUE hostname (agent e …)' }],
        },
      ],
    });
  });

  it.each<[string, Array<[string, Outcome]>, string]>([
    ['no agents', [], '0/0 agents available: no agents registered.'],
    ['every agent available', [['a', 'ok'], ['b', 'ok']], '2/2 agents available.'],
    ['some available, some not', [['a', 'ok'], ['b', 'InsufficientMem']], '1/2 agents available: 1 insufficient mem.'],
    [
      'ties in stage order (cheapest check first)',
      [['a', 'PortsUnavailable'], ['b', 'InsufficientMem'], ['c', 'Unschedulable']],
      '0/3 agents available: 1 agent unschedulable, 1 insufficient mem, 1 ports unavailable.',
    ],
    [
      'most frequent first',
      [['a', 'InsufficientMem'], ['b', 'RuntimeMissing'], ['c', 'RuntimeMissing']],
      '0/3 agents available: 2 runtime missing, 1 insufficient mem.',
    ],
    [
      'one reason, several sentences: counted apart, ties by sentence',
      [['a', { reason: 'AttributeMissing', sentence: 'attribute zone missing' }], ['b', { reason: 'AttributeMissing', sentence: 'attribute rack missing' }]],
      '0/2 agents available: 1 attribute rack missing, 1 attribute zone missing.',
    ],
  ])('%s', (_name, outcomes, message) => {
    expect(summaryOf(outcomes).message()).toBe(message);
  });

  it('keeps the first three agents by name as examples of each reason, each with its own detail', () => {
    const s = summaryOf(['e', 'c', 'a', 'd', 'b'].map((agent): [string, Outcome] => [agent, { reason: 'InsufficientMem', detail: `insufficient mem (${agent})` }]));
    const [r] = s.summary().reasons;
    expect(EXAMPLES_PER_REASON).toBe(3);
    expect(r).toEqual({
      reason: 'InsufficientMem', count: 5, sentence: 'insufficient mem',
      agents: [{ name: 'a', detail: 'insufficient mem (a)' }, { name: 'b', detail: 'insufficient mem (b)' }, { name: 'c', detail: 'insufficient mem (c)' }],
    });
    expect(s.message()).toBe('0/5 agents available: 5 insufficient mem.');
  });

  it('counts the reasons of agents that were not offered after the checks, and a lost agent first among ties', () => {
    const s = summaryOf([
      ['a', 'DeclineFilter'], ['b', 'OfferedElsewhere'], ['c', { reason: 'AgentLost', detail: 'agent lost (lease expired)' }], ['d', 'Unschedulable'], ['e', 'ok'],
    ]);
    expect(s.message()).toBe('1/5 agents available: 1 agent lost, 1 agent unschedulable, 1 declined recently (offer filter), 1 offered to another framework.');
    expect(s.summary().reasons[0].agents).toEqual([{ name: 'c', detail: 'agent lost (lease expired)' }]);
  });

  it('keeps only the last outcome of each agent', () => {
    const s = summaryOf([['a', 'InsufficientCpus'], ['b', 'InsufficientCpus'], ['a', 'ok'], ['b', 'PortsUnavailable']]);
    expect(s.message()).toBe('1/2 agents available: 1 ports unavailable.');
  });

  it('keeps each reason’s example agents by name, with their details', () => {
    const s = summaryOf([['c', uniqueHostname], ['a', 'ok'], ['b', 'InsufficientDisk']]);
    expect(s.summary().reasons.map((r) => r.agents)).toEqual([
      [{ name: 'b', detail: 'insufficient disk' }],
      [{ name: 'c', detail: 'constraint UNIQUE hostname (agent d …)' }],
    ]);
  });

  it('summarizes the rejections of a placement round and of single checks', () => {
    const offer = (agent: string, cpus: number): Offer => ({
      id: `o-${agent}`,
      frameworkId: 'apps',
      agent,
      hostname: agent,
      attributes: {},
      runtimes: ['hollow'],
      resources: { cpus, mem: 1024, disk: 0, ports: [] },
      expiresAt: 0,
    });
    const d: Demand = { resources: { cpus: 1, mem: 64, disk: 0 }, ports: [], constraints: [['hostname', 'UNIQUE']] };
    const offers = [offer('a', 4), offer('b', 4), offer('c', 0.5)];
    const round = placeMany([d, d, d], offers, []);
    const s = new PendingSummary();
    for (const { agent, rejection } of round.unplaced[0].rejections) s.record(agent, rejection);
    expect(s.message()).toBe('0/3 agents available: 2 constraint UNIQUE hostname, 1 insufficient cpus.');
    const fresh = offer('d', 4);
    const r = checkOffer(d, fresh, [], []);
    s.record(fresh.agent, r.ok ? 'ok' : r);
    expect(s.message()).toBe('1/4 agents available: 2 constraint UNIQUE hostname, 1 insufficient cpus.');
  });
});
