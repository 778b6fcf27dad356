/**
 * The three start functions in one process, wired as `shoal dev` wires them (one etcd connection,
 * the controller-manager's metrics in the apiserver's registry): the agent advertises the port it
 * bound, serves its task's log through the apiserver, and every stop() frees its ports.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Node } from '../../pkg/api/types.generated';
import { startAgent, type AgentHandle } from '../../pkg/agent/start';
import { TokenAuthenticator } from '../../pkg/apiserver/auth';
import { startApiServer, type ApiServerHandle } from '../../pkg/apiserver/start';
import { startControllerManager, type ControllerManagerHandle } from '../../pkg/controllers/start';
import { decodeKeyValue } from '../../pkg/store/objects';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { bindTask } from '../harness/tasks';
import { until } from '../harness/wait';

const log = silentLogger();
const ADMIN = 'admin-token-0123456789abcdef';
const AGENT_TOKEN = 'agent-token-0123456789abcdef';
const NODE = 'start-1';
let prefix: string;
let dataDir: string;
let api: ApiServerHandle;
let cm: ControllerManagerHandle;
let agent: AgentHandle;

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer().once('error', () => resolve(false)).listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

beforeAll(async () => {
  prefix = uniquePrefix().slice(0, -1);
  dataDir = mkdtempSync(join(tmpdir(), 'shoal-start-'));
  api = await startApiServer({
    etcd: { endpoints: [testEtcdEndpoint()] }, prefix, port: 0, logger: log, agentToken: AGENT_TOKEN,
    authenticator: new TokenAuthenticator([{ name: 'admin', token: ADMIN, roles: [{ namespace: '*', role: 'admin' }] }]),
  });
  cm = await startControllerManager({ store: api.store, prefix, identity: 'start-test', logger: log, registry: api.metrics.registry, metricsPort: 0 });
  agent = await startAgent({
    store: api.store, prefix, nodeName: NODE, dataDir, runtime: 'process', capacity: { cpus: 1, mem: 256, disk: 0, ports: [[31200, 31201]] },
    hostname: NODE, taskHost: '127.0.0.1', listen: { port: 0, host: '127.0.0.1' }, token: AGENT_TOKEN, leaseTtlSeconds: 5, logger: log,
  });
  await agent.ready;
});

afterAll(async () => {
  await agent?.stop({ revoke: true });
  await cm?.stop();
  await api?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

it('advertisesTheBoundPortOnTheListenInterface', async () => {
  expect(agent.address).toBe(`127.0.0.1:${agent.port}`);
  const kv = await api.store.get(`${prefix}/registry/nodes/${NODE}`);
  expect(decodeKeyValue<Node>(kv!).status.address).toBe(agent.address);
});

it('servesATasksLogThroughTheApiserver', async () => {
  await bindTask(api.store, prefix, NODE, 'hello', { cmd: 'echo hello; sleep 300' });
  const text = await until('the log', async () => {
    const res = await fetch(`${api.url}/api/v1/namespaces/default/tasks/hello/log`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const body = await res.text();
    return res.ok && body.includes('hello') && body;
  }, 15_000);
  expect(text).toBe('hello\n');
  await api.store.delete(`${prefix}/assignments/${NODE}/default/hello`);
  await until('hello stopped', async () => !agent.agent.runningTasks().includes('default/hello'), 15_000);
});

it('sharesOneRegistryForMetrics', async () => {
  await until('the master registered its metrics', async () => cm.cm.master() !== undefined);
  const res = await fetch(`http://127.0.0.1:${cm.metricsPort}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  expect(text).toMatch(/^# TYPE shoal_apiserver_requests_total counter$/m);
  expect(text).toMatch(/^# TYPE shoal_offers_total counter$/m);
});

it('freesEveryPortOnStop', async () => {
  const ports = [api.port, cm.metricsPort!, agent.port];
  await agent.stop({ revoke: true });
  await cm.stop();
  await api.stop();
  for (const port of ports) expect(await portIsFree(port)).toBe(true);
});

it('rejectsAPortInUseWithoutLeavingAConnectionOpen', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    await expect(startApiServer({ etcd: { endpoints: [testEtcdEndpoint()] }, prefix, port, logger: log, authenticator: new TokenAuthenticator([]) })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await expect(startAgent({
      etcd: { endpoints: [testEtcdEndpoint()] }, prefix, nodeName: 'start-2', dataDir, runtime: 'hollow', capacity: { cpus: 1, mem: 1, disk: 0, ports: [] },
      hostname: 'start-2', listen: { port, host: '127.0.0.1' }, logger: log,
    })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  } finally {
    await new Promise((r) => blocker.close(r));
  }
});
