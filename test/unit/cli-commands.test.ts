import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../pkg/cli';
import { registerDevCommand } from '../../pkg/cli/dev';
import { fakeIO } from './cli-fakes';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();
const SERVER = { SHOAL_SERVER: 'https://api.test:6443', SHOAL_TOKEN: 'tok' };

type Route = (method: string, path: string, body?: string, signal?: AbortSignal) => Response | undefined;

/** A fetch answering from `route`; unrouted requests are 404 Status answers, as the apiserver's. */
function routed(route: Route) {
  const requests: string[] = [];
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? 'GET';
    requests.push(`${method} ${url.pathname}${url.search}`);
    const res = route(method, url.pathname + url.search, init?.body as string | undefined, init?.signal ?? undefined);
    return res ?? new Response(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: `${url.pathname} not found` }), { status: 404 });
  }) as typeof globalThis.fetch;
  return { fetch, requests };
}

const ok = (body: unknown) => new Response(JSON.stringify(body), { status: 200 });
const list = (kind: string, items: unknown[]) => ok({ kind: `${kind}List`, apiVersion: 'shoal/v1', metadata: { resourceVersion: '9' }, items });
const web = {
  apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'web', namespace: 'default', uid: 'u1', generation: 2, creationTimestamp: ago(300), resourceVersion: '8' },
  spec: { instances: 2, cmd: 'sleep 1000' }, status: { tasksRunning: 1, availableInstances: 1 },
};

async function run(args: string[], route: Route = () => undefined, env: Record<string, string> = SERVER) {
  const { fetch, requests } = routed(route);
  const io = fakeIO({ fetch, env, now: () => NOW });
  const code = await runCli(args, io, registerDevCommand);
  return { code, out: io.out.join(''), err: io.err.join(''), requests, io };
}

describe('shoal get', () => {
  it('printsATable', async () => {
    const r = await run(['get', 'apps'], (m, p) => (p === '/api/v1/namespaces/default/apps' ? list('App', [web]) : undefined));
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toBe('NAME   READY   UP-TO-DATE   AVAILABLE   AGE\nweb    1/2     0            1           5m\n');
  });

  it('warnsWhenTheTokenWouldCrossTheNetworkInClear', async () => {
    const route: Route = (m, p) => (p === '/api/v1/namespaces/default/apps' ? list('App', [web]) : undefined);
    const remote = await run(['get', 'apps'], route, { SHOAL_SERVER: 'http://api.test:6443', SHOAL_TOKEN: 't' });
    expect(remote).toMatchObject({ code: 0, err: 'warning: http://api.test:6443 is plain HTTP: your token crosses the network in clear\n' });
    const loopback = await run(['get', 'apps'], route, { SHOAL_SERVER: 'http://127.0.0.1:6443', SHOAL_TOKEN: 't' });
    expect(loopback).toMatchObject({ code: 0, err: '' });
    const skipping = await run(['--insecure-skip-tls-verify', 'get', 'apps'], route);
    expect(skipping).toMatchObject({ code: 0, err: expect.stringMatching(/^warning: insecure-skip-tls-verify: the server's certificate is not checked/) });
  });

  it('saysNoResourcesFoundOnStderrAndSucceeds', async () => {
    const r = await run(['get', 'apps', '-n', 'prod'], (m, p) => (p === '/api/v1/namespaces/prod/apps' ? list('App', []) : undefined));
    expect(r).toMatchObject({ code: 0, out: '', err: 'No resources found in prod namespace.\n' });
  });

  it('printsTheServerMessageAsOneErrorLine', async () => {
    const r = await run(['get', 'app/nope'], () =>
      new Response(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: 'apps "nope" not found' }), { status: 404 }));
    expect(r).toMatchObject({ code: 1, out: '', err: 'error: apps "nope" not found\n' });
  });

  it('followsChangesWithOneRowEachUntilInterrupted', async () => {
    let io: ReturnType<typeof fakeIO> | undefined;
    const route: Route = (m, p, _b, signal) => {
      if (p === '/api/v1/namespaces/default/apps') return list('App', [web]);
      if (!p.startsWith('/api/v1/namespaces/default/apps?watch=true&resourceVersion=9')) return undefined;
      const scaled = { ...web, metadata: { ...web.metadata, resourceVersion: '10' }, spec: { ...web.spec, instances: 3 } };
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode(`${JSON.stringify({ type: 'MODIFIED', object: scaled })}\n`));
          signal?.addEventListener('abort', () => c.error(new DOMException('aborted', 'AbortError')));
          // Ctrl-C once the row of this event is out (polled between turns of the event loop).
          const interruptOnceShown = (rounds = 0): unknown => (io!.out.join('').includes('web    1/3') || rounds === 1000 ? io!.interrupt() : setImmediate(interruptOnceShown, rounds + 1));
          setImmediate(interruptOnceShown);
        },
      });
      return new Response(body, { status: 200 });
    };
    const { fetch } = routed(route);
    io = fakeIO({ fetch, env: SERVER, now: () => NOW });
    expect(await runCli(['get', 'apps', '-w'], io)).toBe(0);
    expect(io.out.join('')).toBe(
      'NAME   READY   UP-TO-DATE   AVAILABLE   AGE\n' +
      'web    1/2     0            1           5m\n' +
      'web    1/3     0            1           5m\n',
    );
  });
});

