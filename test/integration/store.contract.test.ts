/**
 * The Store contract: one suite, run against EtcdStore (the real etcd started by the jest
 * global setup) and MemoryStore, so the double cannot drift from etcd's behaviour.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
import { startEtcd } from '../../pkg/devcluster/etcd';
import {
  AlreadyExistsError,
  CompactedError,
  ConflictError,
  EtcdStore,
  LeaseLostError,
  MemoryStore,
  NotFoundError,
  Store,
  StoreError,
  TxnOp,
  UnavailableError,
  Watch,
  WatchEvent,
} from '../../pkg/store';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { eventually } from '../harness/wait';

/** A store on a backend of its own, which a test may compact (etcd compaction is global). */
interface IsolatedStore {
  store: Store;
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}

interface Backend {
  name: string;
  /** A store on the shared backend; tests keep to their own prefix. */
  open(): Store;
  openIsolated(): Promise<IsolatedStore>;
}

const etcdBackend: Backend = {
  name: 'EtcdStore',
  open: () => new EtcdStore({ endpoints: [testEtcdEndpoint()] }),
  async openIsolated() {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-contract-etcd-'));
    const etcd = await startEtcd({ dataDir });
    const client = new Etcd3({ hosts: etcd.endpoint });
    const store = new EtcdStore({ client });
    return {
      store,
      compact: async (revision) => void (await client.kv.compact({ revision, physical: true })),
      async close() {
        await store.close();
        client.close();
        await etcd.stop();
        await fs.rm(dataDir, { recursive: true, force: true });
      },
    };
  },
};

const memoryBackend: Backend = {
  name: 'MemoryStore',
  open: () => new MemoryStore(),
  async openIsolated() {
    const store = new MemoryStore();
    return { store, compact: async (revision) => store.compact(revision), close: () => store.close() };
  },
};

/** A watch that records what it is given. */
interface Recorder {
  watch: Watch;
  batches: WatchEvent[][];
  errors: Error[];
  events(): WatchEvent[];
}

async function record(store: Store, prefix: string, afterRevision: number, prevValue = true): Promise<Recorder> {
  const batches: WatchEvent[][] = [];
  const errors: Error[] = [];
  const watch = await store.watch(prefix, {
    afterRevision,
    prevValue,
    onEvents: (events) => batches.push(events),
    onError: (err) => errors.push(err),
  });
  return { watch, batches, errors, events: () => batches.flat() };
}

/** The parts of an event a test compares. */
const brief = (e: WatchEvent) => ({ type: e.type, key: e.key, value: e.value, prevValue: e.prevValue });

