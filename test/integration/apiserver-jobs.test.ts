/**
 * The API server's Job additions against a real etcd: `POST .../jobs/{name}/run` (manual runs,
 * idempotency keys, bad bodies, deleting jobs, authorization) and Job admission across objects
 * (parents must exist, the parent graph must stay acyclic).
 */
import { TokenAuthenticator } from '../../pkg/apiserver/auth';
import { parentCycle } from '../../pkg/api/jobs';
import { ApiServer } from '../../pkg/apiserver/server';
import { JOB_LABEL, manualRunName } from '../../pkg/api/jobs';
import { EtcdStore } from '../../pkg/store/etcd';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';

const TOKENS = { admin: 'admin-token-0123456789', edit: 'edit-token-0123456789', view: 'view-token-0123456789' };
const NOW = new Date('2024-05-01T12:00:00Z');

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
    now: () => NOW,
    authenticator: new TokenAuthenticator([
      { name: 'admin', token: TOKENS.admin, roles: [{ namespace: '*', role: 'admin' }] },
      { name: 'editor', token: TOKENS.edit, roles: [{ namespace: 'default', role: 'edit' }] },
      { name: 'viewer', token: TOKENS.view, roles: [{ namespace: 'default', role: 'view' }] },
    ]),
  });
  base = `http://127.0.0.1:${await api.listen(0)}`;
});

afterAll(async () => {
  await api.close();
  await store.close();
});

interface Res { status: number; body: any }

async function call(method: string, path: string, body?: unknown, opts: { token?: string; contentType?: string; raw?: string } = {}): Promise<Res> {
  const headers: Record<string, string> = { authorization: `Bearer ${opts.token ?? TOKENS.admin}` };
  const payload = opts.raw ?? (body === undefined ? undefined : JSON.stringify(body));
  if (payload !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  const res = await fetch(base + path, { method, headers, body: payload });
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = JSON.parse(text); } catch { /* plain text */ }
  return { status: res.status, body: parsed };
}

const JOBS = '/api/v1/namespaces/default/jobs';
const RUNS = '/api/v1/namespaces/default/jobruns';
const MERGE = { contentType: 'application/merge-patch+json' };
const job = (name: string, spec: Record<string, unknown> = {}) =>
  ({ apiVersion: 'shoal/v1', kind: 'Job', metadata: { name }, spec: { cmd: 'echo hi', ...spec } });

async function etcdSnapshot(): Promise<string> {
  const { items } = await store.list(prefix + '/');
  return JSON.stringify(items.map((kv) => [kv.key, kv.modRevision]));
}

