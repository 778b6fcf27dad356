/**
 * pkg/client/mesos-scheduler.ts against a tiny fake master written here from the Mesos docs
 * (RecordIO-framed JSON events on a chunked 200, Mesos-Stream-Id, 202 for calls, 307 from a
 * standby) — no Shoal server involved.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  MesosCallError, MesosScheduler, RecordIODecoder, resolveRedirect, scalarOf, schedulerUrl,
  type DisconnectedInfo, type MesosSchedulerError, type Offer, type SubscribedInfo, type TaskStatus,
} from '../../pkg/client/mesos-scheduler';
import { FakeClock } from '../../pkg/util/clock';

/** The test's own RecordIO framing (not the library's encoder). */
function frame(ev: unknown): Buffer {
  const data = Buffer.from(JSON.stringify(ev), 'utf8');
  return Buffer.concat([Buffer.from(`${data.length}\n`, 'ascii'), data]);
}

interface Received { headers: IncomingMessage['headers']; body: any; url: string }

class FakeMaster {
  server!: Server;
  port = 0;
  subscribes: Received[] = [];
  calls: Received[] = [];
  streams: ServerResponse[] = [];
  streamId = 'stream-1';
  frameworkId = 'fw-1';
  heartbeat: number | undefined = 15;
  /** Replaces the default SUBSCRIBE handling when set. */
  onSubscribe?: (req: IncomingMessage, res: ServerResponse, body: any) => boolean;
  callStatus = 202;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        const body = text ? JSON.parse(text) : undefined;
        const rec = { headers: req.headers, body, url: req.url ?? '' };
        if (body?.type === 'SUBSCRIBE') {
          this.subscribes.push(rec);
          if (this.onSubscribe?.(req, res, body)) return;
          res.writeHead(200, { 'Content-Type': 'application/json', 'Mesos-Stream-Id': this.streamId });
          res.flushHeaders();
          this.streams.push(res);
          const fw = body.subscribe.framework_info.id?.value ?? this.frameworkId;
          res.write(frame({ type: 'SUBSCRIBED', subscribed: { framework_id: { value: fw }, ...(this.heartbeat ? { heartbeat_interval_seconds: this.heartbeat } : {}) } }));
          return;
        }
        this.calls.push(rec);
        res.writeHead(this.callStatus, { 'Content-Type': 'text/plain' }).end(this.callStatus === 202 ? '' : 'nope');
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Writes raw bytes to the latest stream. */
  write(bytes: Buffer | string): void {
    this.streams[this.streams.length - 1].write(bytes);
  }

