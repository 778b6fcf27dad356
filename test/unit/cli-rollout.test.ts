import type { AppRevision } from '../../pkg/api/apps';
import { lookupKind } from '../../pkg/api/kinds';
import type { App, Task } from '../../pkg/api/types.generated';
import { runCli } from '../../pkg/cli';
import { CommandContext } from '../../pkg/cli/context';
import { runRolloutStatus } from '../../pkg/cli/commands/rollout';
import { describeObject } from '../../pkg/cli/describe';
import { changeSummary, historyRows, parseDuration, rolloutState, undoTarget } from '../../pkg/cli/rollout';
import { fakeIO } from './cli-fakes';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();
const SERVER = { SHOAL_SERVER: 'https://api.test:6443', SHOAL_TOKEN: 'tok' };

function app(generation: number, status: Record<string, unknown> = {}, spec: Record<string, unknown> = {}): App {
  return {
    apiVersion: 'shoal/v1', kind: 'App',
    metadata: { name: 'web', namespace: 'default', uid: 'u1', generation, creationTimestamp: ago(600), resourceVersion: '42' },
    spec: { instances: 3, cmd: 'v1', ...spec },
    status,
  } as unknown as App;
}

const running = (generation: number, extra: Record<string, unknown> = {}, deployment: Record<string, unknown> = {}) => ({
  observedGeneration: generation, instances: 3, ...extra,
  deployment: { id: 'u1-' + generation, targetVersion: generation, state: 'Running', step: 'Upgrade', updated: 1, total: 3, ...deployment },
});

describe('rolloutState', () => {
  const cases: Array<[string, App, string, string]> = [
    ['generation not observed yet', app(2, running(1)), 'waiting', 'Waiting for app "web" spec update to be observed...'],
    ['deployment for an older version', app(2, { ...running(2), deployment: { targetVersion: 1, state: 'Succeeded' } }), 'waiting', 'Waiting for app "web" spec update to be observed...'],
    ['no status at all', app(1), 'waiting', 'Waiting for app "web" spec update to be observed...'],
    ['updating', app(2, running(2, { updatedInstances: 1, availableInstances: 3 })), 'waiting', 'Waiting for app "web" rollout to finish: 1 out of 3 new instances have been updated...'],
    ['old ones terminating', app(2, running(2, { updatedInstances: 3, tasksRunning: 4, availableInstances: 3 })), 'waiting', 'Waiting for app "web" rollout to finish: 1 old instances are pending termination...'],
    ['becoming available', app(2, running(2, { updatedInstances: 3, tasksRunning: 3, availableInstances: 1 })), 'waiting', 'Waiting for app "web" rollout to finish: 1 of 3 updated instances are available...'],
    ['succeeded', app(2, running(2, { updatedInstances: 3, availableInstances: 3 }, { state: 'Succeeded' })), 'done', 'app "web" successfully rolled out'],
    ['deadline exceeded', app(2, { ...running(2), conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }] }), 'failed', 'app "web" exceeded its progress deadline'],
    ['deployment failed', app(2, running(2, {}, { state: 'Failed' })), 'failed', 'app "web" exceeded its progress deadline'],
  ];
  it.each(cases)('%s', (...row) => {
    const [, obj, phase, message] = row;
    expect(rolloutState(obj)).toEqual({ phase, message });
  });
});

describe('changeSummary', () => {
  it('listsTopLevelKeysAndOneLevelIntoObjects', () => {
    const a = { instances: 1, env: { A: '1' }, container: { image: 'a:1', command: ['x'] }, cmd: undefined };
    const b = { instances: 1, env: { A: '2' }, container: { image: 'a:2', command: ['x'] } };
    expect(changeSummary(a, b)).toBe('env, container.image');
  });

  it('seesAddedAndRemovedKeysButNotKeyOrder', () => {
    expect(changeSummary({ instances: 1, resources: { cpus: 1, mem: 2 } }, { resources: { mem: 2, cpus: 1 }, restartedAt: 'now' })).toBe('restartedAt, instances');
    expect(changeSummary({ a: [1, 2] }, { a: [1, 2] })).toBe('<none>');
  });
});

