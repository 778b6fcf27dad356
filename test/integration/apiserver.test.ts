/**
 * The API server against a real etcd: happy paths, every kind of bad input (each must get a
 * 4xx naming the problem and leave etcd unchanged), authorization, conflicts, watches, overload.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd } from '../../pkg/devcluster/etcd';
import { TokenAuthenticator } from '../../pkg/apiserver/auth';
import { ApiServer } from '../../pkg/apiserver/server';
import { EtcdStore } from '../../pkg/store/etcd';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';

const TOKENS = { admin: 'admin-token-0123456789', edit: 'edit-token-0123456789', view: 'view-token-0123456789', other: 'other-token-0123456789' };

let store: EtcdStore;
let api: ApiServer;
let base: string;
let prefix: string;

beforeAll(async () => {
  prefix = uniquePrefix().replace(/\/$/, '');
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
  api = new ApiServer({
    store,
    prefix,
    logger: silentLogger(),
    bookmarkMs: 200,
    authenticator: new TokenAuthenticator([
      { name: 'admin', token: TOKENS.admin, roles: [{ namespace: '*', role: 'admin' }] },
      { name: 'editor', token: TOKENS.edit, roles: [{ namespace: 'default', role: 'edit' }] },
      { name: 'viewer', token: TOKENS.view, roles: [{ namespace: 'default', role: 'view' }] },
      { name: 'other', token: TOKENS.other, roles: [{ namespace: 'other', role: 'admin' }] },
    ]),
  });
  base = `http://127.0.0.1:${await api.listen(0)}`;
});

afterAll(async () => {
  await api.close();
  await store.close();
});

interface Res { status: number; body: any; headers: Headers }

async function call(method: string, path: string, body?: unknown, opts: { token?: string; contentType?: string; raw?: string } = {}): Promise<Res> {
  const headers: Record<string, string> = {};
  const token = opts.token ?? TOKENS.admin;
  if (token) headers.authorization = `Bearer ${token}`;
  const payload = opts.raw ?? (body === undefined ? undefined : JSON.stringify(body));
  if (payload !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  const res = await fetch(base + path, { method, headers, body: payload });
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = JSON.parse(text); } catch { /* plain text */ }
  return { status: res.status, body: parsed, headers: res.headers };
}

const APPS = '/api/v1/namespaces/default/apps';
const app = (name: string, spec: Record<string, unknown> = { cmd: 'sleep 1000' }, extra: Record<string, unknown> = {}) =>
  ({ apiVersion: 'shoal/v1', kind: 'App', metadata: { name, ...extra }, spec });

async function etcdSnapshot(): Promise<string> {
  const { items } = await store.list(prefix + '/');
  return JSON.stringify(items.map((kv) => [kv.key, kv.modRevision]));
}

