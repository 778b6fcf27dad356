/**
 * The CLI for Jobs: get jobs/jobruns tables, describe job/jobrun, `job run|suspend|resume`,
 * `logs jobrun/NAME|job/NAME`, apply ordering Jobs parents first, delete jobrun.
 */
import { parseManifests } from '../../pkg/api/manifest';
import { lookupKind, type KindInfo } from '../../pkg/api/kinds';
import type { Job, JobRun, Task } from '../../pkg/api/types.generated';
import type { ShoalObject } from '../../pkg/api/validation';
import { runCli } from '../../pkg/cli';
import type { ListOptions, LogOptions, ObjectList, ResourceClient } from '../../pkg/cli/client';
import { applyManifests, orderForApply, planApply, type ApplyDeps } from '../../pkg/cli/commands/apply';
import { runDescribe } from '../../pkg/cli/commands/describe';
import { parseLogsTarget, runLogs, taskToFollow } from '../../pkg/cli/commands/logs';
import { CommandContext } from '../../pkg/cli/context';
import { fireTimes, zoneTime } from '../../pkg/cli/describe';
import { ApiError, CliError } from '../../pkg/cli/errors';
import { relativeTime, tableRows } from '../../pkg/cli/printers';
import { formatTable } from '../../pkg/cli/table';
import { fakeIO, FakeClient } from './cli-fakes';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();
const SERVER = { SHOAL_SERVER: 'https://api.test:6443', SHOAL_TOKEN: 'tok' };
const K = (n: string) => lookupKind(n)!;

function job(name: string, spec: Partial<Job['spec']> = {}, status: Job['status'] = {}): Job {
  return {
    apiVersion: 'shoal/v1', kind: 'Job',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, creationTimestamp: ago(3600), generation: 1 },
    spec: {
      cmd: 'echo hi', role: '*', timezone: 'UTC', concurrencyPolicy: 'Forbid', completions: 1, parallelism: 1, gang: false, retries: 2,
      backoff: { seconds: 1, factor: 1.15, maxLaunchDelaySeconds: 300 }, parents: [], suspend: false, successfulRunsHistoryLimit: 3, failedRunsHistoryLimit: 3,
      resources: { cpus: 0.1, mem: 32, disk: 0 }, constraints: [], taskKillGracePeriodSeconds: 3, ...spec,
    } as Job['spec'],
    status,
  };
}

function jobRun(name: string, o: { job?: string; created?: number; trigger?: JobRun['spec']['trigger']; status?: JobRun['status']; completions?: number } = {}): JobRun {
  const j = o.job ?? 'report';
  return {
    apiVersion: 'shoal/v1', kind: 'JobRun',
    metadata: {
      name, namespace: 'default', uid: `uid-${name}`, creationTimestamp: ago(o.created ?? 600), labels: { 'shoal.dev/job': j },
      ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'Job', name: j, uid: `uid-${j}`, controller: true, version: 1 }],
    },
    spec: { job: j, trigger: o.trigger ?? 'Schedule', scheduledTime: ago(o.created ?? 600), template: { ...job(j).spec, completions: o.completions ?? 1 } },
    status: o.status ?? { phase: 'Pending' },
  };
}

function task(name: string, run: string, state: string, created: number, extra: Partial<Task['status']> = {}): Task {
  return {
    apiVersion: 'shoal/v1', kind: 'Task',
    metadata: { name, namespace: 'default', creationTimestamp: ago(created), labels: { 'shoal.dev/job': 'report', 'shoal.dev/jobrun': run } },
    spec: { nodeName: 'n1', cmd: 'echo hi' },
    status: { state, ...extra },
  } as unknown as Task;
}

/** FakeClient with label selectors honoured, task logs and manual runs. */
class JobsClient extends FakeClient {
  logsOf = new Map<string, string>();
  logCalls: Array<{ name: string; opts?: LogOptions }> = [];

  override async list(kind: KindInfo, namespace: string | undefined, opts?: ListOptions): Promise<ObjectList> {
    const l = await super.list(kind, namespace, opts);
    const [key, value] = (opts?.labelSelector ?? '').split('=');
    return key ? { ...l, items: l.items.filter((o) => o.metadata.labels?.[key] === value) } : l;
  }

