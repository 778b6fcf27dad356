/**
 * The CLI for external frameworks (Mesos scheduler API): `get frameworks` columns (TASKS counts
 * non-terminal tasks labelled with the framework id), `describe framework` (spec, status, tasks
 * with their Mesos task ids, allocation and DRF dominant share), delete through the generic
 * delete, and `shoal dev --scheduler-api-port`.
 */
import { lookupKind } from '../../pkg/api/kinds';
import type { Event, Framework, Node, Task } from '../../pkg/api/types.generated';
import type { ShoalObject } from '../../pkg/api/validation';
import { parseKindArgs } from '../../pkg/cli/args';
import type { ResourceClient } from '../../pkg/cli/client';
import { deleteAll, parseDeleteArgs } from '../../pkg/cli/commands/delete';
import { runDescribe } from '../../pkg/cli/commands/describe';
import { runGet } from '../../pkg/cli/commands/get';
import { CommandContext } from '../../pkg/cli/context';
import { describeObject, frameworkAllocation } from '../../pkg/cli/describe';
import { schedulerApiPort } from '../../pkg/cli/dev';
import { ApiError, CliError } from '../../pkg/cli/errors';
import {
  addTaskColumns, formatObject, secondsDuration, tableNeedsTasks, tableRows, tasksByFramework, type TableOptions,
} from '../../pkg/cli/printers';
import { formatTable } from '../../pkg/cli/table';
import { fakeIO, FakeClient } from './cli-fakes';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();
const K = (n: string) => lookupKind(n)!;
const FW1 = '7b1c6a52-0f7e-4c1e-9a59-1f0f3f0e2a11';
const FW2 = 'c0ffee00-1111-4222-8333-444455556666';

function framework(id: string, spec: Partial<Framework['spec']> = {}, status: Framework['status'] = {}): Framework {
  return {
    apiVersion: 'shoal/v1', kind: 'Framework',
    metadata: { name: id, uid: `uid-${id}`, creationTimestamp: ago(600), generation: 1 },
    spec: { name: 'spark', user: 'alice', role: 'analytics', principal: 'alice', namespace: 'default', failoverTimeoutSeconds: 604800, capabilities: [], checkpoint: false, ...spec },
    status,
  };
}

function task(name: string, fw: string | undefined, state: string, o: { node?: string; cpus?: number; mem?: number; disk?: number; mesosId?: string; created?: number; namespace?: string } = {}): Task {
  return {
    apiVersion: 'shoal/v1', kind: 'Task',
    metadata: {
      name, namespace: o.namespace ?? 'default', creationTimestamp: ago(o.created ?? 60),
      labels: fw ? { 'shoal.dev/framework': fw } : {},
      annotations: o.mesosId ? { 'mesos.shoal.dev/task-id': o.mesosId } : {},
    },
    spec: { nodeName: o.node ?? 'n1', cmd: 'sleep 1000', resources: { cpus: o.cpus ?? 1, mem: o.mem ?? 256, disk: o.disk ?? 0 } },
    status: { state },
  } as unknown as Task;
}

function node(name: string, cpus: number, mem: number, disk: number): Node {
  return {
    apiVersion: 'shoal/v1', kind: 'Node',
    metadata: { name, creationTimestamp: ago(3600) },
    spec: {},
    status: { capacity: { cpus, mem, disk, ports: [] } },
  } as unknown as Node;
}

const connected = framework(FW1, {}, { state: 'connected', registeredTime: ago(600), lastSeenTime: ago(600), leader: 'cm-a' });
const disconnected = framework(FW2, { name: 'chronos', role: '*', principal: undefined, user: 'root', failoverTimeoutSeconds: 0 },
  { state: 'disconnected', registeredTime: ago(900), lastSeenTime: ago(30), disconnectedTime: ago(30), leader: 'cm-b' });
const tasks = [
  task('spark-1', FW1, 'RUNNING', { node: 'n1', cpus: 2, mem: 1024, mesosId: 'executor-1', created: 300 }),
  task('spark-2', FW1, 'STAGING', { node: 'n2', cpus: 1, mem: 512, disk: 100, mesosId: 'executor-2', created: 120 }),
  task('spark-0', FW1, 'FINISHED', { node: 'n1', cpus: 4, mem: 4096, mesosId: 'executor-0', created: 500 }),
  task('chronos-1', FW2, 'RUNNING', { node: 'n2' }),
  task('web-1', undefined, 'RUNNING'),
];
const nodes = [node('n1', 4, 8192, 10240), node('n2', 4, 8192, 10240)];

