/**
 * EtcdStore behaviour the memory double has no counterpart for: surviving an etcd restart,
 * an unreachable etcd, and the metrics hook.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { EventEmitter } from 'node:events';
import { Etcd3 } from 'etcd3';
import { startEtcd } from '../../pkg/devcluster/etcd';
import { EtcdStore, UnavailableError, WatchEvent } from '../../pkg/store';
import { freePort } from '../../pkg/util/net';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { eventually } from '../harness/wait';

describe('EtcdStore', () => {
  it('a watch survives an etcd restart and resumes without losing or repeating events', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-restart-'));
    let etcd = await startEtcd({ dataDir });
    const store = new EtcdStore({ endpoints: [etcd.endpoint], requestTimeoutMs: 2000 });
    try {
      const seen: WatchEvent[] = [];
      const errors: Error[] = [];
      const watch = await store.watch('/r/', { afterRevision: 0, onEvents: (e) => seen.push(...e), onError: (e) => errors.push(e) });
      await store.create('/r/a', '1');
      await eventually(() => expect(seen).toHaveLength(1));

      await etcd.stop();
      etcd = await startEtcd({ dataDir, clientPort: etcd.clientPort });
      // gRPC reconnects with backoff: the first writes after the restart may still fail.
      await eventually(async () => void (await store.create('/r/b', '2')));
      await store.create('/r/c', '3');

      await eventually(() => expect(seen.map((e) => e.key)).toEqual(['/r/a', '/r/b', '/r/c']));
      expect(errors).toEqual([]);
      await watch.cancel();
    } finally {
      await store.close();
      await etcd.stop();
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  }, 30_000);

  // etcd3 alone resumes from the header revision of the 'created' response, which skips history
  // not yet replayed. Simulating a drop at that moment needs etcd3 internals (watchManager,
  // the store's watcher); if they change, this test needs updating along with etcd-watch.ts.
  it('a stream dropped while history is still being replayed resumes from the last delivered event', async () => {
    const client = new Etcd3({ hosts: testEtcdEndpoint() });
    const store = new EtcdStore({ client });
    const p = uniquePrefix();
    try {
      const first = await store.create(`${p}0`, 'x');
      for (let i = 1; i < 5; i++) await store.create(`${p}${i}`, 'x');
      const keys: string[] = [];
      const watch = await store.watch(p, { afterRevision: first - 1, onEvents: (e) => keys.push(...e.map((ev) => ev.key)), onError: () => undefined });
      const watcher = (watch as unknown as { watcher: EventEmitter }).watcher;
      const manager = (client as unknown as { watchManager: { handleError(err: Error): void } }).watchManager;
      await new Promise<void>((resolve) =>
        watcher.once('connected', () => {
          manager.handleError(new Error('simulated stream drop'));
          resolve();
        }),
      );
      await eventually(() => expect(keys).toEqual([0, 1, 2, 3, 4].map((i) => `${p}${i}`)));
      await watch.cancel();
    } finally {
      await store.close();
      client.close();
    }
  });

  // etcd3's default circuit breaker counted missed deadlines: three in a row failed every call of
  // the process for the next 5 s, long after etcd answered again.
  it('calls that miss their deadline while etcd stalls do not fail the calls after it recovers', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-stall-'));
    const etcd = await startEtcd({ dataDir });
    const store = new EtcdStore({ endpoints: [etcd.endpoint], requestTimeoutMs: 300 });
    try {
      await store.create('/s/a', '1');
      process.kill(etcd.pid, 'SIGSTOP');
      try {
        // kill() only queues the signal: each of etcd's threads stops when it next runs.
        await eventually(() => expect(threadStates(etcd.pid).every((state) => state === 'T')).toBe(true), 5_000, 10);
        for (let i = 0; i < 4; i++) await expect(store.get('/s/a')).rejects.toThrow(UnavailableError);
      } finally {
        process.kill(etcd.pid, 'SIGCONT');
      }
      const started = Date.now();
      await eventually(async () => expect((await store.get('/s/a'))?.value).toBe('1'), 10_000, 20);
      expect(Date.now() - started).toBeLessThan(2_000);
      await store.create('/s/b', '2');
    } finally {
      await store.close();
      await etcd.stop();
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  }, 30_000);

  // etcd sends a lagging watcher up to 1,000 revisions of backlog in one response. With gRPC's
  // default 4 MiB receive limit that response ended the stream and etcd3 resumed at the same
  // revision, forever: the watch went silent (seen as a controller-manager informer that stopped
  // at 5,000 agents).
  it('a watch replays a backlog larger than gRPC\'s default 4 MiB message limit', async () => {
    const store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
    const p = uniquePrefix();
    try {
      const value = 'v'.repeat(2048);
      const first = (await store.txn([], [{ op: 'put', key: `${p}0`, value }]))!;
      const keys = 3000; // 6 MiB of history, 30 keys per revision
      for (let i = 1; i < keys; i += 30 * 20) {
        await Promise.all(Array.from({ length: 20 }, (_, b) => {
          const from = i + b * 30;
          const ops = Array.from({ length: Math.max(0, Math.min(30, keys - from)) }, (_, k) => ({ op: 'put' as const, key: `${p}${from + k}`, value }));
          return ops.length ? store.txn([], ops) : undefined;
        }));
      }
      let seen = 0;
      const errors: Error[] = [];
      const watch = await store.watch(p, { afterRevision: first - 1, onEvents: (e) => (seen += e.length), onError: (e) => errors.push(e) });
      await eventually(() => expect(seen).toBe(keys), 15_000);
      expect(errors).toEqual([]);
      await watch.cancel();
    } finally {
      await store.close();
    }
  }, 30_000);

  it('a response over the client\'s receive limit ends the watch with an error (its owner relists) instead of retrying it forever', async () => {
    const client = new Etcd3({ hosts: testEtcdEndpoint(), grpcOptions: { 'grpc.max_receive_message_length': 64 * 1024 } });
    const store = new EtcdStore({ client });
    const p = uniquePrefix();
    try {
      const value = 'v'.repeat(2048);
      const first = (await store.txn([], Array.from({ length: 50 }, (_, i) => ({ op: 'put' as const, key: `${p}${i}`, value }))))!;
      const errors: Error[] = [];
      const watch = await store.watch(p, { afterRevision: first - 1, onEvents: () => undefined, onError: (e) => errors.push(e) });
      await eventually(() => expect(errors).toHaveLength(1));
      expect(errors[0]).toBeInstanceOf(UnavailableError);
      expect(errors[0].message).toMatch(/larger than max/);
      await watch.cancel();
      expect((client as unknown as { watchManager: { watchers: unknown[] } }).watchManager.watchers).toHaveLength(0);
    } finally {
      await store.close();
      client.close();
    }
  });

  it('maxWritesInFlight bounds the writes a client has in etcd at once; reads are not held', async () => {
    const store = new EtcdStore({ endpoints: [testEtcdEndpoint()], maxWritesInFlight: 2 });
    const p = uniquePrefix();
    const kv = (store as unknown as { client: Etcd3 }).client.kv;
    const realTxn = kv.txn.bind(kv);
    let active = 0;
    let peak = 0;
    kv.txn = async (...args: Parameters<typeof kv.txn>) => {
      peak = Math.max(peak, ++active);
      try {
        return await realTxn(...args);
      } finally {
        active--;
      }
    };
    try {
      await Promise.all(Array.from({ length: 12 }, (_, i) => store.create(`${p}${i}`, String(i))));
      expect(peak).toBe(2);
      expect((await store.list(p)).items).toHaveLength(12);
    } finally {
      await store.close();
    }
  });

  it('calls to an unreachable etcd fail with UnavailableError', async () => {
    const store = new EtcdStore({ endpoints: [`http://127.0.0.1:${await freePort()}`], requestTimeoutMs: 1000 });
    try {
      await expect(store.get('/x')).rejects.toBeInstanceOf(UnavailableError);
      await expect(store.create('/x', 'v')).rejects.toBeInstanceOf(UnavailableError);
    } finally {
      await store.close();
    }
  });

  it('reports the duration of every etcd call to the metrics hook, by operation', async () => {
    const observed: Array<[string, number]> = [];
    const store = new EtcdStore({ endpoints: [testEtcdEndpoint()], metrics: { observe: (op, s) => observed.push([op, s]) } });
    const p = uniquePrefix();
    try {
      const rev = await store.create(`${p}a`, 'v', { ttlSeconds: 60 });
      await store.get(`${p}a`);
      await store.list(p);
      await store.update(`${p}a`, 'v2', rev).then((r) => store.delete(`${p}a`, r));
      await store.txn([], [{ op: 'put', key: `${p}b`, value: 'v' }]);
      await expect(store.update(`${p}b`, 'v', 1)).rejects.toThrow(); // failed calls are observed too
    } finally {
      await store.close();
    }
    expect(observed.map(([op]) => op)).toEqual(['grantLease', 'create', 'get', 'list', 'update', 'delete', 'txn', 'update']);
    observed.forEach(([, seconds]) => expect(seconds).toBeGreaterThanOrEqual(0));
  });
});

/** The state letter (R, S, T, ...) of each thread of a process, from /proc. */
function threadStates(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  });
}
