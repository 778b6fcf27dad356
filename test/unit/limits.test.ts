/**
 * Admission's size and count limits (pkg/api/limits.ts and the schemas), and regressions found by
 * fuzzing admission (test/unit/admission-fuzz.test.ts).
 */
import { countedObjectBytes, MAX_DERIVED_OBJECT_BYTES, MAX_LABELS, MAX_OBJECT_BYTES, MAX_WORKLOAD_LABELS } from '../../pkg/api/limits';
import { admit, shown, structuralCause, type AdmitResult, type FieldCause } from '../../pkg/api/validation';

/** etcd's default --max-request-bytes. */
const ETCD_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

const app = (spec: Record<string, unknown>, metadata: Record<string, unknown> = {}) => ({ apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'web', namespace: 'default', ...metadata }, spec });
const envOf = (count: number, size: number, p = 'V') => Object.fromEntries(Array.from({ length: count }, (_, i) => [`${p}${i}`, 'x'.repeat(size)]));

function refused(r: AdmitResult): FieldCause[] {
  if (r.ok) throw new Error('expected admission to refuse');
  return r.causes;
}

describe('limits', () => {
  it('refusesAnEnvMapOverItsTotalSizeNamingTheField', () => {
    expect(refused(admit(app({ cmd: 'x', env: envOf(14, 65_000) })))).toEqual([{ field: 'spec.env', message: 'names and values take 910032 bytes: at most 262144 (256 KiB) in all' }]);
    expect(refused(admit(app({ container: { image: 'i', env: envOf(5, 60_000) } })))[0].field).toBe('spec.container.env');
  });

  it('refusesMoreThan1024EnvVariables', () => {
    expect(refused(admit(app({ cmd: 'x', env: envOf(10_000, 1) })))).toEqual([{ field: 'spec.env', message: 'has 10000 entries: at most 1024' }]);
    expect(admit(app({ cmd: 'x', env: envOf(1024, 1) })).ok).toBe(true);
  });

  it('countsCharactersAsTheSchemaDoes', () => {
    // ajv counts code points: 65,537 emoji are 131,074 UTF-16 units.
    expect(refused(admit(app({ cmd: '😀'.repeat(65_537) })))).toEqual([{ field: 'spec.cmd', message: 'is 65537 characters long: at most 65536' }]);
  });

  it('leavesAppsAndJobsRoomForTheLabelsTheirTasksGet', () => {
    const labels = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`l${i}`, 'v']));
    expect(admit(app({ cmd: 'x' }, { labels: labels(MAX_WORKLOAD_LABELS) })).ok).toBe(true);
    expect(refused(admit(app({ cmd: 'x' }, { labels: labels(MAX_WORKLOAD_LABELS + 1) })))[0]).toMatchObject({ field: 'metadata.labels', message: expect.stringMatching(/61 labels: at most 60/) });
    const task = { apiVersion: 'shoal/v1', kind: 'Task', metadata: { name: 't', namespace: 'default', labels: labels(MAX_LABELS) }, spec: { cmd: 'x' } };
    expect(admit(task).ok).toBe(true);
    expect(refused(admit({ ...task, metadata: { ...task.metadata, labels: labels(MAX_LABELS + 1) } }))[0]).toMatchObject({ field: 'metadata.labels', message: 'has 65 entries: at most 64' });
  });

  it('marksAnObjectOverItsEncodedSizeAsTooLarge', () => {
    const r = admit(app({ cmd: 'x'.repeat(60_000), env: envOf(4, 60_000, 'A'), container: { image: 'i', env: envOf(4, 60_000, 'B') } }, { annotations: { a: 'x'.repeat(60_000) } }));
    expect(r).toMatchObject({ ok: false, tooLarge: true, causes: [{ field: '', message: expect.stringMatching(/^the App takes \d+ bytes encoded .*: at most 524288 \(512 KiB\)$/) }] });
  });

  it('admitsTheTaskOfAnAppAtTheLimitAndItsBindTxnFitsEtcd', () => {
    // The binder writes a Task twice in one txn (object and assignment): it must be admitted, and fit.
    const spec = { container: { image: 'i', env: envOf(4, 60_000, 'B') }, env: envOf(4, 60_000, 'A'), cmd: 'x' };
    const labels = Object.fromEntries(Array.from({ length: MAX_WORKLOAD_LABELS }, (_, i) => [`l${i}`, 'v']));
    const a = admit(app(spec, { labels }));
    if (!a.ok) throw new Error('app refused');
    const pad = MAX_OBJECT_BYTES - countedObjectBytes(a.object);
    const atLimit = admit(app({ ...spec, cmd: 'x'.repeat(1 + pad) }, { labels }));
    expect(atLimit.ok && countedObjectBytes(atLimit.object)).toBe(MAX_OBJECT_BYTES);
    const task = {
      apiVersion: 'shoal/v1', kind: 'Task',
      metadata: { name: 'web-0123456789abcdef', namespace: 'default', uid: '0'.repeat(36), generation: 1, creationTimestamp: new Date(0).toISOString(),
        labels: { ...labels, 'shoal.dev/app': 'web', 'shoal.dev/framework': 'shoal-apps' }, annotations: { 'shoal.dev/config-hash': '0123456789abcdef' },
        ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'App', name: 'web', uid: '0'.repeat(36), controller: true, version: 1 }] },
      spec: { ...spec, cmd: 'x'.repeat(1 + pad), role: '*', nodeName: 'node-1', resources: { cpus: 1, mem: 128 }, ports: [], placement: { strategy: 'SPREAD', offers: 100, feasible: 100, rank: { groupLoad: 0, appTasks: 0, free: 0.5 } } },
      status: { state: 'STAGING', stagedAt: new Date(0).toISOString(), hostPorts: [] },
    };
    const t = admit(task);
    if (!t.ok) throw new Error(JSON.stringify(t.causes));
    expect(countedObjectBytes(t.object)).toBeLessThanOrEqual(MAX_DERIVED_OBJECT_BYTES);
    expect(2 * Buffer.byteLength(JSON.stringify(t.object)) + 200).toBeLessThan(ETCD_MAX_REQUEST_BYTES);
  });
});

