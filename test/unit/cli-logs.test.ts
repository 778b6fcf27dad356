import { runCli } from '../../pkg/cli';
import { LineBuffer, parseLogsTarget, pickInstance, tasksOfApp } from '../../pkg/cli/commands/logs';
import type { ShoalObject } from '../../pkg/api/validation';
import { fakeIO } from './cli-fakes';

const SERVER = { SHOAL_SERVER: 'https://api.test:6443', SHOAL_TOKEN: 'tok' };

type Route = (path: string, signal?: AbortSignal) => Response | undefined;

function routed(route: Route) {
  const requests: string[] = [];
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    requests.push(`${init?.method ?? 'GET'} ${url.pathname}${url.search}`);
    const res = route(url.pathname + url.search, init?.signal ?? undefined);
    return res ?? new Response(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: `${url.pathname} not found` }), { status: 404 });
  }) as typeof globalThis.fetch;
  return { fetch, requests };
}

async function run(args: string[], route: Route = () => undefined) {
  const { fetch, requests } = routed(route);
  const io = fakeIO({ fetch, env: SERVER });
  const code = await runCli(args, io);
  return { code, out: io.out.join(''), err: io.err.join(''), requests, io };
}

const text = (body: string) => new Response(body, { status: 200, headers: { 'content-type': 'text/plain' } });
const task = (name: string, state: string, app = 'web', created = '2024-05-01T11:00:00Z') => ({
  apiVersion: 'shoal/v1', kind: 'Task',
  metadata: { name, namespace: 'default', creationTimestamp: created, ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'App', name: app, uid: 'u' }] },
  spec: { nodeName: 'n1', cmd: 'x' }, status: { state },
});
const taskList = (items: unknown[]) => new Response(JSON.stringify({ kind: 'TaskList', apiVersion: 'shoal/v1', metadata: { resourceVersion: '9' }, items }), { status: 200 });

describe('logs arguments', () => {
  it('parsesTasksAndApps', () => {
    expect(parseLogsTarget('web-1')).toEqual({ kind: 'task', name: 'web-1' });
    expect(parseLogsTarget('task/web-1')).toEqual({ kind: 'task', name: 'web-1' });
    expect(parseLogsTarget('app/web')).toEqual({ kind: 'app', name: 'web' });
    expect(() => parseLogsTarget('node/n1')).toThrow(/not nodes/);
  });

  it('passesTailFollowAndNamespaceToTheServer', async () => {
    const r = await run(['logs', 'web-1', '--tail', '5', '-f', '-n', 'prod'], (p) => (p.startsWith('/api/v1/namespaces/prod/tasks/web-1/log') ? text('hello\n') : undefined));
    expect(r.code).toBe(0);
    expect(r.requests).toEqual(['GET /api/v1/namespaces/prod/tasks/web-1/log?tail=5&follow=true']);
    expect(r.out).toBe('hello\n');
  });

  it('refusesABadTailAndAllForATask', async () => {
    const bad = await run(['logs', 'web-1', '--tail', 'x']);
    expect(bad.code).toBe(1);
    expect(bad.err).toBe('error: --tail must be a non-negative integer, not "x"\n');
    const all = await run(['logs', 'web-1', '--all']);
    expect(all.code).toBe(1);
    expect(all.err).toMatch(/--all is for apps/);
    expect(all.requests).toEqual([]);
  });

  it('printsTheServerMessageForAnUnknownTask', async () => {
    const r = await run(['logs', 'nope']);
    expect(r.code).toBe(1);
    expect(r.err).toBe('error: /api/v1/namespaces/default/tasks/nope/log not found\n');
  });
});

describe('logs of an app', () => {
  const tasks = [task('web-2', 'RUNNING'), task('web-1', 'FAILED'), task('web-3', 'RUNNING'), task('db-1', 'RUNNING', 'db')];

  it('picksOneRunningInstance', async () => {
    const r = await run(['logs', 'app/web'], (p) => {
      if (p === '/api/v1/namespaces/default/tasks') return taskList(tasks);
      if (p === '/api/v1/namespaces/default/tasks/web-2/log') return text('from web-2\n');
      return undefined;
    });
    expect(r.code).toBe(0);
    expect(r.out).toBe('from web-2\n');
    expect(r.err).toMatch(/Showing task web-2 of 3; use --all/);
  });

  it('prefixesEveryLineOfEveryInstanceWithAll', async () => {
    const r = await run(['logs', 'app/web', '--all', '--tail', '2'], (p) => {
      if (p === '/api/v1/namespaces/default/tasks') return taskList(tasks);
      const m = /^\/api\/v1\/namespaces\/default\/tasks\/(web-\d)\/log\?tail=2$/.exec(p);
      return m ? text(`one ${m[1]}\ntwo ${m[1]}`) : undefined;
    });
    expect(r.code).toBe(0);
    const lines = r.out.split('\n').filter(Boolean).sort();
    expect(lines).toEqual(['[web-1] one web-1', '[web-1] two web-1', '[web-2] one web-2', '[web-2] two web-2', '[web-3] one web-3', '[web-3] two web-3']);
    expect(r.requests.filter((q) => q.includes('/log')).sort()).toEqual([
      'GET /api/v1/namespaces/default/tasks/web-1/log?tail=2', 'GET /api/v1/namespaces/default/tasks/web-2/log?tail=2', 'GET /api/v1/namespaces/default/tasks/web-3/log?tail=2',
    ]);
  });

  it('saysWhenTheAppHasNoTasks', async () => {
    const r = await run(['logs', 'app/api'], (p) => (p === '/api/v1/namespaces/default/tasks' ? taskList(tasks) : undefined));
    expect(r.code).toBe(1);
    expect(r.err).toBe('error: app "api" has no tasks in namespace "default"\n');
  });

  it('choosesTheNewestWhenNoneRuns', () => {
    const owned = tasksOfApp([task('web-1', 'FAILED', 'web', '2024-01-01T00:00:00Z'), task('web-2', 'KILLED', 'web', '2024-02-01T00:00:00Z')] as unknown as ShoalObject[], 'web');
    expect(pickInstance(owned)?.metadata.name).toBe('web-2');
  });
});

describe('logs -f', () => {
  it('endsCleanlyOnCtrlC', async () => {
    const { fetch } = routed((p, signal) => {
      if (!p.includes('/log')) return undefined;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('first\n'));
          signal?.addEventListener('abort', () => controller.error(new DOMException('aborted', 'AbortError')));
        },
      });
      return new Response(body, { status: 200 });
    });
    const io = fakeIO({ fetch, env: SERVER });
    const done = runCli(['logs', 'web-1', '-f'], io);
    for (let rounds = 0; io.out.length === 0 && rounds < 1000; rounds++) await new Promise((r) => setImmediate(r)); // the first line's way out
    expect(io.out.join('')).toBe('first\n');
    io.interrupt();
    expect(await done).toBe(0);
    expect(io.err).toEqual([]);
  });
});

describe('LineBuffer', () => {
  it('emitsWholeLinesAndTheRestOnFlush', () => {
    const lines: string[] = [];
    const b = new LineBuffer((l) => lines.push(l));
    b.push('a\nb');
    b.push('c\nd');
    expect(lines).toEqual(['a', 'bc']);
    b.flush();
    expect(lines).toEqual(['a', 'bc', 'd']);
  });
});
