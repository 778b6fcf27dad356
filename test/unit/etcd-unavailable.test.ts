/**
 * What a client gets when etcd is unavailable (down, or without a quorum): a 503 that says so,
 * names the cause and carries Retry-After, on every path (through the registry's fromStoreError
 * and through the server's last-resort error handler), never a 500.
 */
import { ApiError, fromStoreError } from '../../pkg/apiserver/errors';
import { TokenAuthenticator } from '../../pkg/apiserver/auth';
import { ApiServer } from '../../pkg/apiserver/server';
import { UnavailableError } from '../../pkg/store/errors';
import { MemoryStore } from '../../pkg/store/memory';
import type { Store } from '../../pkg/store/types';
import { silentLogger } from '../../pkg/util/log';

const CAUSE = 'etcd get: 14 UNAVAILABLE: etcdserver: request timed out';
const TOKEN = 'admin-token-0123456789';

describe('fromStoreError', () => {
  it('mapsUnavailableTo503NamingTheCause', () => {
    let thrown: unknown;
    try {
      fromStoreError(new UnavailableError(CAUSE), 'App', 'web');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ApiError);
    const status = (thrown as ApiError).toStatus();
    expect(status).toMatchObject({ code: 503, reason: 'ServiceUnavailable' });
    expect(status.message).toBe(`etcd is unavailable (no quorum?): ${CAUSE}; retry in a few seconds`);
    expect(status.details?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  });
});

describe('ApiServer with etcd unavailable', () => {
  let api: ApiServer;
  let base: string;

  beforeAll(async () => {
    // Every store call fails as EtcdStore's do without a quorum.
    const down = new Proxy(new MemoryStore(), {
      get: (target, prop, receiver) => {
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' && prop !== 'close' ? () => Promise.reject(new UnavailableError(CAUSE)) : v;
      },
    }) as Store;
    api = new ApiServer({
      store: down, logger: silentLogger(),
      authenticator: new TokenAuthenticator([{ name: 'admin', token: TOKEN, roles: [{ namespace: '*', role: 'admin' }] }]),
    });
    base = `http://127.0.0.1:${await api.listen(0)}`;
  });
  afterAll(() => api.close());

  it.each([
    ['GET', '/api/v1/namespaces/default/apps/web'],
    ['GET', '/api/v1/namespaces/default/apps'],
    ['GET', '/api/v1/nodes'],
    ['POST', '/api/v1/namespaces/default/apps'],
    ['DELETE', '/api/v1/namespaces/default/apps/web'],
    ['GET', '/api/v1/namespaces/default/apps?watch=true'], // the watch's initial list: not through the registry
  ])('answers %s %s with 503 and Retry-After', async (method, path) => {
    const body = method === 'POST'
      ? JSON.stringify({ apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'web' }, spec: { cmd: 'sleep 1' } })
      : undefined;
    const res = await fetch(`${base}${path}`, { method, body, headers: { authorization: `Bearer ${TOKEN}`, ...(body && { 'content-type': 'application/json' }) } });
    const status = (await res.json()) as { code: number; reason: string; message: string };
    expect({ code: res.status, reason: status.reason }).toEqual({ code: 503, reason: 'ServiceUnavailable' });
    expect(status.message).toContain(`etcd is unavailable (no quorum?): ${CAUSE}`);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });
});