describe('regressions found by fuzzing admission', () => {
  it('answersAnApiVersionOrKindWhoseToStringIsNotAFunction', () => {
    // String({toString: 1}) throws a TypeError: the apiserver answered 500.
    const odd = JSON.parse('{"toString": 1, "valueOf": 2}');
    expect(refused(admit({ apiVersion: odd, kind: 'App' }))).toEqual([{ field: 'apiVersion', message: 'unsupported "{"toString":1,"valueOf":2}" (use "shoal/v1")' }]);
    expect(refused(admit({ apiVersion: 'shoal/v1', kind: odd }))[0].field).toBe('kind');
    expect(shown(odd)).toBe('{"toString":1,"valueOf":2}');
    expect(shown('x'.repeat(500))).toHaveLength(101);
  });

  it('refusesValuesJsonCannotCarry', () => {
    // A Date passed where an object belongs (type "object" accepts it), and got defaults filled into it.
    expect(refused(admit(app(new Date(0) as never)))).toEqual([{ field: 'spec', message: 'must be a JSON value, not a date (quote it to make it a string)' }]);
    expect(refused(admit(app({ cmd: 'x', instances: NaN })))).toEqual([{ field: 'spec.instances', message: 'must be a finite number, not NaN' }]);
    expect(structuralCause({ a: [1, Infinity] })).toEqual({ field: 'a[1]', message: 'must be a finite number, not Infinity' });
    expect(structuralCause({ a: new Map() })).toEqual({ field: 'a', message: 'must be a JSON value, not Map' });
    // Properties built as `cmd: spec.cmd` in code are absent, as once encoded.
    expect(admit(app({ cmd: 'x', container: undefined })).ok).toBe(true);
  });
});
