import { lookupKind } from '../../pkg/api/kinds';
import { HttpClient, networkReason, type WatchEvent } from '../../pkg/cli/client';
import { ApiError, CliError } from '../../pkg/cli/errors';
import { WatchTracker } from '../../pkg/cli/watch';

const apps = lookupKind('apps')!;
const nodes = lookupKind('nodes')!;

interface Seen {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

type Handler = (req: Seen, signal?: AbortSignal) => Response | Promise<Response>;

/** A fetch that answers from a queue of handlers and records every request. */
function fakeFetch(...handlers: Handler[]) {
  const seen: Seen[] = [];
  const fn = (async (input: string | URL | Request, init?: RequestInit) => {
    const req: Seen = { url: String(input), method: init?.method ?? 'GET', headers: init?.headers as Record<string, string>, body: init?.body as string | undefined };
    seen.push(req);
    const h = handlers.shift();
    if (!h) throw new Error(`unexpected request ${req.method} ${req.url}`);
    return h(req, init?.signal ?? undefined);
  }) as typeof fetch;
  return { fn, seen };
}

const json = (status: number, body: unknown) => () => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/** A streaming body: the given chunks, then open until aborted (or closed when `close`). */
function stream(chunks: string[], close = false): Handler {
  return (_req, signal) => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
        if (close) controller.close();
        signal?.addEventListener('abort', () => controller.error(new DOMException('aborted', 'AbortError')));
      },
    });
    return new Response(body, { status: 200, headers: { 'content-type': 'application/x-ndjson' } });
  };
}

const obj = (name: string, rv: string) => ({ apiVersion: 'shoal/v1', kind: 'App', metadata: { name, namespace: 'default', resourceVersion: rv }, spec: {} });
const line = (type: string, object: unknown) => `${JSON.stringify({ type, object })}\n`;

function client(fetchFn: typeof globalThis.fetch, extra: Partial<ConstructorParameters<typeof HttpClient>[0]> = {}) {
  return new HttpClient({ server: 'http://127.0.0.1:6443', token: 't0ken', fetch: fetchFn, sleep: async () => undefined, ...extra });
}

describe('requests', () => {
  it('sendsTheBearerTokenAndBuildsPaths', async () => {
    const f = fakeFetch(json(200, obj('web', '5')), json(200, { items: [] }), json(200, {}), json(200, {}));
    const c = client(f.fn);
    await c.get(apps, 'prod', 'web');
    await c.list(apps, undefined, { labelSelector: 'app=web,tier!=db' });
    await c.create(apps, 'default', obj('web', '') as never, { dryRun: true });
    await c.patch(nodes, undefined, 'n1', { spec: { unschedulable: true } });
    expect(f.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET http://127.0.0.1:6443/api/v1/namespaces/prod/apps/web',
      'GET http://127.0.0.1:6443/api/v1/apps?labelSelector=app%3Dweb%2Ctier%21%3Ddb',
      'POST http://127.0.0.1:6443/api/v1/namespaces/default/apps?dryRun=All',
      'PATCH http://127.0.0.1:6443/api/v1/nodes/n1',
    ]);
    expect(f.seen[0].headers.Authorization).toBe('Bearer t0ken');
    expect(f.seen[3].headers['Content-Type']).toBe('application/merge-patch+json');
  });

  it('turnsAStatusBodyIntoAnApiError', async () => {
    const status = {
      kind: 'Status', code: 422, reason: 'Invalid', message: 'App "web" is invalid: spec.instances: must be >= 0',
      details: { causes: [{ field: 'spec.instances', message: 'must be >= 0' }] },
    };
    const err = await client(fakeFetch(json(422, status)).fn).get(apps, 'default', 'web').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 422, reason: 'Invalid', message: status.message, causes: status.details.causes });
  });

  it('explainsAnErrorWithoutAStatusBody', async () => {
    const f = fakeFetch(() => new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    await expect(client(f.fn).get(apps, 'default', 'web')).rejects.toMatchObject({ code: 502, message: 'server returned 502 Bad Gateway' });
  });

  it('saysWhichServerCannotBeReached', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    const f = fakeFetch(() => {
      throw refused;
    });
    await expect(client(f.fn).get(apps, 'default', 'web')).rejects.toThrow(new CliError('cannot reach server http://127.0.0.1:6443: connection refused'));
    const both = new TypeError('fetch failed', { cause: new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]) });
    expect(networkReason(both)).toBe('connection refused');
  });

  it('retriesTooManyRequests', async () => {
    const slept: number[] = [];
    const busy = () => new Response('{}', { status: 429, headers: { 'retry-after': '2' } });
    const f = fakeFetch(busy, busy, json(200, obj('web', '1')));
    const c = client(f.fn, { sleep: async (ms) => void slept.push(ms) });
    expect((await c.get(apps, 'default', 'web')).metadata.name).toBe('web');
    expect(slept).toEqual([2000, 2000]);
  });
});