describe('objects', () => {
  it('createsWithDefaultsAndServerMetadata', async () => {
    const res = await call('POST', APPS, app('web', { cmd: 'sleep 1000', instances: 2 }, { labels: { tier: 'front' } }));
    expect(res.status).toBe(201);
    expect(res.body.metadata).toMatchObject({ name: 'web', namespace: 'default', generation: 1, labels: { tier: 'front' } });
    expect(res.body.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body.spec).toMatchObject({ instances: 2, role: '*', resources: { cpus: 1, mem: 128, disk: 0 }, killSelection: 'YoungestFirst' });
    const stored = await store.get(`${prefix}/registry/apps/default/web`);
    expect(String(stored!.modRevision)).toBe(res.body.metadata.resourceVersion);
    expect(JSON.parse(stored!.value).metadata.resourceVersion).toBeUndefined();
  });

  it('getsListsAndFiltersByLabel', async () => {
    await call('POST', APPS, app('api', { cmd: 'x' }, { labels: { tier: 'back' } }));
    expect((await call('GET', `${APPS}/api`)).body.metadata.name).toBe('api');
    const list = await call('GET', `${APPS}?labelSelector=tier%3Dback`);
    expect(list.body.kind).toBe('AppList');
    expect(list.body.items.map((i: any) => i.metadata.name)).toEqual(['api']);
    expect(Number(list.body.metadata.resourceVersion)).toBeGreaterThan(0);
    const all = await call('GET', '/api/v1/apps');
    expect(all.body.items.map((i: any) => i.metadata.name)).toEqual(expect.arrayContaining(['api', 'web']));
  });

  it('bumpsGenerationOnSpecChangesOnly', async () => {
    const created = (await call('POST', APPS, app('gen'))).body;
    const labelsOnly = await call('PUT', `${APPS}/gen`, { ...created, metadata: { ...created.metadata, labels: { a: 'b' } } });
    expect(labelsOnly.body.metadata.generation).toBe(1);
    const specChange = await call('PUT', `${APPS}/gen`, { ...labelsOnly.body, spec: { ...labelsOnly.body.spec, instances: 5 } });
    expect(specChange.status).toBe(200);
    expect(specChange.body.metadata.generation).toBe(2);
    const patched = await call('PATCH', `${APPS}/gen`, { spec: { instances: 7 } }, { contentType: 'application/merge-patch+json' });
    expect(patched.body.spec.instances).toBe(7);
    expect(patched.body.metadata.generation).toBe(3);
    expect(patched.body.metadata.uid).toBe(created.metadata.uid);
  });

  it('doesNotWriteANoOpUpdate', async () => {
    const created = (await call('POST', APPS, app('noop'))).body;
    const again = await call('PUT', `${APPS}/noop`, created);
    expect(again.body.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
  });

  it('ignoresStatusFromClients', async () => {
    const res = await call('POST', APPS, { ...app('st'), status: { tasksRunning: 99 } });
    expect(res.body.status).toEqual({});
  });

  it('answers409OnAStaleResourceVersionAndKeepsTheNewer', async () => {
    const v1 = (await call('POST', APPS, app('cas'))).body;
    const v2 = (await call('PATCH', `${APPS}/cas`, { spec: { instances: 2 } }, { contentType: 'application/merge-patch+json' })).body;
    const stale = await call('PUT', `${APPS}/cas`, { ...v1, spec: { ...v1.spec, instances: 9 } });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ kind: 'Status', reason: 'Conflict', code: 409 });
    expect(stale.body.message).toMatch(/stale/);
    expect((await call('GET', `${APPS}/cas`)).body.spec.instances).toBe(v2.spec.instances);
  });

  it('answers409OnCreatingAnExistingName', async () => {
    await call('POST', APPS, app('dup'));
    const res = await call('POST', APPS, app('dup'));
    expect(res.status).toBe(409);
    expect(res.body.reason).toBe('AlreadyExists');
  });

  it('dryRunValidatesButWritesNothing', async () => {
    const before = await etcdSnapshot();
    const res = await call('POST', `${APPS}?dryRun=All`, app('dry'));
    expect(res.status).toBe(200);
    expect(res.body.spec.instances).toBe(1);
    expect(await etcdSnapshot()).toBe(before);
    expect((await call('POST', `${APPS}?dryRun=All`, app('web'))).status).toBe(409);
  });

  it('deletesAndThen404s', async () => {
    await call('POST', '/api/v1/namespaces/default/jobs', { apiVersion: 'shoal/v1', kind: 'Job', metadata: { name: 'gone' }, spec: { cmd: 'x' } });
    expect((await call('DELETE', '/api/v1/namespaces/default/jobs/gone')).status).toBe(200);
    expect((await call('GET', '/api/v1/namespaces/default/jobs/gone')).status).toBe(404);
    expect((await call('DELETE', '/api/v1/namespaces/default/jobs/gone')).status).toBe(404);
  });

  it('marksInsteadOfDeletingWhileFinalizersHold', async () => {
    await call('POST', APPS, app('fin', { cmd: 'x' }, { finalizers: ['shoal.dev/tasks'] }));
    const res = await call('DELETE', `${APPS}/fin`);
    expect(res.body.metadata.deletionTimestamp).toBeDefined();
    expect((await call('GET', `${APPS}/fin`)).status).toBe(200);
  });

  it('deletesATaskTogetherWithItsAssignmentSoItsAgentStopsIt', async () => {
    const task = { apiVersion: 'shoal/v1', kind: 'Task', metadata: { name: 't1', namespace: 'default', uid: 'u', generation: 1 }, spec: { nodeName: 'n1', cmd: 'x' }, status: { state: 'RUNNING' } };
    await store.create(`${prefix}/registry/tasks/default/t1`, JSON.stringify(task));
    await store.create(`${prefix}/assignments/n1/default/t1`, JSON.stringify({ metadata: task.metadata, spec: task.spec }));
    expect((await call('DELETE', '/api/v1/namespaces/default/tasks/t1', undefined, { token: TOKENS.edit })).status).toBe(200);
    expect(await store.get(`${prefix}/registry/tasks/default/t1`)).toBeUndefined();
    expect(await store.get(`${prefix}/assignments/n1/default/t1`)).toBeUndefined();
  });

  it('servesClusterScopedNodesAndLetsAdminsCordon', async () => {
    await store.create(`${prefix}/registry/nodes/n1`, JSON.stringify({ apiVersion: 'shoal/v1', kind: 'Node', metadata: { name: 'n1', uid: 'u', generation: 1 }, spec: { unschedulable: false }, status: { capacity: { cpus: 4 } } }));
    const cordon = await call('PATCH', '/api/v1/nodes/n1', { spec: { unschedulable: true } }, { contentType: 'application/merge-patch+json' });
    expect(cordon.body.spec.unschedulable).toBe(true);
    expect(cordon.body.status.capacity.cpus).toBe(4);
    expect((await call('GET', '/api/v1/nodes', undefined, { token: TOKENS.view })).body.items).toHaveLength(1);
    expect((await call('PATCH', '/api/v1/nodes/n1', { spec: { unschedulable: false } }, { token: TOKENS.edit, contentType: 'application/merge-patch+json' })).status).toBe(403);
    expect((await call('GET', '/api/v1/namespaces/default/nodes')).status).toBe(404);
  });
});

