import { Informer } from '../../pkg/client/informer';
import { MemoryStore } from '../../pkg/store/memory';
import { CompactedError } from '../../pkg/store/errors';
import { FakeClock, settle } from '../../pkg/util/clock';
import { silentLogger } from '../../pkg/util/log';

/** Lets the memory store deliver watch events (it does on a microtask: no timer involved). */
const flush = () => settle();

function informer(store: MemoryStore, clock = new FakeClock(0)) {
  const inf = new Informer<string>({ store, prefix: '/p/', logger: silentLogger(), retryMs: 10, clock, decode: (kv) => (kv.value === 'skip' ? undefined : kv.value) });
  const seen: string[] = [];
  inf.addHandlers({
    onAdd: (k, v) => seen.push(`add ${k}=${v}`),
    onUpdate: (k, v, old) => seen.push(`update ${k}=${old}->${v}`),
    onDelete: (k, old) => seen.push(`delete ${k}=${old}`),
  });
  return { inf, seen, clock };
}

/**
 * The store's first watch delivers nothing; the returned function ends it with an error, as etcd
 * ends a watch whose revision was compacted. Later watches are the store's own.
 */
function firstWatchDies(store: MemoryStore): (err: Error) => void {
  const realWatch = store.watch.bind(store);
  let onError: ((err: Error) => void) | undefined;
  jest.spyOn(store, 'watch').mockImplementationOnce(async (_prefix, opts) => {
    onError = opts.onError;
    return { cancel: async () => undefined };
  }).mockImplementation(realWatch);
  return (err) => onError!(err);
}

