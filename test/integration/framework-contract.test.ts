/**
 * The framework contract over a real etcd: a framework written only against
 * pkg/master/framework.ts (test/harness/test-framework.ts) registers, gets offers, launches,
 * kills, reconciles and tears down, next to an App, with DRF sharing the agents between the
 * two roles.
 */
import { Registry as Metrics } from 'prom-client';
import { Agent } from '../../pkg/agent/agent';
import { APP_LABEL } from '../../pkg/api/apps';
import { lookupKind } from '../../pkg/api/kinds';
import { isTerminal } from '../../pkg/api/tasks';
import type { Task } from '../../pkg/api/types.generated';
import { Registry } from '../../pkg/apiserver/registry';
import { ControllerManager } from '../../pkg/controllers/manager';
import { EtcdStore } from '../../pkg/store/etcd';
import { assignmentKey, decodeKeyValue } from '../../pkg/store/objects';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { TestFramework } from '../harness/test-framework';
import { until } from '../harness/wait';

const log = silentLogger();
let store: EtcdStore;

beforeAll(() => {
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
});
afterAll(async () => {
  await store.close();
});

test('a contract-only framework launches, kills, reconciles and tears down beside an App, sharing the agents by DRF', async () => {
  const prefix = uniquePrefix().slice(0, -1);
  const agents: Agent[] = [];
  for (let i = 0; i < 2; i++) {
    const a = new Agent({
      store, prefix, nodeName: `node-${i}`, hostname: `host-${i}`, logger: log, leaseTtlSeconds: 2, runtime: 'hollow',
      capacity: { cpus: 4, mem: 4096, disk: 1024, ports: [[31000, 31009]] },
    });
    await a.start();
    agents.push(a);
  }
  // The App exists before the controller-manager leads: both frameworks want the whole cluster
  // (8 × 1 cpu each, 8 cpus in all) from the first round, and DRF gives each role half.
  await new Registry(store, prefix).create(lookupKind('app')!, 'default', {
    apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'web', namespace: 'default' },
    spec: { instances: 8, cmd: 'sleep 3600', resources: { cpus: 1, mem: 256 } },
  });
  const fw = new TestFramework({ id: 'batch', role: 'batch', namePrefix: 'b', want: 8, resources: { cpus: 1, mem: 256, disk: 0 } });
  const cm = new ControllerManager({ store, prefix, identity: 'cm', logger: log, registry: new Metrics(), leaderLeaseSeconds: 2, allocationIntervalMs: 100, frameworks: () => [fw] });
  const tasks = async (): Promise<Task[]> => (await store.list(`${prefix}/registry/tasks/`)).items.map((kv) => decodeKeyValue<Task>(kv));
  const running = async (pred: (t: Task) => boolean) => (await tasks()).filter((t) => pred(t) && t.status?.state === 'RUNNING');
  const ofFw = (t: Task) => t.metadata.labels?.['shoal.dev/framework'] === 'batch';
  const ofApp = (t: Task) => t.metadata.labels?.[APP_LABEL] === 'web';
  const why = async () => {
    const kv = await store.get(`${prefix}/registry/apps/default/web`);
    return `app status: ${JSON.stringify(kv ? JSON.parse(kv.value).status : undefined)}; shares ${JSON.stringify(cm.master()?.allocator.shares())}; tasks ${(await tasks()).map((t) => `${t.metadata.name}:${t.status?.state}`).join(' ')}`;
  };
  cm.start();
  try {
    // DRF: equal dominant shares, 4 tasks each; nothing else fits.
    await until('the cluster full: 4 tasks per role', async () => (await running(ofFw)).length === 4 && (await running(ofApp)).length === 4, 20_000, { explain: why });
    await new Promise((r) => setTimeout(r, 500)); // a few more allocation rounds: the split holds
    expect((await running(ofFw)).length).toBe(4);
    expect((await running(ofApp)).length).toBe(4);
    expect(cm.master()!.list().map((f) => f.id).sort()).toEqual(['apps', 'batch']);

    // kill: the framework scales down to 3 (slots 0-2) and kills the task of slot 3 through its driver.
    fw.want = 3;
    const names = (await running(ofFw)).map((t) => t.metadata.name).sort();
    const victim = names.pop()!;
    const rest = names;
    const killed = await fw.kill([victim, 'b-9-unknown']);
    expect(killed.killed.map((r) => r.taskName)).toEqual([victim]);
    expect(killed.skipped.map((r) => r.taskName)).toEqual(['b-9-unknown']);
    await until('the victim KILLED, reported to the framework', async () => fw.states.get(victim) === 'KILLED');
    const victimTask = (await tasks()).find((t) => t.metadata.name === victim)!;
    expect(await store.get(assignmentKey(prefix, victimTask.spec.nodeName!, 'default', victim))).toBeUndefined();
    // The freed cpu goes to the App, which still wants 8.
    await until('the App takes the freed cpu', async () => (await running(ofApp)).length === 5, 15_000, { explain: why });

    // reconcile: explicit (one live task, one unknown) and implicit (every live task).
    const seen = fw.updates.length;
    fw.driver!.reconcile([{ namespace: 'default', taskName: rest[0] }, { namespace: 'default', taskName: 'b-7-nope' }]);
    expect(fw.updates.length).toBe(seen); // answered after the call returns
    await until('explicit reconciliation answered', async () => fw.updates.length >= seen + 2);
    expect(fw.updates.slice(seen, seen + 2)).toEqual([
      expect.objectContaining({ taskName: rest[0], state: 'RUNNING', source: 'reconcile', agent: expect.stringMatching(/^node-/) }),
      expect.objectContaining({ taskName: 'b-7-nope', state: 'LOST', reason: 'ReconciliationUnknownTask', source: 'reconcile' }),
    ]);
    const before = fw.updates.length;
    fw.driver!.reconcile();
    await until('implicit reconciliation answered', async () => fw.updates.length >= before + 3);
    expect(fw.updates.slice(before).map((u) => u.taskName).sort()).toEqual(rest.sort());

    // teardown: every task of the framework killed, the framework unregistered; the App takes the cluster.
    await fw.driver!.teardown();
    expect(fw.unregisteredCalls).toBe(1);
    expect(cm.master()!.list().map((f) => f.id)).toEqual(['apps']);
    await until('the framework\'s tasks all ended', async () => (await tasks()).filter(ofFw).every((t) => isTerminal(t)), 15_000);
    await until('the App runs all 8', async () => (await running(ofApp)).length === 8, 15_000);
  } finally {
    await cm.stop();
    await Promise.all(agents.map((a) => a.stop({ revoke: true })));
  }
});