  async logs(namespace: string, name: string, opts?: LogOptions): Promise<AsyncIterable<Uint8Array>> {
    this.logCalls.push({ name, opts });
    const text = this.logsOf.get(name);
    if (text === undefined) throw new ApiError(404, 'NotFound', `task "${name}" ran on node "gone", which no longer exists: its logs are gone`);
    return (async function* () {
      yield new TextEncoder().encode(text);
    })();
  }
}

function ctxWith(client: ResourceClient) {
  const io = fakeIO({ now: () => NOW });
  class TestContext extends CommandContext {
    override client(): ResourceClient {
      return client;
    }
  }
  return { io, ctx: new TestContext(io, {}) };
}

const table = (k: string, objs: unknown[], wide = false) => formatTable(tableRows(K(k), objs as ShoalObject[], { wide, allNamespaces: false, now: NOW }));

describe('get jobs and jobruns', () => {
  it('printsJobsWithNextRunAndLastResult', () => {
    const j = job('report', { schedule: '*/5 * * * *', timezone: 'Europe/Berlin', parents: ['extract', 'clean'] }, {
      active: 1, lastScheduleTime: ago(60), nextScheduleTime: ago(-240), lastResult: 'Succeeded',
    });
    expect(table('jobs', [j, job('once')])).toEqual([
      'NAME     SCHEDULE      TIMEZONE        SUSPEND   ACTIVE   LAST SCHEDULE   NEXT RUN   LAST RESULT   AGE',
      'report   */5 * * * *   Europe/Berlin   False     1        60s             in 4m      Succeeded     60m',
      'once     <none>        UTC             False     0        <none>          <none>     <none>        60m',
    ]);
    const wide = table('jobs', [j], true);
    expect(wide[0]).toMatch(/AGE +ROLE +IMAGE\/CMD +PARENTS$/);
    expect(wide[1]).toMatch(/60m +\* +echo hi +extract,clean$/);
  });

  it('printsRunsWithCompletionsAttemptsAndDuration', () => {
    const done = jobRun('report-1714560000', { completions: 3, created: 900, status: { phase: 'Succeeded', succeeded: 3, attempts: 4, startTime: ago(880), completionTime: ago(760) } });
    const running = jobRun('report-manual-ab12cd34', { trigger: 'Manual', created: 100, status: { phase: 'Running', succeeded: 0, attempts: 1, active: 1, startTime: ago(90) } });
    const pending = jobRun('report-pdeadbeef', { trigger: 'Parents', created: 5 });
    expect(table('jr', [done, running, pending])).toEqual([
      'NAME                     JOB      TRIGGER    PHASE       COMPLETIONS   ATTEMPTS   DURATION   AGE',
      'report-1714560000        report   Schedule   Succeeded   3/3           4          2m         15m',
      'report-manual-ab12cd34   report   Manual     Running     0/1           1          90s        100s',
      'report-pdeadbeef         report   Parents    Pending     0/1           0          <none>     5s',
    ]);
    const wide = table('jobruns', [{ ...done, status: { ...done.status, reason: 'Completed' } }], true);
    expect(wide[0]).toMatch(/AGE +SCHEDULED +STARTED +REASON$/);
    expect(wide[1]).toMatch(/15m +15m ago +14m ago +Completed$/);
  });

  it('saysRelativeTimesBothWays', () => {
    expect(relativeTime(ago(-240), NOW)).toBe('in 4m');
    expect(relativeTime(ago(30), NOW)).toBe('30s ago');
    expect(relativeTime(undefined, NOW)).toBe('<none>');
  });

  it('listsRunsByLabelThroughTheServer', async () => {
    const requests: string[] = [];
    const fetch = (async (input: string | URL | Request) => {
      const url = new URL(String(input));
      requests.push(url.pathname + url.search);
      return new Response(JSON.stringify({ kind: 'JobRunList', apiVersion: 'shoal/v1', metadata: { resourceVersion: '3' }, items: [jobRun('report-1'), jobRun('report-0', { created: 9000 })] }), { status: 200 });
    }) as typeof globalThis.fetch;
    const io = fakeIO({ fetch, env: SERVER, now: () => NOW });
    expect(await runCli(['get', 'jr', '-l', 'shoal.dev/job=report', '-o', 'name'], io)).toBe(0);
    expect(requests).toEqual(['/api/v1/namespaces/default/jobruns?labelSelector=shoal.dev%2Fjob%3Dreport']);
    expect(io.out.join('')).toBe('jobrun/report-0\njobrun/report-1\n'); // oldest first
  });
});

