/**
 * Pure tests of the App task template: which spec fields make a new configuration (configHash),
 * which tasks are of the current configuration, ownership, the template the binder writes, and task names.
 */
import { APP_LABEL } from '../../pkg/api/apps';
import type { App, Task } from '../../pkg/api/types.generated';
import { admit, formatCauses } from '../../pkg/api/validation';
import {
  CONFIG_HASH_ANNOTATION, configHash, isCurrentConfig, keyOf, newTaskName, ownedBy, ownerKey, taskTemplate,
} from '../../pkg/controllers/apps/template';
import { seededRandom } from '../../pkg/scheduler/random';

/** A fully defaulted App (admitted like the apiserver does), with uid and generation set. */
function mkApp(spec: Record<string, unknown> = { cmd: 'httpd' }, meta: Record<string, unknown> = {}): App {
  const r = admit({ apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'web', namespace: 'default', ...meta }, spec });
  if (!r.ok) throw new Error(formatCauses(r.causes));
  const a = r.object as App;
  a.metadata.uid ??= 'uid-web-0001';
  a.metadata.generation ??= 1;
  return a;
}

const BASE = {
  cmd: 'python3 -m http.server $PORT0',
  env: { A: '1', B: '2' },
  resources: { cpus: 0.5, mem: 64, disk: 10 },
  ports: [{ name: 'http', hostPort: 0 }],
  constraints: [['hostname', 'UNIQUE']],
  healthChecks: [{ protocol: 'HTTP', path: '/healthz' }],
  readinessChecks: [],
};

/** Deep copy with every object's keys in reverse order. */
function reversedKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map(reversedKeys) as T;
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).reverse().map((k) => [k, reversedKeys((v as Record<string, unknown>)[k])])) as T;
  }
  return v;
}

function task(o: { annotations?: Record<string, string>; version?: number; uid?: string; kind?: string; labels?: Record<string, string>; namespace?: string; noRef?: boolean } = {}): Task {
  return {
    apiVersion: 'shoal/v1', kind: 'Task',
    metadata: {
      name: 'web-abc', ...(o.namespace !== undefined ? { namespace: o.namespace } : {}),
      ...(o.labels ? { labels: o.labels } : {}), ...(o.annotations ? { annotations: o.annotations } : {}),
      ...(o.noRef ? {} : { ownerReferences: [{ apiVersion: 'shoal/v1', kind: o.kind ?? 'App', name: 'web', uid: o.uid ?? 'uid-web-0001', controller: true, ...(o.version !== undefined ? { version: o.version } : {}) }] }),
    },
    spec: { role: '*', cmd: 'x', resources: { cpus: 1, mem: 1, disk: 0 }, ports: [], healthChecks: [], readinessChecks: [], taskKillGracePeriodSeconds: 3 },
    status: { state: 'RUNNING' },
  } as Task;
}

describe('configHash', () => {
  const base = mkApp(BASE);
  const h0 = configHash(base);

  it('isAShortHexDigestAndDeterministic', () => {
    expect(h0).toMatch(/^[0-9a-f]{16}$/);
    expect(configHash(mkApp(BASE))).toBe(h0);
  });

  it('isIndependentOfKeyOrder', () => {
    const a = mkApp(BASE);
    expect(configHash({ ...a, spec: reversedKeys(a.spec) })).toBe(h0);
    expect(configHash(mkApp({ ...BASE, env: { B: '2', A: '1' } }))).toBe(h0);
  });

  it('ignoresMetadataAndStatus', () => {
    expect(configHash(mkApp(BASE, { generation: 7, uid: 'other', labels: { team: 'x' } }))).toBe(h0);
    expect(configHash({ ...base, status: { observedGeneration: 3, instances: 9 } })).toBe(h0);
  });

  it.each<[string, Record<string, unknown>]>([
    ['instances', { instances: 7 }],
    ['upgradeStrategy', { upgradeStrategy: { minimumHealthCapacity: 0.5, maximumOverCapacity: 0 } }],
    ['backoff', { backoff: { seconds: 5, factor: 2, maxLaunchDelaySeconds: 60 } }],
    ['killSelection', { killSelection: 'OldestFirst' }],
    ['progressDeadlineSeconds', { progressDeadlineSeconds: 30 }],
    ['revisionHistoryLimit', { revisionHistoryLimit: 2 }],
    ['all tuning fields at once', { instances: 0, killSelection: 'OldestFirst', progressDeadlineSeconds: 1, revisionHistoryLimit: 0, backoff: { seconds: 0 } }],
  ])('isStableWhen %s changes', (_n, change) => {
    expect(configHash(mkApp({ ...BASE, ...change }))).toBe(h0);
  });

  it.each<[string, Record<string, unknown>]>([
    ['cmd', { cmd: 'python3 -m http.server $PORT1' }],
    ['container.image', { container: { image: 'nginx:1' } }],
    ['env value', { env: { A: '1', B: '3' } }],
    ['env key added', { env: { A: '1', B: '2', C: '' } }],
    ['env removed', { env: undefined }],
    ['resources.cpus', { resources: { cpus: 0.6, mem: 64, disk: 10 } }],
    ['resources.mem', { resources: { cpus: 0.5, mem: 65, disk: 10 } }],
    ['resources.disk', { resources: { cpus: 0.5, mem: 64, disk: 0 } }],
    ['ports hostPort', { ports: [{ name: 'http', hostPort: 8080 }] }],
    ['ports added', { ports: [{ name: 'http', hostPort: 0 }, { name: 'admin', hostPort: 0 }] }],
    ['ports protocol', { ports: [{ name: 'http', hostPort: 0, protocol: 'udp' }] }],
    ['constraints', { constraints: [['hostname', 'UNIQUE'], ['rack', 'GROUP_BY']] }],
    ['constraints removed', { constraints: [] }],
    ['healthChecks', { healthChecks: [{ protocol: 'HTTP', path: '/ping' }] }],
    ['readinessChecks', { readinessChecks: [{ name: 'r', protocol: 'HTTP', path: '/ready' }] }],
    ['taskKillGracePeriodSeconds', { taskKillGracePeriodSeconds: 30 }],
    ['role', { role: 'prod' }],
    ['restartedAt', { restartedAt: '2026-01-01T00:00:00Z' }],
  ])('changesWhen %s changes', (_n, change) => {
    const spec: Record<string, unknown> = { ...BASE, ...change };
    for (const k of Object.keys(spec)) if (spec[k] === undefined) delete spec[k];
    expect(configHash(mkApp(spec))).not.toBe(h0);
  });

  it('changesWithContainerImageOnly', () => {
    const a = mkApp({ container: { image: 'nginx:1' } });
    const b = mkApp({ container: { image: 'nginx:2' } });
    expect(configHash(a)).not.toBe(configHash(b));
    expect(configHash(a)).toBe(configHash(mkApp({ container: { image: 'nginx:1' } })));
  });

  it('changesWithEachRestart', () => {
    const hashes = ['2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z', undefined].map((r) => configHash(mkApp({ ...BASE, ...(r ? { restartedAt: r } : {}) })));
    expect(new Set(hashes).size).toBe(3);
  });
});

