import { checkOffer, placeMany, type Demand, type Reason } from '../../pkg/scheduler/feasibility';
import { PendingSummary, type Outcome } from '../../pkg/scheduler/pending';
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
        { reason: 'InsufficientCpus', count: 3, sentence: 'insufficient cpus' },
        { reason: 'ConstraintUnique', count: 2, sentence: 'constraint UNIQUE hostname' },
      ],
    });
  });

  it.each<[string, Array<[string, Outcome]>, string]>([
    ['no offers yet', [], '0/0 agents available: no offers seen yet.'],
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

  it('keeps only the last outcome of each agent', () => {
    const s = summaryOf([['a', 'InsufficientCpus'], ['b', 'InsufficientCpus'], ['a', 'ok'], ['b', 'PortsUnavailable']]);
    expect(s.message()).toBe('1/2 agents available: 1 ports unavailable.');
  });

  it('forgets lost agents and starts over on clear', () => {
    const s = summaryOf([['a', 'InsufficientCpus'], ['b', 'ok']]);
    s.forget('a');
    expect(s.message()).toBe('1/1 agents available.');
    s.clear();
    expect(s.summary()).toEqual({ agentsSeen: 0, available: 0, reasons: [] });
  });

  it('lists each agent’s detail by agent name for describe', () => {
    const s = summaryOf([['c', uniqueHostname], ['a', 'ok'], ['b', 'InsufficientDisk']]);
    expect(s.perAgent()).toEqual([
      { agent: 'a', ok: true },
      { agent: 'b', ok: false, reason: 'InsufficientDisk', detail: 'insufficient disk' },
      { agent: 'c', ok: false, reason: 'ConstraintUnique', detail: 'constraint UNIQUE hostname (agent d …)' },
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
