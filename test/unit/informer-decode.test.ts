/** What an Informer's decode is told about each value: its revisions, and whether a list or the watch brought it. */
import { settle } from '../../pkg/util/clock';
import { Informer } from '../../pkg/client/informer';
import { MemoryStore } from '../../pkg/store/memory';
import { silentLogger } from '../../pkg/util/log';

type Seen = { key: string; modRevision: number; createRevision: number; from: 'list' | 'watch' };

it('tellsDecodeTheRevisionsAndWhetherAListOrTheWatchBroughtTheValue', async () => {
  const store = new MemoryStore();
  const created = await store.create('/p/a', '1');
  const seen: Seen[] = [];
  const inf = new Informer<string>({
    store, prefix: '/p/', logger: silentLogger(), staleCheckMs: 0,
    decode: ({ key, value, modRevision, createRevision, from }) => (seen.push({ key, modRevision, createRevision, from }), value),
  });
  await inf.start();
  const b = await store.create('/p/b', '2');
  const a2 = await store.update('/p/a', '3', created);
  // The memory store delivers watch events asynchronously: wait for them, not for a time.
  for (let i = 0; i < 100 && seen.length < 3; i++) await settle(1);
  expect(seen).toEqual([
    { key: '/p/a', modRevision: created, createRevision: created, from: 'list' },
    { key: '/p/b', modRevision: b, createRevision: b, from: 'watch' }, // a creation: createRevision === modRevision
    { key: '/p/a', modRevision: a2, createRevision: created, from: 'watch' },
  ]);
  await inf.stop();
  await store.close();
});
