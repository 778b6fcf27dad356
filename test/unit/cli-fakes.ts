/** Test doubles for the CLI: an in-memory ResourceClient and a CliIO that captures output. */
import type { KindInfo } from '../../pkg/api/kinds';
import type { ShoalObject } from '../../pkg/api/validation';
import type { ListOptions, ObjectList, ResourceClient, WatchEvent, WriteOptions } from '../../pkg/cli/client';
import { ApiError } from '../../pkg/cli/errors';
import type { CliIO } from '../../pkg/cli/io';

/** One call that reached the fake server. */
export interface Call {
  verb: 'get' | 'list' | 'create' | 'replace' | 'patch' | 'delete';
  key: string;
  dryRun?: boolean;
  body?: unknown;
}

/** An apiserver in a Map: resourceVersions count up, PUT checks them, dry runs write nothing. */
export class FakeClient implements ResourceClient {
  readonly objects = new Map<string, ShoalObject>();
  readonly calls: Call[] = [];
  rev = 100;
  /** Called before every write; may throw to simulate a server answer (e.g. 409 once). */
  beforeWrite?: (call: Call) => void;

  static key(kind: KindInfo, namespace: string | undefined, name: string): string {
    return `${kind.plural}/${namespace ?? ''}/${name}`;
  }

  /** Stores an object as if it had been created earlier. */
  seed(kind: KindInfo, obj: ShoalObject): void {
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.rev);
    stored.metadata.uid ??= `uid-${this.rev}`;
    this.objects.set(FakeClient.key(kind, obj.metadata.namespace, obj.metadata.name), stored);
  }

  /** Writes that were not dry runs. */
  writes(): Call[] {
    return this.calls.filter((c) => c.verb !== 'get' && c.verb !== 'list' && !c.dryRun);
  }

  async get(kind: KindInfo, namespace: string | undefined, name: string): Promise<ShoalObject> {
    const key = FakeClient.key(kind, namespace, name);
    this.calls.push({ verb: 'get', key });
    const obj = this.objects.get(key);
    if (!obj) throw new ApiError(404, 'NotFound', `${kind.plural} "${name}" not found`);
    return structuredClone(obj);
  }

  async list(kind: KindInfo, namespace: string | undefined, _opts?: ListOptions): Promise<ObjectList> {
    this.calls.push({ verb: 'list', key: `${kind.plural}/${namespace ?? ''}` });
    const prefix = namespace === undefined ? `${kind.plural}/` : `${kind.plural}/${namespace}/`;
    const items = [...this.objects].filter(([k]) => k.startsWith(prefix)).map(([, o]) => structuredClone(o));
    return { kind: `${kind.kind}List`, apiVersion: 'shoal/v1', metadata: { resourceVersion: String(this.rev) }, items };
  }

  async create(kind: KindInfo, namespace: string | undefined, obj: ShoalObject, opts: WriteOptions = {}): Promise<ShoalObject> {
    const key = FakeClient.key(kind, namespace, obj.metadata.name);
    this.write({ verb: 'create', key, dryRun: opts.dryRun, body: obj });
    if (this.objects.has(key)) throw new ApiError(409, 'AlreadyExists', `${kind.plural} "${obj.metadata.name}" already exists`);
    if (!opts.dryRun) this.seed(kind, obj);
    return obj;
  }

  async replace(kind: KindInfo, namespace: string | undefined, name: string, obj: ShoalObject, opts: WriteOptions = {}): Promise<ShoalObject> {
    const key = FakeClient.key(kind, namespace, name);
    this.write({ verb: 'replace', key, dryRun: opts.dryRun, body: obj });
    const current = this.objects.get(key);
    if (!current) throw new ApiError(404, 'NotFound', `${kind.plural} "${name}" not found`);
    if (obj.metadata.resourceVersion !== current.metadata.resourceVersion) throw new ApiError(409, 'Conflict', 'stale resourceVersion');
    if (!opts.dryRun) this.seed(kind, obj);
    return obj;
  }

  async patch(kind: KindInfo, namespace: string | undefined, name: string, patch: object): Promise<ShoalObject> {
    const key = FakeClient.key(kind, namespace, name);
    this.write({ verb: 'patch', key, body: patch });
    const current = this.objects.get(key);
    if (!current) throw new ApiError(404, 'NotFound', `${kind.plural} "${name}" not found`);
    const merged = { ...current, spec: { ...(current as { spec?: object }).spec, ...(patch as { spec?: object }).spec } } as ShoalObject;
    this.seed(kind, merged);
    return merged;
  }

  async delete(kind: KindInfo, namespace: string | undefined, name: string): Promise<ShoalObject> {
    const key = FakeClient.key(kind, namespace, name);
    this.write({ verb: 'delete', key });
    const obj = this.objects.get(key);
    if (!obj) throw new ApiError(404, 'NotFound', `${kind.plural} "${name}" not found`);
    this.objects.delete(key);
    return obj;
  }

  async *watch(): AsyncGenerator<WatchEvent> {
    // Not used by these tests.
  }

  private write(call: Call): void {
    this.calls.push(call);
    this.beforeWrite?.(call);
  }
}

/** A CliIO whose output is captured and whose fetch, env and clock are given. */
export function fakeIO(overrides: Partial<CliIO> = {}): CliIO & { out: string[]; err: string[]; interrupt(): void } {
  const out: string[] = [];
  const err: string[] = [];
  const handlers = new Set<() => void>();
  return {
    out,
    err,
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    readStdin: async () => '',
    env: {},
    homeDir: '/nonexistent-home',
    fetch: async () => {
      throw new Error('no fetch in this test');
    },
    now: () => Date.parse('2024-05-01T12:00:00Z'),
    onInterrupt(handler) {
      handlers.add(handler);
      return () => void handlers.delete(handler);
    },
    interrupt: () => handlers.forEach((h) => h()),
    ...overrides,
  };
}