describe('app finalizer and spec history', () => {
  const FINALIZER = 'shoal.dev/app-tasks';
  const MERGE = { contentType: 'application/merge-patch+json' };
  const historyKeys = async (name: string) =>
    (await store.list(`${prefix}/history/apps/default/${name}/`)).items.map((kv) => Number(kv.key.slice(kv.key.lastIndexOf('/') + 1)));

  it('addsTheFinalizerOnCreateAndInDryRun', async () => {
    const dry = await call('POST', `${APPS}?dryRun=All`, app('fin-dry'));
    expect(dry.body.metadata.finalizers).toEqual([FINALIZER]);
    const created = await call('POST', APPS, app('fin-new', { cmd: 'x' }, { finalizers: ['example.com/other'] }));
    expect(created.body.metadata.finalizers).toEqual(['example.com/other', FINALIZER]);
    const stored = JSON.parse((await store.get(`${prefix}/registry/apps/default/fin-new`))!.value);
    expect(stored.metadata.finalizers).toEqual(['example.com/other', FINALIZER]);
  });

  it('keepsStoredFinalizersWhenABodyHasNone', async () => {
    await call('POST', APPS, app('fin-keep'));
    const put = await call('PUT', `${APPS}/fin-keep`, app('fin-keep', { cmd: 'y' }));
    expect(put.status).toBe(200);
    expect(put.body.metadata.finalizers).toEqual([FINALIZER]);
    const explicit = await call('PUT', `${APPS}/fin-keep`, app('fin-keep', { cmd: 'y' }, { finalizers: ['example.com/x'] }));
    expect(explicit.body.metadata.finalizers).toEqual(['example.com/x']);
  });

  it('writesARevisionPerGenerationAndPrunesToTheLimit', async () => {
    const created = (await call('POST', APPS, app('hist', { cmd: 'v1', revisionHistoryLimit: 2 }))).body;
    expect(await historyKeys('hist')).toEqual([1]);
    for (const v of [2, 3, 4, 5]) {
      const res = await call('PATCH', `${APPS}/hist`, { spec: { cmd: `v${v}` } }, MERGE);
      expect(res.body.metadata.generation).toBe(v);
    }
    expect(await historyKeys('hist')).toEqual([3, 4, 5]);
    const revs = await call('GET', `${APPS}/hist/revisions`, undefined, { token: TOKENS.view });
    expect(revs.status).toBe(200);
    expect(revs.body).toMatchObject({ apiVersion: 'shoal/v1', kind: 'AppRevisionList' });
    expect(revs.body.items.map((r: any) => [r.generation, r.spec.cmd])).toEqual([[5, 'v5'], [4, 'v4'], [3, 'v3']]);
    expect(Date.parse(revs.body.items[0].createdAt)).not.toBeNaN();
    expect(created.metadata.uid).toBeDefined();
  });

  it('writesNoRevisionForANoOpOrMetadataOnlyUpdate', async () => {
    const created = (await call('POST', APPS, app('hist-noop'))).body;
    const before = await etcdSnapshot();
    expect((await call('PUT', `${APPS}/hist-noop`, created)).body.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
    expect(await etcdSnapshot()).toBe(before);
    await call('PATCH', `${APPS}/hist-noop`, { metadata: { labels: { a: 'b' } } }, MERGE);
    expect(await historyKeys('hist-noop')).toEqual([1]);
  });

  it('deletesAMarkedAppWithItsHistoryWhenTheLastFinalizerGoes', async () => {
    await call('POST', APPS, app('hist-del'));
    await call('PATCH', `${APPS}/hist-del`, { spec: { instances: 3 } }, MERGE);
    expect(await historyKeys('hist-del')).toEqual([1, 2]);
    const marked = await call('DELETE', `${APPS}/hist-del`);
    expect(marked.body.metadata.deletionTimestamp).toBeDefined();
    expect((await call('GET', `${APPS}/hist-del`)).status).toBe(200);
    const released = await call('PUT', `${APPS}/hist-del`, { ...marked.body, metadata: { ...marked.body.metadata, finalizers: [] } });
    expect(released.status).toBe(200);
    expect((await call('GET', `${APPS}/hist-del`)).status).toBe(404);
    expect(await historyKeys('hist-del')).toEqual([]);
  });

  it('deletesAnAppWithoutFinalizersAndItsHistoryAtOnce', async () => {
    await call('POST', APPS, app('hist-now'));
    const patched = await call('PATCH', `${APPS}/hist-now`, { metadata: { finalizers: null }, spec: { cmd: 'y' } }, MERGE);
    expect(patched.body.metadata.finalizers).toEqual([]);
    expect(await historyKeys('hist-now')).toEqual([1, 2]);
    expect((await call('DELETE', `${APPS}/hist-now`)).status).toBe(200);
    expect((await call('GET', `${APPS}/hist-now`)).status).toBe(404);
    expect(await historyKeys('hist-now')).toEqual([]);
  });

  it('startsAFreshHistoryForARecreatedName', async () => {
    await store.create(`${prefix}/history/apps/default/hist-re/0000000007`, JSON.stringify({ generation: 7, createdAt: 'x', spec: {} }));
    await call('POST', APPS, app('hist-re'));
    expect(await historyKeys('hist-re')).toEqual([1]);
  });

  it('answersRevisions404ForAMissingAppAnd405ForWrites', async () => {
    const missing = await call('GET', `${APPS}/nope/revisions`);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ kind: 'Status', reason: 'NotFound' });
    expect((await call('POST', `${APPS}/hist/revisions`, {})).status).toBe(405);
    expect((await call('GET', `${APPS}/hist/revisions`, undefined, { token: TOKENS.other })).status).toBe(403);
  });
});