describe('historyRows and undoTarget', () => {
  const revs: AppRevision[] = [
    { generation: 4, createdAt: ago(10), spec: { cmd: 'v2', instances: 5 } },
    { generation: 2, createdAt: ago(100), spec: { cmd: 'v1', instances: 2 } },
    { generation: 3, createdAt: ago(50), spec: { cmd: 'v2', instances: 2 } },
  ];

  it('listsOldestFirstWithWhatChanged', () => {
    expect(historyRows(revs, (ts) => String((NOW - Date.parse(ts)) / 1000))).toEqual([
      ['2', '100', '<unknown: earlier revisions pruned>'],
      ['3', '50', 'cmd'],
      ['4', '10', 'instances'],
    ]);
    expect(historyRows([{ generation: 1, createdAt: ago(1), spec: {} }], () => '')[0][2]).toBe('created');
  });

  it('picksTheNewestOlderRevisionOrTheOneAskedFor', () => {
    expect(undoTarget('web', 4, revs).generation).toBe(3);
    expect(undoTarget('web', 4, revs, 2).generation).toBe(2);
    expect(() => undoTarget('web', 4, revs, 1)).toThrow('app "web" has no revision 1 (stored: 2, 3, 4)');
    expect(() => undoTarget('web', 2, [revs[1]])).toThrow('app "web" has no previous revision to roll back to');
  });
});

describe('parseDuration', () => {
  it.each([['10m', 600_000], ['90s', 90_000], ['1h30m', 5_400_000], ['500ms', 500], ['0', 0], ['2', 2000]])('%s', (text, ms) => {
    expect(parseDuration('--timeout', text)).toBe(ms);
  });
  it('rejectsGarbage', () => {
    expect(() => parseDuration('--timeout', '10 minutes')).toThrow('--timeout must be a duration such as 30s, 10m or 1h, not "10 minutes"');
    expect(() => parseDuration('--timeout', '')).toThrow();
  });
});

type Route = (method: string, path: string, body?: string) => Response | undefined;
const ok = (body: unknown) => new Response(JSON.stringify(body), { status: 200 });

function routed(route: Route) {
  const requests: Array<{ method: string; path: string; body?: string }> = [];
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? 'GET';
    requests.push({ method, path: url.pathname + url.search, body: init?.body as string | undefined });
    return route(method, url.pathname + url.search, init?.body as string | undefined)
      ?? new Response(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: `app "${url.pathname.split('/')[5]}" not found` }), { status: 404 });
  }) as typeof globalThis.fetch;
  return { fetch, requests };
}

async function run(args: string[], route: Route) {
  const { fetch, requests } = routed(route);
  const io = fakeIO({ fetch, env: SERVER, now: () => NOW });
  const code = await runCli(args, io);
  return { code, out: io.out.join(''), err: io.err.join(''), requests };
}

const APP_PATH = '/api/v1/namespaces/default/apps/web';
const REVISIONS = [
  { generation: 3, createdAt: ago(30), spec: { instances: 3, cmd: 'v1', restartedAt: 'x' } },
  { generation: 2, createdAt: ago(60), spec: { instances: 3, cmd: 'v2' } },
  { generation: 1, createdAt: ago(90), spec: { instances: 3, cmd: 'v1' } },
];
const current = app(3, running(3), { restartedAt: 'x' });

