/**
 * Size and count limits against a real etcd: everything a client can make too big is answered
 * 413 or 422 naming the limit and the field, before it reaches etcd (whose request limit, 1.5 MiB
 * by default, would otherwise turn it into a 500).
 */
import { TokenAuthenticator } from '../../pkg/apiserver/auth';
import { countedObjectBytes, MAX_OBJECT_BYTES } from '../../pkg/api/limits';
import { admit } from '../../pkg/api/validation';
import { ApiError, fromStoreError } from '../../pkg/apiserver/errors';
import { ApiServer } from '../../pkg/apiserver/server';
import { EtcdStore } from '../../pkg/store/etcd';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';

const TOKEN = 'admin-token-0123456789';
let store: EtcdStore;
let api: ApiServer;
let base: string;
let prefix: string;

beforeAll(async () => {
  prefix = uniquePrefix().replace(/\/$/, '');
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
  api = new ApiServer({
    store, prefix, logger: silentLogger(),
    authenticator: new TokenAuthenticator([{ name: 'admin', token: TOKEN, roles: [{ namespace: '*', role: 'admin' }] }]),
  });
  base = `http://127.0.0.1:${await api.listen(0)}`;
});

afterAll(async () => {
  await api.close();
  await store.close();
});

async function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': contentType },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  try { return { status: res.status, body: JSON.parse(text) }; } catch { return { status: res.status, body: text }; }
}

const APPS = '/api/v1/namespaces/default/apps';
const JOBS = '/api/v1/namespaces/default/jobs';
const MERGE = 'application/merge-patch+json';
const app = (name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}) => ({ apiVersion: 'shoal/v1', kind: 'App', metadata: { name, ...metadata }, spec });
/** An env map of `count` variables whose values are `size` characters each. */
const envOf = (count: number, size: number, p = 'V') => Object.fromEntries(Array.from({ length: count }, (_, i) => [`${p}${i}`, 'x'.repeat(size)]));

/** The object with spec.cmd padded so that admission counts exactly `bytes` of it. */
function sized<T extends { metadata: object; spec: Record<string, unknown> }>(obj: T, bytes: number): T {
  const r = admit({ ...obj, metadata: { namespace: 'default', ...obj.metadata } });
  if (!r.ok) throw new Error(JSON.stringify(r.causes));
  return { ...obj, spec: { ...obj.spec, cmd: String(obj.spec.cmd) + 'x'.repeat(bytes - countedObjectBytes(r.object)) } };
}

async function stored(plural: string, name: string): Promise<boolean> {
  return (await store.get(`${prefix}/registry/${plural}/default/${name}`)) !== undefined;
}

/** The 4xx Status, with each cause's field and message. */
function expectRefused(res: { status: number; body: any }, code: number, field: string, limit: RegExp): void {
  expect(res.status).toBe(code);
  expect(res.body).toMatchObject({ kind: 'Status', code });
  const cause = (res.body.details?.causes ?? []).find((c: { field: string }) => c.field === field);
  expect(cause).toBeDefined();
  expect(cause.message).toMatch(limit);
}

describe('findings of issue 15', () => {
  it('answers422ForAnAppWith14EnvValuesOf65000Characters', async () => {
    // 0.9 MB: under the body limit, but the App and its revision 1 in one txn were 1.8 MB, over
    // etcd's 1.5 MiB request limit ("etcdserver: request is too large"), answered 500.
    const res = await call('POST', APPS, app('bigenv', { cmd: 'x', env: envOf(14, 65_000) }));
    expectRefused(res, 422, 'spec.env', /910\d+ bytes: at most 262144/);
    expect(await stored('apps', 'bigenv')).toBe(false);
  });

  it('refuses10000EnvVariables', async () => {
    const res = await call('POST', APPS, app('manyenv', { cmd: 'x', env: envOf(10_000, 1) }));
    expectRefused(res, 422, 'spec.env', /has 10000 entries: at most 1024/);
    expect(await stored('apps', 'manyenv')).toBe(false);
  });
});

