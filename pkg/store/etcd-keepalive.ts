/**
 * Keeps many etcd leases alive over a few shared LeaseKeepAlive streams, as etcd's Go client
 * multiplexes its leases. The etcd3 client's Lease opens a gRPC stream, an interval and a
 * debounce timer per lease: fine for a leader's one lease, but a process hosting thousands of
 * agents (each with its own lease) then spends more on the streams than on the renewals.
 *
 * etcd answers the renewals of one stream in order. Each waits until etcd's apply has caught up
 * with its commit (etcd fails the stream after 1 s of that: keep etcd's apply backlog short, see
 * the binder), and a renewal of a lease that has just expired waits until etcd has revoked it
 * (through raft, seconds under load): one such renewal holds up every renewal behind it on its
 * stream, which then expire too. So leases are spread over streams of at most
 * {@link LEASES_PER_STREAM}; a stream that answers nothing for {@link STALL_MS} while renewals
 * wait is replaced by a fresh one, and the renewal at the head of its queue (the one etcd is
 * stuck on) moves to a stream of its own. (One agent per process, as in production, is the same
 * thing: its lease alone on its stream.) A lease has at most one renewal waiting in etcd.
 *
 * Each lease is renewed every TTL/3. It is lost when etcd answers a renewal with TTL 0 (expired
 * or revoked: etcd's word), or when no renewal was answered for twice the TTL (etcd unreachable,
 * as etcd3's own Lease concludes). A renewal answered late is not a loss: a busy etcd can take
 * seconds to answer while the lease is still alive, and whoever relies on the lease for safety
 * fences its writes on the lease's key, not on this belief.
 */
import type { Etcd3, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse, IDuplexStream } from 'etcd3';
import { realClock, type Clock, type TimerHandle } from '../util/clock';

/** How often due renewals are looked for; a renewal goes out at most this late. */
const TICK_MS = 250;
/** Leases per keep-alive stream: what one stuck renewal can hold up. */
export const LEASES_PER_STREAM = 100;
/** A stream with renewals outstanding that answers nothing for this long is replaced. */
const STALL_MS = 1500;

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

interface Kept {
  id: string;
  ttlMs: number;
  /** When etcd last confirmed it (or when it was granted). */
  renewedAt: number;
  /** When the next renewal is due. */
  dueAt: number;
  /** When the renewal now unanswered was written. */
  sentAt?: number;
  lane: Lane;
  onLost(why: string): void;
}

/** One stream and the leases renewed over it. */
interface Lane {
  leases: Set<string>;
  /** A lane for one suspect lease: nothing else is added to it. */
  solo: boolean;
  /** Leases whose renewals on this stream are unanswered, in the order written (etcd answers in order). */
  waiting: string[];
  stream?: KeepAliveStream;
  opening?: Promise<KeepAliveStream>;
  /** When this stream last answered (or its first unanswered renewal went out). */
  answeredAt: number;
}

export class KeepAlives {
  private readonly leases = new Map<string, Kept>();
  private readonly lanes: Lane[] = [];
  private timer?: TimerHandle;
  private closed = false;

  /** `observe` gets the seconds from each renewal's write to etcd's answer. */
  constructor(private readonly client: Etcd3, private readonly clock: Clock = realClock, private readonly observe?: (seconds: number) => void) {}

  private now(): number {
    return this.clock.now();
  }

  /** Starts renewing a lease granted just now; `onLost` is called once if it is lost (not after remove()). */
  add(id: string, ttlSeconds: number, onLost: (why: string) => void): void {
    if (this.closed) return;
    const now = this.now();
    const lane = this.lanes.find((l) => !l.solo && l.leases.size < LEASES_PER_STREAM) ?? this.newLane(false);
    lane.leases.add(id);
    this.leases.set(id, { id, ttlMs: ttlSeconds * 1000, renewedAt: now, dueAt: now + (ttlSeconds * 1000) / 3, lane, onLost });
    if (!this.timer) {
      this.timer = this.clock.setInterval(() => this.tick(), TICK_MS);
      this.timer.unref();
    }
  }

  /** Stops renewing a lease (revoked or released by its holder). */
  remove(id: string): void {
    const k = this.leases.get(id);
    if (!k) return;
    this.leases.delete(id);
    k.lane.leases.delete(id);
    if (k.lane.leases.size === 0) this.closeLane(k.lane);
  }

  /** Stops renewing everything, without a loss reported. */
  close(): void {
    this.closed = true;
    this.leases.clear();
    for (const lane of [...this.lanes]) this.closeLane(lane);
  }

  private newLane(solo: boolean): Lane {
    const lane: Lane = { leases: new Set(), solo, waiting: [], answeredAt: this.now() };
    this.lanes.push(lane);
    return lane;
  }