describe('describe job', () => {
  it('showsSpecStatusFireTimesRecentRunsAndWhyPending', async () => {
    const client = new JobsClient();
    client.seed(K('jobs'), job('report', {
      schedule: '0 * * * *', timezone: 'Europe/Berlin', completions: 4, parallelism: 4, gang: true, parents: ['extract'], startingDeadlineSeconds: 60,
    }, { active: 1, succeeded: 7, failed: 1, missed: 2, skipped: 3, lastRun: 'report-1714564800', lastResult: 'Failed', lastScheduleTime: ago(30), nextScheduleTime: ago(-3570) }));
    client.seed(K('jobruns'), jobRun('report-1714557600', { created: 4000, status: { phase: 'Succeeded', startTime: ago(3990), completionTime: ago(3900) } }));
    client.seed(K('jobruns'), jobRun('report-1714564800', {
      created: 30, status: {
        phase: 'Pending',
        pending: { message: '0/3 agents available: 3 insufficient cpus.', reasons: [{ reason: 'InsufficientCpus', message: 'insufficient cpus', count: 3, agents: [{ name: 'n1', detail: '0.5 free' }] }] },
      },
    }));
    client.seed(K('jobruns'), jobRun('other-1', { job: 'other' }));
    client.seed(K('events'), { apiVersion: 'shoal/v1', kind: 'Event', metadata: { name: 'e1', namespace: 'default', creationTimestamp: ago(30) }, involvedObject: { kind: 'Job', name: 'report', namespace: 'default' }, type: 'Normal', reason: 'RunCreated', message: 'created run report-1714564800', count: 1, lastTimestamp: ago(30) } as unknown as ShoalObject);
    const { io, ctx } = ctxWith(client);
    await runDescribe(ctx, K('job'), 'report');
    const text = io.out.join('');
    expect(text).toMatch(/^  Completions: +4$/m);
    expect(text).toMatch(/^  Parallelism: +4$/m);
    expect(text).toMatch(/^  Gang: +true$/m);
    expect(text).toMatch(/^  Backoff: +1s, factor 1.15, max 300s$/m);
    expect(text).toMatch(/^  Parents: +extract$/m);
    expect(text).toMatch(/^  Missed: +2$/m);
    expect(text).toMatch(/^  Skipped: +3$/m);
    expect(text).toMatch(/^  Last Result: +Failed$/m);
    expect(text).toMatch(/^  Next Schedule: +2024-05-01T12:59:30.000Z \(in 59m\)$/m);
    expect(text).toMatch(/^Next Fire Times: +2024-05-01T13:00:00.000Z \(2024-05-01 15:00:00 \S+\)$/m);
    expect(text).toMatch(/^ +2024-05-01T14:00:00.000Z \(2024-05-01 16:00:00 \S+\)$/m);
    expect(text).toMatch(/^ +2024-05-01T15:00:00.000Z \(2024-05-01 17:00:00 \S+\)$/m);
    const runs = text.slice(text.indexOf('Recent Runs:'));
    expect(runs).toMatch(/^  Name +Phase +Trigger +Started +Duration$/m);
    expect(runs.indexOf('report-1714564800')).toBeLessThan(runs.indexOf('report-1714557600')); // newest first
    expect(runs).toMatch(/^  report-1714557600 +Succeeded +Schedule +66m ago +90s$/m);
    expect(runs).not.toMatch(/other-1/);
    expect(text).toMatch(/^Pending Run: +report-1714564800: 0\/3 agents available: 3 insufficient cpus\.$/m);
    expect(text).toMatch(/^    3 +insufficient cpus +n1: 0.5 free; \(2 more\)$/m);
    expect(text).toMatch(/^  Normal +RunCreated +30s +created run report-1714564800$/m);
  });

  it('computesFireTimesInTheZoneAndSaysWhenSuspendedOrUnparsable', () => {
    const j = job('j', { schedule: '30 2 * * *', timezone: 'America/New_York' });
    expect(fireTimes(j, NOW)).toEqual([
      '2024-05-02T06:30:00.000Z (2024-05-02 02:30:00 EDT)', '2024-05-03T06:30:00.000Z (2024-05-03 02:30:00 EDT)', '2024-05-04T06:30:00.000Z (2024-05-04 02:30:00 EDT)',
    ]);
    expect(fireTimes({ ...j, spec: { ...j.spec, suspend: true } }, NOW)[0]).toMatch(/\[suspended: will not run\]$/);
    expect(fireTimes({ ...j, spec: { ...j.spec, schedule: 'not a schedule' } }, NOW)[0]).toMatch(/^<unable to compute: /);
    expect(fireTimes(job('once'), NOW)).toEqual([]);
    expect(zoneTime(Date.parse('2024-01-01T00:00:00Z'), 'UTC')).toBe('2024-01-01 00:00:00 UTC');
  });

  it('saysARunOnceJobHasNoSchedule', async () => {
    const client = new JobsClient();
    client.seed(K('jobs'), job('once'));
    const { io, ctx } = ctxWith(client);
    await runDescribe(ctx, K('job'), 'once');
    const text = io.out.join('');
    expect(text).toMatch(/^  Schedule: +<none> \(runs once\)$/m);
    expect(text).not.toMatch(/Next Fire Times/);
    expect(text).toMatch(/^Recent Runs: +<none>$/m);
  });
});

