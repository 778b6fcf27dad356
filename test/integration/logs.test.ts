/**
 * Task logs end to end on a real etcd: a process-runtime agent with its HTTP server, and the
 * apiserver proxying `.../tasks/{name}/log` to it with the agent token.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../pkg/agent/agent';
import { AgentHttpServer } from '../../pkg/agent/http';
import type { Task } from '../../pkg/api/types.generated';
import { TokenAuthenticator } from '../../pkg/apiserver/auth';
import { ApiServer } from '../../pkg/apiserver/server';
import { ProcessRuntime } from '../../pkg/runtime/process';
import { EtcdStore } from '../../pkg/store/etcd';
import { startTaskStatusRelay, type RunningRelay } from '../harness/relay';
import { assignmentKey, decodeKeyValue } from '../../pkg/store/objects';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { until } from '../harness/wait';
import { bindTask } from '../harness/tasks';

const log = silentLogger();
const AGENT_TOKEN = 'agent-token-0123456789abcdef';
const VIEW = 'view-token-0123456789';
const NODE = 'logs-1';
let store: EtcdStore;
let prefix: string;
/** Folds the agent's reports into Tasks, as the controller-manager does. */
let relay: RunningRelay;
let dataDir: string;
let api: ApiServer;
let apiBase: string;
let http: AgentHttpServer;
let agentBase: string;
let agent: Agent;

const taskKey = (name: string) => `${prefix}/registry/tasks/default/${name}`;

async function bind(name: string, cmd: string): Promise<void> {
  await bindTask(store, prefix, NODE, name, { cmd });
}

beforeAll(async () => {
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
  prefix = uniquePrefix().slice(0, -1);
  dataDir = mkdtempSync(join(tmpdir(), 'shoal-logs-'));
  relay = await startTaskStatusRelay(store, prefix);
  api = new ApiServer({
    store, prefix, logger: log, agentToken: AGENT_TOKEN,
    authenticator: new TokenAuthenticator([{ name: 'viewer', token: VIEW, roles: [{ namespace: 'default', role: 'view' }] }]),
  });
  apiBase = `http://127.0.0.1:${await api.listen(0)}`;
  const runtime = new ProcessRuntime({ dataDir, node: { hostname: '127.0.0.1', nodeName: NODE }, logger: log });
  // Bound first: the agent advertises the port it got.
  http = await AgentHttpServer.listen({
    port: 0, host: '127.0.0.1', token: AGENT_TOKEN, logger: log,
    source: (port) => (agent = new Agent({ store, prefix, nodeName: NODE, runtime, runtimes: ['process'], capacity: { cpus: 2, mem: 512, disk: 0, ports: [[31100, 31110]] }, address: `127.0.0.1:${port}`, leaseTtlSeconds: 5, logger: log })),
  });
  agentBase = `http://127.0.0.1:${http.port}`;
  await agent.start();
  const go = join(dataDir, 'go');
  await bind('t', `echo a; echo b; echo c; while [ ! -f ${go} ]; do sleep 0.1; done; echo d; sleep 300`);
  await until('t RUNNING', async () => {
    const kv = await store.get(taskKey('t'));
    return kv && decodeKeyValue<Task>(kv).status?.state === 'RUNNING';
  });
});

afterAll(async () => {
  await store.delete(assignmentKey(prefix, NODE, 'default', 't')).catch(() => undefined);
  await until('t stopped', async () => !agent.runningTasks().includes('default/t')).catch(() => undefined);
  await agent.stop();
  await http.close();
  await api.close();
  await relay.stop();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const viaApi = (path: string, init: RequestInit = {}) => fetch(`${apiBase}/api/v1/namespaces/default/tasks/${path}`, { ...init, headers: { authorization: `Bearer ${VIEW}` } });

/** Reads a streaming body until `want` appears in it. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, seen: { text: string }, want: string): Promise<void> {
  const decoder = new TextDecoder();
  while (!seen.text.includes(want)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before "${want}"; got ${JSON.stringify(seen.text)}`);
    seen.text += decoder.decode(value, { stream: true });
  }
}

it('returnsTheLastLinesThroughTheApiserver', async () => {
  await until('output written', async () => {
    const res = await viaApi('t/log');
    return res.ok && (await res.text()).includes('c\n');
  });
  const res = await viaApi('t/log?tail=2');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  expect(await res.text()).toBe('b\nc\n');
});

it('followsNewOutputUntilTheClientLeaves', async () => {
  const abort = new AbortController();
  const res = await viaApi('t/log?tail=1&follow=true', { signal: abort.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const seen = { text: '' };
  await readUntil(reader, seen, 'c\n');
  expect(seen.text).toBe('c\n');
  writeFileSync(join(dataDir, 'go'), '');
  await readUntil(reader, seen, 'd\n');
  expect(seen.text).toBe('c\nd\n');
  abort.abort();
  expect(existsSync(join(dataDir, 'go'))).toBe(true);
});

it('refusesRequestsAtTheAgentWithoutTheToken', async () => {
  expect((await fetch(`${agentBase}/v1/tasks/default/t/log`)).status).toBe(401);
  expect((await fetch(`${agentBase}/v1/tasks/default/t/log`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
  expect((await fetch(`${agentBase}/healthz`)).status).toBe(200);
  const ok = await fetch(`${agentBase}/v1/tasks/default/t/log?tail=1`, { headers: { authorization: `Bearer ${AGENT_TOKEN}` } });
  expect(ok.status).toBe(200);
  await ok.text();
});

it('answers404ForAnUnknownTask', async () => {
  const atAgent = await fetch(`${agentBase}/v1/tasks/default/nope/log`, { headers: { authorization: `Bearer ${AGENT_TOKEN}` } });
  expect(atAgent.status).toBe(404);
  const atApi = await viaApi('nope/log');
  expect(atApi.status).toBe(404);
  expect(await atApi.json()).toMatchObject({ kind: 'Status', reason: 'NotFound' });
});

it('refusesLogsWhenTheAgentHasNoToken', async () => {
  const open = await AgentHttpServer.listen({ port: 0, host: '127.0.0.1', logger: log, source: agent });
  try {
    const res = await fetch(`http://127.0.0.1:${open.port}/v1/tasks/default/t/log`, { headers: { authorization: 'Bearer anything' } });
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/no token/);
  } finally {
    await open.close();
  }
});

it('answers503WhenTheAgentIsDown', async () => {
  await http.close();
  const res = await viaApi('t/log?tail=1');
  expect(res.status).toBe(503);
  const status = (await res.json()) as { reason: string; message: string };
  expect(status.reason).toBe('ServiceUnavailable');
  expect(status.message).toMatch(/cannot reach the agent of node "logs-1"/);
});
