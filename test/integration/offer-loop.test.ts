/**
 * The Mesos offer loop over a real etcd: hollow agents register, a controller-manager leads,
 * a test framework receives offers and launches tasks that land as bound Task objects and
 * assignment keys; a lost agent's tasks become LOST; a new leader launches nothing twice; a
 * stale leader cannot write.
 */
import { Registry } from 'prom-client';
import { Agent } from '../../pkg/agent/agent';
import { ControllerManager } from '../../pkg/controllers/manager';
import type { Task } from '../../pkg/api/types.generated';
import { Binder } from '../../pkg/master/binder';
import { EtcdStore } from '../../pkg/store/etcd';
import { assignmentPrefix, decodeKeyValue, leaderKey } from '../../pkg/store/objects';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { TestFramework, type TestFrameworkOptions } from '../harness/test-framework';
import { until as waitUntil } from '../harness/wait';

const log = silentLogger();
let store: EtcdStore;

beforeAll(() => {
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
});
afterAll(async () => {
  await store.close();
});

/** Polls with a 15 s default; on timeout also lists every task's state and node. */
function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  return waitUntil(what, fn, ms, { everyMs: 100, explain: async () => {
    const tasks = (await store.list('/')).items.filter((kv) => kv.key.includes('/registry/tasks/')).map((kv) => JSON.parse(kv.value) as Task);
    return `tasks: ${tasks.map((t) => `${t.metadata.name}:${t.status?.state}@${t.spec?.nodeName}`).join(' ')}`;
  } });
}

async function tasks(prefix: string): Promise<Task[]> {
  const { items } = await store.list(`${prefix}/registry/tasks/`);
  return items.map((kv) => decodeKeyValue<Task>(kv));
}

async function startAgents(prefix: string, n: number, ttl = 2): Promise<Agent[]> {
  const agents = [...Array(n).keys()].map((i) => new Agent({
    store, prefix, nodeName: `node-${i}`, logger: log, leaseTtlSeconds: ttl, runtime: 'hollow',
    capacity: { cpus: 2, mem: 1024, disk: 1024, ports: [[31000, 31009]] }, attributes: { rack: `r${i % 2}` },
  }));
  await Promise.all(agents.map((a) => a.start()));
  return agents;
}

function manager(prefix: string, identity: string, fw: Omit<TestFrameworkOptions, 'id' | 'role'>, made: TestFramework[], registry = new Registry()): ControllerManager {
  return new ControllerManager({
    store, prefix, identity, logger: log, registry, leaderLeaseSeconds: 2, allocationIntervalMs: 200,
    frameworks: () => {
      const f = new TestFramework({ id: 'test', role: 'r1', ...fw });
      made.push(f);
      return [f];
    },
  });
}

