/**
 * Issue 16, over a real etcd with the process runtime: a process the agent did not start holds
 * a port of the agent's range. The App's dynamic-port task must still reach RUNNING (the port is
 * drawn at random, probed before the start and carved out of the Node's advertised ports), and
 * no task is ever given the held port twice (it used to be given to every relaunch).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry as Metrics } from 'prom-client';
import { Agent } from '../../pkg/agent/agent';
import { APP_LABEL } from '../../pkg/api/apps';
import { lookupKind } from '../../pkg/api/kinds';
import type { Node, Task } from '../../pkg/api/types.generated';
import { Registry } from '../../pkg/apiserver/registry';
import { ControllerManager } from '../../pkg/controllers/manager';
import { ProcessRuntime } from '../../pkg/runtime/process';
import { EtcdStore } from '../../pkg/store/etcd';
import { decodeKeyValue, objectKey } from '../../pkg/store/objects';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { until } from '../harness/wait';

const log = silentLogger();
let store: EtcdStore;
let dataDir: string;

beforeAll(() => {
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
  dataDir = mkdtempSync(join(tmpdir(), 'shoal-port-in-use-'));
});
afterAll(async () => {
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function listen(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, () => resolve(server));
  });
}

const close = (s: net.Server) => new Promise<void>((r) => s.close(() => r()));

/** Three consecutive free ports, the first held by a server of this test (the "other process"). */
async function rangeWithFirstHeld(): Promise<{ base: number; holder: net.Server }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 40000 + Math.floor(Math.random() * 9000);
    const holder = await listen(base);
    if (!holder) continue;
    const others = await Promise.all([listen(base + 1), listen(base + 2)]);
    await Promise.all(others.map((s) => s && close(s)));
    if (others.every(Boolean)) return { base, holder };
    await close(holder);
  }
  throw new Error('no three free consecutive ports found');
}

test('an App with a dynamic host port runs although another process holds a port of the agent range', async () => {
  const prefix = uniquePrefix().slice(0, -1);
  const { base, holder } = await rangeWithFirstHeld();
  const runtime = new ProcessRuntime({ dataDir, node: { hostname: 'host-p', nodeName: 'ports-1' }, logger: log });
  const agent = new Agent({
    store, prefix, nodeName: 'ports-1', hostname: 'host-p', logger: log, leaseTtlSeconds: 2, runtime,
    capacity: { cpus: 2, mem: 1024, disk: 1024, ports: [[base, base + 2]] }, portProbeIntervalMs: 200,
  });
  await agent.start();
  await new Registry(store, prefix).create(lookupKind('app')!, 'default', {
    apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'web', namespace: 'default' },
    spec: {
      instances: 1, resources: { cpus: 0.1, mem: 64 }, ports: [{ hostPort: 0 }],
      // Binds its port, as a server does: a task given the held port would fail (EADDRINUSE).
      cmd: `exec node -e "require('net').createServer().listen(Number(process.env.PORT0))"`,
    },
  });
  const cm = new ControllerManager({ store, prefix, identity: 'cm', logger: log, registry: new Metrics(), leaderLeaseSeconds: 2, allocationIntervalMs: 100 });
  const tasks = async (): Promise<Task[]> => (await store.list(`${prefix}/registry/tasks/`)).items.map((kv) => decodeKeyValue<Task>(kv));
  /** Every App task seen, by uid, with its host port and last state. */
  const seen = new Map<string, { port: number; state?: string; reason?: string }>();
  const record = async () => {
    for (const t of await tasks()) {
      if (t.metadata.labels?.[APP_LABEL] !== 'web') continue;
      seen.set(t.metadata.uid!, { port: t.spec.ports?.[0]?.hostPort ?? 0, state: t.status?.state, reason: t.status?.reason });
    }
  };
  const why = async () => `tasks ${JSON.stringify([...seen.values()])}; agent ports in use ${JSON.stringify(agent.portsInUse())}`;
  cm.start();
  try {
    await until('the App task RUNNING', async () => {
      await record();
      return [...seen.values()].some((t) => t.state === 'RUNNING');
    }, 30_000, { explain: why, everyMs: 50 });
    const running = [...seen.values()].find((t) => t.state === 'RUNNING')!;
    expect(running.port).not.toBe(base);
    expect([base + 1, base + 2]).toContain(running.port);
    // The held port: given at most once (then reported PortInUse), never again.
    const onHeld = [...seen.values()].filter((t) => t.port === base);
    expect(onHeld.length).toBeLessThanOrEqual(1);
    for (const t of onHeld) expect(t).toMatchObject({ state: 'FAILED', reason: 'PortInUse' });
    // The agent found the port held (the sweep or the launch probe) and no longer advertises it.
    await until('the held port carved out of the Node', async () => {
      const kv = await store.get(objectKey(prefix, lookupKind('node')!, undefined, 'ports-1'));
      return JSON.stringify(kv && decodeKeyValue<Node>(kv).status?.capacity?.ports) === JSON.stringify([[base + 1, base + 2]]);
    }, 5_000);
    expect(agent.portsInUse()).toEqual([base]);
    // The port is advertised again once its holder lets go.
    await close(holder);
    await until('the freed port advertised again', async () => {
      const kv = await store.get(objectKey(prefix, lookupKind('node')!, undefined, 'ports-1'));
      return JSON.stringify(kv && decodeKeyValue<Node>(kv).status?.capacity?.ports) === JSON.stringify([[base, base + 2]]);
    }, 5_000);
  } finally {
    await cm.stop();
    await new Registry(store, prefix).delete({ kind: lookupKind('app')!, namespace: 'default', name: 'web' }).catch(() => undefined);
    for (const t of await tasks()) await runtime.stop(t.metadata.namespace ?? 'default', t.metadata.name, 0).catch(() => undefined);
    await agent.stop({ revoke: true });
    holder.listening && (await close(holder));
  }
}, 60_000);
