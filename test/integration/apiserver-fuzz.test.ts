/**
 * Property-based fuzzing of the apiserver's routes against a real etcd (fast-check): arbitrary
 * methods, paths, query strings, headers and bodies (valid-ish objects, garbage and hostile
 * JSON, huge strings, deep nesting, `__proto__`, wrong content types and encodings). Every
 * answer must be a 2xx, 3xx or 4xx, never a 5xx, and the server must keep serving. Afterwards
 * etcd must hold exactly what the server said it accepted, each object admissible. Seeded and
 * bounded (SHOAL_FUZZ_SEED / SHOAL_FUZZ_RUNS explore further).
 */
import * as http from 'node:http';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { admit } from '../../pkg/api/validation';
import { TokenAuthenticator } from '../../pkg/apiserver/auth';
import { ApiServer } from '../../pkg/apiserver/server';
import { EtcdStore } from '../../pkg/store/etcd';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { applyMutations, defineOwn, FUZZ, fuzzValue, hostileKey, mutationsOf, seedObjects } from '../harness/fuzz';

const TOKENS = { admin: 'admin-token-0123456789', view: 'view-token-0123456789' };
const BODY_LIMIT = 1 << 20;

let store: EtcdStore;
let api: ApiServer;
let port: number;
let prefix: string;

beforeAll(async () => {
  prefix = uniquePrefix().replace(/\/$/, '');
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
  api = new ApiServer({
    store, prefix, logger: silentLogger(), bookmarkMs: 200,
    authenticator: new TokenAuthenticator([
      { name: 'admin', token: TOKENS.admin, roles: [{ namespace: '*', role: 'admin' }] },
      { name: 'viewer', token: TOKENS.view, roles: [{ namespace: 'default', role: 'view' }] },
    ]),
  });
  port = await api.listen(0);
});

afterAll(async () => {
  await api.close();
  await store.close();
});

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  chunked: boolean;
}

interface Res {
  status: number;
  body: string;
  contentType?: string;
  /** The connection ended before an answer (the server may close after a 413). */
  reset?: string;
}

/** One request over its own connection; a stream (watch, followed log) is cut once its status is in. */
function send(r: Req): Promise<Res> {
  // Framed explicitly: Node's client sends a GET or DELETE body unframed, which the server's
  // HTTP parser then reads as the next request (a bare 400 from Node, not from the apiserver).
  const framing = r.body === undefined ? {} : r.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(r.body.length) };
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: r.method, path: r.path, headers: { ...r.headers, ...framing }, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      const stream = /ndjson/.test(String(res.headers['content-type'])) || (/text\/plain/.test(String(res.headers['content-type'])) && r.path.includes('/log'));
      if (stream && status === 200) {
        res.destroy();
        return resolve({ status, body: '' });
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString('utf8'), contentType: res.headers['content-type'] }));
      res.on('error', (e) => resolve({ status, body: '', reset: e.message }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolve({ status: 0, body: '', reset: e.message }));
    if (r.body && r.chunked) {
      req.write(r.body);
      req.end();
    } else req.end(r.body);
  });
}

// ---- what the server said -------------------------------------------------------------------

/** key (`plural/ns/name`) → uid of objects the server answered 201 for. */
const accepted = new Map<string, string>();
/** Keys a 2xx PUT, PATCH or DELETE answered for later (they may be gone or changed). */
const touched = new Set<string>();
const statuses = new Map<number, number>();