describe('describe jobrun', () => {
  it('showsTheRunItsTasksAndItsLastFailure', async () => {
    const client = new JobsClient();
    const r = jobRun('report-pab12cd34', {
      trigger: 'Parents', completions: 2, created: 300,
      status: {
        phase: 'Running', attempts: 3, active: 1, succeeded: 1, failed: 1, startTime: ago(290), reason: 'Retrying', message: 'one task failed',
        lastFailure: { task: 'report-pab12cd34-x1', node: 'n2', state: 'FAILED', exitCode: 3, message: 'boom', at: ago(100) },
      },
    });
    r.spec.parentRuns = ['extract-1714560000', 'clean-1714560000'];
    client.seed(K('jobruns'), r);
    client.seed(K('tasks'), task('report-pab12cd34-x2', 'report-pab12cd34', 'RUNNING', 90));
    client.seed(K('tasks'), task('report-pab12cd34-x1', 'report-pab12cd34', 'FAILED', 280, { exitCode: 3 }));
    client.seed(K('tasks'), task('report-pab12cd34-x0', 'report-pab12cd34', 'FINISHED', 285, { exitCode: 0 }));
    client.seed(K('tasks'), task('unrelated', 'other-run', 'RUNNING', 5));
    const { io, ctx } = ctxWith(client);
    await runDescribe(ctx, K('jr'), 'report-pab12cd34');
    const text = io.out.join('');
    expect(text).toMatch(/^Controlled By: +Job\/report \(version 1\)$/m);
    expect(text).toMatch(/^Job: +report$/m);
    expect(text).toMatch(/^Trigger: +Parents$/m);
    expect(text).toMatch(/^Parent Runs: +extract-1714560000\n +clean-1714560000$/m);
    expect(text).toMatch(/^Phase: +Running$/m);
    expect(text).toMatch(/^Completions: +1\/2 \(parallelism 1\)$/m);
    expect(text).toMatch(/^Counts: +1 active, 1 succeeded, 1 failed$/m);
    expect(text).toMatch(/^Attempts: +3 \(retries 2\)$/m);
    expect(text).toMatch(/^Duration: +4m50s$/m);
    expect(text).toMatch(/^Reason: +Retrying$/m);
    expect(text).toMatch(/^Last Failure: +report-pab12cd34-x1 on n2: FAILED \(exit code 3\), 100s ago\n +boom$/m);
    const tasks = text.slice(text.indexOf('\nTasks:')).split('\n').filter((l) => l.startsWith('  report') || l.includes('Exit Code'));
    expect(tasks.map((l) => l.trim().split(/\s+/).slice(0, 4).join(' '))).toEqual([
      'Name Node State Exit', 'report-pab12cd34-x0 n1 FINISHED 0', 'report-pab12cd34-x1 n1 FAILED 3', 'report-pab12cd34-x2 n1 RUNNING -',
    ]);
    expect(text).not.toMatch(/unrelated/);
  });

  it('printsWhyARunIsPending', async () => {
    const client = new JobsClient();
    client.seed(K('jobruns'), jobRun('r1', { status: { phase: 'Pending', pending: { message: '0/1 agents available: 1 agent unschedulable.', reasons: [{ reason: 'Unschedulable', message: 'agent unschedulable', count: 1, agents: [{ name: 'n1' }] }] } } }));
    const { io, ctx } = ctxWith(client);
    await runDescribe(ctx, K('jobrun'), 'r1');
    const text = io.out.join('');
    expect(text).toMatch(/^Pending: +0\/1 agents available: 1 agent unschedulable\.$/m);
    expect(text).toMatch(/^  Why Pending:$/m);
    expect(text).toMatch(/^Tasks: +<none>$/m);
  });
});

