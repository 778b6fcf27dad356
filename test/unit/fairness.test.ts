import { allocationsByNode } from '../../pkg/api/allocation';
import { decideBodyRead, decideInflight, decideWatch, defaultHeadroom, fairShare, UserCounts, type Usage } from '../../pkg/apiserver/fairness';
import type { Task } from '../../pkg/api/types.generated';

describe('decideInflight', () => {
  // capacity 100, headroom 10: 90 slots anyone may borrow, the last 10 only for users under their share.
  const limits = { capacity: 100, headroom: 10 };
  it.each<[string, Usage, boolean, string | undefined]>([
    ['an idle server admits', { mine: 0, total: 0, users: 0 }, true, undefined],
    ['a user alone borrows up to capacity - headroom', { mine: 89, total: 89, users: 1 }, true, undefined],
    ['a user alone stops at capacity - headroom (share = 90/1)', { mine: 90, total: 90, users: 1 }, false, 'inflight-fair-share'],
    ['a newcomer gets a headroom slot while another holds 90', { mine: 0, total: 90, users: 1 }, true, undefined],
    ['the hog is refused once a second user holds a slot (share = 90/2 = 45)', { mine: 90, total: 91, users: 2 }, false, 'inflight-fair-share'],
    ['the second user keeps being served under its share', { mine: 5, total: 99, users: 2 }, true, undefined],
    ['every slot taken refuses even a user under its share', { mine: 5, total: 100, users: 2 }, false, 'max-inflight'],
    ['with 10 users busy, the share is 9', { mine: 9, total: 95, users: 10 }, false, 'inflight-fair-share'],
    ['with 10 users busy, a user at 8 is served', { mine: 8, total: 95, users: 10 }, true, undefined],
  ])('%s', (_name, usage, admit, limit) => {
    const d = decideInflight('u', usage, limits);
    expect(d.admit).toBe(admit);
    if (!d.admit) expect(d.limit).toBe(limit);
  });

  it('namesTheUserAndItsShareInTheMessage', () => {
    const d = decideInflight('viewer', { mine: 90, total: 91, users: 2 }, limits);
    expect(d).toMatchObject({ admit: false, message: expect.stringMatching(/^user "viewer" has 90 requests in flight, its fair share of 45 while the server is busy/) });
  });

  it('keepsOneSlotServersWorking', () => {
    // capacity 1: no headroom, the only slot goes to whoever asks first.
    const one = { capacity: 1, headroom: defaultHeadroom(1) };
    expect(decideInflight('a', { mine: 0, total: 0, users: 0 }, one).admit).toBe(true);
    expect(decideInflight('b', { mine: 0, total: 1, users: 1 }, one)).toMatchObject({ admit: false, limit: 'max-inflight' });
  });

  it.each([[1, 0], [2, 1], [10, 1], [100, 10], [1000, 100]])('headroom of %i slots is %i', (capacity, headroom) => {
    expect(defaultHeadroom(capacity)).toBe(headroom);
  });

  it('sharesAreAtLeastOne', () => {
    expect(fairShare({ capacity: 10, headroom: 1 }, 50)).toBe(1);
  });
});

describe('decideWatch', () => {
  const limits = { maxWatches: 2000, maxWatchesPerUser: 100 };
  it.each<[string, Usage, boolean, string | undefined]>([
    ['under both limits', { mine: 99, total: 500, users: 5 }, true, undefined],
    ['at the per-user cap', { mine: 100, total: 500, users: 5 }, false, 'max-watches-per-user'],
    ['at the global cap, under the user cap', { mine: 0, total: 2000, users: 30 }, false, 'max-watches'],
    ['at both: the user limit is named', { mine: 100, total: 2000, users: 20 }, false, 'max-watches-per-user'],
  ])('%s', (_name, usage, admit, limit) => {
    const d = decideWatch('u', usage, limits);
    expect(d.admit).toBe(admit);
    if (!d.admit) expect(d.limit).toBe(limit);
  });

  it('namesTheLimitInTheMessage', () => {
    expect(decideWatch('viewer', { mine: 100, total: 100, users: 1 }, limits)).toMatchObject({ message: expect.stringContaining('--max-watches-per-user=100') });
  });
});

describe('decideBodyRead', () => {
  it.each<[number, boolean]>([[0, true], [99, true], [100, false]])('a user with %i bodies arriving may start another: %s', (mine, admit) => {
    expect(decideBodyRead('u', { mine, total: mine, users: 1 }, 100).admit).toBe(admit);
  });
});

describe('UserCounts', () => {
  it('countsPerUserAndReleasesOnce', () => {
    const c = new UserCounts();
    const a1 = c.take('a');
    c.take('a');
    const b1 = c.take('b');
    expect(c.usage('a')).toEqual({ mine: 2, total: 3, users: 2 });
    a1();
    a1();
    expect(c.usage('a')).toEqual({ mine: 1, total: 2, users: 2 });
    b1();
    expect(c.usage('b')).toEqual({ mine: 0, total: 1, users: 1 });
  });
});

describe('allocationsByNode', () => {
  const task = (name: string, node: string | undefined, state: string, cpus: number, mem: number, extra: { hostPorts?: number[]; ports?: number[] } = {}) => ({
    apiVersion: 'shoal/v1', kind: 'Task', metadata: { name, namespace: 'ns' },
    spec: { nodeName: node, resources: { cpus, mem, disk: 1 }, ports: (extra.ports ?? []).map((hostPort) => ({ hostPort, protocol: 'tcp' })) },
    status: { state, ...(extra.hostPorts && { hostPorts: extra.hostPorts }) },
  }) as unknown as Task;

  it('sumsLiveTasksPerNodeAndSkipsTerminalAndUnplaced', () => {
    const out = allocationsByNode([
      task('a', 'n2', 'RUNNING', 0.1, 64, { hostPorts: [31002] }),
      task('b', 'n2', 'STAGING', 0.2, 32, { ports: [8080, 0] }),
      task('c', 'n2', 'FAILED', 4, 4096, { hostPorts: [31003] }),
      task('d', undefined, 'STAGING', 1, 1),
      task('e', 'n1', 'UNREACHABLE', 1, 128),
    ], '42');
    expect(out).toEqual([
      { apiVersion: 'shoal/v1', kind: 'NodeAllocation', metadata: { name: 'n1', resourceVersion: '42' }, allocated: { cpus: 1, mem: 128, disk: 1, ports: [] }, tasks: 1 },
      { apiVersion: 'shoal/v1', kind: 'NodeAllocation', metadata: { name: 'n2', resourceVersion: '42' }, allocated: { cpus: 0.3, mem: 96, disk: 2, ports: [8080, 31002] }, tasks: 2 },
    ]);
  });
});
