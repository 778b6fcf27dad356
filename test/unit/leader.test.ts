/** Leader election on the memory store, on a fake clock: one leader, a successor at vacancy, a retry every 2 s. */
import { LeaderElector } from '../../pkg/controllers/leader';
import type { Fence } from '../../pkg/store/types';
import { MemoryStore } from '../../pkg/store/memory';
import { leaderKey } from '../../pkg/store/objects';
import { FakeClock, settle } from '../../pkg/util/clock';
import { silentLogger } from '../../pkg/util/log';

const P = '/shoal';

function elector(store: MemoryStore, clock: FakeClock, identity: string) {
  const e = new LeaderElector({ store, prefix: P, identity, logger: silentLogger(), clock });
  const terms: Fence[] = [];
  let stopped = 0;
  e.run({ onStartedLeading: (fence) => void terms.push(fence), onStoppedLeading: () => void stopped++ });
  return { e, terms, stopped: () => stopped };
}

describe('LeaderElector', () => {
  it('one leads; the other campaigns again every 2 s, and takes over at once when the leader steps down', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const store = new MemoryStore({ clock });
    const creates = jest.spyOn(store, 'create');
    const a = elector(store, clock, 'a');
    await settle();
    expect(a.e.isLeader()).toBe(true);
    expect(JSON.parse((await store.get(leaderKey(P)))!.value)).toEqual({ identity: 'a', since: '2026-01-01T00:00:00.000Z' });
    const b = elector(store, clock, 'b');
    await settle();
    expect(b.e.isLeader()).toBe(false);
    expect(creates).toHaveBeenCalledTimes(2);
    await clock.stepAsync(1999);
    expect(creates).toHaveBeenCalledTimes(2);
    await clock.stepAsync(1); // 2 s without a vacancy: try again (and fail again)
    expect(creates).toHaveBeenCalledTimes(3);
    expect(b.e.isLeader()).toBe(false);
    await clock.stepAsync(500);
    await a.e.stop(); // revokes its lease: the key goes, b's watch sees it
    await settle();
    expect(a.stopped()).toBe(1);
    expect(b.e.isLeader()).toBe(true);
    expect(creates).toHaveBeenCalledTimes(4);
    expect(b.terms).toEqual([{ key: leaderKey(P), modRevision: (await store.get(leaderKey(P)))!.modRevision }]);
    expect(JSON.parse((await store.get(leaderKey(P)))!.value)).toEqual({ identity: 'b', since: '2026-01-01T00:00:02.500Z' });
    expect(clock.pending()).toBe(2); // b's lease (TTL and keep-alive) only: the 2 s retry timer was cleared at the wake-up
    await b.e.stop();
    await store.close();
  });
});