describe('shoal job run|suspend|resume', () => {
  type Route = (method: string, path: string, body?: string) => Response | undefined;
  async function run(args: string[], route: Route) {
    const requests: string[] = [];
    const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(String(input));
      requests.push(`${init?.method ?? 'GET'} ${url.pathname} ${init?.body ?? ''}`.trim());
      return route(init?.method ?? 'GET', url.pathname, init?.body as string | undefined)
        ?? new Response(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: 'job "nope" not found' }), { status: 404 });
    }) as typeof globalThis.fetch;
    const io = fakeIO({ fetch, env: SERVER, now: () => NOW });
    const code = await runCli(args, io);
    return { code, out: io.out.join(''), err: io.err.join(''), requests };
  }
  const RUN = '/api/v1/namespaces/default/jobs/report/run';

  it('runsAJobNow', async () => {
    const r = await run(['job', 'run', 'report'], (m, p) => (m === 'POST' && p === RUN ? new Response(JSON.stringify(jobRun('report-manual-x1y2z3w4')), { status: 201 }) : undefined));
    expect(r).toMatchObject({ code: 0, out: 'jobrun/report-manual-x1y2z3w4 created\n', err: '' });
    expect(r.requests).toEqual([`POST ${RUN} {}`]);
  });

  it('saysUnchangedForAKeyUsedBefore', async () => {
    const r = await run(['job', 'run', 'job/report', '--idempotency-key', 'deploy-42', '-n', 'default'], (m, p) => (p === RUN ? new Response(JSON.stringify(jobRun('report-manual-0a1b2c3d')), { status: 200 }) : undefined));
    expect(r).toMatchObject({ code: 0, out: 'jobrun/report-manual-0a1b2c3d unchanged\n' });
    expect(r.requests).toEqual([`POST ${RUN} {"idempotencyKey":"deploy-42"}`]);
  });

  it('failsWithOneLine', async () => {
    const missing = await run(['job', 'run', 'nope'], () => undefined);
    expect(missing).toMatchObject({ code: 1, out: '', err: 'error: job "nope" not found\n' });
    const conflict = await run(['job', 'run', 'report'], () => new Response(JSON.stringify({ kind: 'Status', code: 409, reason: 'Conflict', message: 'job "report" is being deleted: it cannot run' }), { status: 409 }));
    expect(conflict).toMatchObject({ code: 1, err: 'error: job "report" is being deleted: it cannot run\n' });
    const wrongKind = await run(['job', 'run', 'app/web'], () => undefined);
    expect(wrongKind).toMatchObject({ code: 1, err: 'error: expected a job, not apps: use NAME or job/NAME\n', requests: [] });
    const badKey = await run(['job', 'run', 'report', '--idempotency-key', 'k'.repeat(254)], () => undefined);
    expect(badKey).toMatchObject({ code: 1, err: 'error: --idempotency-key must be 1 to 253 characters\n', requests: [] });
  });

  it('suspendsAndResumesWithAMergePatch', async () => {
    const route: Route = (m, p) => (m === 'PATCH' && p === '/api/v1/namespaces/default/jobs/report' ? new Response(JSON.stringify(job('report')), { status: 200 }) : undefined);
    const s = await run(['job', 'suspend', 'report'], route);
    expect(s).toMatchObject({ code: 0, out: 'job/report suspended\n', requests: ['PATCH /api/v1/namespaces/default/jobs/report {"spec":{"suspend":true}}'] });
    const r = await run(['job', 'resume', 'report'], route);
    expect(r).toMatchObject({ code: 0, out: 'job/report resumed\n', requests: ['PATCH /api/v1/namespaces/default/jobs/report {"spec":{"suspend":false}}'] });
    expect(await run(['job', 'suspend', 'nope'], () => undefined)).toMatchObject({ code: 1, err: 'error: job "nope" not found\n' });
  });
});

