import { admit, fieldPath, formatCauses, structuralCause, type FieldCause } from '../../pkg/api/validation';
import type { App } from '../../pkg/api/types.generated';

const app = (spec: Record<string, unknown> = { cmd: 'sleep 1000' }, metadata: Record<string, unknown> = { name: 'web' }) => ({
  apiVersion: 'shoal/v1',
  kind: 'App',
  metadata,
  spec,
});

const job = (spec: Record<string, unknown>, name = 'j') => ({ apiVersion: 'shoal/v1', kind: 'Job', metadata: { name }, spec: { cmd: 'x', ...spec } });

function causesOf(input: unknown): FieldCause[] {
  const r = admit(input);
  if (r.ok) throw new Error('expected admission to fail');
  return r.causes;
}

describe('admit defaults', () => {
  it('fillsEveryMarathonDefault', () => {
    const r = admit(app({ cmd: 'python3 -m http.server $PORT0', ports: [{ name: 'http' }], healthChecks: [{}] }));
    if (!r.ok) throw new Error(formatCauses(r.causes));
    const spec = (r.object as App).spec;
    expect(spec).toEqual({
      cmd: 'python3 -m http.server $PORT0',
      instances: 1,
      role: '*',
      resources: { cpus: 1, mem: 128, disk: 0 },
      ports: [{ name: 'http', hostPort: 0, protocol: 'tcp' }],
      constraints: [],
      healthChecks: [{
        protocol: 'HTTP', path: '/', portIndex: 0, gracePeriodSeconds: 300, intervalSeconds: 60,
        timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15,
      }],
      readinessChecks: [],
      upgradeStrategy: { minimumHealthCapacity: 1, maximumOverCapacity: 1 },
      backoff: { seconds: 1, factor: 1.15, maxLaunchDelaySeconds: 300 },
      unreachableStrategy: { inactiveAfterSeconds: 0, expungeAfterSeconds: 600 },
      killSelection: 'YoungestFirst',
      taskKillGracePeriodSeconds: 3,
      progressDeadlineSeconds: 600,
      revisionHistoryLimit: 10,
    });
    expect((r.object as App).status).toEqual({});
  });

  it('keepsGivenValuesAndDoesNotModifyTheInput', () => {
    const input = app({ cmd: 'x', instances: 0, resources: { cpus: 0.25 } });
    const copy = structuredClone(input);
    const r = admit(input);
    expect(r.ok && (r.object as App).spec.resources).toEqual({ cpus: 0.25, mem: 128, disk: 0 });
    expect(r.ok && (r.object as App).spec.instances).toBe(0);
    expect(input).toEqual(copy);
  });

  it('doesNotDefaultPortIndexWhenPortNameIsGiven', () => {
    const r = admit(app({ cmd: 'x', ports: [{ name: 'http' }], healthChecks: [{ portName: 'http' }] }));
    expect(r.ok && (r.object as App).spec.healthChecks[0].portIndex).toBeUndefined();
  });

  it('admitsEveryKind', () => {
    const meta = { name: 'n1' };
    expect(admit({ apiVersion: 'shoal/v1', kind: 'Job', metadata: meta, spec: { cmd: 'date', schedule: '*/5 * * * *' } }).ok).toBe(true);
    expect(admit({ apiVersion: 'shoal/v1', kind: 'Node', metadata: meta, status: { capacity: { cpus: 2, ports: [[31000, 32000]] } } }).ok).toBe(true);
    expect(admit({ apiVersion: 'shoal/v1', kind: 'Task', metadata: meta, spec: { nodeName: 'n1', cmd: 'x' } }).ok).toBe(true);
    expect(admit({ apiVersion: 'shoal/v1', kind: 'Event', metadata: meta, involvedObject: { kind: 'App', name: 'web' }, reason: 'Scaled' }).ok).toBe(true);
  });
});

