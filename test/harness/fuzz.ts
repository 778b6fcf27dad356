/**
 * fast-check arbitraries shared by the admission and apiserver fuzz tests: hostile values (huge
 * strings, deep nesting, `__proto__` keys, NaN and Infinity as YAML gives them, dates), mutations
 * of valid manifests, and valid objects of every kind to mutate.
 */
import fc from 'fast-check';

/**
 * Run parameters: a fixed seed so `make test` is repeatable (fast-check prints the seed and the
 * shrunk counterexample on failure); SHOAL_FUZZ_SEED and SHOAL_FUZZ_RUNS explore further.
 */
export function FUZZ(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env.SHOAL_FUZZ_SEED !== undefined ? Number(process.env.SHOAL_FUZZ_SEED) : 20261203;
  const runs = process.env.SHOAL_FUZZ_RUNS !== undefined ? Number(process.env.SHOAL_FUZZ_RUNS) : numRuns;
  return { seed, numRuns: runs, endOnFailure: false };
}

/** Sets an own property, `__proto__` included (plain assignment would set the prototype). */
export function defineOwn(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** `depth` levels of arrays or objects around a leaf. */
export function nested(depth: number, asObject: boolean): unknown {
  let v: unknown = 'leaf';
  for (let i = 0; i < depth; i++) v = asObject ? { a: v } : [v];
  return v;
}

export const hostileKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', '', 'a', 'name', 'spec', 'metadata', 'env', 'A_B', '0', 'x/y', 'shoal.dev/app', 'é', '\u0000', 'toString', 'hasOwnProperty'),
  fc.string({ maxLength: 12 }),
  fc.integer({ min: 60, max: 300 }).map((n) => 'k'.repeat(n)),
);

const bigString = fc.tuple(fc.integer({ min: 0, max: 70_000 }), fc.constantFrom('x', 'é', '😀', ' ', '\n')).map(([n, c]) => c.repeat(n));
const specialNumber = fc.constantFrom(NaN, Infinity, -Infinity, -0, 1e308, -1e308, 2 ** 53, 2 ** 31, 0.1, 1.5, -1, 0, 65535, 65536, 100001);

/** Any value a JSON or YAML parser could hand to admission, biased towards what breaks code. */
export const fuzzValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 4 },
  { arbitrary: specialNumber, weight: 2 },
  { arbitrary: bigString, weight: 2 },
  { arbitrary: fc.tuple(fc.integer({ min: 1, max: 200 }), fc.boolean()).map(([d, o]) => nested(d, o)), weight: 1 },
  { arbitrary: fc.integer({ min: 0, max: 2000 }).map((n) => Array(n).fill('a')), weight: 1 },
  { arbitrary: fc.integer({ min: 0, max: 2000 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`K${i}`, 'v']))), weight: 1 },
  { arbitrary: fc.tuple(hostileKey, fc.jsonValue({ maxDepth: 2 })).map(([k, v]) => { const o = {}; defineOwn(o, k, v); return o; }), weight: 1 },
  { arbitrary: fc.date({ noInvalidDate: true }), weight: 1 },
);

type Seg = string | number;

/** One change to a document at the path picked by `at` (an index into its paths, modulo). */
export interface Mutation {
  op: 'set' | 'delete' | 'addKey' | 'repeat' | 'nest';
  at: number;
  key: string;
  value: unknown;
  n: number;
}

export function mutationsOf(max: number): fc.Arbitrary<Mutation[]> {
  const m = fc.record({
    op: fc.constantFrom('set', 'delete', 'addKey', 'repeat', 'nest') as fc.Arbitrary<Mutation['op']>,
    at: fc.nat(),
    key: hostileKey,
    value: fuzzValue,
    n: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 60, max: 3000 })),
  });
  return fc.array(m, { minLength: 1, maxLength: max });
}

