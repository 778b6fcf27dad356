/**
 * The agent on the real etcd of the jest global setup: registration (Node + lease key), the
 * assignment → RUNNING → KILLED path, the registry's terminal word beating the agent's,
 * crashes, lease loss and re-registration, and a host of hollow agents.
 */
import { Agent, AgentHost, type AgentOptions } from '../../pkg/agent';
import { lookupKind } from '../../pkg/api/kinds';
import { STATUS_REVISION_ANNOTATION } from '../../pkg/api/tasks';
import type { Node, Task } from '../../pkg/api/types.generated';
import { admit } from '../../pkg/api/validation';
import { FakeRuntime } from '../../pkg/runtime/fake';
import { EtcdStore } from '../../pkg/store/etcd';
import { startTaskStatusRelay, type RunningRelay } from '../harness/relay';
import { agentLeaseKey, agentLeasePrefix, assignmentKey, decodeKeyValue, encodeObject, kindPrefix, objectKey } from '../../pkg/store/objects';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { until } from '../harness/wait';

const NODES = lookupKind('node')!;
const TASKS = lookupKind('task')!;
const TTL = 2; // etcd's minimum: keeps crash and loss tests short
const log = silentLogger();
const capacity = { cpus: 4, mem: 4096, disk: 10240, ports: [[31000, 31099]] as Array<[number, number]> };

let store: EtcdStore;
let prefix: string;
/** Folds the agents' reports into Tasks, as the controller-manager does. */
let relay: RunningRelay;
const running: Array<{ stop(o?: { revoke?: boolean }): Promise<void> }> = [];

beforeAll(() => {
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
});
afterAll(async () => {
  await store.close();
});
beforeEach(async () => {
  prefix = uniquePrefix().slice(0, -1); // `/t-…`, no trailing slash, like `/shoal`
  relay = await startTaskStatusRelay(store, prefix);
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((a) => a.stop({ revoke: true })));
  await relay.stop();
});