const opts = (o: Partial<TableOptions> = {}): TableOptions => ({ wide: false, allNamespaces: false, now: NOW, ...o });

describe('get frameworks', () => {
  it('resolvesItsNames', () => {
    for (const n of ['frameworks', 'framework', 'fw', 'Framework']) expect(parseKindArgs(n).kind.kind).toBe('Framework');
    expect(parseKindArgs(`fw/${FW1}`)).toMatchObject({ kind: { plural: 'frameworks' }, name: FW1 });
  });

  it('printsIdNameRoleStatePrincipalNonTerminalTasksAndAge', () => {
    const table = opts();
    expect(tableNeedsTasks(K('fw'))).toBe(true);
    addTaskColumns(K('fw'), table, tasks);
    expect(formatTable(tableRows(K('fw'), [connected, disconnected], table))).toEqual([
      'NAME                                   FRAMEWORK   ROLE        STATE          PRINCIPAL   TASKS   AGE',
      `${FW1}   spark       analytics   connected      alice       2       10m`,
      `${FW2}   chronos     *           disconnected   <none>      1       10m`,
    ]);
  });

  it('addsUserFailoverLeaderAndDisconnectedAgeWhenWide', () => {
    const table = opts({ wide: true, frameworkTasks: tasksByFramework(tasks) });
    const rows = tableRows(K('frameworks'), [connected, disconnected], table);
    expect(rows[0].slice(7)).toEqual(['USER', 'FAILOVER', 'LEADER', 'DISCONNECTED']);
    expect(rows[1].slice(7)).toEqual(['alice', '7d', 'cm-a', '<none>']);
    expect(rows[2].slice(7)).toEqual(['root', '0s', 'cm-b', '30s']);
  });

  it('countsOnlyNonTerminalTasksPerFrameworkAndLeavesTasksUnknownWithoutThem', () => {
    expect([...tasksByFramework(tasks)]).toEqual([[FW1, 2], [FW2, 1]]);
    expect(tableRows(K('fw'), [framework('other')], opts({ frameworkTasks: tasksByFramework(tasks) }))[1][5]).toBe('0');
    expect(tableRows(K('fw'), [connected], opts())[1][5]).toBe('<none>');
  });

  it('fillsOnlyTheTaskColumnsOfTheKind', () => {
    const nodeTable = opts();
    addTaskColumns(K('nodes'), nodeTable, tasks);
    expect(nodeTable.allocated).toBeDefined();
    expect(nodeTable.frameworkTasks).toBeUndefined();
    expect(tableNeedsTasks(K('apps'))).toBe(false);
  });

  it('printsSecondsAsDurations', () => {
    expect(secondsDuration(undefined)).toBe('<none>');
    expect(secondsDuration(90)).toBe('90s');
    expect(secondsDuration(3600)).toBe('60m');
    expect(secondsDuration(604800)).toBe('7d');
  });

  it('namesOneAsFrameworkSlashId', () => {
    expect(formatObject(K('fw'), connected, 'name')).toBe(`framework/${FW1}`);
  });
});

function ctxWith(client: ResourceClient) {
  const io = fakeIO({ now: () => NOW });
  class TestContext extends CommandContext {
    override client(): ResourceClient {
      return client;
    }
  }
  return { io, ctx: new TestContext(io, {}) };
}

function seeded(): FakeClient {
  const c = new FakeClient();
  c.seed(K('frameworks'), connected as ShoalObject);
  c.seed(K('frameworks'), disconnected as ShoalObject);
  for (const t of tasks) c.seed(K('tasks'), t as ShoalObject);
  return c;
}