describe('delete jobrun', () => {
  it('deletesARunByKindAndName', async () => {
    const requests: string[] = [];
    const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      requests.push(`${init?.method} ${new URL(String(input)).pathname}`);
      return new Response(JSON.stringify(jobRun('report-1')), { status: 200 });
    }) as typeof globalThis.fetch;
    const io = fakeIO({ fetch, env: SERVER });
    expect(await runCli(['delete', 'jr', 'report-1'], io)).toBe(0);
    expect(await runCli(['delete', 'jobrun/report-2'], io)).toBe(0);
    expect(requests).toEqual(['DELETE /api/v1/namespaces/default/jobruns/report-1', 'DELETE /api/v1/namespaces/default/jobruns/report-2']);
    expect(io.out.join('')).toBe('jobrun/report-1 deleted\njobrun/report-2 deleted\n');
  });
});

describe('logs jobrun/NAME and job/NAME', () => {
  function client() {
    const c = new JobsClient();
    c.seed(K('jobs'), job('report'));
    c.seed(K('jobruns'), jobRun('report-1', { created: 900 }));
    c.seed(K('jobruns'), jobRun('report-2', { created: 100 }));
    c.seed(K('tasks'), task('report-1-b', 'report-1', 'FINISHED', 800));
    c.seed(K('tasks'), task('report-1-a', 'report-1', 'FAILED', 850));
    c.seed(K('tasks'), task('report-2-a', 'report-2', 'RUNNING', 90));
    c.seed(K('tasks'), task('other-a', 'other-1', 'RUNNING', 90));
    c.logsOf.set('report-1-a', 'first try\nfailed');
    c.logsOf.set('report-1-b', 'second try\nok\n');
    c.logsOf.set('report-2-a', 'only task\n');
    return c;
  }

  it('parsesTheTargets', () => {
    expect(parseLogsTarget('jobrun/r')).toEqual({ kind: 'jobrun', name: 'r' });
    expect(parseLogsTarget('jr/r')).toEqual({ kind: 'jobrun', name: 'r' });
    expect(parseLogsTarget('job/j')).toEqual({ kind: 'job', name: 'j' });
    expect(() => parseLogsTarget('node/n1')).toThrow(/jobruns and jobs, not nodes/);
  });

  it('printsEveryTaskOfARunOldestFirstUnderHeaders', async () => {
    const c = client();
    const { io, ctx } = ctxWith(c);
    await runLogs(ctx, 'jobrun/report-1', { tail: '5' });
    expect(io.out.join('')).toBe('==> task report-1-a <==\nfirst try\nfailed\n\n==> task report-1-b <==\nsecond try\nok\n');
    expect(c.logCalls.map((l) => [l.name, l.opts?.tail, l.opts?.follow])).toEqual([['report-1-a', 5, false], ['report-1-b', 5, false]]);
  });

  it('printsOneTaskAsLogsTaskDoes', async () => {
    const { io, ctx } = ctxWith(client());
    await runLogs(ctx, 'jobrun/report-2', {});
    expect(io.out.join('')).toBe('only task\n');
  });

  it('readsTheNewestRunOfAJob', async () => {
    const { io, ctx } = ctxWith(client());
    await runLogs(ctx, 'job/report', {});
    expect(io.out.join('')).toBe('only task\n');
  });

  it('followsTheNewestTaskStillRunning', async () => {
    const c = client();
    c.seed(K('tasks'), task('report-1-c', 'report-1', 'RUNNING', 10));
    c.logsOf.set('report-1-c', 'third\n');
    const { io, ctx } = ctxWith(c);
    await runLogs(ctx, 'jobrun/report-1', { follow: true });
    expect(io.out.join('')).toBe('third\n');
    expect(io.err.join('')).toBe('Following task report-1-c of 3 of jobrun report-1\n');
    expect(c.logCalls.map((l) => [l.name, l.opts?.follow])).toEqual([['report-1-c', true]]);
    expect(taskToFollow([task('a', 'r', 'FINISHED', 50), task('b', 'r', 'FAILED', 10)])!.metadata.name).toBe('b');
  });

  it('reportsAMissingTaskLogAndShowsTheOthers', async () => {
    const c = client();
    c.logsOf.delete('report-1-a');
    const { io, ctx } = ctxWith(c);
    await expect(runLogs(ctx, 'jobrun/report-1', {})).rejects.toThrow(/errors were reported above/);
    expect(io.out.join('')).toBe('==> task report-1-a <==\n\n==> task report-1-b <==\nsecond try\nok\n');
    expect(io.err.join('')).toMatch(/^error: task report-1-a: task "report-1-a" ran on node "gone"/);
  });

  it('saysWhenThereIsNothingToShow', async () => {
    const c = client();
    c.seed(K('jobruns'), jobRun('report-3', { created: 1 }));
    c.seed(K('jobs'), job('never'));
    const { ctx } = ctxWith(c);
    await expect(runLogs(ctx, 'jobrun/report-3', {})).rejects.toThrow('jobrun "report-3" has no tasks yet (phase Pending): see shoal describe jobrun report-3');
    await expect(runLogs(ctx, 'job/never', {})).rejects.toThrow('job "never" has no runs in namespace "default"');
    await expect(runLogs(ctx, 'job/nope', {})).rejects.toThrow('jobs "nope" not found');
  });
});

