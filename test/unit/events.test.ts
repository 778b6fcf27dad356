/** Events share one lease per five minutes, also when many are recorded at once. */
import { EventRecorder } from '../../pkg/client/events';
import { MemoryStore } from '../../pkg/store/memory';
import { FakeClock } from '../../pkg/util/clock';
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

  it('stamps events with its clock and grants the next lease once five minutes of events shared one', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const store = new MemoryStore({ clock });
    const grants = jest.spyOn(store, 'grantLease');
    const events = new EventRecorder(store, '/shoal', 'test', silentLogger(), clock);
    await events.record({ kind: 'App', name: 'a' }, 'Normal', 'Test', 'first');
    clock.step(5 * 60_000); // the lease is reused up to and including this moment
    await events.record({ kind: 'App', name: 'b' }, 'Normal', 'Test', 'same lease');
    clock.step(1);
    await events.record({ kind: 'App', name: 'c' }, 'Normal', 'Test', 'new lease');
    expect(grants).toHaveBeenCalledTimes(2);
    const items = (await store.list('/shoal/registry/events/')).items.map((kv) => ({ lease: kv.lease, event: JSON.parse(kv.value) }));
    const byName = Object.fromEntries(items.map((i) => [i.event.involvedObject.name, i]));
    expect(byName.a.event.firstTimestamp).toBe('2026-01-01T00:00:00.000Z');
    expect(byName.b.event.lastTimestamp).toBe('2026-01-01T00:05:00.000Z');
    expect(byName.c.event.metadata.creationTimestamp).toBe('2026-01-01T00:05:00.001Z');
    expect(byName.b.lease).toBe(byName.a.lease);
    expect(byName.c.lease).not.toBe(byName.a.lease);
    await store.close();
  });
});
