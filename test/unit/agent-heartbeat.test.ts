/**
 * Node.status.lastHeartbeatTime: refreshed every heartbeatIntervalSeconds while the agent's lease
 * lives (NodeHeartbeat in pkg/agent/leases.ts), never once the lease is gone; no Node write in
 * between (the lease renewals are not Node writes).
 */
import { Agent } from '../../pkg/agent/agent';
import { DEFAULT_HEARTBEAT_INTERVAL_SECONDS, NodeHeartbeat } from '../../pkg/agent/leases';
import { lookupKind } from '../../pkg/api/kinds';
import type { Node } from '../../pkg/api/types.generated';
import { FakeRuntime } from '../../pkg/runtime/fake';
import { MemoryStore } from '../../pkg/store/memory';
import { agentLeaseKey, decodeKeyValue, objectKey } from '../../pkg/store/objects';
import { FakeClock } from '../../pkg/util/clock';
import { silentLogger } from '../../pkg/util/log';

const NODES = lookupKind('node')!;
const P = '/shoal';
const T0 = Date.UTC(2026, 0, 1);
const NODE_KEY = objectKey(P, NODES, undefined, 'n1');

let clock: FakeClock;
let store: MemoryStore;
let agents: Agent[];

beforeEach(() => {
  clock = new FakeClock(T0);
  store = new MemoryStore({ clock });
  agents = [];
});
afterEach(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await store.close();
});

async function startAgent(o: { heartbeatIntervalSeconds?: number } = {}): Promise<Agent> {
  const a = new Agent({ store, prefix: P, nodeName: 'n1', capacity: { cpus: 1, mem: 64, disk: 0, ports: [] }, runtime: new FakeRuntime(), leaseTtlSeconds: 5, logger: silentLogger(), clock, heartbeatIntervalSeconds: DEFAULT_HEARTBEAT_INTERVAL_SECONDS, ...o });
  agents.push(a);
  await a.start();
  return a;
}

async function node(): Promise<{ heartbeat: string | undefined; modRevision: number }> {
  const kv = (await store.get(NODE_KEY))!;
  return { heartbeat: decodeKeyValue<Node>(kv).status?.lastHeartbeatTime, modRevision: kv.modRevision };
}

describe('agent heartbeat', () => {
  it('refreshesLastHeartbeatTimeEveryIntervalWhileTheLeaseLives', async () => {
    await startAgent();
    const registered = await node();
    expect(registered.heartbeat).toBe(new Date(T0).toISOString());
    // Within the first interval (the first beat comes at 15-30 s): lease renewals, no Node write.
    await clock.stepAsync(14_000);
    expect(await node()).toEqual(registered);
    await clock.stepAsync(16_000); // 30 s: the first beat has come
    const first = await node();
    expect(Date.parse(first.heartbeat!)).toBeGreaterThan(T0 + 14_000);
    expect(Date.parse(first.heartbeat!)).toBeLessThanOrEqual(T0 + 30_000);
    await clock.stepAsync(30_000);
    const second = await node();
    expect(Date.parse(second.heartbeat!) - Date.parse(first.heartbeat!)).toBe(30_000);
    // The rest of the Node is as registered: spec, conditions, capacity.
    const n = decodeKeyValue<Node>((await store.get(NODE_KEY))!);
    expect(n.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: new Date(T0).toISOString() });
    expect(n.status.capacity).toEqual({ cpus: 1, mem: 64, disk: 0, ports: [] });
  });

  it('writesNothingOnceTheLeaseKeyIsGone', async () => {
    const a = await startAgent({ heartbeatIntervalSeconds: 10 });
    const hb = new NodeHeartbeat({
      store, nodeKey: NODE_KEY, leaseKey: agentLeaseKey(P, 'n1'), leaseRevision: () => a.registration, intervalSeconds: 10,
      clock, signal: new AbortController().signal, logger: silentLogger(),
    });
    expect(await hb.beat()).toBe(true);
    // The lease expired in etcd (renewals failed) before the agent heard of it: no beat.
    const revision = a.registration;
    await store.delete(agentLeaseKey(P, 'n1'));
    const stale = new NodeHeartbeat({
      store, nodeKey: NODE_KEY, leaseKey: agentLeaseKey(P, 'n1'), leaseRevision: () => revision, intervalSeconds: 10,
      clock, signal: new AbortController().signal, logger: silentLogger(),
    });
    const before = await node();
    expect(await stale.beat()).toBe(false);
    expect(await node()).toEqual(before);
  });

  it('isOffByDefaultInAnAgentAndCanBeTurnedOff', async () => {
    expect(DEFAULT_HEARTBEAT_INTERVAL_SECONDS).toBe(30); // what startAgent (shoal-agent, shoal dev) sets
    await startAgent({ heartbeatIntervalSeconds: undefined });
    const registered = await node();
    await clock.stepAsync(120_000);
    expect(await node()).toEqual(registered);
  });

  it('stopsWithTheAgent', async () => {
    const a = await startAgent();
    await clock.stepAsync(30_000);
    const last = await node();
    await a.stop({ revoke: false });
    await clock.stepAsync(120_000);
    expect(await node()).toEqual(last);
  });
});
