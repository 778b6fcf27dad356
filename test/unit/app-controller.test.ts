/**
 * The App controller's shell against an in-memory store, with the offer rounds driven by hand:
 * races between a sync that is writing (a kill) and the framework launching from the work the
 * previous sync published. The end-to-end behaviour is covered over a real etcd in
 * test/integration/app-controller.test.ts.
 */
import { APP_FINALIZER } from '../../pkg/api/apps';
import type { App, Task } from '../../pkg/api/types.generated';
import { admit, formatCauses } from '../../pkg/api/validation';
import { AppController } from '../../pkg/controllers/apps/controller';
import { configHash, keyOf, newTaskName, taskTemplate } from '../../pkg/controllers/apps/template';
import { EventRecorder } from '../../pkg/client/events';
import { clusterInformers } from '../../pkg/client/informers';
import { isTerminal } from '../../pkg/api/tasks';
import { Binder } from '../../pkg/master/binder';
import type { Framework, FrameworkRegistry, LaunchRequest, Offer, SchedulerDriver } from '../../pkg/master/framework';
import { fencedBatches } from '../../pkg/store/fenced';
import { FakeClock, settle } from '../../pkg/util/clock';
import { MemoryStore } from '../../pkg/store/memory';
import { agentLeaseKey, assignmentKey, decodeKeyValue, encodeObject, leaderKey } from '../../pkg/store/objects';
import type { Store } from '../../pkg/store/types';
import { silentLogger } from '../../pkg/util/log';

const P = '/shoal';
const log = silentLogger();

function mkApp(generation: number, env: Record<string, string>): App {
  const r = admit({
    apiVersion: 'shoal/v1', kind: 'App',
    metadata: { name: 'web', namespace: 'default', uid: 'uid-web', generation, finalizers: [APP_FINALIZER] },
    spec: { cmd: 'sleep 3600', instances: 4, env, resources: { cpus: 0.5, mem: 64 }, upgradeStrategy: { minimumHealthCapacity: 0.5, maximumOverCapacity: 0 } },
  });
  if (!r.ok) throw new Error(formatCauses(r.causes));
  return r.object as App;
}

/** A store whose transactions can be held at a gate, to run an offer round while a sync is writing. */
function gated(store: MemoryStore) {
  let gate: Promise<void> | undefined;
  let open = () => {};
  let reached = () => {};
  let arrived = Promise.resolve();
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== 'txn' || typeof v !== 'function') return typeof v === 'function' ? v.bind(target) : v;
      return async (...args: Parameters<Store['txn']>) => {
        if (gate) {
          reached();
          await gate;
        }
        return target.txn(...args);
      };
    },
  });
  return {
    store: proxy as Store,
    hold(): void {
      gate = new Promise((r) => (open = r));
      arrived = new Promise((r) => (reached = r));
    },
    /** Resolves once a transaction waits at the gate. */
    arrived: () => arrived,
    release(): void {
      gate = undefined;
      open();
    },
  };
}

async function setup() {
  const clock = new FakeClock();
  const mem = new MemoryStore({ clock });
  const fence = { key: leaderKey(P), modRevision: await mem.create(leaderKey(P), 'cm') };
  const leases = new Map<string, number>();
  for (const n of ['n1', 'n2', 'n3']) leases.set(n, await mem.create(agentLeaseKey(P, n), '{}'));
  const binder = new Binder(mem, P, log);
  const launched: LaunchRequest[] = [];
  const offers = new Map<string, Offer>();
  const g = gated(mem);
  const informers = clusterInformers(mem, P, log);
  // The master's part, by hand: binds, kills (through the gated store) and status updates.
  const driver: SchedulerDriver = {
    async accept(_ids, launches) {
      launched.push(...launches);
      return binder.bind(launches.map((request) => ({ request, frameworkId: 'apps', agent: offers.get(request.offerId)!.agent, leaseRevision: leases.get(offers.get(request.offerId)!.agent)! })), fence);
    },
    decline: () => undefined,
    suppress: () => undefined,
    revive: () => undefined,
    async kill(refs) {
      const tasks = refs.map((r) => informers.tasks.get(`${P}/registry/tasks/${r.namespace}/${r.taskName}`)!);
      await fencedBatches({ store: g.store, fence }, tasks.map((t) => ({ op: 'delete' as const, key: assignmentKey(P, t.spec.nodeName!, 'default', t.metadata.name) })));
      return { killed: refs, skipped: [] };
    },
    reconcile: () => undefined,
    teardown: async () => undefined,
    agents: () => [],
    now: () => clock.now(),
  };
  let fw: Framework | undefined;
  const frameworks: FrameworkRegistry = {
    register(f) {
      fw = f;
      f.registered?.(driver);
      return driver;
    },
    unregister: () => undefined,
    get: () => fw,
    list: () => (fw ? [fw] : []),
  };
  informers.tasks.addHandlers({
    onAdd: (_k, t) => fw?.statusUpdate(driver, { namespace: 'default', taskName: t.metadata.name, state: t.status.state ?? 'STAGING', source: 'agent' }),
  });
  let n = 0;
  const offer = (agent: string, cpus: number): Offer => {
    const o: Offer = { id: `o${++n}`, frameworkId: 'apps', agent, hostname: agent, attributes: {}, runtimes: ['process'], resources: { cpus, mem: 4096, disk: 100, ports: [[31000, 31009]] }, expiresAt: clock.now() + 60_000 };
    offers.set(o.id, o);
    return o;
  };
  await informers.start();
  const ctl = new AppController({ store: g.store, prefix: P, informers, fence, logger: log, events: new EventRecorder(mem, P, 'test', log), frameworks, clock });
  // The informer handlers (which clear in-flight launches) without the work queue: syncs are run by hand.
  ctl.start();
  ctl.stop();
  const running = async (name: string) => {
    const key = `${P}/registry/tasks/default/${name}`;
    const kv = (await mem.get(key))!;
    const t = decodeKeyValue<Task>(kv);
    await mem.update(key, encodeObject({ ...t, status: { ...t.status, state: 'RUNNING', startedAt: new Date().toISOString() } }), kv.modRevision);
  };
  const live = async () => (await mem.list(`${P}/registry/tasks/`)).items.map((kv) => decodeKeyValue<Task>(kv)).filter((t) => !isTerminal(t));
  return { mem, g, ctl, offer, launched, running, live, informers, fw: () => fw!, driver, binder, fence, leases };
}