  async stop(): Promise<void> {
    for (const s of this.streams) s.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function once<T>(s: MesosScheduler, ev: 'subscribed' | 'offers' | 'update' | 'disconnected' | 'error' | 'rescind' | 'failure' | 'heartbeat'): Promise<T> {
  return new Promise((resolve) => s.once(ev as 'subscribed', ((x: unknown) => resolve(x as T)) as () => void));
}

/** One turn of the event loop: socket I/O of the fake master and the client gets through. */
const tick = () => new Promise<void>((r) => setImmediate(r));

/**
 * Until `fn` holds, letting I/O run; nothing waits on the wall clock. With `advance`, when the
 * loopback I/O has had its turns and `fn` still fails, the injected clock is stepped to its next
 * timer (a reconnection backoff, a heartbeat watchdog).
 */
async function until(what: string, fn: () => boolean, o: { advance?: boolean } = {}): Promise<void> {
  for (let turn = 0; !fn(); turn++) {
    if (turn > 200_000) throw new Error(`not reached: ${what}`);
    await tick();
    const next = clock.nextAt();
    if (o.advance && turn % 200 === 199 && next !== undefined) clock.step(next - clock.now());
  }
}

const info = { user: 'tester', name: 'unit', roles: ['batch'], failover_timeout: 60 };
let clock: FakeClock;
let masters: FakeMaster[] = [];
let scheds: MesosScheduler[] = [];

async function master(): Promise<FakeMaster> {
  const m = await new FakeMaster().start();
  masters.push(m);
  return m;
}
function scheduler(o: Partial<ConstructorParameters<typeof MesosScheduler>[0]> & { master: string | string[] }): MesosScheduler {
  const s = new MesosScheduler({ frameworkInfo: info, backoff: { initialMs: 20, maxMs: 100 }, clock, ...o });
  scheds.push(s);
  return s;
}

beforeEach(() => {
  clock = new FakeClock();
});

afterEach(async () => {
  scheds.forEach((s) => s.stop());
  await Promise.all(masters.map((m) => m.stop()));
  masters = [];
  scheds = [];
});

describe('RecordIODecoder', () => {
  const records = [{ type: 'SUBSCRIBED', subscribed: { framework_id: { value: 'x' } } }, { type: 'HEARTBEAT' }, { type: 'UPDATE', update: { status: { message: 'héllo ✓ 世界' } } }];
  const bytes = Buffer.concat(records.map(frame));

  test('decodes records split at every byte, including inside multi-byte characters and size lines', () => {
    const d = new RecordIODecoder();
    const out: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) out.push(...d.push(bytes.subarray(i, i + 1)));
    expect(out.map((b) => JSON.parse(b.toString('utf8')))).toEqual(records);
    expect(d.pending()).toBe(0);
  });

  test('decodes several records in one chunk and at arbitrary split points', () => {
    for (const cut of [1, 3, 7, 50, bytes.length - 1]) {
      const d = new RecordIODecoder();
      const out = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
      expect(out.map((b) => JSON.parse(b.toString()))).toEqual(records);
    }
  });

  test('the size counts bytes, not characters', () => {
    const d = new RecordIODecoder();
    const data = Buffer.from('"ü"');
    expect(data.length).toBe(4);
    expect(d.push(`4\n"ü"2\n{}`).map(String)).toEqual(['"ü"', '{}']);
  });

  test('skips empty lines between records, rejects a non-numeric size', () => {
    expect(new RecordIODecoder().push('\n2\n{}\n2\n[]').map(String)).toEqual(['{}', '[]']);
    expect(() => new RecordIODecoder().push('abc\n{}')).toThrow(/bad record size/);
    expect(() => new RecordIODecoder(10).push('11\n')).toThrow(/larger/);
  });
});

describe('URLs', () => {
  test('master addresses and redirect locations', () => {
    expect(schedulerUrl('127.0.0.1:5050')).toBe('http://127.0.0.1:5050/api/v1/scheduler');
    expect(schedulerUrl('http://m:5050/api/v1/scheduler')).toBe('http://m:5050/api/v1/scheduler');
    expect(resolveRedirect('http://a:1/api/v1/scheduler', '//b:2/api/v1/scheduler')).toBe('http://b:2/api/v1/scheduler');
    expect(resolveRedirect('http://a:1/api/v1/scheduler', 'b:2')).toBe('http://b:2/api/v1/scheduler');
    expect(resolveRedirect('https://a:1/api/v1/scheduler', 'http://b:2/api/v1/scheduler')).toBe('http://b:2/api/v1/scheduler');
  });
});

describe('MesosScheduler', () => {
  test('subscribes, decodes events across chunk boundaries and sends calls with Mesos-Stream-Id and framework_id', async () => {
    const m = await master();
    const s = scheduler({ master: m.url, auth: { bearer: 'tok' } });
    const subscribed = once<SubscribedInfo>(s, 'subscribed');
    s.start();
    const sub = await subscribed;
    expect(sub).toMatchObject({ frameworkId: 'fw-1', streamId: 'stream-1', heartbeatIntervalSeconds: 15, failover: false });
    expect(s.streamId).toBe('stream-1');
    const req = m.subscribes[0];
    expect(req.url).toBe('/api/v1/scheduler');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers.accept).toBe('application/json');
    expect(req.headers.authorization).toBe('Bearer tok');
    expect(req.headers['mesos-stream-id']).toBeUndefined();
    expect(req.body).toEqual({ type: 'SUBSCRIBE', subscribe: { framework_info: info } });

    const offer: Offer = {
      id: { value: 'o1' }, framework_id: { value: 'fw-1' }, agent_id: { value: 'a1' }, hostname: 'h1',
      resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 2 } }, { name: 'mem', type: 'SCALAR', scalar: { value: 512 } }],
    };
    const status: TaskStatus = { task_id: { value: 't1' }, state: 'TASK_RUNNING', agent_id: { value: 'a1' }, uuid: 'dXVpZA==', source: 'SOURCE_EXECUTOR' };
    const offers: Offer[][] = [];
    const updates: TaskStatus[] = [];
    const rescinds: string[] = [];
    let heartbeats = 0;
    const failures: unknown[] = [];
    s.on('offers', (o) => offers.push(o));
    s.on('update', (u) => updates.push(u));
    s.on('rescind', (r) => rescinds.push(r));
    s.on('heartbeat', () => heartbeats++);
    s.on('failure', (f) => failures.push(f));
    const stream = Buffer.concat([
      frame({ type: 'HEARTBEAT' }),
      frame({ type: 'OFFERS', offers: { offers: [offer] } }),
      frame({ type: 'UPDATE', update: { status } }),
      frame({ type: 'RESCIND', rescind: { offer_id: { value: 'o1' } } }),
      frame({ type: 'FAILURE', failure: { agent_id: { value: 'a1' } } }),
      frame({ type: 'SOMETHING_NEW' }),
    ]);
    // Uneven writes, flushed separately, so the client sees records cut in the middle.
    for (let i = 0; i < stream.length; i += 37) {
      m.write(stream.subarray(i, i + 37));
      await tick();
    }
    await until('all events', () => failures.length === 1);
    expect(heartbeats).toBe(1);
    expect(offers).toEqual([[offer]]);
    expect(scalarOf(offers[0][0].resources, 'cpus')).toBe(2);
    expect(updates).toEqual([status]);
    expect(rescinds).toEqual(['o1']);