describe('shoal rollout', () => {
  it('statusPrintsEachNewMessageUntilDone', async () => {
    const states = [app(2, running(1)), app(2, running(1)), app(2, running(2, { updatedInstances: 1 })), app(2, running(2, { updatedInstances: 3, availableInstances: 3 }, { state: 'Succeeded' }))];
    let i = 0;
    const { fetch } = routed((m, p) => (p === APP_PATH ? ok(states[Math.min(i++, states.length - 1)]) : undefined));
    const io = fakeIO({ fetch, env: SERVER });
    const ctx = new CommandContext(io, {});
    await runRolloutStatus(ctx, 'app/web', undefined, { sleep: async () => undefined });
    expect(io.out.join('')).toBe([
      'Waiting for app "web" spec update to be observed...',
      'Waiting for app "web" rollout to finish: 1 out of 3 new instances have been updated...',
      'app "web" successfully rolled out',
      '',
    ].join('\n'));
  });

  it('statusFailsOnTheProgressDeadline', async () => {
    const failed = app(2, { ...running(2), conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }] });
    const r = await run(['rollout', 'status', 'apps', 'web'], (m, p) => (p === APP_PATH ? ok(failed) : undefined));
    expect(r).toMatchObject({ code: 1, out: '', err: 'error: app "web" exceeded its progress deadline\n' });
  });

  it('statusTimesOut', async () => {
    let now = NOW;
    const { fetch } = routed((m, p) => (p === APP_PATH ? ok(app(2, running(1))) : undefined));
    const io = fakeIO({ fetch, env: SERVER, now: () => now });
    const ctx = new CommandContext(io, {});
    const slept: number[] = [];
    const sleep = async (ms: number) => void (slept.push(ms), (now += ms));
    await expect(runRolloutStatus(ctx, 'app', 'web', { timeout: '2500ms', sleep })).rejects.toThrow('timed out after 2500ms waiting for app "web" rollout to finish');
    expect(slept).toEqual([1000, 1000, 500]);
    expect(io.out.join('')).toBe('Waiting for app "web" spec update to be observed...\n');
  });

  it('statusWithWatchFalsePrintsOnce', async () => {
    const r = await run(['rollout', 'status', 'app', 'web', '--watch=false'], (m, p) => (p === APP_PATH ? ok(app(2, running(1))) : undefined));
    expect(r).toMatchObject({ code: 0, out: 'Waiting for app "web" spec update to be observed...\n' });
  });

  it('refusesOtherKinds', async () => {
    const r = await run(['rollout', 'status', 'job/x'], () => undefined);
    expect(r).toMatchObject({ code: 1, err: 'error: rollout status works on apps, not jobs\n' });
  });

  it('historyPrintsATableAndOneRevisionAsYaml', async () => {
    const route: Route = (m, p) => (p === `${APP_PATH}/revisions` ? ok({ kind: 'AppRevisionList', items: REVISIONS }) : undefined);
    const r = await run(['rollout', 'history', 'app', 'web'], route);
    expect(r.out).toBe([
      'app "web"',
      'REVISION   CREATED   CHANGE',
      '1          90s       created',
      '2          60s       cmd',
      '3          30s       cmd, restartedAt',
      '',
    ].join('\n'));
    const one = await run(['rollout', 'history', 'app/web', '--revision', '2'], route);
    expect(one.out).toBe(`app "web" with revision #2 (created ${ago(60)})\nspec:\n  instances: 3\n  cmd: v2\n`);
    const missing = await run(['rollout', 'history', 'app/web', '--revision', '9'], route);
    expect(missing).toMatchObject({ code: 1, err: 'error: app "web" has no revision 9 (stored: 1, 2, 3)\n' });
  });

  it('undoPutsThePreviousSpecBackWithTheCurrentResourceVersion', async () => {
    const route: Route = (m, p) => {
      if (p === `${APP_PATH}/revisions`) return ok({ items: REVISIONS });
      if (p === APP_PATH) return ok(current);
      return undefined;
    };
    const r = await run(['rollout', 'undo', 'app', 'web'], route);
    expect(r).toMatchObject({ code: 0, out: 'app "web" rolled back (to revision 2)\n' });
    const put = r.requests.find((q) => q.method === 'PUT')!;
    const body = JSON.parse(put.body!);
    expect(body.spec).toEqual({ instances: 3, cmd: 'v2' });
    expect(body.metadata.resourceVersion).toBe('42');
    expect(body.status).toBeUndefined();
    const to1 = await run(['rollout', 'undo', 'app', 'web', '--to-revision', '1'], route);
    expect(to1.out).toBe('app "web" rolled back (to revision 1)\n');
    const same = await run(['rollout', 'undo', 'app', 'web', '--to-revision', '3'], route);
    expect(same.out).toBe('app "web" skipped rollback (current spec already matches revision 3)\n');
  });

  it('undoRetriesAStatusWriteButReportsAConcurrentSpecChangeAndANoHistory', async () => {
    const conflict = new Response(JSON.stringify({ kind: 'Status', code: 409, reason: 'Conflict', message: 'app "web" was modified' }), { status: 409 });
    // The controller wrote status between the read and the PUT: same generation, read again.
    let puts = 0;
    const statusWrite: Route = (m, p) => {
      if (p === `${APP_PATH}/revisions`) return ok({ items: REVISIONS });
      if (p === APP_PATH && m === 'GET') return ok(current);
      if (p === APP_PATH && m === 'PUT') return puts++ === 0 ? conflict.clone() : ok(current);
      return undefined;
    };
    const retried = await run(['rollout', 'undo', 'app', 'web'], statusWrite);
    expect(retried).toMatchObject({ code: 0, out: 'app "web" rolled back (to revision 2)\n' });
    expect(retried.requests.filter((q) => q.method === 'PUT')).toHaveLength(2);
    // Someone changed the spec meanwhile (a new generation): nothing is applied.
    let gets = 0;
    const specChange: Route = (m, p) => {
      if (p === `${APP_PATH}/revisions`) return ok({ items: REVISIONS });
      if (p === APP_PATH && m === 'GET') return ok(gets++ === 0 ? current : app(4, running(3), { cmd: 'v4' }));
      if (p === APP_PATH && m === 'PUT') return conflict.clone();
      return undefined;
    };
    const refused = await run(['rollout', 'undo', 'app', 'web'], specChange);
    expect(refused).toMatchObject({ code: 1, err: 'error: app "web" changed while rolling back (generation 3 → 4); nothing was applied\n' });
    expect(refused.requests.filter((q) => q.method === 'PUT')).toHaveLength(1);
    const lonely: Route = (m, p) => (p === `${APP_PATH}/revisions` ? ok({ items: [REVISIONS[2]] }) : p === APP_PATH ? ok(app(1)) : undefined);
    expect(await run(['rollout', 'undo', 'app', 'web'], lonely)).toMatchObject({ code: 1, err: 'error: app "web" has no previous revision to roll back to\n' });
  });

  it('restartSetsRestartedAtByMergePatch', async () => {
    const r = await run(['rollout', 'restart', 'app', 'web'], (m, p) => (p === APP_PATH && m === 'PATCH' ? ok(current) : undefined));
    expect(r).toMatchObject({ code: 0, out: 'app "web" restarted\n' });
    expect(JSON.parse(r.requests[0].body!)).toEqual({ spec: { restartedAt: new Date(NOW).toISOString() } });
  });
});