describe('bad input gets a 4xx naming the problem and leaves etcd unchanged', () => {
  const deep = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
  const cases: Array<[string, string, string, unknown, number, RegExp, string?]> = [
    ['unknown field', 'POST', APPS, app('bad', { cmd: 'x', replicas: 3 }), 422, /spec\.replicas: unknown field/],
    ['wrong type', 'POST', APPS, app('bad', { cmd: 'x', instances: '3' }), 422, /spec\.instances: must be integer, not string/],
    ['negative instances', 'POST', APPS, app('bad', { cmd: 'x', instances: -2 }), 422, /spec\.instances: must be >= 0/],
    ['missing name', 'POST', APPS, { apiVersion: 'shoal/v1', kind: 'App', metadata: {}, spec: { cmd: 'x' } }, 422, /metadata\.name: is required/],
    ['name not DNS-1123', 'POST', APPS, app('Bad_Name'), 422, /metadata\.name: must be a DNS-1123 label/],
    ['unknown kind', 'POST', APPS, { apiVersion: 'shoal/v1', kind: 'Pod', metadata: { name: 'x' } }, 400, /kind "Pod" does not match/],
    ['unknown apiVersion', 'POST', APPS, { ...app('bad'), apiVersion: 'apps/v1' }, 422, /apiVersion: unsupported "apps\/v1"/],
    ['namespace mismatch', 'POST', APPS, app('bad', { cmd: 'x' }, { namespace: 'prod' }), 400, /does not match the URL's namespace/],
    ['__proto__ key', 'POST', APPS, undefined, 400, /metadata\.__proto__: key "__proto__" is not allowed/, '{"apiVersion":"shoal/v1","kind":"App","metadata":{"name":"p","__proto__":{"polluted":true}},"spec":{"cmd":"x"}}'],
    ['constructor key', 'POST', APPS, undefined, 400, /spec\.constructor: key "constructor" is not allowed/, '{"apiVersion":"shoal/v1","kind":"App","metadata":{"name":"p"},"spec":{"cmd":"x","constructor":{"prototype":{"polluted":true}}}}'],
    ['5000-deep nesting', 'POST', APPS, undefined, 400, /nested more than 32 levels deep/, `{"apiVersion":"shoal/v1","kind":"App","metadata":{"name":"deep"},"spec":${deep(5000)}}`],
    ['malformed JSON', 'POST', APPS, undefined, 400, /request body is not valid JSON/, '{"apiVersion": '],
    ['a 5 MB body', 'POST', APPS, undefined, 413, /over the limit of 1048576 bytes/, JSON.stringify(app('big', { cmd: 'x'.repeat(5 << 20) }))],
    ['not JSON', 'POST', APPS, undefined, 415, /Content-Type must be/, 'apiVersion: shoal/v1'],
    ['tasks are not created by clients', 'POST', '/api/v1/namespaces/default/tasks', { apiVersion: 'shoal/v1', kind: 'Task', metadata: { name: 't' } }, 405, /created by the scheduler/],
    ['unknown resource', 'GET', '/api/v1/namespaces/default/pods', undefined, 404, /unknown resource "pods"/],
    ['encoded slash in name', 'GET', `${APPS}/a%2Fb`, undefined, 400, /invalid name "a\/b"/],
    ['bad label selector', 'GET', `${APPS}?labelSelector=a%20in%20(`, undefined, 400, /unbalanced/],
    ['bad watch revision', 'GET', `${APPS}?watch=true&resourceVersion=abc`, undefined, 400, /not a revision number/],
  ];
  // Rest args: jest treats a callback with more parameters than row values as taking done().
  it.each(cases)('%s', async (...row) => {
    const [, method, path, body, code, message, raw] = row;
    const before = await etcdSnapshot();
    const res = await call(method, path, body, { raw, contentType: raw?.startsWith('apiVersion:') ? 'application/yaml' : undefined });
    expect({ status: res.status, body: res.body }).toMatchObject({ status: code, body: { kind: 'Status', code } });
    expect(res.body.message).toMatch(message);
    expect(await etcdSnapshot()).toBe(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('namesEveryBadFieldInCauses', async () => {
    const res = await call('POST', APPS, app('bad', { cmd: 'x', instances: -1, foo: 1 }));
    expect(res.body.details.causes).toEqual(expect.arrayContaining([
      { field: 'spec.instances', message: 'must be >= 0' },
      { field: 'spec.foo', message: 'unknown field' },
    ]));
  });

  it('stillServesAfterwards', async () => {
    expect((await call('GET', '/healthz', undefined, { token: '' })).status).toBe(200);
    expect((await call('GET', '/readyz', undefined, { token: '' })).body).toBe('ok');
  });
});

describe('authentication and authorization', () => {
  it.each([
    ['no token', '', 'GET', APPS, 401],
    ['unknown token', 'not-a-valid-token-at-all', 'GET', APPS, 401],
    ['viewer reads', TOKENS.view, 'GET', APPS, 200],
    ['viewer cannot create', TOKENS.view, 'POST', APPS, 403],
    ['editor creates', TOKENS.edit, 'POST', APPS, 201],
    ['editor cannot list all namespaces', TOKENS.edit, 'GET', '/api/v1/apps', 403],
    ['other namespace admin cannot read default', TOKENS.other, 'GET', APPS, 403],
  ])('%s', async (_name, token, method, path, code) => {
    const res = await call(method, path, method === 'POST' ? app(`authz-${code}`) : undefined, { token });
    expect(res.status).toBe(code);
    if (code >= 400) expect(res.body.kind).toBe('Status');
  });
});

describe('watch', () => {
  async function openWatch(query: string) {
    const ctrl = new AbortController();
    const res = await fetch(`${base}${APPS}?watch=true&${query}`, { headers: { authorization: `Bearer ${TOKENS.admin}` }, signal: ctrl.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    const next = async (): Promise<any> => {
      for (;;) {
        const nl = buf.indexOf('\n');
        if (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const ev = JSON.parse(line);
          if (ev.type !== 'BOOKMARK') return ev;
          continue;
        }
        const { value, done } = await reader.read();
        if (done) return undefined;
        buf += decoder.decode(value, { stream: true });
      }
    };
    return { res, next, close: () => ctrl.abort() };
  }

  it('streamsChangesAfterAResourceVersion', async () => {
    const list = await call('GET', APPS);
    const w = await openWatch(`resourceVersion=${list.body.metadata.resourceVersion}&labelSelector=watch%3Dme`);
    expect(w.res.headers.get('content-type')).toMatch(/ndjson/);
    await call('POST', APPS, app('w1', { cmd: 'x' }, { labels: { watch: 'me' } }));
    expect(await w.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'w1' } } });
    await call('PATCH', `${APPS}/w1`, { spec: { instances: 3 } }, { contentType: 'application/merge-patch+json' });
    expect(await w.next()).toMatchObject({ type: 'MODIFIED', object: { spec: { instances: 3 } } });
    await call('PATCH', `${APPS}/w1`, { metadata: { labels: { watch: 'no' } } }, { contentType: 'application/merge-patch+json' });
    expect(await w.next()).toMatchObject({ type: 'DELETED', object: { metadata: { name: 'w1' } } });
    w.close();
  });

  it('startsWithTheCurrentObjectsWithoutAResourceVersion', async () => {
    const w = await openWatch('labelSelector=tier%3Dfront');
    expect(await w.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'web' } } });
    w.close();
  });

  it('sendsBookmarksWhenQuiet', async () => {
    const res = await fetch(`${base}${APPS}?watch=true&labelSelector=nothing%3Dhere`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    const reader = res.body!.getReader();
    const { value } = await reader.read();
    expect(JSON.parse(new TextDecoder().decode(value).split('\n')[0])).toMatchObject({ type: 'BOOKMARK' });
    await reader.cancel();
  });

  it('answers410WhenTheRevisionWasCompacted', async () => {
    // Compaction is cluster-wide, so this test gets an etcd of its own rather than the shared one.
    const dataDir = mkdtempSync(join(tmpdir(), 'shoal-compact-'));
    const etcd = await startEtcd({ dataDir });
    const own = new EtcdStore({ endpoints: [etcd.endpoint] });
    const server = new ApiServer({ store: own, logger: silentLogger(), authenticator: new TokenAuthenticator([{ name: 'a', token: TOKENS.admin, roles: [{ namespace: '*', role: 'admin' }] }]) });
    const url = `http://127.0.0.1:${await server.listen(0)}`;
    try {
      const post = (name: string): Promise<any> => fetch(url + APPS, { method: 'POST', headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/json' }, body: JSON.stringify(app(name)) }).then((r) => r.json());
      const first = (await post('c1')).metadata.resourceVersion;
      const last = (await post('c2')).metadata.resourceVersion;
      await own.compact(Number(last));
      const res = await fetch(`${url}${APPS}?watch=true&resourceVersion=${Number(first) - 1}`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
      const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
      expect(lines).toEqual([{ type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired' }) }]);
    } finally {
      await server.close();
      await own.close();
      await etcd.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('overload', () => {
  it('answers429WithRetryAfterWhenTooManyRequestsAreInFlight', async () => {
    // A list of nodes that hangs until released holds the only slot (a body that never finishes
    // does not: bodies are read before a slot is taken, see api-fairness.test.ts).
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = new Proxy(store, {
      get: (target, p) => (p === 'list' ? async (key: string) => (key.includes('/nodes') ? gate.then(() => target.list(key)) : target.list(key)) : (target as any)[p]?.bind?.(target) ?? (target as any)[p]),
    });
    const tight = new ApiServer({ store: slow, prefix, logger: silentLogger(), maxInflight: 1, authenticator: new TokenAuthenticator([{ name: 'a', token: TOKENS.admin, roles: [{ namespace: '*', role: 'admin' }] }]) });
    const port = await tight.listen(0);
    const held = fetch(`http://127.0.0.1:${port}/api/v1/nodes`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetch(`http://127.0.0.1:${port}${APPS}`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(((await res.json()) as { reason: string }).reason).toBe('TooManyRequests');
    // Watches and health checks are not shed.
    const watch = new AbortController();
    expect((await fetch(`http://127.0.0.1:${port}${APPS}?watch=1`, { headers: { authorization: `Bearer ${TOKENS.admin}` }, signal: watch.signal })).status).toBe(200);
    watch.abort();
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toMatch(/shoal_apiserver_rejected_requests_total 1\b/);
    release();
    expect((await held).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}${APPS}`, { headers: { authorization: `Bearer ${TOKENS.admin}` } })).status).toBe(200);
    await tight.close();
  });

  it('exposesRequestMetrics', async () => {
    const text = (await call('GET', '/metrics', undefined, { token: '' })).body as string;
    expect(text).toMatch(/shoal_apiserver_request_duration_seconds_bucket\{[^}]*verb="create",resource="apps",code="201"/);
    expect(text).toMatch(/shoal_apiserver_request_duration_seconds_count\{[^}]*code="422"/);
  });
});

describe('flags', () => {
  it.each([
    ['apiserver', ['--token-file', '/nonexistent', '--port', 'abc'], "error: option '--port <port>' argument 'abc' is invalid. expected a whole number from 0 to 65535"],
    ['controller-manager', ['--leader-lease', '0'], "error: option '--leader-lease <seconds>' argument '0' is invalid. expected a whole number from 1 to 9007199254740991"],
    ['apiserver', ['--token-file', '/nonexistent'], 'error: give --tls-cert-file and --tls-private-key-file (HTTPS), or --insecure-http to serve plain HTTP on purpose'],
    ['apiserver', ['--token-file', '/nonexistent', '--tls-cert-file', '/nonexistent.crt'], 'error: --tls-cert-file and --tls-private-key-file go together'],
    ['apiserver', ['--token-file', '/nonexistent', '--tls-cert-file', '/nonexistent.crt', '--tls-private-key-file', '/nonexistent.key'], 'error: --tls-cert-file /nonexistent.crt: no such file'],
    ['controller-manager', ['--etcd-endpoints', 'https://127.0.0.1:2379'], "error: --etcd-endpoints are https://: give --etcd-cacert (the CA that signed etcd's certificate)"],
    ['controller-manager', ['--etcd-user', 'x'], 'error: --etcd-user and --etcd-password-file go together'],
    ['agent', ['--etcd-endpoints', 'http://a:1,https://b:2'], 'error: --etcd-endpoints: mix of http:// and https:// URLs; use https:// for every member'],
    ['agent', ['--etcd-endpoints', 'https://127.0.0.1:2379', '--etcd-cacert', '/nonexistent-ca.crt'], 'error: --etcd-cacert /nonexistent-ca.crt: no such file'],
  ])('shoal-%s refuses a bad flag with one line naming it', (daemon, args, message) => {
    const r = spawnSync(process.execPath, [join(__dirname, `../../dist/cmd/${daemon}/main.js`), ...args], { encoding: 'utf8', timeout: 10_000 });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(message);
  });
});

describe('requests the HTTP parser refuses', () => {
  /** Writes raw bytes, returns what the server answered before closing. */
  function raw(bytes: string): Promise<string> {
    const { port } = new URL(base);
    return new Promise((resolve, reject) => {
      const sock = createConnection({ host: '127.0.0.1', port: Number(port) }, () => sock.write(bytes));
      let got = '';
      sock.on('data', (d) => (got += d));
      sock.on('end', () => resolve(got));
      sock.on('error', reject);
    });
  }

  it('answersAMalformedRequestWithAStatusBody', async () => {
    const answer = await raw('GET /api/v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(JSON.parse(answer.split('\r\n\r\n')[1]!)).toMatchObject({ kind: 'Status', code: 400, reason: 'BadRequest', message: expect.stringMatching(/^malformed HTTP request/) });
  });

  it('answersHeadersOverTheLimitWith431AndAStatusBody', async () => {
    const answer = await raw(`GET /api/v1/nodes?x=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(answer.split('\r\n\r\n')[1]!)).toMatchObject({ kind: 'Status', code: 431, reason: 'RequestHeaderFieldsTooLarge' });
  });
});