function agent(name: string, extra: Partial<AgentOptions> = {}): Agent {
  const a = new Agent({ store, prefix, nodeName: name, capacity, attributes: { rack: 'r1' }, runtime: 'hollow', leaseTtlSeconds: TTL, logger: log, ...extra });
  running.push(a);
  return a;
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const taskKey = (name: string) => objectKey(prefix, TASKS, 'default', name);

async function getTask(name: string): Promise<Task | undefined> {
  const kv = await store.get(taskKey(name));
  return kv && decodeKeyValue<Task>(kv);
}

async function getNode(name: string): Promise<Node | undefined> {
  const kv = await store.get(objectKey(prefix, NODES, undefined, name));
  return kv && decodeKeyValue<Node>(kv);
}

/** Writes a bound Task and its assignment in one txn, as the binder does. */
async function bind(node: string, name: string): Promise<Task> {
  const admitted = admit({
    apiVersion: 'shoal/v1',
    kind: 'Task',
    metadata: { name, namespace: 'default', uid: `uid-${name}-${Date.now()}`, generation: 1, creationTimestamp: new Date().toISOString() },
    spec: { nodeName: node, cmd: 'sleep 3600', resources: { cpus: 0.1, mem: 32 }, ports: [{ name: 'http', hostPort: 31005 }] },
    status: { state: 'STAGING', stagedAt: '2024-01-01T00:00:00.000Z', hostPorts: [31005] },
  });
  if (!admitted.ok) throw new Error(JSON.stringify(admitted.causes));
  const task = admitted.object as Task;
  const ops = [
    { op: 'put' as const, key: taskKey(name), value: encodeObject(task) },
    { op: 'put' as const, key: assignmentKey(prefix, node, 'default', name), value: JSON.stringify({ metadata: task.metadata, spec: task.spec }) },
  ];
  expect(await store.txn([{ key: taskKey(name), modRevision: 0 }], ops)).toEqual(expect.any(Number));
  return task;
}

/** Marks a Task LOST the way node lifecycle does (CAS), optionally deleting its assignment in the same txn. */
async function markLost(node: string, name: string, deleteAssignment: boolean): Promise<void> {
  const kv = (await store.get(taskKey(name)))!;
  const task = decodeKeyValue<Task>(kv);
  task.status = { ...task.status, state: 'LOST', reason: 'AgentLost', finishedAt: new Date().toISOString() };
  const ops: Parameters<EtcdStore['txn']>[1] = [{ op: 'put', key: taskKey(name), value: encodeObject(task) }];
  if (deleteAssignment) ops.push({ op: 'delete', key: assignmentKey(prefix, node, 'default', name) });
  expect(await store.txn([{ key: taskKey(name), modRevision: kv.modRevision }], ops)).toEqual(expect.any(Number));
}

describe('agent registration', () => {
  it('three hollow agents register valid Node objects and lease keys; the Node is not rewritten per heartbeat', async () => {
    const agents = ['node-a', 'node-b', 'node-c'].map((n) => agent(n, { address: `${n}:5051` }));
    await Promise.all(agents.map((a) => a.start()));
    const nodes = (await store.list(kindPrefix(prefix, NODES))).items;
    expect(nodes.map((kv) => decodeKeyValue<Node>(kv).metadata.name)).toEqual(['node-a', 'node-b', 'node-c']);
    for (const kv of nodes) {
      const stored = JSON.parse(kv.value) as Node;
      const admitted = admit(stored);
      expect(admitted.ok).toBe(true);
      expect(admitted.ok && admitted.object).toEqual(stored); // nothing left to default
      expect(stored).toMatchObject({
        metadata: { uid: expect.any(String), generation: 1, creationTimestamp: expect.any(String) },
        spec: { unschedulable: false },
        status: {
          capacity,
          attributes: { rack: 'r1' },
          address: `${stored.metadata.name}:5051`,
          runtimes: ['hollow'],
          agentVersion: expect.any(String),
          lastHeartbeatTime: expect.any(String),
          conditions: [{ type: 'Ready', status: 'True', reason: 'AgentRegistered', lastTransitionTime: expect.any(String) }],
        },
      });
    }
    for (const a of agents) {
      const lease = await store.get(agentLeaseKey(prefix, a.nodeName));
      expect(lease).toMatchObject({ lease: a.leaseId, modRevision: a.registration });
      expect(JSON.parse(lease!.value)).toEqual({ node: a.nodeName, startedAt: expect.any(String) });
    }
    await sleep(TTL * 1000 + 1000); // several keep-alives
    expect((await store.list(kindPrefix(prefix, NODES))).items.map((kv) => kv.modRevision)).toEqual(nodes.map((kv) => kv.modRevision));
    expect((await store.list(agentLeasePrefix(prefix))).items).toHaveLength(3);
    await agents[0].stop({ revoke: true });
    expect(await store.get(agentLeaseKey(prefix, 'node-a'))).toBeUndefined(); // at once
  });

  it('re-registration updates status only: an operator cordon and the uid survive', async () => {
    const first = agent('node-a');
    await first.start();
    const kv = (await store.get(objectKey(prefix, NODES, undefined, 'node-a')))!;
    const cordoned = { ...JSON.parse(kv.value), spec: { unschedulable: true } };
    await store.update(kv.key, JSON.stringify(cordoned), kv.modRevision);
    await first.stop({ revoke: true });
    await agent('node-a', { attributes: { rack: 'r2' } }).start();
    const node = (await getNode('node-a'))!;
    expect(node.spec.unschedulable).toBe(true);
    expect(node.metadata.uid).toBe(cordoned.metadata.uid);
    expect(node.status.attributes).toEqual({ rack: 'r2' });
    expect(node.status.conditions).toEqual([expect.objectContaining({ type: 'Ready', status: 'True' })]);
  });

  it('an agent configured with an invalid node name fails at construction', () => {
    expect(() => new Agent({ store, prefix, nodeName: 'Bad_Name', capacity, runtime: 'hollow', logger: log })).toThrow(/metadata.name/);
    expect(() => new Agent({ store, prefix, nodeName: 'n', capacity, runtime: 'docker', logger: log })).toThrow(/runtime docker needs the agent's context/);
  });
});

describe('agent tasks', () => {
  it('an assignment runs (RUNNING with startedAt, spec untouched); deleting it reports KILLED', async () => {
    const a = agent('node-a');
    await a.start();
    const bound = await bind('node-a', 'web-1');
    const t0 = Date.now();
    const runningTask = await until('RUNNING', async () => {
      const t = await getTask('web-1');
      return t?.status.state === 'RUNNING' && t;
    });
    const startLatency = Date.now() - t0;
    expect(runningTask.status).toMatchObject({ stagedAt: '2024-01-01T00:00:00.000Z', startedAt: expect.any(String), hostPorts: [31005] });
    expect(runningTask.spec).toEqual(bound.spec);
    // Metadata untouched but for the relay's stamp of the report it applied.
    expect({ ...runningTask.metadata, resourceVersion: undefined }).toEqual({ ...bound.metadata, annotations: { [STATUS_REVISION_ANNOTATION]: expect.any(String) }, resourceVersion: undefined });
    expect(a.runningTasks()).toEqual(['default/web-1']);

    await store.delete(assignmentKey(prefix, 'node-a', 'default', 'web-1'));
    const killed = await until('KILLED', async () => {
      const t = await getTask('web-1');
      return t?.status.state === 'KILLED' && t;
    });
    expect(killed.status).toMatchObject({ startedAt: runningTask.status.startedAt, finishedAt: expect.any(String), reason: 'TaskKilled' });
    expect(a.runningTasks()).toEqual([]);
    console.log(`assignment → RUNNING in ${startLatency} ms`);
  });

  it('after a restart: tasks marked LOST while away are not reported RUNNING and are stopped; live ones are adopted, not restarted', async () => {
    const runtime = new FakeRuntime('hollow');
    const before = agent('node-a', { runtime });
    await before.start();
    for (const name of ['lost-kept', 'lost-unassigned', 'live']) await bind('node-a', name);
    await until('three RUNNING', async () => (await Promise.all(['lost-kept', 'lost-unassigned', 'live'].map(getTask))).every((t) => t?.status.state === 'RUNNING'));
    before.crash(); // its tasks go on running in the runtime, as containers outlive their agent
    await markLost('node-a', 'lost-kept', false); // assignment left behind: the relay deletes it when the agent says RUNNING
    await markLost('node-a', 'lost-unassigned', true); // as node lifecycle does it
    const revisions = await Promise.all(['lost-kept', 'lost-unassigned'].map(async (n) => (await store.get(taskKey(n)))!.modRevision));
    runtime.calls.length = 0;

    const after = agent('node-a', { runtime });
    await after.start();
    await until('LOST tasks stopped', async () => JSON.stringify(runtime.runningKeys()) === JSON.stringify(['default/live']));
    await sleep(500); // any late status write would land by now
    for (const [i, name] of ['lost-kept', 'lost-unassigned'].entries()) {
      const kv = (await store.get(taskKey(name)))!;
      expect(kv.modRevision).toBe(revisions[i]); // not a single write over LOST
      expect(decodeKeyValue<Task>(kv).status.state).toBe('LOST');
    }
    expect((await getTask('live'))!.status.state).toBe('RUNNING');
    // `live` was not restarted; the LOST tasks' leftovers are removed once they are stopped.
    expect(runtime.calls.sort()).toEqual(['remove default/lost-kept', 'remove default/lost-unassigned', 'stop default/lost-kept', 'stop default/lost-unassigned']);
    expect(after.runningTasks()).toEqual(['default/live']);
  });

  it('a running task marked LOST behind the agent is stopped, and KILLED is never written over LOST', async () => {
    const runtime = new FakeRuntime('hollow');
    const a = agent('node-a', { runtime });
    await a.start();
    await bind('node-a', 'web-1');
    await until('RUNNING', async () => (await getTask('web-1'))?.status.state === 'RUNNING');
    await markLost('node-a', 'web-1', true);
    await until('stopped', async () => runtime.runningKeys().length === 0);
    await sleep(300);
    expect((await getTask('web-1'))!.status.state).toBe('LOST');
  });
});

describe('agent leases', () => {
  it('a crashed agent (lease released, not revoked) loses its lease key within TTL + 2 s', async () => {
    const a = agent('node-a');
    await a.start();
    const crashedAt = Date.now();
    a.crash();
    await until('lease key gone', async () => (await store.get(agentLeaseKey(prefix, 'node-a'))) === undefined, (TTL + 2) * 1000);
    const gone = Date.now() - crashedAt;
    expect(gone).toBeLessThan((TTL + 2) * 1000);
    expect(await getNode('node-a')).toBeDefined(); // the Node stays; node lifecycle marks it NotReady
    console.log(`crashed agent's lease key gone after ${gone} ms (TTL ${TTL} s)`);
  });

  it('an agent whose lease is revoked behind its back re-registers by itself, tasks untouched', async () => {
    const runtime = new FakeRuntime('hollow');
    const a = agent('node-a', { runtime });
    await a.start();
    await bind('node-a', 'web-1');
    await until('RUNNING', async () => (await getTask('web-1'))?.status.state === 'RUNNING');
    const oldLease = a.leaseId!;
    const oldRevision = a.registration;
    const t0 = Date.now();
    await store.revokeLease(oldLease);
    expect(await store.get(agentLeaseKey(prefix, 'node-a'))).toBeUndefined();
    await until('re-registered', async () => a.registration > oldRevision);
    console.log(`re-registered ${Date.now() - t0} ms after its lease was revoked (TTL ${TTL} s)`);
    const kv = (await store.get(agentLeaseKey(prefix, 'node-a')))!;
    expect(kv.lease).not.toBe(oldLease);
    expect(kv.lease).toBe(a.leaseId);
    expect(a.registration).toBe(kv.modRevision);
    expect((await getNode('node-a'))!.status.conditions).toEqual([expect.objectContaining({ type: 'Ready', status: 'True' })]);
    expect(runtime.calls).toEqual(['start default/web-1']);
  });
});

describe('agent host', () => {
  it.each(['per-agent', 'shared'] as const)('registers 200 hollow agents (%s leases), each with its own lease key', async (leaseMode) => {
    const host = new AgentHost({ store, prefix, count: 200, capacity, logger: log, leaseTtlSeconds: 10, leaseMode });
    running.push(host);
    const t0 = Date.now();
    await host.start();
    const took = Date.now() - t0;
    const leases = (await store.list(agentLeasePrefix(prefix))).items;
    expect(leases).toHaveLength(200);
    expect((await store.list(kindPrefix(prefix, NODES))).items).toHaveLength(200);
    expect(new Set(leases.map((kv) => kv.lease)).size).toBe(leaseMode === 'shared' ? 1 : 200);
    expect(host.agents[199].nodeName).toBe('hollow-199');
    const s0 = Date.now();
    await host.stop({ revoke: true });
    const stopTook = Date.now() - s0;
    expect((await store.list(agentLeasePrefix(prefix))).items).toEqual([]);
    console.log(`AgentHost ${leaseMode}: 200 agents registered in ${took} ms, stopped (revoked) in ${stopTook} ms`);
  }, 60_000);

  it('with a shared lease, losing it makes every agent re-register on a new one', async () => {
    const host = new AgentHost({ store, prefix, count: 20, capacity, logger: log, leaseTtlSeconds: TTL, leaseMode: 'shared' });
    running.push(host);
    await host.start();
    const old = host.agents[0].leaseId!;
    await store.revokeLease(old);
    await until('20 lease keys on one new lease', async () => {
      const items = (await store.list(agentLeasePrefix(prefix))).items;
      const ids = new Set(items.map((kv) => kv.lease));
      return items.length === 20 && ids.size === 1 && !ids.has(old);
    });
  });
});