describe('describe app', () => {
  it('showsTheDeploymentPendingReasonAndTasks', () => {
    const obj = app(2, {
      ...running(2, { updatedInstances: 1, pendingReason: '0/1 agents available: insufficient cpus' }, { startedAt: ago(120), message: 'upgrading' }),
      conditions: [{ type: 'Progressing', status: 'True', reason: 'NewVersionProgressing', lastTransitionTime: ago(120) }],
    });
    const task = (name: string, healthy: boolean | undefined, version: number) => ({
      apiVersion: 'shoal/v1', kind: 'Task',
      metadata: { name, namespace: 'default', creationTimestamp: ago(60), labels: { 'shoal.dev/app': 'web' }, ownerReferences: [{ kind: 'App', name: 'web', uid: 'u1', version }] },
      spec: { nodeName: 'n1' }, status: { state: 'RUNNING', healthy, hostPorts: [31000, 31001] },
    }) as unknown as Task;
    const text = describeObject(lookupKind('apps')!, obj, [], NOW, { tasks: [task('web-b', undefined, 1), task('web-a', false, 2)] });
    expect(text).toMatch(/^  Pending: +0\/1 agents available: insufficient cpus$/m);
    expect(text).toMatch(/^Deployment:\n  ID:              u1-2\n  Target Version:  2\n  Step:            Upgrade\n  State:           Running\n  Updated:         1\/3\n  Started:         .* \(2m ago\)\n  Message:         upgrading$/m);
    expect(text).toMatch(/^Conditions:\n  Type +Status/m);
    expect(text).toContain([
      'Tasks:',
      '  Name    Node   State     Health      Ports         Version   Age',
      '  ----    ----   -----     ------      -----         -------   ---',
      '  web-a   n1     RUNNING   unhealthy   31000,31001   2         60s',
      '  web-b   n1     RUNNING   -           31000,31001   1         60s',
    ].join('\n'));
  });
});