  private closeLane(lane: Lane): void {
    this.lanes.splice(this.lanes.indexOf(lane), 1);
    lane.stream?.end();
    lane.stream = undefined;
    if (this.lanes.length === 0 && this.timer) {
      this.clock.clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private tick(): void {
    const now = this.now();
    const due = new Map<Lane, string[]>();
    for (const k of [...this.leases.values()]) {
      if (now - k.renewedAt > 2 * k.ttlMs) this.lose(k, `no renewal answered for ${(2 * k.ttlMs) / 1000} s (etcd unreachable); its keys have expired`);
      else if (now >= k.dueAt && k.sentAt === undefined) {
        // At most one renewal per lease waits in etcd: etcd answers a stream in order, so a second
        // one behind it adds load exactly when etcd is already slow, and confirms nothing sooner.
        k.dueAt = now + k.ttlMs / 3;
        const list = due.get(k.lane);
        if (list) list.push(k.id);
        else due.set(k.lane, [k.id]);
      }
    }
    for (const lane of this.lanes) {
      if (lane.stream && lane.waiting.length > 0 && now - lane.answeredAt > STALL_MS) this.replaceStream(lane);
    }
    for (const [lane, ids] of due) void this.send(lane, ids);
  }

  private async send(lane: Lane, ids: string[]): Promise<void> {
    try {
      const stream = await this.open(lane);
      for (const id of ids) {
        if (!lane.leases.has(id)) continue;
        if (lane.waiting.length === 0) lane.answeredAt = this.now(); // the stall clock starts with the first wait
        lane.waiting.push(id);
        const k = this.leases.get(id);
        if (k && k.sentAt === undefined) k.sentAt = this.now();
        stream.write({ ID: id });
      }
    } catch {
      // No stream now: due again soon; a long outage ends in a loss.
      for (const id of ids) {
        const k = this.leases.get(id);
        if (k) k.dueAt = this.now() + TICK_MS * 4;
      }
    }
  }

  private open(lane: Lane): Promise<KeepAliveStream> {
    if (lane.stream) return Promise.resolve(lane.stream);
    lane.opening ??= this.client.leaseClient.leaseKeepAlive().then((stream) => {
      stream.on('data', (res: ILeaseKeepAliveResponse) => this.answered(lane, stream, res));
      stream.on('error', () => this.dropped(lane, stream));
      stream.on('end', () => this.dropped(lane, stream));
      if (this.closed || !this.lanes.includes(lane)) stream.end();
      else {
        lane.stream = stream;
        lane.waiting = [];
        lane.answeredAt = this.now();
      }
      return stream;
    }).finally(() => (lane.opening = undefined));
    return lane.opening;
  }

  /**
   * The stream is stuck behind a slow renewal: that lease moves to a stream of its own, the
   * others are renewed on a new one.
   */
  private replaceStream(lane: Lane): void {
    const stuck = lane.stream;
    lane.stream = undefined;
    // Cancelled, etcd drops the renewals still queued on it (they are sent again on the new one).
    // Ended first: etcd3 resets the whole connection on a cancelled stream that is still writable.
    stuck?.end();
    stuck?.cancel();
    const head = lane.waiting.find((id) => lane.leases.has(id));
    const suspect = head === undefined || lane.solo ? undefined : this.leases.get(head);
    if (suspect) this.renewSoon(this.isolate(suspect));
    if (lane.leases.size > 0) this.renewSoon(lane);
  }

  /** Moves a lease to a lane of its own, where a renewal that etcd holds up delays nothing else. */
  private isolate(k: Kept): Lane {
    const from = k.lane;
    from.leases.delete(k.id);
    const solo = this.newLane(true);
    solo.leases.add(k.id);
    k.lane = solo;
    if (from.leases.size === 0) this.closeLane(from);
    return solo;
  }

  /** The stream broke (etcd restarted, connection lost): renew its leases as soon as a new one opens. */
  private dropped(lane: Lane, stream: KeepAliveStream): void {
    if (lane.stream !== stream) return;
    lane.stream = undefined;
    this.renewSoon(lane);
  }

  /** The lane's stream is gone, with the renewals waiting on it: renew its leases on the next one. */
  private renewSoon(lane: Lane): void {
    const soon = this.now() + TICK_MS;
    for (const id of lane.leases) {
      const k = this.leases.get(id);
      if (!k) continue;
      k.dueAt = Math.min(k.dueAt, soon);
      k.sentAt = undefined;
    }
  }

  private answered(lane: Lane, stream: KeepAliveStream, res: ILeaseKeepAliveResponse): void {
    if (lane.stream === stream) {
      lane.answeredAt = this.now();
      const at = lane.waiting.indexOf(String(res.ID));
      if (at >= 0) lane.waiting.splice(0, at + 1);
    } // a replaced stream's late answer still tells what etcd did with that renewal
    const k = this.leases.get(String(res.ID));
    if (!k) return;
    const now = this.now();
    if (k.sentAt !== undefined) this.observe?.((now - k.sentAt) / 1000);
    k.sentAt = undefined;
    if (Number(res.TTL) <= 0) this.lose(k, 'etcd says it expired or was revoked');
    else k.renewedAt = now;
  }

  private lose(k: Kept, why: string): void {
    this.remove(k.id);
    k.onLost(why);
  }
}
