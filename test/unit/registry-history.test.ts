/**
 * The registry's App writes (history, deletes) when another writer gets between its read and its txn: the
 * App and its revision go together or not at all, and a failed compare maps to the usual errors.
 */
import { lookupKind } from '../../pkg/api/kinds';
import { ApiError } from '../../pkg/apiserver/errors';
import { Registry } from '../../pkg/apiserver/registry';
import { MemoryStore } from '../../pkg/store/memory';
import type { TxnCompare, TxnOp } from '../../pkg/store/types';

const APPS = lookupKind('apps')!;
const PREFIX = '/t';
const KEY = `${PREFIX}/registry/apps/default/web`;
const ref = { kind: APPS, namespace: 'default', name: 'web' };
const body = (spec: Record<string, unknown>) => ({ apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'web' }, spec });

/** A MemoryStore that runs `before` (once) just ahead of the next txn: a concurrent writer. */
class RacyStore extends MemoryStore {
  before?: () => Promise<void>;
  override async txn(compares: TxnCompare[], ops: TxnOp[]): Promise<number | undefined> {
    const b = this.before;
    this.before = undefined;
    await b?.();
    return super.txn(compares, ops);
  }
  override async update(key: string, value: string, expected: number): Promise<number> {
    const b = this.before;
    this.before = undefined;
    await b?.();
    return super.update(key, value, expected);
  }
}

async function historyGenerations(store: MemoryStore): Promise<number[]> {
  return (await store.list(`${PREFIX}/history/apps/default/web/`)).items.map((kv) => JSON.parse(kv.value).generation);
}

async function setup() {
  const store = new RacyStore();
  const registry = new Registry(store, PREFIX, () => new Date('2024-05-01T12:00:00Z'));
  await registry.create(APPS, 'default', body({ cmd: 'v1' }));
  return { store, registry };
}

/** Rewrites the stored App behind the registry's back (as the controller's status writes do). */
async function touch(store: MemoryStore): Promise<void> {
  const kv = (await store.get(KEY))!;
  const obj = JSON.parse(kv.value);
  obj.status = { observedGeneration: 1 };
  await store.update(KEY, JSON.stringify(obj), kv.modRevision);
}

describe('registry App history under concurrent writes', () => {
  it('retriesAPatchWithoutResourceVersionAndWritesOneRevision', async () => {
    const { store, registry } = await setup();
    store.before = () => touch(store);
    const patched = await registry.patch(ref, { spec: { cmd: 'v2' } });
    expect(patched.metadata.generation).toBe(2);
    expect((patched as { status?: unknown }).status).toEqual({ observedGeneration: 1 });
    expect(await historyGenerations(store)).toEqual([1, 2]);
  });

  it('answers409ForAStaleResourceVersionAndWritesNoRevision', async () => {
    const { store, registry } = await setup();
    const current = await registry.get(ref);
    store.before = () => touch(store);
    const err = await registry.update(ref, { ...body({ cmd: 'v2' }), metadata: { name: 'web', resourceVersion: current.metadata.resourceVersion } }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(409);
    expect(await historyGenerations(store)).toEqual([1]);
    expect((await registry.get(ref)).metadata.generation).toBe(1);
  });

  it('answers404WhenTheAppIsDeletedMeanwhile', async () => {
    const { store, registry } = await setup();
    const current = await registry.get(ref);
    store.before = async () => void (await store.delete(KEY));
    const err = await registry.update(ref, { ...body({ cmd: 'v2' }), metadata: { name: 'web', resourceVersion: current.metadata.resourceVersion } }).catch((e) => e);
    expect((err as ApiError).code).toBe(404);
    expect(await historyGenerations(store)).toEqual([1]);
  });

  it('answers409AlreadyExistsWhenCreatedMeanwhile', async () => {
    const store = new RacyStore();
    const registry = new Registry(store, PREFIX);
    store.before = async () => void (await store.create(KEY, JSON.stringify({ kind: 'App', metadata: { name: 'web' } })));
    const err = await registry.create(APPS, 'default', body({ cmd: 'v1' })).catch((e) => e);
    expect((err as ApiError).reason).toBe('AlreadyExists');
    expect(await historyGenerations(store)).toEqual([]);
  });

  it('retriesADeleteWithoutResourceVersionWhenAControllerWroteMeanwhile', async () => {
    const { store, registry } = await setup(); // an App carries the app-tasks finalizer: delete marks it
    store.before = () => touch(store);
    const marked = await registry.delete(ref);
    expect(marked.metadata.deletionTimestamp).toBe('2024-05-01T12:00:00.000Z');
    const stored = JSON.parse((await store.get(KEY))!.value);
    expect(stored.metadata.deletionTimestamp).toBe('2024-05-01T12:00:00.000Z');
    expect(stored.status).toEqual({ observedGeneration: 1 }); // the controller's write is kept
  });

  it('answers409ForADeleteWithAStaleResourceVersion', async () => {
    const { store, registry } = await setup();
    const rv = (await registry.get(ref)).metadata.resourceVersion!;
    await touch(store);
    await expect(registry.delete(ref, rv)).rejects.toMatchObject({ reason: 'Conflict' });
  });

  it('prunesHistoryPastTheLimitAndStrayNewerRevisionsWithoutReadingTheHistory', async () => {
    const { store, registry } = await setup();
    await store.create(`${PREFIX}/history/apps/default/web/0000000099`, JSON.stringify({ generation: 99 })); // not this App's
    const list = jest.spyOn(store, 'list');
    for (let i = 2; i <= 6; i++) await registry.patch(ref, { spec: { cmd: `v${i}`, revisionHistoryLimit: 2 } });
    expect(await historyGenerations(store)).toEqual([4, 5, 6]);
    await registry.patch(ref, { spec: { revisionHistoryLimit: 0 } });
    expect(await historyGenerations(store)).toEqual([7]);
    expect(list).toHaveBeenCalledTimes(2); // historyGenerations' own reads only
  });

  it('deletesTheWholeHistoryWithTheAppAndStartsAFreshOneForARecreatedName', async () => {
    const { store, registry } = await setup();
    for (let i = 2; i <= 4; i++) await registry.patch(ref, { spec: { cmd: `v${i}` } });
    await registry.patch(ref, { metadata: { finalizers: null } });
    await registry.delete(ref);
    expect(await store.get(KEY)).toBeUndefined();
    expect(await historyGenerations(store)).toEqual([]);
    await store.create(`${PREFIX}/history/apps/default/web/0000000003`, JSON.stringify({ generation: 3 })); // left behind
    await registry.create(APPS, 'default', body({ cmd: 'again' }));
    expect(await historyGenerations(store)).toEqual([1]);
  });
});