describe('isCurrentConfig', () => {
  const a = mkApp(BASE, { generation: 3 });
  const h = configHash(a);
  it.each<[string, Task, boolean]>([
    ['same hash annotation', task({ annotations: { [CONFIG_HASH_ANNOTATION]: h }, version: 1 }), true],
    ['same hash even from an older generation', task({ annotations: { [CONFIG_HASH_ANNOTATION]: h }, version: 2 }), true],
    ['other hash even at the current generation', task({ annotations: { [CONFIG_HASH_ANNOTATION]: '0123456789abcdef' }, version: 3 }), false],
    ['other hash from a newer generation', task({ annotations: { [CONFIG_HASH_ANNOTATION]: 'x' }, version: 4 }), false],
    ['no hash, current generation', task({ version: 3 }), true],
    ['no hash, newer generation', task({ version: 4 }), true],
    ['no hash, older generation', task({ version: 2 }), false],
    ['no hash, no version', task({}), true],
    ['no hash, no ownerReferences', task({ noRef: true }), true],
    ['unrelated annotations only, older generation', task({ annotations: { other: 'x' }, version: 1 }), false],
  ])('%s', (_n, t, want) => {
    expect(isCurrentConfig(t, a, h)).toBe(want);
  });

  it('fallsBackToGenerationOneWhenTheAppHasNone', () => {
    const b = mkApp(BASE);
    delete b.metadata.generation;
    expect(isCurrentConfig(task({ version: 1 }), b, h)).toBe(true);
    expect(isCurrentConfig(task({ version: 0 }), b, h)).toBe(false);
  });
});

describe('ownership and keys', () => {
  const a = mkApp(BASE);
  it.each<[string, Task, boolean]>([
    ['same uid', task({}), true],
    ['other uid (an earlier App of the same name)', task({ uid: 'uid-old' }), false],
    ['not an App owner', task({ kind: 'Job' }), false],
    ['no owner', task({ noRef: true }), false],
  ])('ownedBy: %s', (_n, t, want) => {
    expect(ownedBy(t, a)).toBe(want);
  });

  it.each<[string, Task, string | undefined]>([
    ['label in namespace', task({ labels: { [APP_LABEL]: 'web' }, namespace: 'prod' }), 'prod/web'],
    ['label without namespace', task({ labels: { [APP_LABEL]: 'api' } }), 'default/api'],
    ['no label', task({ labels: { other: 'web' } }), undefined],
    ['no labels at all', task({}), undefined],
    ['empty label', task({ labels: { [APP_LABEL]: '' } }), undefined],
  ])('ownerKey: %s', (_n, t, want) => {
    expect(ownerKey(t)).toBe(want);
  });

  it('keyOf', () => {
    expect(keyOf({ metadata: { name: 'web', namespace: 'ns' } })).toBe('ns/web');
    expect(keyOf({ metadata: { name: 'web' } })).toBe('default/web');
  });
});