describe('every limit is a 4xx naming it', () => {
  it.each([
    ['container env count', { container: { image: 'busybox', env: envOf(1025, 1) } }, 'spec.container.env', /at most 1024/],
    ['env value', { cmd: 'x', env: { A: 'x'.repeat(65_537) } }, 'spec.env.A', /65537 characters long: at most 65536/],
    ['cmd', { cmd: 'x'.repeat(65_537) }, 'spec.cmd', /at most 65536/],
    ['args count', { container: { image: 'busybox', args: Array(1025).fill('a') } }, 'spec.container.args', /1025 items: at most 1024/],
    ['an arg', { container: { image: 'busybox', command: ['x'.repeat(65_537)] } }, 'spec.container.command[0]', /at most 65536/],
    ['ports', { cmd: 'x', ports: Array(65).fill({}) }, 'spec.ports', /65 items: at most 64/],
    ['health checks', { cmd: 'x', healthChecks: Array(17).fill({}) }, 'spec.healthChecks', /at most 16/],
    ['health check path', { cmd: 'x', healthChecks: [{ path: '/'.repeat(2049) }] }, 'spec.healthChecks[0].path', /at most 2048/],
    ['constraints', { cmd: 'x', constraints: Array(65).fill(['hostname', 'UNIQUE']) }, 'spec.constraints', /at most 64/],
    ['constraint value', { cmd: 'x', constraints: [['hostname', 'LIKE', 'a'.repeat(1025)]] }, 'spec.constraints[0][2]', /at most 1024/],
  ])('%s', async (_what, spec, field, limit) => {
    expectRefused(await call('POST', APPS, app('lim', spec)), 422, field, limit);
    expect(await stored('apps', 'lim')).toBe(false);
  });

  it('limitsLabelsAndAnnotations', async () => {
    const labels = Object.fromEntries(Array.from({ length: 61 }, (_, i) => [`l${i}`, 'v']));
    expectRefused(await call('POST', APPS, app('lab', { cmd: 'x' }, { labels })), 422, 'metadata.labels', /61 labels: at most 60/);
    const many = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`a${i}`, 'v']));
    expectRefused(await call('POST', APPS, app('ann', { cmd: 'x' }, { annotations: many })), 422, 'metadata.annotations', /257 entries: at most 256/);
    // 5 × 60,000: each value under 64 KiB, together over 256 KiB.
    const big = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`a${i}`, 'x'.repeat(60_000)]));
    expectRefused(await call('POST', APPS, app('ann', { cmd: 'x' }, { annotations: big })), 422, 'metadata.annotations', /at most 262144/);
  });

  it('answers413ForAnObjectOverItsEncodedSizeLimit', async () => {
    // Every field within its own limit; the App as a whole over 512 KiB.
    const spec = { cmd: 'x'.repeat(60_000), env: envOf(4, 60_000, 'A'), container: { image: 'busybox', env: envOf(4, 60_000, 'B') } };
    const res = await call('POST', APPS, app('whole', spec, { annotations: { a: 'x'.repeat(60_000) } }));
    expectRefused(res, 413, '', /takes \d+ bytes encoded .*: at most 524288/);
    expect(res.body.reason).toBe('RequestEntityTooLarge');
    expect(await stored('apps', 'whole')).toBe(false);
  });

  it('acceptsAnAppAtTheLimitAndItsRevisionsPutsAndPatches', async () => {
    const spec = { cmd: 'x', env: envOf(4, 60_000, 'A'), container: { image: 'busybox', env: envOf(4, 60_000, 'B') } };
    const res = await call('POST', APPS, sized(app('edge', spec), MAX_OBJECT_BYTES));
    expect(res.status).toBe(201);
    // Read, written back as it is: server metadata and status are not counted against it.
    const again = await call('PUT', `${APPS}/edge`, res.body);
    expect(again.status).toBe(200);
    const patched = await call('PATCH', `${APPS}/edge`, { spec: { instances: 3 } }, MERGE);
    expect(patched.status).toBe(200);
    expect(patched.body.metadata.generation).toBe(2);
    const history = await call('GET', `${APPS}/edge/revisions`);
    expect(history.body.items.map((r: { generation: number }) => r.generation)).toEqual([2, 1]);
    const over = await call('PATCH', `${APPS}/edge`, { spec: { cmd: `${patched.body.spec.cmd}x` } }, MERGE);
    expectRefused(over, 413, '', new RegExp(`takes ${MAX_OBJECT_BYTES + 1} bytes .*: at most ${MAX_OBJECT_BYTES}`));
  });

  it('answers413WhenAPatchGrowsAnObjectOverTheLimit', async () => {
    const spec = { cmd: 'x', env: envOf(4, 60_000, 'A') };
    expect((await call('POST', APPS, app('grow', spec))).status).toBe(201);
    const before = (await store.get(`${prefix}/registry/apps/default/grow`))!.modRevision;
    const res = await call('PATCH', `${APPS}/grow`, { spec: { container: { image: 'busybox', env: envOf(4, 60_000, 'B') } }, metadata: { annotations: { a: 'x'.repeat(60_000) } } }, MERGE);
    expectRefused(res, 413, '', /at most 524288/);
    expect((await store.get(`${prefix}/registry/apps/default/grow`))!.modRevision).toBe(before);
  });

  it('runsAJobAtTheLimit', async () => {
    // A JobRun carries its Job's spec, labels and the server's fields: it has room for them.
    const spec = { cmd: 'x', suspend: true, schedule: '0 0 1 1 *', env: envOf(4, 60_000, 'A'), container: { image: 'busybox', env: envOf(4, 60_000, 'B') } };
    const job = { apiVersion: 'shoal/v1', kind: 'Job', metadata: { name: 'bigjob', labels: { a: 'b' } }, spec };
    expect((await call('POST', JOBS, sized(job, MAX_OBJECT_BYTES))).status).toBe(201);
    const run = await call('POST', `${JOBS}/bigjob/run`);
    expect(run.status).toBe(201);
    expect(countedObjectBytes(run.body)).toBeGreaterThan(MAX_OBJECT_BYTES);
  });

  it('answers413ForABodyOverTheLimit', async () => {
    const res = await call('POST', APPS, app('body', { cmd: 'x', env: envOf(20, 60_000) }));
    expect(res.status).toBe(413);
    expect(res.body.message).toMatch(/over the limit of 1048576 bytes/);
  });
});

describe("etcd's own size errors", () => {
  // Admission keeps objects far below etcd's limit; these are the real errors a smaller
  // --max-request-bytes (or a bug) would give, and they must not be 500 or 503.
  it.each([
    ['over --max-request-bytes', 1_600_000, /request is too large/],
    ["over etcd's gRPC receive limit", 2_200_000, /larger than max/],
  ])('maps a write %s to 413', async (_what, size, etcdMessage) => {
    const err = await store.create(`${prefix}/huge-${size}`, 'x'.repeat(size)).then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).toMatch(etcdMessage);
    let mapped: unknown;
    try { fromStoreError(err, 'App', 'huge'); } catch (e) { mapped = e; }
    expect(mapped).toBeInstanceOf(ApiError);
    expect((mapped as ApiError).code).toBe(413);
    expect((mapped as ApiError).message).toMatch(/app "huge" is too large for etcd/);
  });
});
