/** MemoryStore's leases run on its clock: a TTL passes when the clock is stepped, not when time does. */
import { MemoryStore } from '../../pkg/store/memory';
import { FakeClock, settle } from '../../pkg/util/clock';

describe('MemoryStore leases on a FakeClock', () => {
  it('a put with a TTL is deleted exactly when the clock passes the TTL', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryStore({ clock });
    await store.create('/k', 'v', { ttlSeconds: 2 });
    clock.step(1_999);
    expect(await store.get('/k')).toBeDefined();
    clock.step(1);
    expect(await store.get('/k')).toBeUndefined();
    await store.close();
  });

  it('a kept-alive lease outlives many TTLs; released, it expires one TTL after its last renewal', async () => {
    const clock = new FakeClock(0);
    const store = new MemoryStore({ clock });
    const lost: Error[] = [];
    const lease = await store.lease(3, (err) => lost.push(err));
    await store.create('/held', 'v', { leaseId: lease.id });
    clock.step(30_000); // renewed every second
    expect(await store.get('/held')).toBeDefined();
    lease.release(); // last renewal at 30 s
    clock.step(2_999);
    expect(await store.get('/held')).toBeDefined();
    clock.step(1);
    expect(await store.get('/held')).toBeUndefined();
    await settle();
    expect(lost).toEqual([]); // released: nobody is told
    expect(clock.pending()).toBe(0);
    await store.close();
  });
});