describe('AppController', () => {
  it('neverLaunchesTwiceWhenTheFrameworkLaunchesWhileASyncIsWritingAKill', async () => {
    const c = await setup();
    // Version 1 ran two tasks; the App now wants 4 of version 2 with at least 2 available and nothing over 4.
    const v1 = mkApp(1, { V: '1' });
    const v2 = mkApp(2, { V: '2' });
    await c.mem.create(`${P}/registry/apps/default/web`, encodeObject(v2));
    const tpl = taskTemplate(v1, configHash(v1));
    const old = [newTaskName('web'), newTaskName('web')];
    const olds = old.map((name, i) => ({ request: { offerId: `old${i}`, namespace: 'default', taskName: name, resources: { cpus: 0.5, mem: 64, disk: 0 }, ports: [], task: tpl }, frameworkId: 'apps', agent: `n${i + 1}`, leaseRevision: c.leases.get(`n${i + 1}`)! }));
    expect((await c.binder.bind(olds, c.fence)).every((r) => r.ok)).toBe(true);
    for (const name of old) await c.running(name);
    await settle();

    // Sync 1: 2 old available, no room to kill; 2 new wanted. One offer round fits one of them.
    await c.ctl.sync(keyOf(v2));
    await c.fw().resourceOffers(c.driver, [c.offer('n3', 0.5)]);
    await settle(); // the framework returns once it accepted; the bind is written after
    expect(c.launched).toHaveLength(1);
    await c.running(c.launched[0]!.taskName);
    await settle();

    // Sync 2 kills an old task (3 available, 1 above the floor) and wants 1 more; an offer round runs while the kill is written.
    c.g.hold();
    const sync = c.ctl.sync(keyOf(v2));
    await c.g.arrived();
    await c.fw().resourceOffers(c.driver, [c.offer('n1', 2), c.offer('n2', 2)]);
    c.g.release();
    await sync;
    await settle();
    await c.fw().resourceOffers(c.driver, [c.offer('n1', 2), c.offer('n2', 2)]);

    expect(c.launched).toHaveLength(2);
    expect((await c.live()).length).toBeLessThanOrEqual(4);
    await c.informers.stop();
  });

  it('writesNoAppAgainBeforeTheInformerShowsItsLastWrite', async () => {
    const c = await setup();
    const app = mkApp(1, { V: '1' });
    await c.mem.create(`${P}/registry/apps/default/web`, encodeObject(app));
    await settle();
    await c.informers.apps.stop(); // from here on the informer lags behind every write
    const appWrites = jest.spyOn(c.mem, 'txn');
    const writesOfApp = () => appWrites.mock.calls.filter(([, ops]) => ops.some((o) => o.key === `${P}/registry/apps/default/web`)).length;
    await c.ctl.sync(keyOf(app));
    expect(writesOfApp()).toBe(1); // the status of the new App
    await c.ctl.sync(keyOf(app));
    await c.ctl.sync(keyOf(app));
    expect(writesOfApp()).toBe(1); // its compare could only fail: not tried
    await c.informers.stop();
  });
});