describe('shoal apply, delete, scale, cordon', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-cli-cmd-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('readsADirectoryInNameOrderAndWritesNothingWhenAnyDocumentIsInvalid', async () => {
    writeFileSync(join(dir, 'b.yaml'), 'apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: b\nspec:\n  instances: -1\n  cmd: x\n');
    writeFileSync(join(dir, 'a.json'), '{"apiVersion": "shoal/v1", "kind": "App", "metadata": {"name": "a"}, "spec": {"cmd": "x", "bogus": 1}}');
    writeFileSync(join(dir, 'notes.txt'), 'not a manifest');
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'c.yaml'), 'not: [valid');
    const r = await run(['apply', '-f', dir]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: ${join(dir, 'a.json')}:1: app/a: spec.bogus: unknown field\nerror: ${join(dir, 'b.yaml')}:6: app/b: spec.instances: must be >= 0\n`);
    expect(r.requests).toEqual([]);
  });

  it('validatesLocallyEvenWithoutAServer', async () => {
    writeFileSync(join(dir, 'ok.yaml'), 'apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: a\nspec:\n  cmd: x\n');
    const r = await run(['apply', '-f', join(dir, 'ok.yaml')], undefined, {});
    expect(r).toMatchObject({ code: 1, err: 'error: no server configured: run `shoal dev` or pass --server / set SHOAL_SERVER\n' });
  });

  it('deletesFromAFileReportingMissingObjectsAndExitingOne', async () => {
    writeFileSync(join(dir, 'two.yaml'), 'apiVersion: shoal/v1\nkind: App\nmetadata: {name: web}\n---\napiVersion: shoal/v1\nkind: Job\nmetadata: {name: gone, namespace: batch}\n');
    const r = await run(['delete', '-f', join(dir, 'two.yaml')], (m, p) => (m === 'DELETE' && p === '/api/v1/namespaces/default/apps/web' ? ok(web) : undefined));
    expect(r).toMatchObject({ code: 1, out: 'app/web deleted\n', err: 'error: job/gone not found\n' });
    expect(r.requests).toEqual(['DELETE /api/v1/namespaces/default/apps/web', 'DELETE /api/v1/namespaces/batch/jobs/gone']);
  });

  it('scalesWithAMergePatch', async () => {
    let body: unknown;
    const r = await run(['scale', 'app', 'web', '--instances', '5'], (m, p, b) => {
      if (m !== 'PATCH' || p !== '/api/v1/namespaces/default/apps/web') return undefined;
      body = JSON.parse(b!);
      return ok(web);
    });
    expect(r).toMatchObject({ code: 0, out: 'app/web scaled\n' });
    expect(body).toEqual({ spec: { instances: 5 } });
  });

  it('cordonsANode', async () => {
    const node = { apiVersion: 'shoal/v1', kind: 'Node', metadata: { name: 'n1' }, spec: { unschedulable: false } };
    const r = await run(['cordon', 'n1'], (m, p) => (p === '/api/v1/nodes/n1' ? ok(node) : undefined));
    expect(r).toMatchObject({ code: 0, out: 'node/n1 cordoned\n' });
    expect(r.requests).toEqual(['GET /api/v1/nodes/n1', 'PATCH /api/v1/nodes/n1']);
  });

  const task = (name: string, node: string, state: string) => ({
    apiVersion: 'shoal/v1', kind: 'Task', metadata: { name, namespace: 'default', creationTimestamp: ago(60) },
    spec: { nodeName: node, resources: { cpus: 0.5, mem: 64, disk: 0 } }, status: { state },
  });

  it('drainsANodeByCordoningAndKillingOnlyItsLiveTasks', async () => {
    const node = { apiVersion: 'shoal/v1', kind: 'Node', metadata: { name: 'n1' }, spec: { unschedulable: false } };
    const tasks = [task('a', 'n1', 'RUNNING'), task('b', 'n2', 'RUNNING'), task('c', 'n1', 'LOST')];
    const r = await run(['drain', 'n1'], (m, p) => {
      if (p === '/api/v1/nodes/n1') return ok(node);
      if (p === '/api/v1/tasks') return list('Task', tasks);
      if (m === 'DELETE' && p === '/api/v1/namespaces/default/tasks/a') return ok(tasks[0]);
      return undefined;
    });
    expect(r).toMatchObject({ code: 0, out: 'node/n1 cordoned\ntask/a killed (namespace default)\nnode/n1 drained\n' });
    expect(r.requests).toContain('DELETE /api/v1/namespaces/default/tasks/a');
  });

  it('showsWhatLiveTasksHoldOnEachNode', async () => {
    const node = (name: string) => ({ apiVersion: 'shoal/v1', kind: 'Node', metadata: { name, creationTimestamp: ago(60) }, spec: {}, status: { capacity: { cpus: 2, mem: 1024 }, conditions: [{ type: 'Ready', status: 'True' }] } });
    const r = await run(['get', 'nodes'], (_m, p) => {
      if (p === '/api/v1/nodes') return list('Node', [node('n1'), node('n2')]);
      if (p === '/api/v1/tasks') return list('Task', [task('a', 'n1', 'RUNNING'), task('b', 'n1', 'STAGING'), task('c', 'n1', 'FAILED')]);
      return undefined;
    });
    expect(r.out).toMatch(/^n1\s+Ready\s+2\s+1024\s+cpus=1 mem=128\s/m);
    expect(r.out).toMatch(/^n2\s+Ready\s+2\s+1024\s+cpus=0 mem=0\s/m);
  });
});

describe('shoal describe', () => {
  it('showsTheObjectAndOnlyItsEventsOldestFirst', async () => {
    const ev = (name: string, about: string, seconds: number) => ({
      apiVersion: 'shoal/v1', kind: 'Event', metadata: { name, namespace: 'default' }, involvedObject: { kind: 'App', name: about, uid: 'u1' },
      type: 'Normal', reason: 'Scaled', message: `${name} happened`, count: 1, lastTimestamp: ago(seconds), source: { component: 'apps' },
    });
    const r = await run(['describe', 'app', 'web'], (m, p) => {
      if (p === '/api/v1/namespaces/default/apps/web') return ok(web);
      if (p === '/api/v1/namespaces/default/events') return list('Event', [ev('second', 'web', 10), ev('other', 'api', 20), ev('first', 'web', 60)]);
      return undefined;
    });
    expect(r.code).toBe(0);
    expect(r.out).toContain('Name:         web\nNamespace:    default\nLabels:       <none>\n');
    expect(r.out).toMatch(/\n  Instances: +2\n/);
    expect(r.out).toContain('Events:\n  Type     Reason   Age   From   Message\n  ----     ------   ---   ----   -------\n' +
      '  Normal   Scaled   60s   apps   first happened\n  Normal   Scaled   10s   apps   second happened\n');
    expect(r.out).not.toContain('other');
  });
});

describe('errors', () => {
  it('printsCommanderErrorsAsOneLine', async () => {
    expect(await run(['frobnicate'])).toMatchObject({ code: 1, err: "error: unknown command 'frobnicate'\n" });
    expect(await run(['get'])).toMatchObject({ code: 1, err: "error: missing required argument 'kind'\n" });
    expect(await run(['get', 'pods'])).toMatchObject({ code: 1, err: expect.stringMatching(/^error: unknown kind "pods": known kinds are apps \(app\), .*\n$/) });
  });

  it('turnsUnexpectedErrorsIntoOneLine', async () => {
    const r = await run(['get', 'apps'], () => {
      throw new Error('boom\n    at somewhere (file.js:1:1)');
    });
    expect(r).toMatchObject({ code: 1, err: 'error: cannot reach server https://api.test:6443: boom at somewhere (file.js:1:1)\n' });
  });

  it.each([
    [['--api-port', '0'], '--api-port must be a port number (1-65535), not "0"'],
    [['--etcd-port', 'x'], '--etcd-port must be a port number (1-65535), not "x"'],
    [['--agents', '-1'], '--agents must be a whole number from 0 to 1000, not "-1"'],
    [['--runtime', 'lxc'], '--runtime: "lxc" is not a runtime (docker or process, or a comma-separated list of them)'],
    [['--runtime', 'docker,,process'], '--runtime: "" is not a runtime (docker or process, or a comma-separated list of them)'],
  ])('devRejectsBadFlags %j before starting anything', async (flags, message) => {
    const r = await run(['dev', '--data-dir', '/nonexistent/shoal-dev', ...flags]);
    expect(r).toMatchObject({ code: 1, err: `error: ${message}\n` });
  });
});