async function take(it: AsyncIterable<WatchEvent>, n: number): Promise<string[]> {
  const out: string[] = [];
  for await (const ev of it) {
    out.push(`${ev.type} ${ev.object.metadata.name}@${ev.object.metadata.resourceVersion}`);
    if (out.length === n) break;
  }
  return out;
}

describe('watch', () => {
  it('readsEventsSplitAcrossChunksAndSkipsBookmarks', async () => {
    const text = line('ADDED', obj('a', '11')) + line('BOOKMARK', { metadata: { resourceVersion: '12' } }) + line('MODIFIED', obj('a', '13'));
    const f = fakeFetch(stream([text.slice(0, 10), text.slice(10, 70), text.slice(70)]));
    const events = await take(client(f.fn).watch(apps, 'default', { resourceVersion: '10' }), 2);
    expect(events).toEqual(['ADDED a@11', 'MODIFIED a@13']);
    expect(f.seen[0].url).toBe('http://127.0.0.1:6443/api/v1/namespaces/default/apps?watch=true&resourceVersion=10');
  });

  it('relistsAfter410AndReportsOnlyWhatChanged', async () => {
    const expired = { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' };
    const f = fakeFetch(
      stream([line('ERROR', expired)], true),
      json(200, { kind: 'AppList', metadata: { resourceVersion: '50' }, items: [obj('a', '5'), obj('c', '40')] }),
      stream([line('MODIFIED', obj('c', '51'))]),
    );
    const known = [obj('a', '5'), obj('b', '6')] as never[];
    const events = await take(client(f.fn).watch(apps, 'default', { resourceVersion: '7', known }), 3);
    expect(events).toEqual(['ADDED c@40', 'DELETED b@6', 'MODIFIED c@51']);
    expect(f.seen.map((s) => s.url.replace('http://127.0.0.1:6443/api/v1/namespaces/default/apps', ''))).toEqual([
      '?watch=true&resourceVersion=7', '', '?watch=true&resourceVersion=50',
    ]);
  });

  it('treatsAn410ResponseLikeAn410Event', async () => {
    const f = fakeFetch(
      json(410, { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' }),
      json(200, { kind: 'AppList', metadata: { resourceVersion: '9' }, items: [obj('a', '9')] }),
    );
    expect(await take(client(f.fn).watch(apps, 'default', { resourceVersion: '1' }), 1)).toEqual(['ADDED a@9']);
  });

  it('resumesFromTheLastRevisionWhenTheServerClosesTheStreamAndDropsReplays', async () => {
    const f = fakeFetch(
      stream([line('ADDED', obj('a', '11'))], true),
      stream([line('ADDED', obj('a', '11')) + line('MODIFIED', obj('a', '12'))]),
    );
    expect(await take(client(f.fn).watch(apps, 'default'), 2)).toEqual(['ADDED a@11', 'MODIFIED a@12']);
    expect(f.seen[1].url).toContain('resourceVersion=11');
  });

  it('endsCleanlyOnInterrupt', async () => {
    let interrupt = () => undefined as void;
    const f = fakeFetch(stream([line('ADDED', obj('a', '11'))]));
    const c = client(f.fn, { onInterrupt: (h) => ((interrupt = h), () => undefined) });
    const seen: string[] = [];
    for await (const ev of c.watch(apps, 'default')) {
      seen.push(ev.object.metadata.name);
      setImmediate(interrupt); // once the watch waits for its next chunk
    }
    expect(seen).toEqual(['a']);
  });

  it('passesOtherWatchErrorsOn', async () => {
    const f = fakeFetch(stream([line('ERROR', { kind: 'Status', code: 403, reason: 'Forbidden', message: 'no watching' })], true));
    await expect(take(client(f.fn).watch(apps, 'default'), 1)).rejects.toMatchObject({ code: 403, message: 'no watching' });
  });
});

describe('watch tracker', () => {
  it('diffsARelistAgainstWhatWasSeen', () => {
    const t = new WatchTracker([obj('a', '1'), obj('b', '2')] as never[]);
    expect(t.observe({ type: 'MODIFIED', object: obj('a', '1') as never })).toBe(false);
    expect(t.observe({ type: 'MODIFIED', object: obj('a', '3') as never })).toBe(true);
    expect(t.resync([obj('a', '3'), obj('b', '4')] as never[]).map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(['MODIFIED b']);
  });
});