describe.each([etcdBackend, memoryBackend])('Store contract: $name', (backend) => {
  let store: Store;
  let p: string;
  const watches: Watch[] = [];

  beforeEach(() => {
    store = backend.open();
    p = uniquePrefix();
  });

  afterEach(async () => {
    await Promise.all(watches.splice(0).map((w) => w.cancel()));
    await store.close();
  });

  async function recordWatch(prefix: string, afterRevision: number, prevValue = true): Promise<Recorder> {
    const recorder = await record(store, prefix, afterRevision, prevValue);
    watches.push(recorder.watch);
    return recorder;
  }

  describe('create and get', () => {
    it('create then get returns the value, with create and mod revision equal to the returned revision', async () => {
      const rev = await store.create(`${p}a`, '{"x":1}');
      expect(await store.get(`${p}a`)).toEqual({ key: `${p}a`, value: '{"x":1}', modRevision: rev, createRevision: rev });
    });

    it('create of an existing key throws AlreadyExistsError and leaves the value alone', async () => {
      await store.create(`${p}a`, 'first');
      await expect(store.create(`${p}a`, 'second')).rejects.toBeInstanceOf(AlreadyExistsError);
      expect((await store.get(`${p}a`))?.value).toBe('first');
    });

    it('get of a missing key returns undefined', async () => {
      expect(await store.get(`${p}missing`)).toBeUndefined();
    });

    it('getMany returns one entry per key in order, undefined where absent, and [] for no keys', async () => {
      const ra = await store.create(`${p}a`, 'A');
      const rb = await store.create(`${p}b`, 'B');
      expect(await store.getMany([`${p}b`, `${p}missing`, `${p}a`])).toEqual([
        { key: `${p}b`, value: 'B', modRevision: rb, createRevision: rb },
        undefined,
        { key: `${p}a`, value: 'A', modRevision: ra, createRevision: ra },
      ]);
      expect(await store.getMany([])).toEqual([]);
    });

    it('countNewer counts the keys under a prefix written after a revision', async () => {
      const first = await store.create(`${p}a`, '1');
      await store.create(`${p}b`, '1');
      const rev = await store.update(`${p}a`, '2', first);
      await store.create(`${p.replace(/\/$/, '-other/')}x`, 'x'); // a sibling prefix
      expect(await store.countNewer(p, 0)).toBe(2);
      expect(await store.countNewer(p, first)).toBe(2); // b, and a's update
      expect(await store.countNewer(p, rev)).toBe(0);
    });

    it('getMany rejects more than 128 keys and empty keys with a TypeError', async () => {
      await expect(store.getMany(Array.from({ length: 129 }, (_, i) => `${p}${i}`))).rejects.toBeInstanceOf(TypeError);
      await expect(store.getMany([''])).rejects.toBeInstanceOf(TypeError);
    });
  });

  describe('update', () => {
    it('update with the current mod revision replaces the value and keeps the create revision', async () => {
      const created = await store.create(`${p}a`, 'v1');
      const updated = await store.update(`${p}a`, 'v2', created);
      expect(updated).toBeGreaterThan(created);
      expect(await store.get(`${p}a`)).toEqual({ key: `${p}a`, value: 'v2', modRevision: updated, createRevision: created });
    });

    it('update with a stale mod revision throws ConflictError carrying the actual revision', async () => {
      const created = await store.create(`${p}a`, 'v1');
      const updated = await store.update(`${p}a`, 'v2', created);
      const err = await store.update(`${p}a`, 'v3', created).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConflictError);
      expect(err).toMatchObject({ key: `${p}a`, expected: created, actual: updated });
      expect((await store.get(`${p}a`))?.value).toBe('v2');
    });

    it('update of a missing key throws NotFoundError', async () => {
      await expect(store.update(`${p}missing`, 'v', 5)).rejects.toBeInstanceOf(NotFoundError);
      expect(await store.get(`${p}missing`)).toBeUndefined();
    });
  });

  describe('delete', () => {
    it('delete without a precondition removes the key and returns its last value', async () => {
      const rev = await store.create(`${p}a`, 'v1');
      expect(await store.delete(`${p}a`)).toEqual({ key: `${p}a`, value: 'v1', modRevision: rev, createRevision: rev });
      expect(await store.get(`${p}a`)).toBeUndefined();
    });

    it('delete with the current mod revision removes the key', async () => {
      const rev = await store.create(`${p}a`, 'v1');
      expect((await store.delete(`${p}a`, rev)).value).toBe('v1');
      expect(await store.get(`${p}a`)).toBeUndefined();
    });

    it('delete with a stale mod revision throws ConflictError and keeps the key', async () => {
      const created = await store.create(`${p}a`, 'v1');
      const updated = await store.update(`${p}a`, 'v2', created);
      const err = await store.delete(`${p}a`, created).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConflictError);
      expect(err).toMatchObject({ expected: created, actual: updated });
      expect((await store.get(`${p}a`))?.value).toBe('v2');
    });

    it('delete of a missing key throws NotFoundError, with or without a precondition', async () => {
      await expect(store.delete(`${p}missing`)).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.delete(`${p}missing`, 3)).rejects.toBeInstanceOf(NotFoundError);
    });
  });

  describe('list', () => {
    it('list returns only keys under the prefix, sorted by key, with a revision covering every write', async () => {
      for (const name of ['c', 'a', 'b/nested', 'b']) await store.create(`${p}${name}`, name);
      const last = await store.create(`${p.slice(0, -1)}-sibling/x`, 'outside the prefix');
      const listed = await store.list(p);
      expect(listed.items.map((kv) => kv.key)).toEqual(['a', 'b', 'b/nested', 'c'].map((n) => `${p}${n}`));
      expect(listed.items.map((kv) => kv.value)).toEqual(['a', 'b', 'b/nested', 'c']);
      expect(listed.revision).toBeGreaterThanOrEqual(last);
    });

    it('list of an empty prefix range returns no items and the current revision', async () => {
      const rev = await store.create(`${p}other/a`, 'v');
      const listed = await store.list(`${p}none/`);
      expect(listed.items).toEqual([]);
      expect(listed.revision).toBeGreaterThanOrEqual(rev);
    });

    it('a watch from the list revision sees only the writes made after the list', async () => {
      await store.create(`${p}before`, 'old');
      const { revision } = await store.list(p);
      const rec = await recordWatch(p, revision);
      await store.create(`${p}after`, 'new');
      await eventually(() => expect(rec.events().map(brief)).toEqual([{ type: 'put', key: `${p}after`, value: 'new', prevValue: undefined }]));
    });
  });

  describe('watch', () => {
    it('delivers puts and deletes in order, with prevValue and revisions', async () => {
      const rec = await recordWatch(p, 0);
      const created = await store.create(`${p}a`, 'v1');
      const updated = await store.update(`${p}a`, 'v2', created);
      await store.delete(`${p}a`);
      await eventually(() => expect(rec.events()).toHaveLength(3));
      expect(rec.events().map(brief)).toEqual([
        { type: 'put', key: `${p}a`, value: 'v1', prevValue: undefined },
        { type: 'put', key: `${p}a`, value: 'v2', prevValue: 'v1' },
        { type: 'delete', key: `${p}a`, value: '', prevValue: 'v2' },
      ]);
      const [first, second] = rec.events();
      expect(first).toMatchObject({ modRevision: created, createRevision: created });
      expect(second).toMatchObject({ modRevision: updated, createRevision: created });
      expect(rec.errors).toEqual([]);
    });

    it('without prevValue asked for, events carry no previous value', async () => {
      const rec = await recordWatch(p, 0, false);
      const created = await store.create(`${p}a`, 'v1');
      await store.update(`${p}a`, 'v2', created);
      await store.delete(`${p}a`);
      await eventually(() => expect(rec.events()).toHaveLength(3));
      expect(rec.events().map((e) => 'prevValue' in e)).toEqual([false, false, false]);
      expect(rec.events().map((e) => e.type)).toEqual(['put', 'put', 'delete']);
    });

    it('a watch from an older revision replays the history after it', async () => {
      const first = await store.create(`${p}a`, 'v1');
      await store.update(`${p}a`, 'v2', first);
      await store.create(`${p}b`, 'b1');
      const rec = await recordWatch(p, first);
      await eventually(() => expect(rec.events()).toHaveLength(2));
      expect(rec.events().map(brief)).toEqual([
        { type: 'put', key: `${p}a`, value: 'v2', prevValue: 'v1' },
        { type: 'put', key: `${p}b`, value: 'b1', prevValue: undefined },
      ]);
    });

    it('a watch from now (afterRevision 0) sees writes made once watch() resolved, not earlier ones', async () => {
      await store.create(`${p}earlier`, 'x');
      const rec = await recordWatch(p, 0);
      await store.create(`${p}later`, 'y');
      await eventually(() => expect(rec.events().map((e) => e.key)).toEqual([`${p}later`]));
    });

    it('does not deliver events synchronously inside the write call', async () => {
      const rec = await recordWatch(p, 0);
      const write = store.create(`${p}a`, 'v');
      expect(rec.events()).toEqual([]);
      await write;
      await eventually(() => expect(rec.events()).toHaveLength(1));
    });

    it('a canceled watch gets no more events, and cancel is idempotent', async () => {
      const rec = await recordWatch(p, 0);
      await store.create(`${p}a`, 'v');
      await eventually(() => expect(rec.events()).toHaveLength(1));
      await rec.watch.cancel();
      await rec.watch.cancel();
      await store.create(`${p}b`, 'v');
      const marker = await recordWatch(p, 0); // a live watch, to know when the write has been fanned out
      await store.create(`${p}c`, 'v');
      await eventually(() => expect(marker.events()).toHaveLength(1));
      expect(rec.events().map((e) => e.key)).toEqual([`${p}a`]);
    });
  });

  describe('txn', () => {
    it('applies every op in one revision when all compares hold', async () => {
      const a = await store.create(`${p}a`, 'a1');
      await store.create(`${p}gone`, 'x');
      const rec = await recordWatch(p, await store.revision());
      const rev = await store.txn(
        [{ key: `${p}a`, modRevision: a }, { key: `${p}new`, modRevision: 0 }],
        [
          { op: 'put', key: `${p}a`, value: 'a2' },
          { op: 'put', key: `${p}new`, value: 'n1' },
          { op: 'delete', key: `${p}gone` },
        ],
      );
      expect(rev).toBeGreaterThan(a);
      expect(await store.get(`${p}a`)).toMatchObject({ value: 'a2', modRevision: rev });
      expect(await store.get(`${p}new`)).toMatchObject({ value: 'n1', modRevision: rev, createRevision: rev });
      expect(await store.get(`${p}gone`)).toBeUndefined();
      await eventually(() => expect(rec.batches).toHaveLength(1));
      expect(rec.batches[0].map((e) => [e.type, e.key, e.modRevision])).toEqual([
        ['put', `${p}a`, rev],
        ['put', `${p}new`, rev],
        ['delete', `${p}gone`, rev],
      ]);
    });

    it('writes nothing and returns undefined when a compare fails', async () => {
      const a = await store.create(`${p}a`, 'a1');
      await store.update(`${p}a`, 'a2', a);
      const rev = await store.txn(
        [{ key: `${p}a`, modRevision: a }],
        [
          { op: 'put', key: `${p}a`, value: 'a3' },
          { op: 'put', key: `${p}b`, value: 'b1' },
        ],
      );
      expect(rev).toBeUndefined();
      expect((await store.get(`${p}a`))?.value).toBe('a2');
      expect(await store.get(`${p}b`)).toBeUndefined();
    });

    it('a compare on modRevision 0 holds only while the key is absent', async () => {
      const put: TxnOp[] = [{ op: 'put', key: `${p}a`, value: 'v' }];
      expect(await store.txn([{ key: `${p}a`, modRevision: 0 }], put)).toEqual(expect.any(Number));
      expect(await store.txn([{ key: `${p}a`, modRevision: 0 }], put)).toBeUndefined();
    });

    it('rejects more than 128 ops with a TypeError and writes nothing', async () => {
      const ops: TxnOp[] = Array.from({ length: 129 }, (_, i) => ({ op: 'put', key: `${p}k${i}`, value: 'v' }));
      await expect(store.txn([], ops)).rejects.toBeInstanceOf(TypeError);
      expect((await store.list(p)).items).toEqual([]);
    });

    it('accepts exactly 128 ops', async () => {
      const ops: TxnOp[] = Array.from({ length: 128 }, (_, i) => ({ op: 'put', key: `${p}k${i}`, value: 'v' }));
      expect(await store.txn([], ops)).toEqual(expect.any(Number));
      expect((await store.list(p)).items).toHaveLength(128);
    });

    it('rejects a txn that writes the same key twice with a TypeError', async () => {
      const ops: TxnOp[] = [
        { op: 'put', key: `${p}a`, value: 'v' },
        { op: 'delete', key: `${p}a` },
      ];
      await expect(store.txn([], ops)).rejects.toBeInstanceOf(TypeError);
    });
    it('deleteRange deletes the keys in [key, end) in the txn\'s revision, with the other ops, and nothing else', async () => {
      for (const k of ['h/1', 'h/2', 'h/3', 'h/9', 'i']) await store.create(`${p}${k}`, k);
      const seen: WatchEvent[] = [];
      const watch = await store.watch(p, { afterRevision: 0, onEvents: (e) => seen.push(...e), onError: () => undefined });
      const rev = await store.txn([], [
        { op: 'put', key: `${p}h/3`, value: 'kept' },
        { op: 'deleteRange', key: `${p}h/`, end: `${p}h/3` },
        { op: 'deleteRange', key: `${p}h/4`, end: `${p}h0` },
      ]);
      expect((await store.list(p)).items.map((kv) => [kv.key.slice(p.length), kv.value])).toEqual([['h/3', 'kept'], ['i', 'i']]);
      await eventually(() => expect(seen.map((e) => `${e.type} ${e.key.slice(p.length)}`).sort()).toEqual(['delete h/1', 'delete h/2', 'delete h/9', 'put h/3']));
      expect(seen.every((e) => e.modRevision === rev)).toBe(true);
      // A range with nothing in it is no error.
      expect(await store.txn([], [{ op: 'deleteRange', key: `${p}x/`, end: `${p}x0` }])).toBeGreaterThan(0);
      await watch.cancel();
    });

    it('rejects a deleteRange that covers a key the txn puts, or is empty, with a TypeError and writes nothing', async () => {
      await store.create(`${p}h/1`, 'v');
      await expect(store.txn([], [{ op: 'put', key: `${p}h/2`, value: 'v' }, { op: 'deleteRange', key: `${p}h/`, end: `${p}h0` }])).rejects.toBeInstanceOf(TypeError);
      await expect(store.txn([], [{ op: 'deleteRange', key: `${p}h0`, end: `${p}h/` }])).rejects.toBeInstanceOf(TypeError);
      expect((await store.get(`${p}h/1`))?.value).toBe('v');
    });
  });

  describe('leases', () => {
    it('grantLease returns a decimal id that leaseId attaches to the key', async () => {
      const lease = await store.grantLease(60);
      expect(lease).toMatch(/^\d+$/);
      await store.create(`${p}a`, 'v', { leaseId: lease });
      expect((await store.get(`${p}a`))?.lease).toBe(lease);
    });

    it('a key without a lease has no lease field, and an update without lease options detaches it', async () => {
      const rev = await store.create(`${p}a`, 'v', { leaseId: await store.grantLease(60) });
      await store.update(`${p}a`, 'v2', rev);
      expect((await store.get(`${p}a`))?.lease).toBeUndefined();
    });

    it('a put with an unknown lease id fails with a StoreError and writes nothing', async () => {
      await expect(store.create(`${p}a`, 'v', { leaseId: '123456789' })).rejects.toBeInstanceOf(StoreError);
      expect(await store.get(`${p}a`)).toBeUndefined();
    });

    // etcd raises TTLs below its minimum (2 s with default timing), so this waits a few seconds.
    it('a key written with ttlSeconds has a lease and disappears when it expires', async () => {
      const rec = await recordWatch(p, 0);
      await store.create(`${p}a`, 'v', { ttlSeconds: 1 });
      expect((await store.get(`${p}a`))?.lease).toMatch(/^\d+$/);
      await eventually(async () => expect(await store.get(`${p}a`)).toBeUndefined(), 10_000);
      await eventually(() => expect(rec.events().map((e) => e.type)).toEqual(['put', 'delete']));
    }, 15_000);
  });

  // TTL 2: etcd's minimum with default timing. Keep-alive fires every TTL/3.
  describe('leases kept alive (lease())', () => {
    const TTL = 2;

    /** A lease whose onLost calls are recorded. */
    async function keptLease(s: Store = store) {
      const lost: Error[] = [];
      const lease = await s.lease(TTL, (err) => lost.push(err));
      return { lease, lost };
    }

    it('keep-alive keeps attached keys beyond the TTL', async () => {
      const { lease, lost } = await keptLease();
      expect(lease.id).toMatch(/^\d+$/);
      await store.create(`${p}a`, 'v', { leaseId: lease.id });
      await new Promise((resolve) => setTimeout(resolve, TTL * 1000 + 2500));
      expect((await store.get(`${p}a`))?.lease).toBe(lease.id);
      expect(lost).toEqual([]);
      await lease.revoke();
    }, 15_000);

    it('revoke() deletes the attached keys at once, is idempotent, and is not a loss', async () => {
      const { lease, lost } = await keptLease();
      const rec = await recordWatch(p, 0);
      await store.create(`${p}a`, 'v', { leaseId: lease.id });
      await store.create(`${p}b`, 'v', { leaseId: lease.id });
      await lease.revoke();
      expect((await store.list(p)).items).toEqual([]);
      await lease.revoke();
      await eventually(() => expect(rec.events().map((e) => e.type)).toEqual(['put', 'put', 'delete', 'delete']));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(lost).toEqual([]);
    });

    it('after release() the keys vanish within TTL + 2 s, and onLost is not called', async () => {
      const { lease, lost } = await keptLease();
      await store.create(`${p}a`, 'v', { leaseId: lease.id });
      const released = Date.now();
      lease.release();
      lease.release();
      await eventually(async () => expect(await store.get(`${p}a`)).toBeUndefined(), (TTL + 2) * 1000);
      expect(Date.now() - released).toBeLessThan((TTL + 2) * 1000);
      expect(lost).toEqual([]);
    }, 15_000);

    it('revokeLease(id) by anyone deletes the keys and the holder gets onLost once', async () => {
      const { lease, lost } = await keptLease();
      await store.create(`${p}a`, 'v', { leaseId: lease.id });
      await store.revokeLease(lease.id);
      expect(await store.get(`${p}a`)).toBeUndefined();
      await eventually(() => expect(lost).toHaveLength(1), TTL * 1000 + 3000);
      expect(lost[0]).toBeInstanceOf(LeaseLostError);
      expect(lost[0]).toMatchObject({ leaseId: lease.id });
      await new Promise((resolve) => setTimeout(resolve, TTL * 1000));
      expect(lost).toHaveLength(1);
      await lease.revoke(); // revoking a lost lease is harmless
    }, 15_000);

    it('revokeLease ignores unknown ids and rejects ids that are not decimal', async () => {
      await expect(store.revokeLease('123456789')).resolves.toBeUndefined();
      await expect(store.revokeLease('abc')).rejects.toBeInstanceOf(TypeError);
    });

    it('a put on a revoked lease fails with a StoreError', async () => {
      const { lease } = await keptLease();
      await lease.revoke();
      await expect(store.create(`${p}a`, 'v', { leaseId: lease.id })).rejects.toBeInstanceOf(StoreError);
    });

    it('close() stops keep-alive without revoking and without onLost: the keys expire with the TTL', async () => {
      const other = backend.open();
      const { lease, lost } = await keptLease(other);
      await other.create(`${p}a`, 'v', { leaseId: lease.id });
      await other.close();
      if (backend.name === 'EtcdStore') {
        // Seen through another client: still there, then gone within TTL + 2 s.
        expect((await store.get(`${p}a`))?.lease).toBe(lease.id);
        await eventually(async () => expect(await store.get(`${p}a`)).toBeUndefined(), (TTL + 2) * 1000);
      } else {
        await new Promise((resolve) => setTimeout(resolve, (TTL + 1) * 1000)); // a memory store's keys die with it
      }
      expect(lost).toEqual([]);
    }, 15_000);

    it('rejects a TTL below 1 s with a TypeError', async () => {
      await expect(store.lease(0, () => undefined)).rejects.toBeInstanceOf(TypeError);
    });
  });

  it('a closed store rejects calls with UnavailableError', async () => {
    const other = backend.open();
    await other.close();
    await expect(other.get(`${p}a`)).rejects.toBeInstanceOf(UnavailableError);
    await other.close(); // idempotent
  });

  describe('on a store of its own', () => {
    let isolated: IsolatedStore;

    beforeAll(async () => {
      isolated = await backend.openIsolated();
    });

    afterAll(async () => {
      await isolated?.close();
    });

    it('each write advances the revision by exactly one, and a txn counts once', async () => {
      const s = isolated.store;
      const start = await s.revision();
      expect(await s.create(`${p}a`, 'v')).toBe(start + 1);
      expect(await s.update(`${p}a`, 'v2', start + 1)).toBe(start + 2);
      const ops: TxnOp[] = [
        { op: 'put', key: `${p}b`, value: 'v' },
        { op: 'put', key: `${p}c`, value: 'v' },
      ];
      expect(await s.txn([], ops)).toBe(start + 3);
      await s.delete(`${p}a`);
      expect(await s.revision()).toBe(start + 4);
    });

    it('a watch from a compacted revision fails once with CompactedError and delivers nothing', async () => {
      const s = isolated.store;
      const first = await s.create(`${p}a`, 'v1');
      await s.update(`${p}a`, 'v2', first);
      const last = await s.create(`${p}b`, 'v');
      await isolated.compact(last);
      const rec = await record(s, p, first - 1);
      await eventually(() => expect(rec.errors).toHaveLength(1));
      const [err] = rec.errors;
      expect(err).toBeInstanceOf(CompactedError);
      expect(err).toMatchObject({ requested: first, compactRevision: last });
      await rec.watch.cancel(); // must not hang on a watch the store already ended
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(rec.errors).toHaveLength(1);
      expect(rec.batches).toEqual([]);
    });

    it('a watch from the compact revision itself still works', async () => {
      const s = isolated.store;
      await s.create(`${p}x`, 'v');
      const rev = await s.revision();
      await isolated.compact(rev);
      const rec = await record(s, p, rev);
      await s.create(`${p}y`, 'v');
      await eventually(() => expect(rec.events().map((e) => e.key)).toEqual([`${p}y`]));
      expect(rec.errors).toEqual([]);
      await rec.watch.cancel();
    });
  });
});
