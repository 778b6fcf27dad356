/**
 * The App controller over a real etcd with hollow agents: Apps written through the registry
 * become tasks spread over the agents; scaling, rolling upgrades, constraints that cannot be
 * met, lost agents, leader changes, stray tasks and deletion all converge.
 */
import { Registry as Metrics } from 'prom-client';
import { Agent } from '../../pkg/agent/agent';
import { APP_FINALIZER, APP_LABEL, appHistoryKey } from '../../pkg/api/apps';
import { lookupKind } from '../../pkg/api/kinds';
import type { App, Task } from '../../pkg/api/types.generated';
import { Registry } from '../../pkg/apiserver/registry';
import { isTerminal } from '../../pkg/api/tasks';
import { ControllerManager } from '../../pkg/controllers/manager';
import { EtcdStore } from '../../pkg/store/etcd';
import { assignmentKey, decodeKeyValue, encodeObject, objectKey } from '../../pkg/store/objects';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { until as waitUntil } from '../harness/wait';

const log = silentLogger();
const APPS = lookupKind('app')!;
const TASKS = lookupKind('task')!;
let store: EtcdStore;

beforeAll(() => {
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
});
afterAll(async () => {
  await store.close();
});

/** One test's cluster: a prefix, hollow agents, controller-managers, and the registry to write Apps with. */
class Cluster {
  readonly prefix = uniquePrefix().slice(0, -1);
  readonly registry = new Registry(store, this.prefix);
  readonly agents: Agent[] = [];
  readonly managers: ControllerManager[] = [];

  async startAgents(n: number, cpus = 2): Promise<void> {
    for (let i = this.agents.length; i < n; i++) {
      const a = new Agent({
        store, prefix: this.prefix, nodeName: `node-${i}`, hostname: `host-${i}`, logger: log, leaseTtlSeconds: 2, runtime: 'hollow',
        capacity: { cpus, mem: 4096, disk: 1024, ports: [[31000, 31009]] }, attributes: { rack: `r${i % 2}` },
      });
      await a.start();
      this.agents.push(a);
    }
  }

  startManager(identity: string): ControllerManager {
    const cm = new ControllerManager({ store, prefix: this.prefix, identity, logger: log, registry: new Metrics(), leaderLeaseSeconds: 2, allocationIntervalMs: 100 });
    cm.start();
    this.managers.push(cm);
    return cm;
  }

  async stop(): Promise<void> {
    await Promise.all(this.managers.map((m) => m.stop()));
    await Promise.all(this.agents.map((a) => a.stop().catch(() => undefined)));
  }

  async apply(name: string, spec: Record<string, unknown>): Promise<App> {
    const ref = { kind: APPS, namespace: 'default', name };
    const body = { apiVersion: 'shoal/v1', kind: 'App', metadata: { name, namespace: 'default' }, spec };
    const existing = await this.app(name);
    return (existing ? await this.registry.update(ref, body) : await this.registry.create(APPS, 'default', body)) as App;
  }

  async app(name: string): Promise<App | undefined> {
    const kv = await store.get(objectKey(this.prefix, APPS, 'default', name));
    return kv ? decodeKeyValue<App>(kv) : undefined;
  }

  async tasks(app?: string): Promise<Task[]> {
    const { items } = await store.list(`${this.prefix}/registry/tasks/`);
    return items.map((kv) => decodeKeyValue<Task>(kv)).filter((t) => !app || t.metadata.labels?.[APP_LABEL] === app);
  }

  async live(app?: string): Promise<Task[]> {
    return (await this.tasks(app)).filter((t) => !isTerminal(t));
  }

  until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
    return waitUntil(what, fn, ms, { everyMs: 100, explain: async () => {
      const all = await this.tasks();
      return `tasks: ${all.map((t) => `${t.metadata.name}:${t.status?.state}@${t.spec?.nodeName}`).join(' ')}`;
    } });
  }

  async running(app: string, n: number): Promise<Task[]> {
    return this.until(`${n} RUNNING tasks of ${app}`, async () => {
      const live = await this.live(app);
      return live.length === n && live.every((t) => t.status?.state === 'RUNNING') && live;
    });
  }
}