describe('offer loop', () => {
  it('launchesTasksThatLandAsBoundTasksAndAssignments', async () => {
    const prefix = uniquePrefix().slice(0, -1);
    const agents = await startAgents(prefix, 3);
    const made: TestFramework[] = [];
    const registry = new Registry();
    const cm = manager(prefix, 'cm-a', { namePrefix: 'web', want: 6, resources: { cpus: 0.5, mem: 64, disk: 0 }, ports: 1 }, made, registry);
    cm.start();
    try {
      const running = await until('6 RUNNING tasks', async () => {
        const all = await tasks(prefix);
        return all.length === 6 && all.every((t) => t.status.state === 'RUNNING') && all;
      });
      const nodes = new Set(running.map((t) => t.spec.nodeName));
      expect(nodes.size).toBeGreaterThanOrEqual(2);
      for (const t of running) {
        expect(t.spec.nodeName).toMatch(/^node-\d$/);
        expect(t.spec.resources).toEqual({ cpus: 0.5, mem: 64, disk: 0 });
        expect(t.status.hostPorts).toHaveLength(1);
        expect(t.metadata.labels?.['shoal.dev/framework']).toBe('test');
        const assigned = await store.get(`${assignmentPrefix(prefix, t.spec.nodeName!)}default/${t.metadata.name}`);
        expect(assigned).toBeDefined();
      }
      // no host port is given twice on one node
      const portsByNode = new Map<string, number[]>();
      for (const t of running) portsByNode.set(t.spec.nodeName!, [...(portsByNode.get(t.spec.nodeName!) ?? []), ...t.status.hostPorts!]);
      for (const ports of portsByNode.values()) expect(new Set(ports).size).toBe(ports.length);
      expect(made[0].results.filter((r) => r.ok)).toHaveLength(6);
      const text = await registry.metrics();
      expect(text).toMatch(/^shoal_launches_total\{result="bound"\} 6$/m);
      expect(text).toMatch(/^shoal_scheduling_latency_seconds_count 6$/m);
      expect(text).toMatch(/^shoal_offers_total\{result="offered"\} [1-9]/m);
      expect(text).toMatch(/^shoal_agents\{state="alive"\} 3$/m);
    } finally {
      await cm.stop();
      await Promise.all(agents.map((a) => a.stop({ revoke: true })));
    }
  });

  it('marksALostAgentsTasksLostWithinTtlPlus5sAndReplacesThem', async () => {
    const prefix = uniquePrefix().slice(0, -1);
    const agents = await startAgents(prefix, 3, 2);
    const made: TestFramework[] = [];
    const cm = manager(prefix, 'cm-a', { namePrefix: 'svc', want: 6, resources: { cpus: 0.5, mem: 64, disk: 0 } }, made);
    cm.start();
    try {
      const before = await until('6 RUNNING', async () => {
        const all = await tasks(prefix);
        return all.filter((t) => t.status.state === 'RUNNING').length === 6 && all;
      });
      const victim = before.find((t) => t.spec.nodeName === 'node-0') ? 'node-0' : before[0].spec.nodeName!;
      const onVictim = before.filter((t) => t.spec.nodeName === victim).map((t) => t.metadata.name);
      const crashedAt = Date.now();
      agents.find((a) => a.nodeName === victim)!.crash();
      await until('tasks on the lost agent LOST', async () => {
        const all = await tasks(prefix);
        return onVictim.every((n) => all.find((t) => t.metadata.name === n)?.status.state === 'LOST');
      }, 2_000 + 5_000 + 2_000);
      expect(Date.now() - crashedAt).toBeLessThan(2_000 + 5_000);
      const after = await until('replacements RUNNING on live agents', async () => {
        const all = await tasks(prefix);
        const live = all.filter((t) => t.status.state === 'RUNNING');
        return live.length === 6 && live;
      });
      expect(after.every((t) => t.spec.nodeName !== victim)).toBe(true);
      expect(made[0].updates.filter((u) => u.state === 'LOST').map((u) => u.taskName).sort()).toEqual(onVictim.sort());
    } finally {
      await cm.stop();
      await Promise.all(agents.map((a) => a.stop({ revoke: true })));
    }
  });

  it('handsOverToASecondLeaderThatLaunchesNothingTwice', async () => {
    const prefix = uniquePrefix().slice(0, -1);
    const agents = await startAgents(prefix, 3);
    const made: TestFramework[] = [];
    const fw = { namePrefix: 'job', want: 6, resources: { cpus: 0.5, mem: 64, disk: 0 } };
    const a = manager(prefix, 'cm-a', fw, made);
    const b = manager(prefix, 'cm-b', fw, made);
    a.start();
    await until('cm-a leads', async () => a.isLeader());
    b.start();
    try {
      await until('6 tasks', async () => (await tasks(prefix)).length === 6);
      const stoppedAt = Date.now();
      await a.stop();
      await until('cm-b leads', async () => b.isLeader(), 5_000);
      expect(Date.now() - stoppedAt).toBeLessThan(3_000);
      await new Promise((r) => setTimeout(r, 1_000)); // several allocation rounds of the new leader
      const all = await tasks(prefix);
      expect(all).toHaveLength(6);
      const slots = all.map((t) => /^job-(\d+)-/.exec(t.metadata.name)![1]);
      expect(new Set(slots).size).toBe(6);
    } finally {
      await a.stop();
      await b.stop();
      await Promise.all(agents.map((x) => x.stop({ revoke: true })));
    }
  });

  it('rejectsAStaleLeadersWrites', async () => {
    const prefix = uniquePrefix().slice(0, -1);
    const [agent] = await startAgents(prefix, 1);
    const cm = manager(prefix, 'cm-a', { namePrefix: 'x', want: 0, resources: { cpus: 0.1, mem: 8, disk: 0 } }, []);
    cm.start();
    try {
      await until('leading', async () => cm.isLeader());
      const current = (await store.get(leaderKey(prefix)))!;
      const staleFence = { key: leaderKey(prefix), modRevision: current.modRevision - 1 };
      const lease = (await store.get(`${prefix}/leases/nodes/node-0`))!;
      const [result] = await new Binder(store, prefix, log).bind([{
        frameworkId: 'test', agent: 'node-0', leaseRevision: lease.modRevision,
        request: { offerId: '1', namespace: 'default', taskName: 'stale-1', resources: { cpus: 0.1, mem: 8, disk: 0 }, ports: [], task: { spec: { cmd: 'x' } } },
      }], staleFence);
      expect(result).toMatchObject({ ok: false, reason: 'NotLeader' });
      expect(await tasks(prefix)).toHaveLength(0);
      expect(await store.get(`${assignmentPrefix(prefix, 'node-0')}default/stale-1`)).toBeUndefined();
    } finally {
      await cm.stop();
      await agent.stop({ revoke: true });
    }
  });
});
