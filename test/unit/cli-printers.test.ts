import { load } from 'js-yaml';
import { lookupKind } from '../../pkg/api/kinds';
import type { App, Event, Node, Task } from '../../pkg/api/types.generated';
import type { ShoalObject } from '../../pkg/api/validation';
import {
  emptyListMessage, formatList, formatObject, nodeStatus, sortForDisplay, tableRows, type TableOptions,
} from '../../pkg/cli/printers';
import { age, formatTable, humanDuration } from '../../pkg/cli/table';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();
const opts = (o: Partial<TableOptions> = {}): TableOptions => ({ wide: false, allNamespaces: false, now: NOW, ...o });
const kind = (name: string) => lookupKind(name)!;
const table = (k: string, objs: unknown[], o?: Partial<TableOptions>) => formatTable(tableRows(kind(k), objs as ShoalObject[], opts(o)));

function app(name: string, spec: Partial<App['spec']> = {}, status: Partial<App['status']> | undefined = undefined): App {
  return {
    apiVersion: 'shoal/v1', kind: 'App',
    metadata: { name, namespace: 'default', creationTimestamp: ago(45) },
    spec: { instances: 3, cmd: 'sleep 1000', ...spec } as App['spec'],
    status: status as App['status'],
  };
}

describe('tabwriter', () => {
  it('padsColumnsByThreeSpacesWithMinimumWidthAndNoTrailingSpace', () => {
    expect(formatTable([['NAME', 'AGE', 'X'], ['a-long-name', '5m', ''], ['b', '45s', 'y']])).toEqual([
      'NAME          AGE   X',
      'a-long-name   5m',
      'b             45s   y',
    ]);
  });
});

describe('AGE', () => {
  it.each([
    [0, '0s'], [45, '45s'], [119, '119s'], [180, '3m'], [190, '3m10s'], [45 * 60, '45m'], [5 * 3600, '5h'],
    [5 * 3600 + 120, '5h2m'], [30 * 3600, '30h'], [2 * 86400, '2d'], [2 * 86400 + 3600 * 4, '2d4h'], [400 * 86400, '400d'],
    [3 * 365 * 86400, '3y'], [-1, '0s'], [-5, '<invalid>'],
  ])('%is is %s', (seconds, expected) => {
    expect(humanDuration(seconds * 1000)).toBe(expected);
  });

  it('isUnknownWithoutATimestamp', () => {
    expect(age(undefined, NOW)).toBe('<unknown>');
    expect(age('not a date', NOW)).toBe('<unknown>');
    expect(age(ago(7200), NOW)).toBe('120m');
  });
});

describe('apps table', () => {
  it('printsZerosForMissingStatusAndReadyAsAvailableOfWanted', () => {
    expect(table('apps', [app('web'), app('api', { instances: 2 }, { instances: 2, tasksRunning: 2, updatedInstances: 2, availableInstances: 1 })])).toEqual([
      'NAME   READY   UP-TO-DATE   AVAILABLE   AGE',
      'web    0/3     0            0           45s',
      'api    1/2     2            1           45s',
    ]);
  });

  it('countsWantedInstancesFromStatusWhenTheControllerReportedThem', () => {
    const scaling = app('web', { instances: 5 }, { instances: 3, availableInstances: 3 });
    expect(table('apps', [scaling])[1]).toContain('3/3');
  });

  it('addsWideColumnsAndANamespaceColumnForAllNamespaces', () => {
    const container = app('db', { container: { image: 'busybox:latest' }, cmd: undefined, role: 'prod', resources: { cpus: 0.5, mem: 256, disk: 0 } });
    expect(table('apps', [container], { wide: true, allNamespaces: true })).toEqual([
      'NAMESPACE   NAME   READY   UP-TO-DATE   AVAILABLE   AGE   ROLE   CPUS   MEM   IMAGE/CMD',
      'default     db     0/3     0            0           45s   prod   0.5    256   busybox:latest',
    ]);
  });
});