const SPEC = { cmd: 'sleep 3600', resources: { cpus: 0.5, mem: 64 } };
let c: Cluster;
beforeEach(() => {
  c = new Cluster();
});
afterEach(async () => {
  await c.stop();
});

describe('App controller', () => {
  it('spreadsScalesUpWithoutReplacingAndScalesDownYoungestFirst', async () => {
    await c.startAgents(3);
    c.startManager('cm-a');
    await c.apply('web', { ...SPEC, instances: 3 });
    const first = await c.running('web', 3);
    expect(new Set(first.map((t) => t.spec.nodeName)).size).toBe(3);
    const app = await c.until('status 3/3', async () => { const a = await c.app('web'); return a?.status.availableInstances === 3 && a; });
    expect(app.metadata.finalizers).toContain(APP_FINALIZER);
    expect(app.status).toMatchObject({ observedGeneration: 1, instances: 3, tasksRunning: 3, updatedInstances: 3, deployment: { targetVersion: 1, state: 'Succeeded' } });
    expect(app.status.conditions?.map((x) => [x.type, x.status])).toEqual([['Available', 'True'], ['Progressing', 'True']]);
    const t0 = first[0]!;
    expect(t0.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'App', name: 'web', uid: app.metadata.uid, version: 1 });
    expect(t0.spec).toMatchObject({ cmd: 'sleep 3600', resources: { cpus: 0.5, mem: 64, disk: 0 } });

    await c.apply('web', { ...SPEC, instances: 5 });
    const five = await c.running('web', 5);
    const firstNames = first.map((t) => t.metadata.name);
    expect(five.map((t) => t.metadata.name)).toEqual(expect.arrayContaining(firstNames));

    await c.apply('web', { ...SPEC, instances: 2 });
    const two = await c.running('web', 2);
    // YoungestFirst: the survivors are the oldest.
    const byAge = five.sort((a, b) => Date.parse(a.metadata.creationTimestamp!) - Date.parse(b.metadata.creationTimestamp!));
    for (const t of two) expect(byAge.slice(0, 3).map((x) => x.metadata.name)).toContain(t.metadata.name);
    const killed = (await c.tasks('web')).filter((t) => t.status.state === 'KILLED');
    expect(killed).toHaveLength(3);
  }, 40_000);

  it('rollsUpgradesWithinMinimumHealthCapacityAndKeepsHistory', async () => {
    await c.startAgents(3);
    c.startManager('cm-a');
    const strategy = { minimumHealthCapacity: 0.5, maximumOverCapacity: 0 };
    await c.apply('web', { ...SPEC, instances: 4, upgradeStrategy: strategy });
    const old = await c.running('web', 4);
    await c.apply('web', { ...SPEC, instances: 4, upgradeStrategy: strategy, env: { V: '2' } });
    let minRunning = Infinity;
    let maxLive = 0;
    const done = await c.until('all on version 2', async () => {
      const live = await c.live('web');
      minRunning = Math.min(minRunning, live.filter((t) => t.status.state === 'RUNNING').length);
      maxLive = Math.max(maxLive, live.length);
      const a = await c.app('web');
      return a?.status.deployment?.state === 'Succeeded' && a.status.deployment.targetVersion === 2 && live.length === 4 && live.every((t) => t.status.state === 'RUNNING') && live;
    }, 20_000);
    expect(minRunning).toBeGreaterThanOrEqual(2);
    expect(maxLive).toBeLessThanOrEqual(4);
    for (const t of done) {
      expect(t.spec.env).toEqual({ V: '2' });
      expect(old.map((o) => o.metadata.name)).not.toContain(t.metadata.name);
    }
  }, 40_000);

  it('explainsInstancesThatNoAgentCanRun', async () => {
    await c.startAgents(3);
    c.startManager('cm-a');
    await c.apply('uniq', { ...SPEC, instances: 4, constraints: [['hostname', 'UNIQUE']] });
    await c.running('uniq', 3);
    // Status is eventually consistent: counts-only changes are written at most once a second.
    const app = await c.until('a pending reason and 3 running', async () => { const a = await c.app('uniq'); return a?.status.pendingReason && a.status.tasksRunning === 3 ? a : undefined; });
    expect(app.status.pendingReason).toMatch(/^0\/3 agents available: 3 constraint UNIQUE hostname/);
    expect(app.status.tasksRunning).toBe(3);
    expect(app.status.conditions?.find((x) => x.type === 'Available')?.status).toBe('False');
    // A fourth agent resolves it.
    await c.startAgents(4);
    await c.running('uniq', 4);
    await c.until('pending reason cleared', async () => (await c.app('uniq'))?.status.pendingReason === undefined);
  }, 40_000);

  it('replacesTheTasksOfALostAgentOnTheOthers', async () => {
    await c.startAgents(3);
    c.startManager('cm-a');
    await c.apply('web', { ...SPEC, instances: 6 });
    const before = await c.running('web', 6);
    const victim = c.agents[0]!;
    const onVictim = before.filter((t) => t.spec.nodeName === 'node-0').map((t) => t.metadata.name);
    expect(onVictim.length).toBeGreaterThan(0);
    await victim.stop({ revoke: true });
    // Its tasks are UNREACHABLE (kept in case it returns); 6 run elsewhere, replacements included.
    const after = await c.until('6 RUNNING off node-0, the lost agent\'s UNREACHABLE', async () => {
      const live = await c.live('web');
      const here = live.filter((t) => t.spec.nodeName !== 'node-0');
      const away = live.filter((t) => t.spec.nodeName === 'node-0');
      return here.length === 6 && here.every((t) => t.status.state === 'RUNNING') && away.every((t) => t.status.state === 'UNREACHABLE') && here;
    });
    expect(after.map((t) => t.metadata.name)).not.toEqual(expect.arrayContaining(onVictim));
  }, 40_000);

  it('aNewLeaderLaunchesNothingTwice', async () => {
    await c.startAgents(3);
    const a = c.startManager('cm-a');
    await c.until('cm-a leads', async () => a.isLeader());
    c.startManager('cm-b');
    await c.apply('web', { ...SPEC, instances: 3 });
    await c.running('web', 3);
    await c.apply('web', { ...SPEC, instances: 8 });
    await a.stop();
    let maxLive = 0;
    await c.until('8 RUNNING', async () => {
      const live = await c.live('web');
      maxLive = Math.max(maxLive, live.length);
      return live.length === 8 && live.every((t) => t.status.state === 'RUNNING');
    });
    await new Promise((r) => setTimeout(r, 1000));
    expect(maxLive).toBe(8);
    expect(await c.live('web')).toHaveLength(8);
  }, 40_000);

  it('deletesAnAppAfterStoppingItsTasksAndKillsStrays', async () => {
    await c.startAgents(2);
    c.startManager('cm-a');
    await c.apply('web', { ...SPEC, instances: 2 });
    const tasks = await c.running('web', 2);
    const app = (await c.app('web'))!;
    await store.create(appHistoryKey(c.prefix, 'default', 'web', 1), '{}').catch(() => undefined);
    await c.registry.delete({ kind: APPS, namespace: 'default', name: 'web' });
    await c.until('app gone', async () => (await c.app('web')) === undefined);
    expect(await c.tasks('web')).toEqual([]);
    for (const t of tasks) expect(await store.get(assignmentKey(c.prefix, t.spec.nodeName!, 'default', t.metadata.name))).toBeUndefined();
    expect(await store.get(appHistoryKey(c.prefix, 'default', 'web', 1))).toBeUndefined();
    for (const agent of c.agents) expect((await agent.runtime.list()).filter((r) => r.name.startsWith('web-'))).toEqual([]);

    // A task left by an App that no longer exists (or an earlier App of the same name) is stopped and removed.
    const stray = { ...tasks[0]!, metadata: { ...tasks[0]!.metadata, name: 'web-stray', uid: 'stray', resourceVersion: undefined, ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'App', name: 'web', uid: app.metadata.uid ?? '' }] } } as Task;
    await store.create(assignmentKey(c.prefix, stray.spec.nodeName!, 'default', 'web-stray'), JSON.stringify({ metadata: stray.metadata, spec: stray.spec }));
    await store.create(objectKey(c.prefix, TASKS, 'default', 'web-stray'), encodeObject({ ...stray, status: { state: 'STAGING' } }));
    await c.until('stray removed', async () => (await c.tasks('web')).length === 0);
  }, 40_000);
});