describe('taskTemplate', () => {
  it('copiesLabelsHashOwnerAndSpecOfAProcessApp', () => {
    const a = mkApp(
      { ...BASE, ports: [{ name: 'http', hostPort: 0 }, { hostPort: 8080, protocol: 'udp' }], taskKillGracePeriodSeconds: 7 },
      { labels: { team: 'blue', [APP_LABEL]: 'spoofed' }, generation: 4, uid: 'u-1234' },
    );
    const tpl = taskTemplate(a);
    expect(tpl.metadata).toEqual({
      labels: { team: 'blue', [APP_LABEL]: 'web' },
      annotations: { [CONFIG_HASH_ANNOTATION]: configHash(a) },
      ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'App', name: 'web', uid: 'u-1234', controller: true, version: 4 }],
    });
    expect(tpl.spec).toEqual({
      role: '*',
      cmd: BASE.cmd,
      env: { A: '1', B: '2' },
      ports: [{ name: 'http', hostPort: 0, protocol: 'tcp' }, { hostPort: 8080, protocol: 'udp' }],
      healthChecks: a.spec.healthChecks,
      readinessChecks: [],
      taskKillGracePeriodSeconds: 7,
      unreachableStrategy: { inactiveAfterSeconds: 0, expungeAfterSeconds: 600 },
    });
    expect(tpl.spec).not.toHaveProperty('runtime');
    expect(tpl.spec).not.toHaveProperty('container');
    expect(tpl.spec).not.toHaveProperty('resources');
  });

  it('usesTheGivenHash', () => {
    expect(taskTemplate(mkApp(BASE), 'feedface').metadata?.annotations).toEqual({ [CONFIG_HASH_ANNOTATION]: 'feedface' });
  });

  it('runsContainersOnDocker', () => {
    const a = mkApp({ container: { image: 'nginx:1' }, ports: [{ name: 'web', containerPort: 80, hostPort: 0 }], role: 'prod' });
    const tpl = taskTemplate(a);
    expect(tpl.spec.runtime).toBe('docker');
    expect(tpl.spec.container).toEqual(a.spec.container);
    expect(tpl.spec.role).toBe('prod');
    expect(tpl.spec).not.toHaveProperty('cmd');
    expect(tpl.spec).not.toHaveProperty('env');
    expect(tpl.spec.ports).toEqual([{ name: 'web', containerPort: 80, hostPort: 0, protocol: 'tcp' }]);
  });

  it('labelsOnlyTheAppWhenTheAppHasNoLabels', () => {
    const tpl = taskTemplate(mkApp({ cmd: 'x' }, { name: 'solo' }));
    expect(tpl.metadata?.labels).toEqual({ [APP_LABEL]: 'solo' });
    expect(tpl.metadata?.ownerReferences?.[0]).toMatchObject({ name: 'solo', controller: true, version: 1 });
  });

  it('isOfTheCurrentConfigAndOwnedByItsApp', () => {
    const a = mkApp(BASE, { generation: 2 });
    const t = { ...task(), metadata: { name: 'web-x', namespace: 'default', ...taskTemplate(a).metadata } } as Task;
    expect(isCurrentConfig(t, a, configHash(a))).toBe(true);
    expect(ownedBy(t, a)).toBe(true);
    expect(ownerKey(t)).toBe('default/web');
    expect(isCurrentConfig(t, mkApp({ ...BASE, cmd: 'other' }, { generation: 3 }), configHash(mkApp({ ...BASE, cmd: 'other' })))).toBe(false);
  });
});

describe('newTaskName', () => {
  const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
  const long = 'a'.repeat(63);
  it.each<[string, string]>([
    ['short', 'web'],
    ['63 chars', long],
    ['63 chars with a dash at 54', `${'a'.repeat(53)}-${'b'.repeat(9)}`],
    ['63 chars with dashes at 50..54', `${'a'.repeat(50)}----${'c'.repeat(9)}`],
    ['54 chars', 'x'.repeat(54)],
    ['digits', '0123456789'],
  ])('isAValidDnsLabel: %s', (_n, app) => {
    const rnd = seededRandom(7);
    for (let i = 0; i < 200; i++) {
      const name = newTaskName(app, rnd);
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(DNS1123);
      expect(name).toMatch(/-[0-9a-z]{8}$/);
      expect(name.startsWith(app.slice(0, 54).replace(/-+$/, ''))).toBe(true);
    }
  });

  it('keepsShortNamesWhole', () => {
    expect(newTaskName('web', () => 0)).toBe('web-00000000');
    expect(newTaskName('web', () => 0.999999)).toBe('web-zzzzzzzz');
  });

  it('isDeterministicWithASeededRandom', () => {
    const seq = (app: string, seed: number, n: number): string[] => {
      const r = seededRandom(seed);
      return Array.from({ length: n }, () => newTaskName(app, r));
    };
    expect(seq('web', 42, 20)).toEqual(seq('web', 42, 20));
    expect(seq('web', 42, 20)).not.toEqual(seq('web', 43, 20));
    const names = seq(long, 1, 500);
    expect(new Set(names).size).toBe(500);
    expect(names.every((n) => n.length === 63)).toBe(true);
  });

  it('usesMathRandomByDefault', () => {
    expect(newTaskName('web')).toMatch(/^web-[0-9a-z]{8}$/);
  });
});
