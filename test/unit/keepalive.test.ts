/**
 * KeepAlives against a fake etcd lease client: renewals every TTL/3 over shared streams of at
 * most 100 leases, losses on a TTL-0 answer or two TTLs without answers, and a stalled stream
 * replaced by a fresh one.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { KeepAlives, LEASES_PER_STREAM } from '../../pkg/store/etcd-keepalive';
import { FakeClock } from '../../pkg/util/clock';

class FakeStream extends EventEmitter {
  readonly written: string[] = [];
  ended = false;
  write(req: { ID: string }): boolean {
    this.written.push(req.ID);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  cancel(): void {
    this.ended = true;
  }
  answer(id: string, ttl = 10): void {
    this.emit('data', { ID: id, TTL: String(ttl) });
  }
}

function fakeClient() {
  const streams: FakeStream[] = [];
  const client = { leaseClient: { leaseKeepAlive: async () => { const s = new FakeStream(); streams.push(s); return s; } } } as unknown as Etcd3;
  return { client, streams };
}

let clock: FakeClock;
beforeEach(() => (clock = new FakeClock(0)));

/** Advances the fake clock in small steps so intervals and promise callbacks interleave as in real time. */
async function advance(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    clock.step(50);
    await Promise.resolve();
    await Promise.resolve();
  }
}

describe('KeepAlives', () => {
  it('renews every TTL/3 over one stream and keeps a lease that etcd answers', async () => {
    const { client, streams } = fakeClient();
    const k = new KeepAlives(client, clock);
    const lost: string[] = [];
    k.add('1', 3, (why) => lost.push(why));
    for (let i = 0; i < 6; i++) {
      await advance(1000);
      for (const s of streams) for (const id of s.written.splice(0)) s.answer(id);
    }
    expect(streams).toHaveLength(1);
    expect(lost).toEqual([]);
    k.close();
  });

  it('reports how long etcd took to answer each renewal', async () => {
    const { client, streams } = fakeClient();
    const seconds: number[] = [];
    const k = new KeepAlives(client, clock, (s) => seconds.push(s));
    k.add('1', 3, () => undefined);
    await advance(1050); // the renewal goes out at 1 s
    expect(streams[0].written).toEqual(['1']);
    await advance(400);
    streams[0].answer('1');
    streams[0].answer('1'); // a duplicate answer has nothing left to time
    expect(seconds).toEqual([0.4]); // written at 1,000 ms, answered at 1,400
    k.close();
  });

  it('keeps at most one renewal per lease waiting in etcd', async () => {
    const { client, streams } = fakeClient();
    const k = new KeepAlives(client, clock);
    k.add('1', 3, () => undefined);
    await advance(2200); // due at 1 s and at 2 s; the first is still unanswered at 2 s
    expect(streams[0].written).toEqual(['1']);
    streams[0].answer('1');
    await advance(1000);
    expect(streams[0].written).toEqual(['1', '1']);
    k.close();
  });

  it('spreads leases over streams of at most 100', async () => {
    const { client, streams } = fakeClient();
    const k = new KeepAlives(client, clock);
    for (let i = 0; i < 2 * LEASES_PER_STREAM + 1; i++) k.add(String(i), 3, () => undefined);
    await advance(1100);
    expect(streams).toHaveLength(3);
    expect(streams.map((s) => s.written.length).sort((a, b) => a - b)).toEqual([1, LEASES_PER_STREAM, LEASES_PER_STREAM]);
    k.close();
    expect(streams.every((s) => s.ended)).toBe(true);
  });

  it('reports a lease lost when etcd answers TTL 0, and stops renewing it', async () => {
    const { client, streams } = fakeClient();
    const k = new KeepAlives(client, clock);
    const lost: string[] = [];
    k.add('7', 3, (why) => lost.push(why));
    await advance(1100);
    streams[0].answer('7', 0);
    expect(lost).toEqual(['etcd says it expired or was revoked']);
    streams[0].written.length = 0;
    await advance(3000);
    expect(streams.flatMap((s) => s.written)).toEqual([]);
  });

  it('replaces a stream that stops answering, and reports a lease lost after twice the TTL without answers', async () => {
    const { client, streams } = fakeClient();
    const k = new KeepAlives(client, clock);
    const lost: string[] = [];
    k.add('1', 3, (why) => lost.push(why));
    await advance(1100); // the first renewal goes out and is never answered
    expect(streams).toHaveLength(1);
    await advance(1750);
    expect(streams[0].ended).toBe(true); // stalled: replaced
    await advance(200);
    expect(streams).toHaveLength(2); // renewed on a new stream at once
    expect(streams[1].written).toEqual(['1']);
    expect(lost).toEqual([]);
    await advance(3300); // over twice the TTL since the grant without an answer
    expect(lost).toEqual(['no renewal answered for 6 s (etcd unreachable); its keys have expired']);
  });

  // etcd answers a stream in order and holds a renewal of an expired lease until it has revoked
  // it: everything behind that renewal waits, and at 5,000 leases those expired in a cascade.
  it('moves the renewal a stalled stream is stuck on to a stream of its own, and renews the others on a new one', async () => {
    const { client, streams } = fakeClient();
    const k = new KeepAlives(client, clock);
    const lost: string[] = [];
    for (const id of ['1', '2', '3']) k.add(id, 3, (why) => lost.push(`${id}: ${why}`));
    await advance(1100);
    expect(streams[0].written).toEqual(['1', '2', '3']); // etcd is stuck on '1' and answers nothing
    await advance(1750);
    expect(streams[0].ended).toBe(true);
    await advance(200);
    const fresh = streams.slice(1).map((st) => st.written.join(',')).sort();
    expect(fresh).toEqual(['1', '2,3']);
    for (const st of streams.slice(1)) for (const id of st.written.splice(0)) if (id !== '1') st.answer(id);
    for (let i = 0; i < 4; i++) {
      await advance(1000);
      for (const st of streams.slice(1)) for (const id of st.written.splice(0)) if (id !== '1') st.answer(id);
    }
    expect(lost).toEqual(['1: no renewal answered for 6 s (etcd unreachable); its keys have expired']);
    k.close();
  });

  it('a removed lease is neither renewed nor reported lost', async () => {
    const { client, streams } = fakeClient();
    const k = new KeepAlives(client, clock);
    const lost: string[] = [];
    k.add('1', 3, (why) => lost.push(why));
    k.remove('1');
    await advance(5000);
    expect(streams.flatMap((s) => s.written)).toEqual([]);
    expect(lost).toEqual([]);
  });
});