describe('POST jobs/{name}/run', () => {
  beforeAll(async () => {
    expect((await call('POST', JOBS, job('report', { schedule: '0 * * * *', completions: 2, parallelism: 2 }))).status).toBe(201);
  });

  it('createsAManualRunStoredLikeAnyObject', async () => {
    const res = await call('POST', `${JOBS}/report/run`);
    expect(res.status).toBe(201);
    const run = res.body;
    expect(run.kind).toBe('JobRun');
    expect(run.metadata.name).toMatch(/^report-manual-[a-z0-9]{8}$/);
    expect(run.metadata).toMatchObject({ namespace: 'default', generation: 1, creationTimestamp: NOW.toISOString(), labels: { [JOB_LABEL]: 'report' } });
    expect(run.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(run.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Job', name: 'report', controller: true })]);
    expect(run.spec).toMatchObject({ job: 'report', trigger: 'Manual', scheduledTime: NOW.toISOString() });
    expect(run.spec.template).toMatchObject({ cmd: 'echo hi', completions: 2, parallelism: 2, schedule: '0 * * * *' });
    expect(run.status).toEqual({ phase: 'Pending' });
    const stored = await store.get(`${prefix}/registry/jobruns/default/${run.metadata.name}`);
    expect(String(stored!.modRevision)).toBe(run.metadata.resourceVersion);
    expect((await call('GET', `${RUNS}/${run.metadata.name}`)).body.metadata.uid).toBe(run.metadata.uid);
  });

  it('isIdempotentWithAKey', async () => {
    const first = await call('POST', `${JOBS}/report/run`, { idempotencyKey: 'deploy-42' });
    expect(first.status).toBe(201);
    expect(first.body.metadata.name).toBe(manualRunName('report', 'deploy-42'));
    const again = await call('POST', `${JOBS}/report/run`, { idempotencyKey: 'deploy-42' });
    expect(again.status).toBe(200);
    expect(again.body.metadata).toMatchObject({ name: first.body.metadata.name, uid: first.body.metadata.uid, resourceVersion: first.body.metadata.resourceVersion });
    const other = await call('POST', `${JOBS}/report/run`, { idempotencyKey: 'deploy-43' });
    expect(other.status).toBe(201);
    expect(other.body.metadata.name).not.toBe(first.body.metadata.name);
  });

  it('makesOneRunForConcurrentRequestsWithOneKey', async () => {
    const results = await Promise.all([1, 2, 3, 4].map(() => call('POST', `${JOBS}/report/run`, { idempotencyKey: 'race' })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 201]);
    expect(new Set(results.map((r) => r.body.metadata.uid)).size).toBe(1);
  });

  it('acceptsAnEmptyObjectBody', async () => {
    expect((await call('POST', `${JOBS}/report/run`, {})).status).toBe(201);
  });

  it('dryRunWritesNothing', async () => {
    const before = await etcdSnapshot();
    const res = await call('POST', `${JOBS}/report/run?dryRun=All`, { idempotencyKey: 'dry' });
    expect(res.status).toBe(200);
    expect(res.body.metadata.name).toBe(manualRunName('report', 'dry'));
    expect(await etcdSnapshot()).toBe(before);
  });

  it.each([
    ['a number key', { idempotencyKey: 7 }, 422, 'idempotencyKey'],
    ['an empty key', { idempotencyKey: '' }, 422, 'idempotencyKey'],
    ['a key over 253 characters', { idempotencyKey: 'k'.repeat(254) }, 422, 'idempotencyKey'],
    ['an unknown field', { key: 'x' }, 422, 'key'],
    ['an array body', ['x'], 400, undefined],
  ])('refuses %s naming the field', async (_what, body, code, field) => {
    const before = await etcdSnapshot();
    const res = await call('POST', `${JOBS}/report/run`, body);
    expect(res.status).toBe(code);
    expect(res.body.kind).toBe('Status');
    if (field) expect(res.body.details.causes.map((c: { field: string }) => c.field)).toEqual([field]);
    expect(await etcdSnapshot()).toBe(before);
  });

  it('refusesABodyThatIsNotJson', async () => {
    const res = await call('POST', `${JOBS}/report/run`, undefined, { raw: '{"idempotencyKey": ' });
    expect(res.status).toBe(400);
  });

  it('answers404ForAMissingJob', async () => {
    const res = await call('POST', `${JOBS}/nope/run`, { idempotencyKey: 'x' });
    expect(res.status).toBe(404);
    expect(res.body.message).toMatch(/job "nope" not found/);
  });

  it('answers409ForAJobBeingDeleted', async () => {
    expect((await call('POST', JOBS, { ...job('going'), metadata: { name: 'going', finalizers: ['test/hold'] } })).status).toBe(201);
    expect((await call('DELETE', `${JOBS}/going`)).status).toBe(200);
    const res = await call('POST', `${JOBS}/going/run`);
    expect(res.status).toBe(409);
    expect(res.body.message).toMatch(/being deleted/);
    await call('PATCH', `${JOBS}/going`, { metadata: { finalizers: null } }, MERGE);
  });

  it('answers405ForOtherMethodsAndKeepsJobRunsUncreatableByClients', async () => {
    expect((await call('GET', `${JOBS}/report/run`)).status).toBe(405);
    const run = { apiVersion: 'shoal/v1', kind: 'JobRun', metadata: { name: 'r' }, spec: { job: 'report', trigger: 'Manual', scheduledTime: NOW.toISOString(), template: { cmd: 'x' } } };
    expect((await call('POST', RUNS, run)).status).toBe(405);
  });

  it('isAuthorizedAsAnUpdateOfTheJob', async () => {
    expect((await call('POST', `${JOBS}/report/run`, {}, { token: TOKENS.view })).status).toBe(403);
    expect((await call('POST', `${JOBS}/report/run`, {}, { token: TOKENS.edit })).status).toBe(201);
    expect((await call('POST', '/api/v1/namespaces/prod/jobs/report/run', {}, { token: TOKENS.edit })).status).toBe(403);
  });

  it('letsClientsDeleteARun', async () => {
    const run = (await call('POST', `${JOBS}/report/run`)).body;
    expect((await call('DELETE', `${RUNS}/${run.metadata.name}`)).status).toBe(200);
    expect((await call('GET', `${RUNS}/${run.metadata.name}`)).status).toBe(404);
  });
});

describe('job parents', () => {
  it('refusesAParentThatDoesNotExistNamingIt', async () => {
    await call('POST', JOBS, job('extract'));
    const res = await call('POST', JOBS, job('load', { parents: ['extract', 'missing'] }));
    expect(res.status).toBe(422);
    expect(res.body.details.causes).toEqual([{ field: 'spec.parents[1]', message: 'job "missing" not found' }]);
    expect((await call('POST', `${JOBS}?dryRun=All`, job('load', { parents: ['missing'] }))).status).toBe(422);
    expect((await call('POST', JOBS, job('load', { parents: ['extract'] }))).status).toBe(201);
  });

  it('refusesACycleNamingIt', async () => {
    expect((await call('POST', JOBS, job('ca'))).status).toBe(201);
    expect((await call('POST', JOBS, job('cb', { parents: ['ca'] }))).status).toBe(201);
    expect((await call('POST', JOBS, job('cc', { parents: ['cb'] }))).status).toBe(201);
    const res = await call('PATCH', `${JOBS}/ca`, { spec: { parents: ['cc'] } }, MERGE);
    expect(res.status).toBe(422);
    expect(res.body.details.causes).toEqual([{ field: 'spec.parents', message: 'would make a cycle: ca → cb → cc → ca' }]);
    const current = (await call('GET', `${JOBS}/ca`)).body;
    const put = await call('PUT', `${JOBS}/ca`, { ...current, spec: { ...current.spec, parents: ['cc'] } });
    expect(put.status).toBe(422);
    expect(put.body.message).toMatch(/would make a cycle: ca → cb → cc → ca/);
  });

  it('refusesAJobAsItsOwnParent', async () => {
    const res = await call('POST', JOBS, job('self', { parents: ['self'] }));
    expect(res.status).toBe(422);
    // Schema-level semantics (pkg/api) refuse it before the cross-object check would call it a cycle.
    expect(res.body.details.causes).toEqual([{ field: expect.stringMatching(/^spec\.parents/), message: expect.stringMatching(/own parent|would make a cycle: self → self/) }]);
  });

  it('letsAJobWhoseParentWasDeletedBeChangedOtherwise', async () => {
    await call('POST', JOBS, job('p1'));
    await call('POST', JOBS, job('kid', { parents: ['p1'] }));
    await call('DELETE', `${JOBS}/p1`);
    expect((await call('PATCH', `${JOBS}/kid`, { spec: { suspend: true } }, MERGE)).status).toBe(200);
    const readd = await call('PATCH', `${JOBS}/kid`, { spec: { parents: ['p1', 'extract'] } }, MERGE);
    expect(readd.status).toBe(200); // p1 was there before: only added parents are checked
    expect((await call('PATCH', `${JOBS}/kid`, { spec: { parents: ['p2'] } }, MERGE)).status).toBe(422);
  });

  it('allowsADiamond', async () => {
    for (const [name, parents] of [['da', []], ['db', ['da']], ['dc', ['da']], ['dd', ['db', 'dc']]] as const) {
      expect((await call('POST', JOBS, job(name, { parents }))).status).toBe(201);
    }
  });
});

describe('parentCycle', () => {
  const graph = (o: Record<string, string[]>) => (j: string) => o[j] ?? [];
  it('findsCyclesThroughTheStartInRunOrder', () => {
    expect(parentCycle('a', graph({ a: ['c'], b: ['a'], c: ['b'] }))).toEqual(['a', 'b', 'c', 'a']);
    expect(parentCycle('a', graph({ a: ['b', 'x'], b: [], x: ['y'], y: ['a'] }))).toEqual(['a', 'y', 'x', 'a']);
    expect(parentCycle('a', graph({ a: ['b'], b: ['c'], c: ['b'] }))).toBeUndefined(); // a cycle not through a
    expect(parentCycle('a', graph({ a: ['missing'] }))).toBeUndefined();
  });
});
