/**
 * Fairness limits of the API server against a real etcd (issue 15, items 4 and 6): request bodies
 * are read under a deadline before an in-flight slot is taken, in-flight slots and watches are
 * limited per user as well as per server, and nodes' allocation is readable by any user.
 */
import * as http from 'node:http';
import { lookupKind } from '../../pkg/api/kinds';
import type { ShoalObject } from '../../pkg/api/validation';
import { TokenAuthenticator } from '../../pkg/apiserver/auth';
import { ApiServer, type ApiServerOptions } from '../../pkg/apiserver/server';
import { runCli } from '../../pkg/cli';
import { EtcdStore } from '../../pkg/store/etcd';
import { encodeObject, objectKey } from '../../pkg/store/objects';
import type { Store } from '../../pkg/store/types';
import { silentLogger } from '../../pkg/util/log';
import { fakeIO } from '../unit/cli-fakes';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { until } from '../harness/wait';

const TOKENS = { admin: 'admin-token-0123456789', viewer: 'view-token-0123456789', other: 'other-token-0123456789' };
const USERS = new TokenAuthenticator([
  { name: 'admin', token: TOKENS.admin, roles: [{ namespace: '*', role: 'admin' }] },
  { name: 'viewer', token: TOKENS.viewer, roles: [{ namespace: 'default', role: 'view' }] },
  { name: 'other', token: TOKENS.other, roles: [{ namespace: 'other', role: 'edit' }] },
]);
const APPS = '/api/v1/namespaces/default/apps';

let store: EtcdStore;
let prefix: string;
const servers: ApiServer[] = [];
const sockets: http.ClientRequest[] = [];

beforeAll(() => {
  prefix = uniquePrefix().replace(/\/$/, '');
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await s.close();
});

afterAll(async () => {
  await store.close();
});

/** A server of this test's own, listening; returns its port. */
async function serve(o: Partial<ApiServerOptions> = {}): Promise<number> {
  const api = new ApiServer({ store, prefix, logger: silentLogger(), authenticator: USERS, bookmarkMs: 200, ...o });
  servers.push(api);
  return api.listen(0);
}

async function call(port: number, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** A POST whose headers promise 100 bytes of which it sends a few, then nothing. */
function stalledBody(port: number, token: string): http.ClientRequest {
  const req = http.request({ port, method: 'POST', path: APPS, agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': '100' } });
  req.on('error', () => undefined);
  req.write('{"apiVersion":');
  sockets.push(req);
  return req;
}

/** Opens a watch; resolves with its status and a handle to close it. */
async function openWatch(port: number, token: string): Promise<{ status: number; body?: any; close(): void }> {
  const ctl = new AbortController();
  const res = await fetch(`http://127.0.0.1:${port}${APPS}?watch=true`, { headers: { authorization: `Bearer ${token}` }, signal: ctl.signal });
  if (res.status !== 200) return { status: res.status, body: await res.json(), close: () => undefined };
  res.body?.getReader().read().catch(() => undefined);
  return { status: 200, close: () => ctl.abort() };
}

/** The value of one of the newest server's gauges (in-flight requests, open watches). */
async function gauge(which: 'inflight' | 'watches'): Promise<number> {
  return (await servers[servers.length - 1]!.metrics[which].get()).values[0]?.value ?? 0;
}

/** A few turns of the event loop: what a resolved promise set going has run. */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}
const app = (name: string) => ({ apiVersion: 'shoal/v1', kind: 'App', metadata: { name }, spec: { cmd: 'sleep 1000' } });

describe('request bodies', () => {
  it('idleBodiesOfOneUserLeaveOtherUsersServed', async () => {
    const port = await serve({ requestBodyTimeoutMs: 60_000 });
    // 100 connections of the view-only user: headers sent, body never finished (the attack).
    for (let i = 0; i < 100; i++) stalledBody(port, TOKENS.viewer);
    // The attack is in place once the server reads all 100 bodies: a 101st body of that user is
    // refused (before, a complete POST of the view-only user is just forbidden).
    const attack = await until('100 stalled bodies being read', async () => {
      const r = await call(port, 'POST', APPS, TOKENS.viewer, app('never'));
      return r.status === 429 && r;
    });
    expect(attack.body.message).toMatch(/^user "viewer" has 100 request bodies arriving at once/);
    expect((await call(port, 'GET', APPS, TOKENS.admin)).status).toBe(200);
    expect((await call(port, 'POST', APPS, TOKENS.admin, app('served-1'))).status).toBe(201);
    expect((await call(port, 'GET', '/api/v1/namespaces/other/apps', TOKENS.other)).status).toBe(200);
    // The slow user itself is served too: its stalled bodies hold no in-flight slot.
    expect((await call(port, 'GET', APPS, TOKENS.viewer)).status).toBe(200);
  });

  it('cutsABodyNotFinishedWithinTheDeadlineWith408', async () => {
    const port = await serve({ requestBodyTimeoutMs: 300 });
    const t0 = Date.now();
    const req = stalledBody(port, TOKENS.admin);
    const res = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
    const text = await new Promise<string>((resolve) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve(b));
    });
    expect(res.statusCode).toBe(408);
    expect(res.headers.connection).toBe('close');
    expect(JSON.parse(text)).toMatchObject({ kind: 'Status', code: 408, reason: 'RequestTimeout', message: expect.stringContaining('--request-body-timeout') });
    await new Promise((resolve) => (req.socket?.destroyed ? resolve(undefined) : req.socket?.once('close', resolve)));
    expect(Date.now() - t0).toBeLessThan(10_000);
    // Nothing was written.
    expect((await call(port, 'GET', `${APPS}/x`, TOKENS.admin)).status).toBe(404);
  });

  it('keepsWatchesOpenLongerThanTheRequestTimeouts', async () => {
    // Node's requestTimeout here is 100 + 100 + 1000 ms; the watch's request is complete at once.
    const port = await serve({ headersTimeoutMs: 100, requestBodyTimeoutMs: 100 });
    const res = await fetch(`http://127.0.0.1:${port}${APPS}?watch=true&resourceVersion=1`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    const reader = res.body!.getReader();
    const t0 = Date.now();
    let text = '';
    while (Date.now() - t0 < 2500) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`watch ended after ${Date.now() - t0} ms`);
      text += Buffer.from(value).toString();
    }
    await reader.cancel();
    expect(text.match(/BOOKMARK/g)!.length).toBeGreaterThan(3);
  });
});