describe('apply orders jobs parents first', () => {
  const doc = (name: string, parents: string[] = []) => `apiVersion: shoal/v1
kind: Job
metadata:
  name: ${name}
spec:
  cmd: echo ${name}
  parents: [${parents.join(', ')}]
`;
  const APP = 'apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: web\nspec:\n  cmd: sleep 1000\n';
  const file = (...docs: string[]) => parseManifests(docs.join('---\n'), 'graph.yaml');

  /** A server that, like the real one, refuses a Job whose parent does not exist (dry runs too). */
  function strictClient() {
    const c = new JobsClient();
    c.beforeWrite = (call) => {
      const body = call.body as Job | undefined;
      if (body?.kind !== 'Job') return;
      const causes = (body.spec.parents ?? []).flatMap((p, i) => (c.objects.has(`jobs/default/${p}`) ? [] : [{ field: `spec.parents[${i}]`, message: `job "${p}" not found` }]));
      if (causes.length) throw new ApiError(422, 'Invalid', `Job "${body.metadata.name}" is invalid`, causes);
    };
    return c;
  }
  function deps(c: ResourceClient) {
    const out: string[] = [];
    const err: string[] = [];
    const d: ApplyDeps = { out: (l) => out.push(l), err: (l) => err.push(l), client: () => c, defaultNamespace: () => 'default' };
    return { d, out, err };
  }

  it('appliesADiamondWrittenChildrenFirst', async () => {
    const c = strictClient();
    const { d, out } = deps(c);
    await applyManifests(file(doc('d', ['b', 'c']), APP, doc('c', ['a']), doc('b', ['a']), doc('a')), [], d);
    expect(out).toEqual(['app/web created', 'job/a created', 'job/c created', 'job/b created', 'job/d created']);
  });

  it('keepsAnOrderThatWorksAndOtherKindsWhereTheyAre', () => {
    const { planned } = planApply(file(doc('a'), APP, doc('b', ['a']), doc('x')), () => 'default');
    expect(orderForApply(planned).ordered.map((p) => p.ref)).toEqual(['job/a', 'app/web', 'job/b', 'job/x']);
  });

  it('stillReportsOtherDryRunProblemsAndParentsNotInTheApply', async () => {
    const c = strictClient();
    const { d } = deps(c);
    const err = await applyManifests(file(doc('b', ['a', 'elsewhere']), doc('a')), [], d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).lines).toEqual(['graph.yaml:7: job/b: spec.parents[1]: job "elsewhere" not found']);
    expect(c.writes().filter((w) => !w.dryRun)).toEqual([]);
  });

  it('refusesACycleBeforeSendingAnything', async () => {
    const c = strictClient();
    const { d } = deps(c);
    const err = await applyManifests(file(doc('a', ['c']), doc('b', ['a']), doc('c', ['b']), doc('solo')), [], d).catch((e: unknown) => e);
    expect((err as CliError).lines).toEqual(['graph.yaml:7: job/a: spec.parents: would make a cycle: a → b → c → a']);
    expect(c.calls).toEqual([]);
  });

  it('documentsTheOrderInItsHelp', async () => {
    const io = fakeIO();
    await runCli(['apply', '--help'], io);
    expect(io.out.join('')).toMatch(/parents first/);
  });
});
