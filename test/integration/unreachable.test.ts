/**
 * Unreachable is not lost (Marathon's unreachableStrategy, Mesos' TASK_UNREACHABLE), over a real
 * etcd with two process agents: an agent stopped as a restart stops it (its lease revoked, so it
 * is seen gone at once) leaves its App task UNREACHABLE, not LOST; the App launches a
 * replacement on the other agent at once (inactiveAfterSeconds 0); the agent comes back within
 * the expunge time and adopts the original, which is RUNNING again; the replacement, now
 * surplus, is killed (YoungestFirst). The original process never stopped.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry as Metrics } from 'prom-client';
import { Agent } from '../../pkg/agent/agent';
import { APP_LABEL } from '../../pkg/api/apps';
import { lookupKind } from '../../pkg/api/kinds';
import type { Task } from '../../pkg/api/types.generated';
import { Registry } from '../../pkg/apiserver/registry';
import { ControllerManager } from '../../pkg/controllers/manager';
import { ProcessRuntime } from '../../pkg/runtime/process';
import { EtcdStore } from '../../pkg/store/etcd';
import { decodeKeyValue } from '../../pkg/store/objects';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { killProcessesUnder } from '../harness/procs';
import { until } from '../harness/wait';

const log = silentLogger();
let store: EtcdStore;
let dataDir: string;

beforeAll(() => {
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
  dataDir = mkdtempSync(join(tmpdir(), 'shoal-unreachable-'));
  chmodSync(dataDir, 0o711); // the agents' data dirs are inside: their tasks' users must get through
});
afterAll(async () => {
  await store.close();
  killProcessesUnder(dataDir);
  rmSync(dataDir, { recursive: true, force: true });
});

function agent(prefix: string, node: string): Agent {
  const runtime = new ProcessRuntime({ dataDir: join(dataDir, node), node: { hostname: node, nodeName: node }, logger: log });
  return new Agent({ store, prefix, nodeName: node, hostname: node, logger: log, leaseTtlSeconds: 3, runtime, capacity: { cpus: 1, mem: 512, disk: 0, ports: [] } });
}

test('an agent back within expungeAfterSeconds keeps its task; the replacement is killed', async () => {
  const prefix = uniquePrefix().slice(0, -1);
  const a1 = agent(prefix, 'n1');
  await a1.start();
  const cm = new ControllerManager({ store, prefix, identity: 'cm', logger: log, registry: new Metrics(), leaderLeaseSeconds: 2, allocationIntervalMs: 100, batchWindowMs: 0 });
  const tasks = async (): Promise<Task[]> => (await store.list(`${prefix}/registry/tasks/`)).items.map((kv) => decodeKeyValue<Task>(kv)).filter((t) => t.metadata.labels?.[APP_LABEL] === 'web');
  cm.start();
  let a2: Agent | undefined;
  let back: Agent | undefined;
  try {
    await new Registry(store, prefix).create(lookupKind('app')!, 'default', {
      apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'web', namespace: 'default' },
      spec: { instances: 1, cmd: 'sleep 3600', resources: { cpus: 0.5, mem: 32 }, unreachableStrategy: { inactiveAfterSeconds: 0, expungeAfterSeconds: 120 } },
    });
    const original = await until('the task RUNNING on n1', async () => (await tasks()).find((t) => t.status?.state === 'RUNNING' && t.spec.nodeName === 'n1'), 20_000);
    const pid = original.status?.pid;
    a2 = agent(prefix, 'n2');
    await a2.start();

    await a1.stop({ revoke: true }); // as a restart does: the lease goes at once, the process stays
    await until('the original UNREACHABLE', async () => (await tasks()).find((t) => t.metadata.name === original.metadata.name)?.status?.state === 'UNREACHABLE', 15_000);
    const replacement = await until('a replacement RUNNING on n2', async () => (await tasks()).find((t) => t.metadata.name !== original.metadata.name && t.status?.state === 'RUNNING' && t.spec.nodeName === 'n2'), 20_000);

    back = agent(prefix, 'n1');
    await back.start();
    await until('the original RUNNING again and the replacement killed', async () => {
      const ts = await tasks();
      const o = ts.find((t) => t.metadata.name === original.metadata.name);
      const r = ts.find((t) => t.metadata.name === replacement.metadata.name);
      return o?.status?.state === 'RUNNING' && (r === undefined || r.status?.state === 'KILLED');
    }, 20_000);
    const kept = (await tasks()).find((t) => t.metadata.name === original.metadata.name)!;
    expect(kept.status?.pid).toBe(pid); // the same process: never stopped
    expect(() => process.kill(pid!, 0)).not.toThrow();
  } finally {
    await cm.stop();
    for (const a of [a2, back]) await a?.stop({ revoke: true });
  }
}, 60_000);