describe('get frameworks through a client', () => {
  it('listsThemClusterScopedEvenWithANamespaceFlag', async () => {
    const c = seeded();
    const io = fakeIO({ now: () => NOW });
    class TestContext extends CommandContext {
      override client(): ResourceClient {
        return c;
      }
    }
    await runGet(new TestContext(io, { namespace: 'prod' }), { kind: K('fw') }, {});
    const lines = io.out.join('').trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+FRAMEWORK\s+ROLE\s+STATE\s+PRINCIPAL\s+TASKS\s+AGE$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4))).toEqual([
      [FW1, 'spark', 'analytics', 'connected'],
      [FW2, 'chronos', '*', 'disconnected'],
    ]);
    expect(c.calls).toContainEqual({ verb: 'list', key: 'frameworks/' });
  });

  it('listsThemWithTasksUnknownForAUserWhoMayNotListTasksEverywhere', async () => {
    const c = seeded();
    const list = c.list.bind(c);
    c.list = async (kind, namespace, o) => {
      if (kind.kind === 'Task') throw new ApiError(403, 'Forbidden', 'user "dev" cannot list tasks across all namespaces (needs role view)');
      return list(kind, namespace, o);
    };
    const { io, ctx } = ctxWith(c);
    await runGet(ctx, { kind: K('fw') }, {});
    const lines = io.out.join('').trimEnd().split('\n');
    expect(lines.slice(1).map((l) => l.split(/\s+/)[5])).toEqual(['<none>', '<none>']);
  });

  it('getsOneById', async () => {
    const { io, ctx } = ctxWith(seeded());
    await runGet(ctx, parseKindArgs('framework', FW2), { output: 'json' });
    expect(JSON.parse(io.out.join(''))).toMatchObject({ kind: 'Framework', metadata: { name: FW2 }, status: { state: 'disconnected' } });
  });
});

describe('delete framework', () => {
  it('goesThroughTheGenericDeleteByIdWithoutANamespace', async () => {
    const c = seeded();
    const targets = parseDeleteArgs(['fw', FW1], () => 'prod');
    expect(targets).toEqual([{ kind: K('frameworks'), namespace: undefined, name: FW1 }]);
    const out: string[] = [];
    const err: string[] = [];
    expect(await deleteAll(c, [...targets, ...parseDeleteArgs([`framework/nope`], () => 'prod')], (l) => out.push(l), (l) => err.push(l))).toBe(false);
    expect(out).toEqual([`framework/${FW1} deleted`]);
    expect(err).toEqual(['error: framework/nope not found']);
    expect(c.writes()).toEqual([{ verb: 'delete', key: `frameworks//${FW1}` }, { verb: 'delete', key: 'frameworks//nope' }]);
  });
});

