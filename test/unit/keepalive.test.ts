/**
 * KeepAlives against a fake etcd lease client: renewals every TTL/3 over shared streams of at
 * most 100 leases, losses on a TTL-0 answer or two TTLs without answers, and a stalled stream
 * replaced by a fresh one.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { KeepAlives, LEASES_PER_STREAM } from '../../pkg/store/etcd-keepalive';

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
  answer(id: string, ttl = 10): void {
    this.emit('data', { ID: id, TTL: String(ttl) });
  }
}

function fakeClient() {
  const streams: FakeStream[] = [];
  const client = { leaseClient: { leaseKeepAlive: async () => { const s = new FakeStream(); streams.push(s); return s; } } } as unknown as Etcd3;
  return { client, streams };
}

/** Advances fake time in small steps so intervals and promise callbacks interleave as in real time. */
async function advance(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    jest.advanceTimersByTime(50);
    await Promise.resolve();
    await Promise.resolve();
  }
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

describe('KeepAlives', () => {
  it('renews every TTL/3 over one stream and keeps a lease that etcd answers', async () => {
    const { client, streams } = fakeClient();
    const k = new KeepAlives(client);
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

  it('spreads leases over streams of at most 100', async () => {
    const { client, streams } = fakeClient();
    const k = new KeepAlives(client);
    for (let i = 0; i < 2 * LEASES_PER_STREAM + 1; i++) k.add(String(i), 3, () => undefined);
    await advance(1100);
    expect(streams).toHaveLength(3);
    expect(streams.map((s) => s.written.length).sort((a, b) => a - b)).toEqual([1, LEASES_PER_STREAM, LEASES_PER_STREAM]);
    k.close();
    expect(streams.every((s) => s.ended)).toBe(true);
  });

  it('reports a lease lost when etcd answers TTL 0, and stops renewing it', async () => {
    const { client, streams } = fakeClient();
    const k = new KeepAlives(client);
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
    const k = new KeepAlives(client);
    const lost: string[] = [];
    k.add('1', 3, (why) => lost.push(why));
    await advance(1100); // the first renewal goes out and is never answered
    expect(streams).toHaveLength(1);
    await advance(1750);
    expect(streams[0].ended).toBe(true); // stalled: replaced
    await advance(200);
    expect(streams.length).toBeGreaterThanOrEqual(2); // renewed on a new stream at once
    expect(streams[1].written).toEqual(['1']);
    expect(lost).toEqual([]);
    await advance(3300); // over twice the TTL since the grant without an answer
    expect(lost).toEqual(['no renewal answered for 6 s (etcd unreachable); its keys have expired']);
  });

  it('a removed lease is neither renewed nor reported lost', async () => {
    const { client, streams } = fakeClient();
    const k = new KeepAlives(client);
    const lost: string[] = [];
    k.add('1', 3, (why) => lost.push(why));
    k.remove('1');
    await advance(5000);
    expect(streams.flatMap((s) => s.written)).toEqual([]);
    expect(lost).toEqual([]);
  });
});