function pathsOf(v: unknown): Seg[][] {
  const out: Seg[][] = [];
  const walk = (x: unknown, p: Seg[]) => {
    out.push(p);
    if (x && typeof x === 'object' && !(x instanceof Date)) {
      for (const [k, c] of Object.entries(x)) walk(c, [...p, Array.isArray(x) ? Number(k) : k]);
    }
  };
  walk(v, []);
  return out;
}

function parentOf(root: unknown, path: Seg[]): Record<string, unknown> | unknown[] {
  let x = root as Record<string, unknown>;
  for (const seg of path.slice(0, -1)) x = x[seg as string] as Record<string, unknown>;
  return x;
}

function replaceAt(root: unknown, path: Seg[], value: unknown): unknown {
  if (!path.length) return value;
  const parent = parentOf(root, path);
  defineOwn(parent, String(path[path.length - 1]), value);
  return root;
}

/** `v` grown to m.n characters, items or keys; copies of big items are replaced (a body is 1 MiB at most). */
function grown(v: unknown, m: Mutation): unknown {
  if (typeof v === 'string') return (v || 'x').repeat(Math.ceil(m.n / Math.max(1, v.length)) || 0).slice(0, m.n);
  if (Array.isArray(v)) {
    const item = v[0] ?? m.value;
    const small = (JSON.stringify(item) ?? '').length <= 1000;
    return Array.from({ length: m.n }, () => (small ? structuredClone(item) : 'a'));
  }
  if (v && typeof v === 'object') {
    const o = { ...(v as object) };
    for (let i = 0; i < m.n; i++) defineOwn(o, `${m.key.slice(0, 20)}${i}`, `v${i}`);
    return o;
  }
  return m.value;
}

function applyOne(doc: unknown, m: Mutation): unknown {
  const paths = pathsOf(doc);
  const path = paths[m.at % paths.length];
  const current = path.reduce<unknown>((x, seg) => (x as Record<string, unknown>)[seg as string], doc);
  switch (m.op) {
    case 'set':
      return replaceAt(doc, path, m.value);
    case 'delete': {
      if (!path.length) return undefined;
      const parent = parentOf(doc, path);
      if (Array.isArray(parent)) parent.splice(Number(path[path.length - 1]), 1);
      else delete parent[path[path.length - 1] as string];
      return doc;
    }
    case 'addKey':
      if (Array.isArray(current)) return replaceAt(doc, path, [...current, m.value]);
      if (current && typeof current === 'object' && !(current instanceof Date)) {
        defineOwn(current, m.key, m.value);
        return doc;
      }
      return replaceAt(doc, path, (() => { const o = {}; defineOwn(o, m.key, m.value); return o; })());
    case 'repeat':
      return replaceAt(doc, path, grown(current, m));
    case 'nest':
      return replaceAt(doc, path, (function wrap(v: unknown, d: number): unknown { return d <= 0 ? v : m.n % 2 ? [wrap(v, d - 1)] : { a: wrap(v, d - 1) }; })(current, Math.min(m.n, 100)));
  }
}

/** A deep copy of `seed` with the mutations applied in order. */
export function applyMutations(seed: unknown, ms: Mutation[]): unknown {
  return ms.reduce((doc, m) => applyOne(doc, m), structuredClone(seed));
}