describe('other kinds', () => {
  it('printsTasksWithNoneForMissingFields', () => {
    const task = { apiVersion: 'shoal/v1', kind: 'Task', metadata: { name: 'web-1', creationTimestamp: ago(300) }, spec: { nodeName: 'n1' } } as unknown as Task;
    const running = {
      ...task, metadata: { name: 'web-2', creationTimestamp: ago(30) },
      status: { state: 'RUNNING', healthy: true, hostPorts: [31000, 31001], containerId: '0123456789abcdef', message: 'ok' },
    } as Task;
    expect(table('tasks', [task, running], { wide: true })).toEqual([
      'NAME    STATE     HEALTHY   NODE   PORTS         AGE   CONTAINER/PID   MESSAGE',
      'web-1   <none>    <none>    n1     <none>        5m    <none>          <none>',
      'web-2   RUNNING   true      n1     31000,31001   30s   0123456789ab    ok',
    ]);
  });

  it('derivesNodeStatusFromConditionsAndCordon', () => {
    const node = (conditions: unknown, unschedulable = false) => ({ kind: 'Node', metadata: { name: 'n' }, spec: { unschedulable }, status: { conditions } }) as Node;
    expect(nodeStatus(node([{ type: 'Ready', status: 'True' }]))).toBe('Ready');
    expect(nodeStatus(node([{ type: 'Ready', status: 'False' }]))).toBe('NotReady');
    expect(nodeStatus(node(undefined))).toBe('Unknown');
    expect(nodeStatus(node([{ type: 'Ready', status: 'True' }], true))).toBe('Ready,SchedulingDisabled');
  });

  it('printsNodesWithCapacityAndSortedAttributes', () => {
    const n = {
      kind: 'Node', metadata: { name: 'n1', creationTimestamp: ago(2 * 86400) }, spec: { unschedulable: true },
      status: { capacity: { cpus: 4, mem: 8192 }, attributes: { zone: 'a', rack: 'r1' }, conditions: [{ type: 'Ready', status: 'True' }] },
    };
    expect(table('nodes', [n, { kind: 'Node', metadata: { name: 'n2' } }])).toEqual([
      'NAME   STATUS                     CPUS     MEM      ALLOCATED   ATTRIBUTES       AGE',
      'n1     Ready,SchedulingDisabled   4        8192     <none>      rack=r1,zone=a   2d',
      'n2     Unknown                    <none>   <none>   <none>      <none>           <unknown>',
    ]);
  });

  it('printsJobsAndEventsOldestFirst', () => {
    const job = { kind: 'Job', metadata: { name: 'nightly', creationTimestamp: ago(60) }, spec: { schedule: '0 3 * * *', suspend: false }, status: {} };
    expect(table('jobs', [job])[1]).toBe('nightly   0 3 * * *   UTC        False     0        <none>          <none>     <none>        60s');
    const ev = (name: string, seconds: number) => ({
      kind: 'Event', metadata: { name }, involvedObject: { kind: 'App', name: 'web' }, type: 'Normal', reason: 'Scaled', message: `m ${name}`, count: 1, lastTimestamp: ago(seconds),
    }) as Event;
    const sorted = sortForDisplay(kind('events'), [ev('new', 5), ev('old', 600)]);
    expect(table('events', sorted)).toEqual([
      'LAST SEEN   TYPE     REASON   OBJECT    MESSAGE',
      '10m         Normal   Scaled   app/web   m old',
      '5s          Normal   Scaled   app/web   m new',
    ]);
  });
});

describe('object formats', () => {
  it('printsAListAsAnXListInJsonAndAListInYaml', () => {
    const items = [app('web')];
    const json = JSON.parse(formatList(kind('apps'), items, '42', 'json'));
    expect(json).toEqual({ kind: 'AppList', apiVersion: 'shoal/v1', metadata: { resourceVersion: '42' }, items });
    const yaml = load(formatList(kind('apps'), items, '42', 'yaml')) as Record<string, unknown>;
    expect(yaml).toMatchObject({ apiVersion: 'shoal/v1', kind: 'List', items: [{ kind: 'App', metadata: { name: 'web' } }] });
    expect(formatList(kind('apps'), [app('a'), app('b')], '1', 'name')).toBe('app/a\napp/b');
  });

  it('printsASingleObject', () => {
    expect(JSON.parse(formatObject(kind('apps'), app('web'), 'json')).metadata.name).toBe('web');
    expect(formatObject(kind('apps'), app('web'), 'yaml')).toMatch(/^apiVersion: shoal\/v1\nkind: App\n/);
  });

  it('saysNoResourcesFoundLikeKubectl', () => {
    expect(emptyListMessage(kind('apps'), 'default')).toBe('No resources found in default namespace.');
    expect(emptyListMessage(kind('apps'), undefined)).toBe('No resources found');
    expect(emptyListMessage(kind('nodes'), undefined)).toBe('No resources found');
  });
});