    const task = { name: 't1', task_id: { value: 't1' }, agent_id: { value: 'a1' }, resources: offer.resources, command: { value: 'true', shell: true } };
    await s.accept(['o1'], [task], { refuse_seconds: 1 });
    await s.decline(['o2'], { refuse_seconds: 30 });
    await s.acknowledge(status);
    await s.acknowledge({ ...status, uuid: undefined }); // no uuid: nothing sent
    await s.reconcile([{ taskId: 't1', agentId: 'a1' }, { taskId: 't2' }]);
    await s.reconcile();
    await s.kill('t1', 'a1');
    await s.revive();
    await s.suppress(['batch']);
    expect(m.calls.map((c) => c.headers['mesos-stream-id'])).toEqual(Array(8).fill('stream-1'));
    expect(m.calls.every((c) => c.headers.authorization === 'Bearer tok' && c.headers['content-type'] === 'application/json' && c.url === '/api/v1/scheduler')).toBe(true);
    expect(m.calls.map((c) => c.body)).toEqual([
      { framework_id: { value: 'fw-1' }, type: 'ACCEPT', accept: { offer_ids: [{ value: 'o1' }], operations: [{ type: 'LAUNCH', launch: { task_infos: [task] } }], filters: { refuse_seconds: 1 } } },
      { framework_id: { value: 'fw-1' }, type: 'DECLINE', decline: { offer_ids: [{ value: 'o2' }], filters: { refuse_seconds: 30 } } },
      { framework_id: { value: 'fw-1' }, type: 'ACKNOWLEDGE', acknowledge: { agent_id: { value: 'a1' }, task_id: { value: 't1' }, uuid: 'dXVpZA==' } },
      { framework_id: { value: 'fw-1' }, type: 'RECONCILE', reconcile: { tasks: [{ task_id: { value: 't1' }, agent_id: { value: 'a1' } }, { task_id: { value: 't2' } }] } },
      { framework_id: { value: 'fw-1' }, type: 'RECONCILE', reconcile: { tasks: [] } },
      { framework_id: { value: 'fw-1' }, type: 'KILL', kill: { task_id: { value: 't1' }, agent_id: { value: 'a1' } } },
      { framework_id: { value: 'fw-1' }, type: 'REVIVE' },
      { framework_id: { value: 'fw-1' }, type: 'SUPPRESS', suppress: { roles: ['batch'] } },
    ]);

    m.callStatus = 400;
    await expect(s.kill('t9')).rejects.toThrow(MesosCallError);
    await expect(s.kill('t9')).rejects.toMatchObject({ status: 400, body: 'nope', callType: 'KILL' });
    m.callStatus = 202;

