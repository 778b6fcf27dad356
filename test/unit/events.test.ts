/** Events share one lease per five minutes, also when many are recorded at once. */
import { EventRecorder } from '../../pkg/client/events';
import { MemoryStore } from '../../pkg/store/memory';
import { silentLogger } from '../../pkg/util/log';

describe('EventRecorder', () => {
  it('events recorded at once wait for one lease grant and all carry it', async () => {
    const store = new MemoryStore();
    const grants = jest.spyOn(store, 'grantLease');
    const events = new EventRecorder(store, '/shoal', 'test', silentLogger());
    await Promise.all(Array.from({ length: 20 }, (_, i) => events.record({ kind: 'App', namespace: 'default', name: `web-${i}` }, 'Normal', 'Test', 'hello')));
    expect(grants).toHaveBeenCalledTimes(1);
    const { items } = await store.list('/shoal/registry/events/');
    expect(items).toHaveLength(20);
    expect(new Set(items.map((kv) => kv.lease)).size).toBe(1);
    await store.close();
  });

  it('a failed grant is tried again by the next event', async () => {
    const store = new MemoryStore();
    const real = store.grantLease.bind(store);
    const grants = jest.spyOn(store, 'grantLease').mockRejectedValueOnce(new Error('etcd unavailable')).mockImplementation(real);
    const events = new EventRecorder(store, '/shoal', 'test', silentLogger());
    await events.record({ kind: 'App', name: 'a' }, 'Normal', 'Test', 'lost');
    await events.record({ kind: 'App', name: 'b' }, 'Normal', 'Test', 'kept');
    expect(grants).toHaveBeenCalledTimes(2);
    expect((await store.list('/shoal/registry/events/')).items).toHaveLength(1);
    await store.close();
  });
});