describe('Informer', () => {
  it('listsThenFollowsChanges', async () => {
    const store = new MemoryStore();
    await store.create('/p/a', '1');
    await store.create('/other/x', '1');
    const { inf, seen } = informer(store);
    await inf.start();
    expect(inf.list()).toEqual(['1']);
    const rev = await store.create('/p/b', '2');
    await store.update('/p/a', '3', (await store.get('/p/a'))!.modRevision);
    await store.delete('/p/b');
    await flush();
    expect(seen).toEqual(['add /p/a=1', 'add /p/b=2', 'update /p/a=1->3', 'delete /p/b=2']);
    expect(inf.lastRevision()).toBe(rev + 2);
    await inf.stop();
  });

  it('skipsValuesItCannotDecode', async () => {
    const store = new MemoryStore();
    await store.create('/p/a', 'skip');
    const { inf } = informer(store);
    await inf.start();
    expect(inf.list()).toEqual([]);
    await inf.stop();
  });

  it('relistsAfterCompactionAndReportsWhatItMissed', async () => {
    const store = new MemoryStore();
    await store.create('/p/a', '1');
    await store.create('/p/gone', 'x');
    const failFirst = firstWatchDies(store);
    const { inf, seen, clock } = informer(store);
    await inf.start();
    seen.length = 0;
    await store.delete('/p/gone');
    await store.create('/p/new', '2');
    await store.update('/p/a', '3', (await store.get('/p/a'))!.modRevision);
    await store.compact(await store.revision());
    failFirst(new CompactedError(1, await store.revision()));
    await flush();
    expect(seen).toEqual([]); // the relist is a timer, of 0 ms after a compaction
    await clock.stepAsync(0);
    expect(seen.sort()).toEqual(['add /p/new=2', 'delete /p/gone=x', 'update /p/a=1->3']);
    await store.create('/p/later', '4');
    await flush();
    expect(seen).toContain('add /p/later=4');
    await inf.stop();
  });

  it('keepsAnIndexInStepWithItsCache', async () => {
    const store = new MemoryStore();
    await store.create('/p/a', 'red:1');
    await store.create('/p/b', 'blue:1');
    const inf = new Informer<string>({ store, prefix: '/p/', logger: silentLogger(), retryMs: 10, clock: new FakeClock(0), decode: (kv) => (kv.value === 'skip' ? undefined : kv.value) });
    inf.addIndex('colour', (v) => (v.includes(':') ? v.split(':')[0] : undefined));
    const by = (colour: string) => inf.byIndex('colour', colour).sort();
    await inf.start();
    expect(by('red')).toEqual(['red:1']);
    await store.create('/p/c', 'red:2');
    await store.update('/p/b', 'red:3', (await store.get('/p/b'))!.modRevision); // moves blue → red
    await store.update('/p/a', 'red:4', (await store.get('/p/a'))!.modRevision); // stays red
    await store.create('/p/d', 'plain'); // not indexed
    await flush();
    expect(by('red')).toEqual(['red:2', 'red:3', 'red:4']);
    expect(by('blue')).toEqual([]);
    await store.delete('/p/c');
    await store.update('/p/a', 'skip', (await store.get('/p/a'))!.modRevision); // undecodable: leaves the cache
    await flush();
    expect(by('red')).toEqual(['red:3']);
    // An index added to a running informer starts from its cache.
    inf.addIndex('all', () => 'x');
    expect(inf.byIndex('all', 'x').sort()).toEqual(['plain', 'red:3']);
    expect(() => inf.addIndex('all', () => 'y')).toThrow('index all already exists');
    expect(() => inf.byIndex('none', 'x')).toThrow('no index none');
    await inf.stop();
  });

  it('updatesItsIndexesWhenARelistFindsKeysGone', async () => {
    const store = new MemoryStore();
    await store.create('/p/a', 'red:1');
    await store.create('/p/gone', 'red:2');
    const failFirst = firstWatchDies(store);
    const clock = new FakeClock(0);
    const inf = new Informer<string>({ store, prefix: '/p/', logger: silentLogger(), retryMs: 10, clock, decode: (kv) => kv.value });
    inf.addIndex('colour', (v) => v.split(':')[0]);
    await inf.start();
    await store.delete('/p/gone');
    await store.update('/p/a', 'blue:1', (await store.get('/p/a'))!.modRevision);
    failFirst(new CompactedError(1, await store.revision()));
    await clock.stepAsync(0);
    expect(inf.byIndex('colour', 'red')).toEqual([]);
    expect(inf.byIndex('colour', 'blue')).toEqual(['blue:1']);
    await inf.stop();
  });

  it('relistsWhenItsWatchFallsSilentWhileNewerWritesExist', async () => {
    const store = new MemoryStore();
    await store.create('/p/a', '1');
    // A watch that delivers nothing and reports no error: the silent stall seen under load.
    let watches = 0;
    const realWatch = store.watch.bind(store);
    jest.spyOn(store, 'watch').mockImplementation(async (prefix, opts) => (++watches === 1 ? realWatch(prefix, { ...opts, onEvents: () => undefined }) : realWatch(prefix, opts)));
    const clock = new FakeClock(0);
    const inf = new Informer<string>({ store, prefix: '/p/', logger: silentLogger(), retryMs: 10, staleCheckMs: 20, clock, decode: (kv) => kv.value });
    const seen: string[] = [];
    inf.addHandlers({ onUpdate: (k, v, old) => seen.push(`update ${k}=${old}->${v}`) });
    await inf.start();
    await store.update('/p/a', '2', (await store.get('/p/a'))!.modRevision);
    await clock.stepAsync(20); // the first silent check: delivery may just be slow
    expect(inf.get('/p/a')).toBe('1');
    expect(watches).toBe(1);
    await clock.stepAsync(20); // the second: relist and watch again
    expect(inf.get('/p/a')).toBe('2');
    expect(seen).toEqual(['update /p/a=1->2']);
    expect(watches).toBe(2);
    await store.update('/p/a', '3', (await store.get('/p/a'))!.modRevision); // the new watch delivers
    await flush();
    expect(inf.get('/p/a')).toBe('3');
    await inf.stop();
  });

  it('leavesAQuietPrefixAlone', async () => {
    const store = new MemoryStore();
    await store.create('/p/a', '1');
    const lists = jest.spyOn(store, 'list');
    const checks = jest.spyOn(store, 'countNewer');
    const clock = new FakeClock(0);
    const inf = new Informer<string>({ store, prefix: '/p/', logger: silentLogger(), staleCheckMs: 20, clock, decode: (kv) => kv.value });
    await inf.start();
    await store.create('/other/x', '1'); // the revision moves, the prefix does not
    await clock.stepAsync(100);
    expect(checks).toHaveBeenCalledTimes(5);
    expect(lists).toHaveBeenCalledTimes(1);
    await inf.stop();
    expect(clock.pending()).toBe(0); // stop() ends the staleness check
    await clock.stepAsync(100);
    expect(checks).toHaveBeenCalledTimes(5);
  });

  it('retriesAFailedListAfterRetryMs', async () => {
    const store = new MemoryStore();
    await store.create('/p/a', '1');
    const lists = jest.spyOn(store, 'list').mockRejectedValueOnce(new Error('etcd unavailable'));
    const { inf, clock } = informer(store);
    let synced = false;
    const started = inf.start().then(() => (synced = true));
    await clock.stepAsync(9);
    expect(lists).toHaveBeenCalledTimes(1);
    expect(synced).toBe(false);
    await clock.stepAsync(1);
    await started;
    expect(lists).toHaveBeenCalledTimes(2);
    expect(inf.list()).toEqual(['1']);
    await inf.stop();
  });

  it('relistsRetryMsAfterAWatchErrorOtherThanCompaction', async () => {
    const store = new MemoryStore();
    await store.create('/p/a', '1');
    const failFirst = firstWatchDies(store);
    const { inf, seen, clock } = informer(store);
    await inf.start();
    await store.create('/p/b', '2');
    failFirst(new Error('connection reset'));
    await clock.stepAsync(9);
    expect(inf.get('/p/b')).toBeUndefined();
    await clock.stepAsync(1);
    expect(inf.get('/p/b')).toBe('2');
    expect(seen).toEqual(['add /p/a=1', 'update /p/a=1->1', 'add /p/b=2']); // a relist reports every key it finds
    await inf.stop();
  });
});