/** Valid objects of every kind, each using most of its schema. */
export function seedObjects(): unknown[] {
  const meta = (name: string, extra: Record<string, unknown> = {}) => ({ name, namespace: 'default', labels: { tier: 'front', 'shoal.dev/app': name }, annotations: { note: 'x' }, ...extra });
  const probe = { protocol: 'HTTP', portName: 'http', path: '/health', gracePeriodSeconds: 10, intervalSeconds: 5, timeoutSeconds: 2, maxConsecutiveFailures: 3, delaySeconds: 1 };
  const workload = {
    cmd: 'echo $PORT0',
    container: { image: 'shoal/busybox:latest', command: ['/bin/sh', '-c'], args: ['httpd'], env: { A: '1' }, user: '1000' },
    env: { HOME: '/tmp', EMPTY: '' },
    resources: { cpus: 0.5, mem: 64, disk: 10 },
    constraints: [['hostname', 'UNIQUE'], ['rack', 'GROUP_BY', '2'], ['zone', 'LIKE', 'eu-.*']],
  };
  const app = {
    apiVersion: 'shoal/v1', kind: 'App', metadata: meta('web', { finalizers: ['shoal.dev/app-tasks'] }),
    spec: {
      ...workload, instances: 3, role: 'prod',
      ports: [{ name: 'http', containerPort: 8080 }, { hostPort: 0, protocol: 'udp' }],
      healthChecks: [probe, { protocol: 'COMMAND', command: { value: 'true' } }],
      readinessChecks: [{ name: 'ready', portName: 'http', path: '/ready', httpStatusCodesForReady: [200, 204] }],
      upgradeStrategy: { minimumHealthCapacity: 0.5, maximumOverCapacity: 0.2 },
      backoff: { seconds: 2, factor: 2, maxLaunchDelaySeconds: 60 },
      unreachableStrategy: { inactiveAfterSeconds: 5, expungeAfterSeconds: 60 },
      killSelection: 'OldestFirst', taskKillGracePeriodSeconds: 5, restartedAt: '2026-01-01T00:00:00Z',
    },
  };
  const jobSpec = { ...workload, schedule: '*/15 * * * *', timezone: 'Europe/Berlin', concurrencyPolicy: 'Replace', completions: 2, parallelism: 2, gang: true, retries: 1, parents: ['a', 'b'], suspend: false };
  const job = { apiVersion: 'shoal/v1', kind: 'Job', metadata: meta('nightly'), spec: jobSpec };
  const owner = { apiVersion: 'shoal/v1', kind: 'Job', name: 'nightly', uid: 'u-1', controller: true, version: 1 };
  const run = {
    apiVersion: 'shoal/v1', kind: 'JobRun', metadata: meta('nightly-1', { ownerReferences: [owner] }),
    spec: { job: 'nightly', trigger: 'Parents', scheduledTime: '2026-01-01T00:00:00Z', parentRuns: ['a-1'], template: jobSpec },
    status: { phase: 'Running', attempts: 1 },
  };
  const task = {
    apiVersion: 'shoal/v1', kind: 'Task', metadata: meta('web-abc'),
    spec: {
      nodeName: 'n1', role: 'prod', runtime: 'docker', cmd: 'x', container: workload.container, env: { A: 'b' }, resources: { cpus: 1, mem: 32 },
      ports: [{ name: 'http', containerPort: 8080, hostPort: 31000 }], healthChecks: [probe], taskKillGracePeriodSeconds: 3,
      placement: { strategy: 'SPREAD', offers: 3, feasible: 2, rank: { groupLoad: 0, appTasks: 1, free: 0.5 } },
    },
    status: { state: 'RUNNING', healthy: true, hostPorts: [31000], startedAt: '2026-01-01T00:00:00Z' },
  };
  const node = {
    apiVersion: 'shoal/v1', kind: 'Node', metadata: { name: 'n1', labels: { zone: 'a' } }, spec: { unschedulable: true },
    status: { capacity: { cpus: 4, mem: 4096, disk: 0, ports: [[31000, 32000]] }, attributes: { rack: 'r1' }, address: '127.0.0.1:5051', runtimes: ['process'] },
  };
  const event = {
    apiVersion: 'shoal/v1', kind: 'Event', metadata: { name: 'web-1', namespace: 'default' },
    involvedObject: { kind: 'App', name: 'web', namespace: 'default' }, type: 'Warning', reason: 'Failed', message: 'x', count: 2,
  };
  const framework = {
    apiVersion: 'shoal/v1', kind: 'Framework', metadata: { name: 'fw-1' },
    spec: { name: 'batch', user: 'root', role: '*', namespace: 'default', failoverTimeoutSeconds: 10, capabilities: ['MULTI_ROLE'] },
  };
  return [app, job, run, task, node, event, framework];
}