describe('describe framework', () => {
  const event = {
    apiVersion: 'shoal/v1', kind: 'Event',
    metadata: { name: 'e1', namespace: 'default', creationTimestamp: ago(30) },
    involvedObject: { kind: 'Framework', name: FW2 }, type: 'Warning', reason: 'Disconnected',
    message: 'subscription stream closed', source: { component: 'scheduler-api' }, lastTimestamp: ago(30), count: 1,
  } as unknown as Event;

  it('showsSpecStatusTasksWithMesosIdsAllocationAndEvents', () => {
    const text = describeObject(K('fw'), connected, [], NOW, { tasks: tasks.filter((t) => t.metadata.labels?.['shoal.dev/framework'] === FW1), nodes });
    expect(text).toMatch(new RegExp(`^Name: +${FW1}$`, 'm'));
    expect(text).not.toMatch(/^Namespace:/m);
    expect(text).toMatch(/^State: +connected$/m);
    expect(text).toMatch(/^Leader: +cm-a$/m);
    expect(text).toMatch(/^Registered: +\S+ \(10m ago\)$/m);
    expect(text).not.toMatch(/^Disconnected:/m);
    expect(text).toMatch(/^ {2}Name: +spark$/m);
    expect(text).toMatch(/^ {2}User: +alice$/m);
    expect(text).toMatch(/^ {2}Role: +analytics$/m);
    expect(text).toMatch(/^ {2}Principal: +alice$/m);
    expect(text).toMatch(/^ {2}Task Namespace: +default$/m);
    expect(text).toMatch(/^ {2}Failover Timeout: +7d \(604800s\)$/m);
    expect(text).toMatch(/^ {2}Capabilities: +<none>$/m);
    const lines = text.split('\n');
    const at = lines.indexOf('Tasks:');
    expect(lines.slice(at, at + 5)).toEqual([
      'Tasks:',
      '  Name      Node   State      Mesos Task ID   Age',
      '  ----      ----   -----      -------------   ---',
      '  spark-0   n1     FINISHED   executor-0      8m20s',
      '  spark-1   n1     RUNNING    executor-1      5m',
    ]);
    expect(lines[at + 5]).toBe('  spark-2   n2     STAGING    executor-2      2m');
    expect(text).toMatch(/^Allocation \(role analytics\):$/m);
    // spark-0 finished: only spark-1 and spark-2 count, of 8 cpus, 16384 MiB, 20480 MiB disk.
    expect(text).toMatch(/^ {2}Resources: +cpus=3, mem=1536 MiB, disk=100 MiB \(2 non-terminal task\(s\)\)$/m);
    expect(text).toMatch(/^ {2}Cluster Capacity: +cpus=8, mem=16384 MiB, disk=20480 MiB \(2 node\(s\)\)$/m);
    expect(text).toMatch(/^ {2}Shares: +cpus 37\.5%, mem 9\.4%, disk 0\.5%$/m);
    expect(text).toMatch(/^ {2}DRF dominant share \(this framework's tasks\): +37\.5% \(cpus\)$/m);
    expect(text).toMatch(/^Events: +<none>$/m);
  });

  it('showsWhenADisconnectedFrameworkFailsOverAndItsEvents', () => {
    const text = describeObject(K('fw'), disconnected, [event], NOW, { tasks: [], nodes: [] });
    expect(text).toMatch(/^State: +disconnected$/m);
    expect(text).toMatch(/^Disconnected: +\S+ \(30s ago\)$/m);
    expect(text).toMatch(/^Failover Deadline: +\S+ \(30s ago\)$/m);
    expect(text).toMatch(/^ {2}Principal: +<none>$/m);
    expect(text).toMatch(/^Tasks: +<none>$/m);
    expect(text).toMatch(/^ {2}Resources: +cpus=0, mem=0 MiB, disk=0 MiB \(0 non-terminal task\(s\)\)$/m);
    expect(text).toMatch(/^ {2}DRF dominant share \(this framework's tasks\): +<none>$/m);
    expect(text).toMatch(/^ {2}Warning +Disconnected +30s +scheduler-api +subscription stream closed$/m);
  });

  it('saysWhyTasksOrNodesAreMissing', () => {
    const noNodes = describeObject(K('fw'), connected, [], NOW, { tasks: [tasks[0]], nodes: '<unable to list nodes: forbidden>' });
    expect(noNodes).toMatch(/^ {2}Resources: +cpus=2, mem=1024 MiB, disk=0 MiB \(1 non-terminal task\(s\)\)$/m);
    expect(noNodes).toMatch(/^ {2}Cluster Capacity: +<unable to list nodes: forbidden>$/m);
    const noTasks = describeObject(K('fw'), connected, [], NOW, { tasks: '<unable to list tasks: forbidden>', nodes });
    expect(noTasks).toMatch(/^Tasks: +<unable to list tasks: forbidden>$/m);
    expect(noTasks).toMatch(/^ {2}Tasks: +<unable to list tasks: forbidden>$/m);
  });

  it('takesTheLargestShareAsDominant', () => {
    const a = frameworkAllocation([task('m', FW1, 'RUNNING', { cpus: 0.5, mem: 8192 })], nodes);
    expect(a.used).toEqual({ cpus: 0.5, mem: 8192, disk: 0 });
    expect(a.dominant).toEqual({ resource: 'mem', share: 0.5 });
    expect(frameworkAllocation([], []).dominant).toBeUndefined();
  });

  it('describesOneThroughAClientWithItsEvents', async () => {
    const c = seeded();
    c.seed(K('events'), event as ShoalObject);
    const { io, ctx } = ctxWith(c);
    await runDescribe(ctx, K('fw'), FW2);
    const text = io.out.join('');
    expect(text).toMatch(new RegExp(`^Name: +${FW2}$`, 'm'));
    expect(text).toMatch(/^State: +disconnected$/m);
    expect(text).toMatch(/^ {2}Warning +Disconnected +30s/m);
    expect(c.writes()).toEqual([]);
  });
});

describe('shoal dev --scheduler-api-port', () => {
  it('defaultsTo5050AcceptsZeroForAFreePortAndCanBeTurnedOff', () => {
    expect(schedulerApiPort({})).toBe(5050);
    expect(schedulerApiPort({ schedulerApi: true })).toBe(5050);
    expect(schedulerApiPort({ schedulerApiPort: '0' })).toBe(0);
    expect(schedulerApiPort({ schedulerApiPort: '15050' })).toBe(15050);
    expect(schedulerApiPort({ schedulerApi: false })).toBeNull();
  });

  it.each(['abc', '', '-1', '65536', '1.5'])('refuses %p naming the flag', (v) => {
    expect(() => schedulerApiPort({ schedulerApiPort: v })).toThrow(new CliError(`--scheduler-api-port must be a port number (0-65535), not "${v}"`));
  });

  it('refusesAPortWithNoSchedulerApi', () => {
    expect(() => schedulerApiPort({ schedulerApiPort: '5050', schedulerApi: false })).toThrow(/cannot be combined/);
  });
});
