/**
 * The master's delivery of offers on the in-memory store: calls to one framework never overlap
 * (as Mesos' scheduler driver serialises callbacks), and an allocation round does not wait for
 * the binds of the previous one.
 */
import { Registry } from 'prom-client';
import type { Node } from '../../pkg/api/types.generated';
import { admit, formatCauses } from '../../pkg/api/validation';
import { clusterInformers } from '../../pkg/client/informers';
import { Binder } from '../../pkg/master/binder';
import { Master } from '../../pkg/master/master';
import type { Framework, Offer, SchedulerDriver } from '../../pkg/scheduler/types';
import { MemoryStore } from '../../pkg/store/memory';
import { agentLeaseKey, encodeObject, leaderKey, objectKey } from '../../pkg/store/objects';
import type { Store } from '../../pkg/store/types';
import { lookupKind } from '../../pkg/api/kinds';
import { silentLogger } from '../../pkg/util/log';

const P = '/shoal';
const log = silentLogger();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function node(name: string): Node {
  const r = admit({
    apiVersion: 'shoal/v1', kind: 'Node', metadata: { name, uid: `uid-${name}` }, spec: { unschedulable: false },
    status: { capacity: { cpus: 4, mem: 4096, disk: 100, ports: [[31000, 31009]] }, runtimes: ['process'], hostname: name, conditions: [{ type: 'Ready', status: 'True' }] },
  });
  if (!r.ok) throw new Error(formatCauses(r.causes));
  return r.object as Node;
}

/** A store whose transactions (the binds) wait until opened. */
function gatedTxns(store: MemoryStore): { store: Store; open(): void; waiting(): number } {
  let waiting = 0;
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== 'txn') return typeof v === 'function' ? v.bind(target) : v;
      return async (...args: Parameters<Store['txn']>) => {
        waiting++;
        await gate;
        waiting--;
        return target.txn(...args);
      };
    },
  });
  return { store: proxy as Store, open, waiting: () => waiting };
}

async function setup(framework: Framework) {
  const mem = new MemoryStore();
  const fence = { key: leaderKey(P), modRevision: await mem.create(leaderKey(P), 'cm') };
  for (const n of ['n1', 'n2']) {
    await mem.create(objectKey(P, lookupKind('node')!, undefined, n), encodeObject(node(n)));
    await mem.create(agentLeaseKey(P, n), '{}');
  }
  const gate = gatedTxns(mem);
  const informers = clusterInformers(mem, P, log);
  await informers.start();
  const master = new Master({ informers, prefix: P, binder: new Binder(gate.store, P, log), fence, logger: log, registry: new Registry(), allocationIntervalMs: 20 });
  master.registerFramework(framework);
  master.start();
  return { master, gate, stop: async () => { master.stop(); gate.open(); await informers.stop(); } };
}

describe('Master', () => {
  it('never calls a framework again before its previous resourceOffers settled', async () => {
    let active = 0;
    let peak = 0;
    let calls = 0;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const fw: Framework = {
      id: 'slow', role: '*',
      async resourceOffers(driver: SchedulerDriver, offers: Offer[]) {
        calls++;
        peak = Math.max(peak, ++active);
        if (calls === 1) await held; // busy with the first offers
        driver.decline(offers.map((o) => o.id), 0);
        active--;
      },
      offerRescinded: () => undefined,
      statusUpdate: () => undefined,
    };
    const s = await setup(fw);
    await sleep(150); // many rounds' worth of time
    expect(calls).toBe(1);
    release();
    await sleep(100);
    expect(calls).toBeGreaterThan(1);
    expect(peak).toBe(1);
    await s.stop();
  });

  it('makes the next round while the binds of the previous one are still being written', async () => {
    const offersSeen: string[][] = [];
    const fw: Framework = {
      id: 'quick', role: '*',
      resourceOffers(driver: SchedulerDriver, offers: Offer[]) {
        offersSeen.push(offers.map((o) => o.agent));
        const [first, ...rest] = offers;
        // Accept one small task on the first offer without waiting for its bind; give the rest back.
        void driver.accept([first.id], [{ offerId: first.id, namespace: 'default', taskName: `t${offersSeen.length}`, resources: { cpus: 0.1, mem: 1, disk: 0 }, ports: [], task: { spec: { cmd: 'sleep 1' } } }]);
        driver.decline(rest.map((o) => o.id), 0);
      },
      offerRescinded: () => undefined,
      statusUpdate: () => undefined,
    };
    const s = await setup(fw);
    await sleep(150);
    expect(s.gate.waiting()).toBeGreaterThan(1); // several binds held at once: rounds went on
    expect(offersSeen.length).toBeGreaterThan(1);
    await s.stop();
  });
});