describe('in-flight fair share', () => {
  it('refusesAUserOverItsShareWhileServingOthers', async () => {
    // Lists of apps in "default" hang until released: requests in flight for as long as we want.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = new Proxy(store, {
      get(target, p) {
        if (p === 'list') return async (key: string) => (key.includes('/apps/default') ? gate.then(() => target.list(key)) : target.list(key));
        const v = (target as any)[p];
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as Store;
    // 10 slots, 1 of them headroom: the viewer alone may hold 9.
    const port = await serve({ store: slow, maxInflight: 10 });
    const held = Array.from({ length: 9 }, () => call(port, 'GET', APPS, TOKENS.viewer));
    await until('9 requests in flight', async () => (await gauge('inflight')) === 9);
    const refused = await call(port, 'GET', APPS, TOKENS.viewer);
    expect(refused.status).toBe(429);
    expect(refused.body.message).toMatch(/^user "viewer" has 9 requests in flight, its fair share of 9/);
    // Another user is served from the headroom.
    expect((await call(port, 'GET', '/api/v1/nodes', TOKENS.other)).status).toBe(200);
    release();
    expect((await Promise.all(held)).map((r) => r.status)).toEqual(Array(9).fill(200));
    expect((await call(port, 'GET', APPS, TOKENS.viewer)).status).toBe(200);
  });
});

describe('watches per user', () => {
  it('refusesTheWatchOverTheUserCapWhileAnotherUsersWatchOpens', async () => {
    const port = await serve({ maxWatchesPerUser: 3 });
    const mine = [await openWatch(port, TOKENS.viewer), await openWatch(port, TOKENS.viewer), await openWatch(port, TOKENS.viewer)];
    expect(mine.map((w) => w.status)).toEqual([200, 200, 200]);
    const over = await openWatch(port, TOKENS.viewer);
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ reason: 'TooManyRequests', message: expect.stringContaining('--max-watches-per-user=3') });
    const admins = await openWatch(port, TOKENS.admin);
    expect(admins.status).toBe(200);
    // Closing one gives the slot back.
    mine[0].close();
    await until('its watch gone', async () => (await gauge('watches')) === 3);
    const again = await openWatch(port, TOKENS.viewer);
    expect(again.status).toBe(200);
    for (const w of [...mine, admins, again]) w.close();
  });

  it('givesTheCountBackWhenTheClientLeavesDuringTheInitialList', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let watches = 0;
    let listed = 0;
    const slow = new Proxy(store, {
      get(target, p) {
        if (p === 'list') return async (key: string) => gate.then(() => target.list(key)).finally(() => listed++);
        if (p === 'watch') return (...a: Parameters<Store['watch']>) => (watches++, target.watch(...a));
        const v = (target as any)[p];
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as Store;
    const port = await serve({ store: slow, maxWatchesPerUser: 1 });
    const ctl = new AbortController();
    const pending = fetch(`http://127.0.0.1:${port}${APPS}?watch=true`, { headers: { authorization: `Bearer ${TOKENS.viewer}` }, signal: ctl.signal }).catch(() => undefined);
    await until('the watch counted', async () => (await gauge('watches')) === 1);
    ctl.abort();
    await pending;
    await until('its count given back', async () => (await gauge('watches')) === 0);
    release();
    await until('the initial list done', async () => listed === 1);
    await turns(); // what would follow the list (an etcd watch) has had its chance
    expect(watches).toBe(0); // no etcd watch was left behind for the client that left
    const again = await openWatch(port, TOKENS.viewer);
    expect(again.status).toBe(200);
    again.close();
  });

  it('sendsAnInitialListLargerThanTheBufferLimitToAReadingClient', async () => {
    const port = await serve({ maxWatchBufferBytes: 2048 });
    // 60 apps: more than the socket's 16 KiB high-water mark, so the server waits for a drain.
    for (let i = 0; i < 60; i++) expect((await call(port, 'POST', '/api/v1/namespaces/burst/apps', TOKENS.admin, app(`b${i}`))).status).toBe(201);
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/namespaces/burst/apps?watch=true`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    const reader = res.body!.getReader();
    let text = '';
    while ((text.match(/"ADDED"/g) ?? []).length < 60) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended during the initial list');
      text += Buffer.from(value).toString();
    }
    expect(text.length).toBeGreaterThan(16384);
    // Still open and following changes.
    expect((await call(port, 'POST', '/api/v1/namespaces/burst/apps', TOKENS.admin, app('later'))).status).toBe(201);
    while (!text.includes('"name":"later"')) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended after the initial list');
      text += Buffer.from(value).toString();
    }
    await reader.cancel();
  });

  it('refusesOverTheServerCapWithItsOwnMessage', async () => {
    const port = await serve({ maxWatches: 2 });
    const a = await openWatch(port, TOKENS.admin);
    const b = await openWatch(port, TOKENS.viewer);
    const c = await openWatch(port, TOKENS.admin);
    expect([a.status, b.status, c.status]).toEqual([200, 200, 429]);
    expect(c.body.message).toContain('--max-watches=2');
    a.close();
    b.close();
  });
});

describe('nodes for users with namespace roles only', () => {
  const nodes = lookupKind('nodes')!;
  const tasks = lookupKind('tasks')!;

  beforeAll(async () => {
    const node = {
      apiVersion: 'shoal/v1', kind: 'Node', metadata: { name: 'n1', uid: 'u-n1', creationTimestamp: new Date().toISOString() }, spec: {},
      status: { capacity: { cpus: 4, mem: 4096, disk: 1000, ports: [[31000, 32000]] }, conditions: [{ type: 'Ready', status: 'True' }] },
    } as unknown as ShoalObject;
    await store.create(objectKey(prefix, nodes, undefined, 'n1'), encodeObject(node));
    const task = (name: string, ns: string, state: string) => ({
      apiVersion: 'shoal/v1', kind: 'Task', metadata: { name, namespace: ns, uid: `u-${name}` },
      spec: { nodeName: 'n1', resources: { cpus: 0.5, mem: 256, disk: 0 }, ports: [] }, status: { state, hostPorts: [31005] },
    }) as unknown as ShoalObject;
    // Tasks of a namespace the viewer may not read, and a finished one that holds nothing.
    await store.create(objectKey(prefix, tasks, 'secret', 't1'), encodeObject(task('t1', 'secret', 'RUNNING')));
    await store.create(objectKey(prefix, tasks, 'secret', 't2'), encodeObject(task('t2', 'secret', 'FINISHED')));
  });

  async function shoal(port: number, ...args: string[]) {
    const io = fakeIO({ fetch: globalThis.fetch, env: { SHOAL_SERVER: `http://127.0.0.1:${port}`, SHOAL_TOKEN: TOKENS.viewer }, now: () => Date.now() });
    const code = await runCli(args, io);
    return { code, out: io.out.join(''), err: io.err.join('') };
  }

  it('servesTheAllocationSumsWithoutTheTasks', async () => {
    const port = await serve();
    expect((await call(port, 'GET', '/api/v1/tasks', TOKENS.viewer)).status).toBe(403);
    const one = await call(port, 'GET', '/api/v1/nodeallocations/n1', TOKENS.viewer);
    expect(one).toMatchObject({ status: 200, body: { kind: 'NodeAllocation', metadata: { name: 'n1' }, allocated: { cpus: 0.5, mem: 256, disk: 0, ports: [31005] }, tasks: 1 } });
    expect(JSON.stringify(one.body)).not.toContain('secret');
    const all = await call(port, 'GET', '/api/v1/nodeallocations', TOKENS.viewer);
    expect(all.body).toMatchObject({ kind: 'NodeAllocationList', items: [{ metadata: { name: 'n1' }, tasks: 1 }] });
    expect((await call(port, 'GET', '/api/v1/nodeallocations/nope', TOKENS.viewer)).status).toBe(404);
    expect((await call(port, 'POST', '/api/v1/nodeallocations', TOKENS.admin, {})).status).toBe(405);
  });

  it('getNodesWorksForAViewOnlyUser', async () => {
    const port = await serve();
    const r = await shoal(port, 'get', 'nodes');
    expect(r.code).toBe(0);
    expect(r.err).not.toContain('error');
    expect(r.out).toMatch(/^n1\s+Ready\s+4\s+4096\s+cpus=0.5 mem=256\s/m);
  });

  it('describeNodeWorksForAViewOnlyUser', async () => {
    const port = await serve();
    const r = await shoal(port, 'describe', 'node', 'n1');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Allocated \(1 live task\(s\)\):\n\s+cpus:\s+0.5 \(13% of 4\)\n\s+mem:\s+256 MiB \(6% of 4096 MiB\)/);
    expect(r.out).toMatch(/ports:\s+31005\n/);
    expect(r.out).not.toContain('unable');
  });
});