describe('admit rejects bad input naming the field', () => {
  const deep = (n: number) => {
    let v: unknown = 'x';
    for (let i = 0; i < n; i++) v = { a: v };
    return v;
  };
  const proto = JSON.parse('{"apiVersion":"shoal/v1","kind":"App","metadata":{"name":"w","labels":{"__proto__":"x"}},"spec":{"cmd":"x"}}');
  const ctor = JSON.parse('{"apiVersion":"shoal/v1","kind":"App","metadata":{"name":"w"},"spec":{"cmd":"x","env":{"constructor":"x"}}}');
  const table: Array<[string, unknown, string, RegExp]> = [
    ['unknown field', app({ cmd: 'x', instancez: 3 }), 'spec.instancez', /unknown field/],
    ['wrong type', app({ cmd: 'x', instances: 'three' }), 'spec.instances', /must be integer, not string/],
    ['negative instances', app({ cmd: 'x', instances: -1 }), 'spec.instances', /must be >= 0/],
    ['fractional instances', app({ cmd: 'x', instances: 1.5 }), 'spec.instances', /must be integer, not number/],
    ['zero cpus', app({ cmd: 'x', resources: { cpus: 0 } }), 'spec.resources.cpus', /must be > 0/],
    ['missing name', app({ cmd: 'x' }, {}), 'metadata.name', /is required/],
    ['uppercase name', app({ cmd: 'x' }, { name: 'Web' }), 'metadata.name', /DNS-1123 label/],
    ['name too long', app({ cmd: 'x' }, { name: 'a'.repeat(64) }), 'metadata.name', /DNS-1123 label/],
    ['name with dot', app({ cmd: 'x' }, { name: 'a.b' }), 'metadata.name', /DNS-1123 label/],
    ['bad namespace', app({ cmd: 'x' }, { name: 'a', namespace: '-x' }), 'metadata.namespace', /DNS-1123 label/],
    ['bad label key', app({ cmd: 'x' }, { name: 'a', labels: { 'a b': 'c' } }), 'metadata.labels.a b', /label key/],
    ['bad label value', app({ cmd: 'x' }, { name: 'a', labels: { a: 'b c' } }), 'metadata.labels.a', /label value/],
    ['unknown kind', { apiVersion: 'shoal/v1', kind: 'Pod', metadata: { name: 'a' } }, 'kind', /unknown kind "Pod"/],
    ['missing kind', { apiVersion: 'shoal/v1', metadata: { name: 'a' } }, 'kind', /is required/],
    ['unknown apiVersion', { ...app(), apiVersion: 'v1' }, 'apiVersion', /unsupported "v1"/],
    ['no cmd nor container', app({}), 'spec', /one of cmd or container/],
    ['bad env name', app({ cmd: 'x', env: { '1A': 'b' } }), 'spec.env.1A', /environment variable name/],
    ['bad constraint operator', app({ cmd: 'x', constraints: [['hostname', 'SOMETIMES']] }), 'spec.constraints[0][1]', /must be one of/],
    ['MAX_PER without value', app({ cmd: 'x', constraints: [['rack', 'MAX_PER']] }), 'spec.constraints[0]', /positive integer/],
    ['LIKE with bad regex', app({ cmd: 'x', constraints: [['rack', 'LIKE', '(']] }), 'spec.constraints[0]', /regular expression/],
    ['health check port out of range', app({ cmd: 'x', healthChecks: [{ protocol: 'TCP' }] }), 'spec.healthChecks[0].portIndex', /has 0 port/],
    ['health check unknown port name', app({ cmd: 'x', ports: [{ name: 'a' }], healthChecks: [{ portName: 'b' }] }), 'spec.healthChecks[0].portName', /no port named "b"/],
    ['COMMAND check without command', app({ cmd: 'x', healthChecks: [{ protocol: 'COMMAND' }] }), 'spec.healthChecks[0].command', /is required/],
    ['duplicate hostPort', app({ cmd: 'x', ports: [{ hostPort: 80 }, { hostPort: 80 }] }), 'spec.ports[1].hostPort', /duplicate/],
    ['containerPort without container', app({ cmd: 'x', ports: [{ containerPort: 80 }] }), 'spec.ports[0].containerPort', /only applies to containers/],
    ['minimumHealthCapacity over 1', app({ cmd: 'x', upgradeStrategy: { minimumHealthCapacity: 2 } }), 'spec.upgradeStrategy.minimumHealthCapacity', /<= 1/],
    ['expunge before inactive', app({ cmd: 'x', unreachableStrategy: { inactiveAfterSeconds: 300, expungeAfterSeconds: 60 } }), 'spec.unreachableStrategy.expungeAfterSeconds', /at least inactiveAfterSeconds \(300\)/],
    ['namespace on a node', { apiVersion: 'shoal/v1', kind: 'Node', metadata: { name: 'n', namespace: 'default' } }, 'metadata.namespace', /cluster-scoped/],
    ['bad cron', { apiVersion: 'shoal/v1', kind: 'Job', metadata: { name: 'j' }, spec: { cmd: 'x', schedule: '* *' } }, 'spec.schedule', /5 fields/],
    ['6-field cron', job({ schedule: '0 0 0 * * *' }), 'spec.schedule', /5 fields.*got 6/],
    ['cron minute out of range', job({ schedule: '61 * * * *' }), 'spec.schedule', /^minute field: 61 is out of range 0-59$/],
    ['cron never fires', job({ schedule: '0 0 30 2 *' }), 'spec.schedule', /never fires/],
    ['unknown nickname', job({ schedule: '@sometimes' }), 'spec.schedule', /unknown nickname/],
    ['ISO zero period', job({ schedule: 'R/2026-01-01T00:00:00Z/PT0S' }), 'spec.schedule', /period "PT0S" is zero/],
    ['ISO bad start', job({ schedule: 'R5/2026-02-30T00:00:00Z/P1D' }), 'spec.schedule', /has day 30/],
    ['unknown timezone', job({ schedule: '@daily', timezone: 'Mars/Olympus' }), 'spec.timezone', /not a time zone/],
    ['timezone without schedule', job({ timezone: 'Europe/Atlantis' }), 'spec.timezone', /not a time zone/],
    ['offset as timezone', job({ timezone: '+02:00' }), 'spec.timezone', /offset, not an IANA/],
    ['parallelism over completions', job({ completions: 2, parallelism: 3 }), 'spec.parallelism', /more tasks at once than must complete; at most completions/],
    ['gang with completions != parallelism', job({ gang: true, completions: 4, parallelism: 2 }), 'spec.gang', /a gang's tasks all run together: completions must equal parallelism/],
    ['job its own parent', job({ parents: ['a', 'j'] }), 'spec.parents[1]', /its own parent/],
    ['__proto__ key', proto, 'metadata.labels.__proto__', /not allowed/],
    ['constructor key', ctor, 'spec.env.constructor', /not allowed/],
    ['5000-deep nesting', app({ cmd: 'x', env: deep(5000) }), 'spec.env' + '.a'.repeat(30), /nested more than 32 levels/],
    ['not an object', [1, 2], '', /must be an object, not array/],
  ];
  it.each(table)('%s', (_name, input, field, message) => {
    const causes = causesOf(input);
    const cause = causes.find((c) => c.field === field);
    expect({ causes, found: cause?.field }).toEqual(expect.objectContaining({ found: field }));
    expect(cause!.message).toMatch(message);
  });

  it('reportsEveryProblemAtOnce', () => {
    const causes = causesOf(app({ cmd: 'x', instances: -1, foo: 1 }, { name: 'Bad' }));
    expect(causes.map((c) => c.field).sort()).toEqual(['metadata.name', 'spec.foo', 'spec.instances']);
  });

  it('leavesObjectPrototypeAlone', () => {
    admit(JSON.parse('{"__proto__": {"polluted": true}, "apiVersion": "shoal/v1"}'));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('admit Jobs', () => {
  it.each([
    ['cron', { schedule: '*/15 9-17 * * MON-FRI' }],
    ['nickname', { schedule: '@hourly' }],
    ['ISO interval', { schedule: 'R5/2026-12-03T00:00:00Z/PT1H' }],
    ['ISO interval with empty start', { schedule: 'R//P1D' }],
    ['timezone Europe/Berlin', { schedule: '30 2 * * *', timezone: 'Europe/Berlin' }],
    ['timezone without schedule', { timezone: 'America/New_York' }],
    ['parents with schedule', { schedule: '@daily', parents: ['extract'] }],
    ['gang', { gang: true, completions: 4, parallelism: 4 }],
    ['parallelism below completions', { completions: 10, parallelism: 3 }],
  ])('admits %s', (_name, spec) => {
    const r = admit(job(spec));
    if (!r.ok) throw new Error(formatCauses(r.causes));
  });

  it('namesEveryJobProblemAtOnce', () => {
    const causes = causesOf(job({ schedule: '61 * * * *', timezone: 'Nowhere/City', completions: 1, parallelism: 2, gang: true, parents: ['j'] }));
    expect(causes.map((c) => c.field).sort()).toEqual(['spec.gang', 'spec.parallelism', 'spec.parents[0]', 'spec.schedule', 'spec.timezone']);
  });
});

describe('helpers', () => {
  it('formatsFieldPaths', () => {
    expect(fieldPath('/spec/ports/0/hostPort')).toBe('spec.ports[0].hostPort');
    expect(fieldPath('/metadata/labels/a~1b')).toBe('metadata.labels.a/b');
    expect(fieldPath('')).toBe('');
  });

  it('findsStructuralProblemsIteratively', () => {
    let v: unknown = 1;
    for (let i = 0; i < 100000; i++) v = [v];
    expect(structuralCause(v)?.message).toMatch(/nested more than 32/);
    expect(structuralCause({ a: [{ b: 1 }] })).toBeUndefined();
  });
});
