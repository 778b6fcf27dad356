/**
 * Health checks with the real process runtime on a real etcd: a task serving HTTP on its port
 * becomes healthy; a task whose check fails becomes unhealthy after maxConsecutiveFailures with
 * the failure's reason in its status, and an Unhealthy event is recorded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../pkg/agent/agent';
import type { Event, HealthCheck } from '../../pkg/api/types.generated';
import { ProcessRuntime } from '../../pkg/runtime/process';
import { EtcdStore } from '../../pkg/store/etcd';
import { startTaskStatusRelay, type RunningRelay } from '../harness/relay';
import { assignmentKey } from '../../pkg/store/objects';
import { createLogger, silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { until } from '../harness/wait';
import { bindTask, readTask } from '../harness/tasks';

const log = process.env.DEBUG_AGENT ? createLogger('test', { level: 'debug' }) : silentLogger();
const NODE = 'health-1';
let store: EtcdStore;
let prefix: string;
let dataDir: string;
/** Folds the agent's reports into Tasks, as the controller-manager does. */
let relay: RunningRelay;

beforeAll(async () => {
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
  prefix = uniquePrefix().slice(0, -1);
  dataDir = mkdtempSync(join(tmpdir(), 'shoal-agent-health-'));
  relay = await startTaskStatusRelay(store, prefix);
});
afterAll(async () => {
  await relay.stop();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const statusOf = async (name: string) => (await readTask(store, prefix, name))?.status;

async function bind(name: string, cmd: string, hostPort: number, healthChecks: Array<Partial<HealthCheck>>): Promise<void> {
  await bindTask(store, prefix, NODE, name, { cmd, ports: [{ name: 'http', hostPort }], healthChecks });
}

const fast = { intervalSeconds: 1, timeoutSeconds: 1, delaySeconds: 0, gracePeriodSeconds: 0, maxConsecutiveFailures: 2 };

it('turnsTaskStatusHealthyOrUnhealthyFromItsChecks', async () => {
  const runtime = new ProcessRuntime({ dataDir, node: { hostname: 'host-h', nodeName: NODE }, logger: log });
  const agent = new Agent({ store, prefix, nodeName: NODE, runtime, runtimes: ['process'], capacity: { cpus: 2, mem: 512, disk: 0, ports: [[31020, 31030]] }, leaseTtlSeconds: 5, logger: log });
  await agent.start();
  try {
    const server = `exec node -e "require('http').createServer((q,s)=>s.end('ok')).listen(process.env.PORT0)"`;
    await bind('web', server, 31021, [{ ...fast, protocol: 'HTTP', path: '/' }, { ...fast, protocol: 'COMMAND', command: { value: 'test -n "$PORT0"' } }]);
    await bind('dead', 'sleep 300', 31022, [{ ...fast, protocol: 'HTTP', path: '/health' }]);
    await bind('tcp', server, 31023, [{ ...fast, protocol: 'TCP' }]);

    await until('web healthy', async () => (await statusOf('web'))?.healthy === true, 15_000);
    expect(await statusOf('web')).toMatchObject({ state: 'RUNNING', healthy: true, healthMessage: 'all 2 health checks passed' });
    await until('tcp healthy', async () => (await statusOf('tcp'))?.healthy === true, 15_000);

    await until('dead unhealthy', async () => (await statusOf('dead'))?.healthy === false, 15_000);
    const dead = await statusOf('dead');
    expect(dead).toMatchObject({ state: 'RUNNING', healthy: false });
    expect(dead!.healthMessage).toMatch(/^HTTP health check failed 2 times in a row: HTTP GET http:\/\/127\.0\.0\.1:31022\/health failed: .*ECONNREFUSED/);

    const events = await until('Unhealthy event', async () => {
      const all = (await store.list(`${prefix}/registry/events/`)).items.map((kv) => JSON.parse(kv.value) as Event);
      return all.some((e) => e.reason === 'Unhealthy' && e.involvedObject.name === 'dead') && all;
    });
    expect(events.find((e) => e.reason === 'Healthy' && e.involvedObject.name === 'web')).toMatchObject({ type: 'Normal', involvedObject: { kind: 'Task', uid: 'uid-web' } });
  } finally {
    for (const name of ['web', 'dead', 'tcp']) await store.delete(assignmentKey(prefix, NODE, 'default', name)).catch(() => undefined);
    await until('tasks stopped', async () => agent.runningTasks().length === 0, 10_000);
    await agent.stop({ revoke: true });
  }
}, 40_000);