    const gone = once<DisconnectedInfo>(s, 'disconnected');
    await s.teardown();
    expect(m.calls[m.calls.length - 1].body).toEqual({ framework_id: { value: 'fw-1' }, type: 'TEARDOWN' });
    expect(await gone).toMatchObject({ willReconnect: false });
    await expect(s.revive()).rejects.toThrow(/not subscribed/);
  });

  test('calls before SUBSCRIBED fail locally; HTTP Basic carries principal and secret', async () => {
    const m = await master();
    const s = scheduler({ master: m.url, auth: { principal: 'alice', secret: 's3cret' } });
    await expect(s.revive()).rejects.toThrow(/not subscribed/);
    const subscribed = once(s, 'subscribed');
    s.start();
    await subscribed;
    expect(m.subscribes[0].headers.authorization).toBe(`Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
    expect(m.subscribes[0].body.subscribe.framework_info.principal).toBe('alice');
  });

  test('follows a 307 from a standby to the leader, for SUBSCRIBE and for calls', async () => {
    const leader = await master();
    const standby = await master();
    standby.onSubscribe = (_req, res) => {
      res.writeHead(307, { Location: `//127.0.0.1:${leader.port}/api/v1/scheduler` }).end();
      return true;
    };
    const s = scheduler({ master: standby.url });
    const subscribed = once<SubscribedInfo>(s, 'subscribed');
    s.start();
    const sub = await subscribed;
    expect(sub.master).toBe(`http://127.0.0.1:${leader.port}/api/v1/scheduler`);
    expect(standby.subscribes).toHaveLength(1);
    expect(leader.subscribes).toHaveLength(1);
    expect(leader.subscribes[0].body).toEqual(standby.subscribes[0].body); // 307 keeps method and body
    await s.revive();
    expect(leader.calls).toHaveLength(1);
    expect(standby.calls).toHaveLength(0);
  });

  test('a dropped stream: reconnects with backoff and re-subscribes as the same framework (failover)', async () => {
    const m = await master();
    const s = scheduler({ master: m.url });
    const subs: SubscribedInfo[] = [];
    const drops: DisconnectedInfo[] = [];
    s.on('subscribed', (x) => subs.push(x));
    s.on('disconnected', (d) => drops.push(d));
    s.start();
    await until('subscribed', () => subs.length === 1);
    m.streamId = 'stream-2';
    m.streams[0].destroy(); // the connection breaks
    await until('re-subscribed', () => subs.length === 2, { advance: true });
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({ willReconnect: true });
    expect(drops[0].retryInMs).toBeGreaterThanOrEqual(10);
    expect(drops[0].retryInMs).toBeLessThanOrEqual(20);
    expect(m.subscribes[1].body).toEqual({
      type: 'SUBSCRIBE', framework_id: { value: 'fw-1' }, subscribe: { framework_info: { ...info, id: { value: 'fw-1' } } },
    });
    expect(subs[1]).toMatchObject({ frameworkId: 'fw-1', streamId: 'stream-2', failover: true });
    await s.revive();
    expect(m.calls[0].headers['mesos-stream-id']).toBe('stream-2');

    // A stream the master ends cleanly is a disconnection too.
    m.streams[1].end();
    await until('re-subscribed again', () => subs.length === 3, { advance: true });
  });

  test('retries while the master is unreachable or answers 503, backing off', async () => {
    const m = await master();
    let refusals = 2;
    m.onSubscribe = (_req, res) => {
      if (refusals-- <= 0) return false;
      res.writeHead(503).end('no leader yet');
      return true;
    };
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const s = scheduler({ master: [`http://127.0.0.1:${deadPort}`, m.url] }); // the first master is unreachable
    const drops: DisconnectedInfo[] = [];
    s.on('disconnected', (d) => drops.push(d));
    let subscribed = false;
    s.once('subscribed', () => (subscribed = true));
    s.start();
    await until('subscribed after the refusals', () => subscribed, { advance: true });
    expect(drops.length).toBeGreaterThanOrEqual(3);
    expect(drops.map((d) => d.reason).join('|')).toMatch(/503/);
    expect(drops.every((d) => d.willReconnect)).toBe(true);
  });

  test('no event for 5 × heartbeat_interval_seconds: closes the stream and re-subscribes', async () => {
    const m = await master();
    m.heartbeat = 0.04; // 200 ms without events is a partition
    const s = scheduler({ master: m.url });
    const subs: number[] = [];
    const drops: DisconnectedInfo[] = [];
    let beats = 0;
    s.on('subscribed', () => subs.push(clock.now()));
    s.on('disconnected', (d) => drops.push(d));
    s.on('heartbeat', () => beats++);
    s.start();
    await until('subscribed', () => subs.length === 1);
    // Heartbeats in time keep it: 100 ms apart, each within the 200 ms watchdog.
    for (let i = 1; i <= 5; i++) {
      clock.step(100);
      m.write(frame({ type: 'HEARTBEAT' }));
      await until(`heartbeat ${i}`, () => beats === i);
    }
    expect(drops).toHaveLength(0);
    clock.step(199);
    expect(drops).toHaveLength(0);
    clock.step(1); // 200 ms of silence since the last heartbeat
    expect(drops).toHaveLength(1);
    expect(drops[0].reason).toMatch(/missed heartbeats/);
    await until('re-subscribed after silence', () => subs.length === 2, { advance: true });
    expect(subs[1] - subs[0]).toBeGreaterThanOrEqual(500 + 200 + 10); // + the backoff (10-20 ms)
    expect(m.subscribes[1].body.subscribe.framework_info.id).toEqual({ value: 'fw-1' });
  });

  test('a rejected SUBSCRIBE (4xx) and an ERROR event stop it and emit error', async () => {
    const m = await master();
    m.onSubscribe = (_req, res) => {
      res.writeHead(401, { 'Content-Type': 'text/plain' }).end('Unauthorized');
      return true;
    };
    const s = scheduler({ master: m.url });
    const err = once<MesosSchedulerError>(s, 'error');
    s.start();
    expect(await err).toMatchObject({ kind: 'subscribe', status: 401 });
    expect(clock.pending()).toBe(0); // no reconnection scheduled, ever
    expect(m.subscribes).toHaveLength(1);

    const m2 = await master();
    const s2 = scheduler({ master: m2.url });
    const subscribed = once(s2, 'subscribed');
    s2.start();
    await subscribed;
    const err2 = once<MesosSchedulerError>(s2, 'error');
    const gone = once<DisconnectedInfo>(s2, 'disconnected');
    m2.write(frame({ type: 'ERROR', error: { message: 'Framework failed over' } }));
    expect(await err2).toMatchObject({ kind: 'event', message: 'Framework failed over' });
    expect(await gone).toMatchObject({ willReconnect: false });
    expect(clock.pending()).toBe(0);
    expect(m2.subscribes).toHaveLength(1);
  });

  test('TEARDOWN: the master ending the stream (even with an ERROR) before its 202 is neither an error nor a reason to reconnect', async () => {
    const m = await master();
    const s = scheduler({ master: m.url });
    const subscribed = once(s, 'subscribed');
    s.start();
    await subscribed;
    const errors: unknown[] = [];
    s.on('error', (e) => errors.push(e));
    // The fake master answers TEARDOWN late, after removing the framework from the stream.
    m.callStatus = 202;
    const origWrite = m.write.bind(m);
    m.server.prependListener('request', (req) => {
      req.on('end', () => {
        origWrite(frame({ type: 'ERROR', error: { message: 'Framework removed' } }));
        m.streams[0].end();
      });
    });
    await s.teardown();
    await until('the stream ended on the client', () => !s.subscribed);
    for (let i = 0; i < 100; i++) await tick(); // a late ERROR or end of stream, if any, arrives
    expect(clock.pending()).toBe(0); // no reconnection scheduled
    expect(errors).toEqual([]);
    expect(m.subscribes).toHaveLength(1);
    expect(s.frameworkId).toBeUndefined();
  });

  test('given a framework id, the first SUBSCRIBE already fails over', async () => {
    const m = await master();
    const s = scheduler({ master: m.url, frameworkId: 'fw-old' });
    const subscribed = once<SubscribedInfo>(s, 'subscribed');
    s.start();
    expect(await subscribed).toMatchObject({ frameworkId: 'fw-old', failover: true });
    expect(m.subscribes[0].body.framework_id).toEqual({ value: 'fw-old' });
  });
});