function record(r: Req, res: Res): void {
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  if (res.status < 200 || res.status >= 300 || r.method === 'GET') return;
  let obj: { kind?: string; metadata?: { name?: string; namespace?: string; uid?: string } };
  try {
    obj = JSON.parse(res.body);
  } catch {
    return;
  }
  const plural = ({ App: 'apps', Job: 'jobs', JobRun: 'jobruns', Task: 'tasks', Node: 'nodes', Event: 'events', Framework: 'frameworks' } as Record<string, string>)[obj.kind ?? ''];
  if (!plural || !obj.metadata?.name) return;
  const key = `${plural}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
  if (res.status === 201) {
    accepted.set(key, obj.metadata.uid ?? '');
    touched.delete(key);
  } else if (['PUT', 'PATCH', 'DELETE'].includes(r.method)) touched.add(key);
}

// ---- requests -------------------------------------------------------------------------------

const NAMES = ['a', 'b', 'web', 'n1'];
const plural = fc.constantFrom('apps', 'jobs', 'jobruns', 'tasks', 'nodes', 'events', 'frameworks', 'app', 'Apps', 'x', '', '__proto__', 'constructor');
const segment = fc.oneof(
  { arbitrary: fc.constantFrom(...NAMES, 'default'), weight: 6 },
  { arbitrary: fc.constantFrom('', '.', '..', '%2F', '%00', '%ZZ', '%', 'UPPER', '-a', 'a-', '__proto__', 'toString', '%F0%9F%98%80', '%C0%AF'), weight: 2 },
  { arbitrary: fc.integer({ min: 60, max: 5000 }).map((n) => 'a'.repeat(n)), weight: 1 },
  { arbitrary: fc.string({ maxLength: 8 }).map(encodeURIComponent), weight: 1 },
);
const path = fc.oneof(
  { arbitrary: fc.tuple(segment, plural).map(([ns, p]) => `/api/v1/namespaces/${ns}/${p}`), weight: 4 },
  { arbitrary: fc.tuple(segment, plural, segment).map(([ns, p, n]) => `/api/v1/namespaces/${ns}/${p}/${n}`), weight: 6 },
  { arbitrary: fc.tuple(segment, segment, fc.constantFrom('apps/%s/revisions', 'jobs/%s/run', 'tasks/%s/log', 'apps/%s/scale', 'apps/%s/x/y')).map(([ns, n, t]) => `/api/v1/namespaces/${ns}/${t.replace('%s', n)}`), weight: 3 },
  { arbitrary: fc.tuple(plural, fc.option(segment)).map(([p, n]) => `/api/v1/${p}${n === null ? '' : `/${n}`}`), weight: 3 },
  { arbitrary: fc.constantFrom('/', '/api', '/api/v1', '/api/v2/apps', '/healthz', '/readyz', '/metrics', '/ui/', '//api/v1/apps', '/api/v1/namespaces', '/api/v1/namespaces/default'), weight: 1 },
);
const queryValue = fc.oneof(fc.constantFrom('true', '1', 'false', '0', '', 'All', '-1', '1e3', '99999999999999999999', 'stdout', 'a=b', 'x in (a,b)', '!x', 'a,,b', '(', '%ZZ'), fc.string({ maxLength: 10 }).map(encodeURIComponent), fc.integer({ min: 1000, max: 20000 }).map((n) => 'a'.repeat(n)));
const query = fc.array(fc.tuple(fc.constantFrom('watch', 'resourceVersion', 'labelSelector', 'dryRun', 'tail', 'follow', 'stream', 'x', '__proto__', 'watch[]'), queryValue), { maxLength: 4 })
  .map((qs) => (qs.length ? `?${qs.map(([k, v]) => `${k}=${v}`).join('&')}` : ''))
  .map((q) => q.replace(/[^\x21-\x7e]/g, encodeURIComponent)); // what Node's client would refuse to send; '%ZZ' stays raw

const authorization = fc.constantFrom(`Bearer ${TOKENS.admin}`, `Bearer ${TOKENS.admin}`, `Bearer ${TOKENS.admin}`, `Bearer ${TOKENS.view}`, 'Bearer nope', 'Basic YWRtaW46YWRtaW4tdG9rZW4tMDEyMzQ1Njc4OQ==', 'Bearer', '', undefined);
const contentType = fc.constantFrom('application/json', 'application/json', 'application/merge-patch+json', 'application/json; charset=utf-8', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded', 'a/b;;;c=', '', undefined);

/** A valid object (whose name the path may or may not name), mutated sometimes. */
const validish = fc.tuple(fc.constantFrom(...seedObjects()), fc.constantFrom(...NAMES), fc.option(mutationsOf(2), { freq: 3 }))
  .map(([seed, name, ms]) => {
    const o = structuredClone(seed) as { metadata: Record<string, unknown>; spec?: Record<string, unknown> };
    o.metadata = { ...o.metadata, name };
    if (o.spec && 'parents' in o.spec) delete o.spec.parents;
    return ms ? applyMutations(o, ms) : o;
  });
const rawText = fc.oneof(
  fc.constantFrom('', '{', '}', 'null', 'true', '1', '"x"', '[]', '{}', '{"a":}', '\u0000', 'NaN', '{"__proto__": {"polluted": 1}}', '{"constructor": {"prototype": {"x": 1}}}', '{"a":1,"a":2}', '\ufeff{}'),
  fc.integer({ min: 1, max: 200_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1, max: 100_000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
  fc.string({ maxLength: 40 }),
);
const body: fc.Arbitrary<Buffer | undefined> = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 2 },
  { arbitrary: validish.map((o) => Buffer.from(JSON.stringify(o) ?? '')), weight: 6 },
  { arbitrary: fuzzValue.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')), weight: 2 },
  { arbitrary: fc.tuple(hostileKey, fuzzValue).map(([k, v]) => { const o = {}; defineOwn(o, k, v); return Buffer.from(JSON.stringify(o)); }), weight: 1 },
  { arbitrary: rawText.map((t) => Buffer.from(t)), weight: 2 },
  { arbitrary: fc.integer({ min: BODY_LIMIT - 100, max: BODY_LIMIT + 100 }).map((n) => Buffer.from(`{"apiVersion":"shoal/v1","kind":"App","metadata":{"name":"a"},"spec":{"cmd":"${'x'.repeat(n)}"}}`)), weight: 1 },
);

const hostile: fc.Arbitrary<Req> = fc.record({
  method: fc.constantFrom('GET', 'GET', 'POST', 'POST', 'PUT', 'PATCH', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'PROPFIND'),
  path: fc.tuple(path, query).map(([p, q]) => p + q),
  authorization,
  contentType,
  encoding: fc.constantFrom(undefined, undefined, undefined, 'gzip', 'gzip-garbage', 'br', 'identity', 'x'),
  body,
  chunked: fc.boolean(),
}).map(({ method, path: p, authorization: auth, contentType: ct, encoding, body: b, chunked }) => {
  const headers: Record<string, string> = {};
  if (auth !== undefined) headers.authorization = auth;
  if (ct !== undefined) headers['content-type'] = ct;
  let payload = b;
  if (payload && encoding) {
    headers['content-encoding'] = encoding === 'gzip-garbage' ? 'gzip' : encoding;
    if (encoding === 'gzip') payload = gzipSync(payload);
  }
  return printable({ method, path: p, headers, body: payload, chunked });
});

/** Requests that mostly get through: an App or Job created, replaced, patched, deleted, run. */
const wellFormed: fc.Arbitrary<Req> = fc.record({
  kind: fc.constantFrom('apps', 'jobs'),
  verb: fc.constantFrom('create', 'create', 'create', 'replace', 'patch', 'patch', 'delete', 'run', 'dryRun'),
  name: fc.constantFrom(...NAMES.slice(0, 3)),
  mutations: fc.option(mutationsOf(2), { freq: 2 }),
  patch: fc.oneof(fc.constant({ spec: { instances: 2 } }), fc.constant({ metadata: { finalizers: null } }), fc.constant({ metadata: { labels: { x: 'y' } } }), fuzzValue),
}).map(({ kind, verb, name, mutations, patch }) => {
  const [app, job] = seedObjects() as Array<{ metadata: Record<string, unknown>; spec: Record<string, unknown> }>;
  const seed = structuredClone(kind === 'apps' ? app : job);
  seed.metadata = { ...seed.metadata, name };
  delete seed.spec.parents;
  const obj = mutations ? applyMutations(seed, mutations) : seed;
  const base = `/api/v1/namespaces/default/${kind}`;
  const headers = { authorization: `Bearer ${TOKENS.admin}`, 'content-type': verb === 'patch' ? 'application/merge-patch+json' : 'application/json' };
  const json = (v: unknown) => Buffer.from(JSON.stringify(v) ?? 'null');
  switch (verb) {
    case 'create': return printable({ method: 'POST', path: base, headers, body: json(obj), chunked: false });
    case 'dryRun': return printable({ method: 'POST', path: `${base}?dryRun=All`, headers, body: json(obj), chunked: false });
    case 'replace': return printable({ method: 'PUT', path: `${base}/${name}`, headers, body: json(obj), chunked: false });
    case 'patch': return printable({ method: 'PATCH', path: `${base}/${name}`, headers, body: json(patch), chunked: false });
    case 'delete': return printable({ method: 'DELETE', path: `${base}/${name}`, headers, chunked: false });
    default: return printable({ method: 'POST', path: `/api/v1/namespaces/default/jobs/${name}/run`, headers, chunked: false });
  }
});

const request = fc.oneof({ arbitrary: hostile, weight: 3 }, { arbitrary: wellFormed, weight: 2 });

/** Counterexamples print short: a 1 MiB body in a failure message helps nobody. */
function printable(req: Req): Req {
  Object.defineProperty(req, fc.toStringMethod, { value: () => summary(req) });
  return req;
}

function summary(r: Req): string {
  const cut = (t: string, n: number) => (t.length > n ? `${t.slice(0, n)}…(${t.length})` : t);
  const body = r.body === undefined ? 'none' : `${r.body.length} bytes${r.chunked ? ' chunked' : ''}: ${JSON.stringify(cut(r.body.toString('latin1'), 120))}`;
  return `${r.method} ${cut(r.path, 160)} headers ${JSON.stringify(r.headers)} body ${body}`;
}

// ---- properties -----------------------------------------------------------------------------

describe('apiserver fuzzing', () => {
  beforeAll(async () => {
    // A Task on a node that is gone, and a Node, so delete, patch and log have something to reach.
    const [, , , task, node] = seedObjects() as Array<{ metadata: { name: string } }>;
    for (const [key, obj] of [[`${prefix}/registry/tasks/default/web`, { ...task, metadata: { ...task.metadata, name: 'web' } }], [`${prefix}/registry/nodes/n1`, node]] as const) {
      const r = admit(obj);
      if (!r.ok) throw new Error(JSON.stringify(r.causes));
      await store.create(key, JSON.stringify(r.object));
    }
  });

  it('answersEveryRequestWithA2xxOr4xxNeverA5xx', async () => {
    await fc.assert(fc.asyncProperty(request, async (r) => {
      const res = await send(r);
      record(r, res);
      if (res.reset !== undefined) {
        // A server that answers without reading a body (413, 401, GET /metrics with one) closes the
        // connection; the unread bytes make the kernel reset it, which can lose the answer in
        // flight. Only then, and the server must still be serving.
        if (!r.body?.length) throw new Error(`${summary(r)}: connection ended without an answer: ${res.reset}`);
        const health = await send({ method: 'GET', path: '/healthz', headers: {}, chunked: false });
        if (health.status !== 200) throw new Error(`${summary(r)}: connection reset (${res.reset}), then /healthz answered ${health.status}`);
        return;
      }
      if (res.status >= 500 || res.status < 200) throw new Error(`${summary(r)} answered ${res.status}: ${res.body.slice(0, 300)}`);
      // Node's HTTP parser refuses some requests before express sees them (a URL over its 16 KiB
      // header limit: 431; a malformed message: 400), with an empty body: 4xx, but no Status.
      const byNode = res.contentType === undefined && [400, 431].includes(res.status) && res.body === '';
      if (res.status >= 400 && r.method !== 'HEAD' && !byNode) {
        let status: { kind: string; code: number; message: string };
        try {
          status = JSON.parse(res.body);
        } catch {
          throw new Error(`${summary(r)} answered ${res.status} without a Status: ${JSON.stringify(res.body.slice(0, 300))}`);
        }
        expect(status).toMatchObject({ kind: 'Status', code: res.status });
        expect(status.message.length).toBeGreaterThan(0);
      }
    }), FUZZ(250));
    const health = await send({ method: 'GET', path: '/healthz', headers: {}, chunked: false });
    expect(health).toMatchObject({ status: 200, body: 'ok' });
  });

  it('leavesInEtcdExactlyWhatItAccepted', async () => {
    const { items } = await store.list(`${prefix}/registry/`);
    const inEtcd = new Map<string, string>();
    for (const kv of items) {
      const key = kv.key.slice(`${prefix}/registry/`.length).split('/');
      const k = key.length === 2 ? `${key[0]}//${key[1]}` : key.join('/');
      const obj = JSON.parse(kv.value);
      expect(admit(obj).ok).toBe(true); // only admissible objects were written
      inEtcd.set(k, obj.metadata.uid);
    }
    inEtcd.delete('tasks/default/web');
    inEtcd.delete('nodes//n1');
    for (const [k, uid] of inEtcd) {
      // Everything in etcd was answered 201 (with this uid) or was there before and answered 2xx since.
      if (accepted.get(k) !== uid) throw new Error(`${k} (uid ${uid}) is in etcd, but the server never answered 201 for it`);
    }
    for (const [k, uid] of accepted) {
      if (!touched.has(k) && inEtcd.get(k) !== uid) throw new Error(`${k} was created (uid ${uid}) and never changed, but etcd has ${inEtcd.get(k) ?? 'nothing'}`);
    }
    // History only of Apps that exist.
    const history = await store.list(`${prefix}/history/apps/`);
    for (const kv of history.items) {
      const [ns, name] = kv.key.slice(`${prefix}/history/apps/`.length).split('/');
      expect(inEtcd.has(`apps/${ns}/${name}`)).toBe(true);
    }
    if (process.env.SHOAL_FUZZ_RUNS) console.log(`answers by status: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; accepted: ${accepted.size}`);
    // The run exercised writes, not only refusals.
    expect(accepted.size).toBeGreaterThan(0);
    expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);
  });
});

describe('regressions found by fuzzing', () => {
  it.each([
    ['apiVersion', { apiVersion: { toString: 1 }, kind: 'App', metadata: { name: 'a' } }, 422],
    ['kind', { apiVersion: 'shoal/v1', kind: { toString: 1 }, metadata: { name: 'a' } }, 400],
    ['metadata.namespace', { apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'a', namespace: { toString: 1 } } }, 400],
  ])('answers a %s whose toString is not a function with a 4xx, not 500', async (_field, obj, code) => {
    // String({toString: 1}) throws a TypeError, which the apiserver answered as 500.
    const headers = { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/json' };
    const res = await send({ method: 'POST', path: '/api/v1/namespaces/default/apps', headers, body: Buffer.from(JSON.stringify(obj)), chunked: false });
    expect(res.status).toBe(code);
    expect(JSON.parse(res.body).message).toContain('{"toString":1}');
  });
});
