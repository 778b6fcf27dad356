/**
 * Keeps many etcd leases alive over ONE LeaseKeepAlive stream, as etcd's Go client does. The
 * etcd3 client's Lease opens a gRPC stream, an interval and a debounce timer per lease: fine for
 * a leader's one lease, but a process hosting thousands of agents (each with its own lease)
 * then spends more on the streams than on the renewals.
 *
 * Each lease is renewed every TTL/3. It is lost when etcd answers a renewal with TTL 0 (expired
 * or revoked: authoritative), or when no renewal was answered for twice the TTL (etcd
 * unreachable: its keys have expired by then, as etcd3's Lease also concludes).
 */
import type { Etcd3, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse, IDuplexStream } from 'etcd3';

/** How often due renewals are looked for; a renewal goes out at most this late. */
const TICK_MS = 250;

interface Kept {
  id: string;
  ttlMs: number;
  /** When etcd last confirmed it (or when it was granted). */
  renewedAt: number;
  /** When the next renewal is due. */
  dueAt: number;
  onLost(why: string): void;
}

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

export class KeepAlives {
  private readonly leases = new Map<string, Kept>();
  private stream?: KeepAliveStream;
  private opening?: Promise<KeepAliveStream>;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly client: Etcd3, private readonly now: () => number = Date.now) {}

  /** Starts renewing a lease granted just now; `onLost` is called once if it is lost (not after remove()). */
  add(id: string, ttlSeconds: number, onLost: (why: string) => void): void {
    if (this.closed) return;
    const now = this.now();
    this.leases.set(id, { id, ttlMs: ttlSeconds * 1000, renewedAt: now, dueAt: now + (ttlSeconds * 1000) / 3, onLost });
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), TICK_MS);
      this.timer.unref();
    }
  }

  /** Stops renewing a lease (revoked or released by its holder). */
  remove(id: string): void {
    this.leases.delete(id);
    if (this.leases.size === 0) this.idle();
  }

  /** Stops renewing everything, without a loss reported. */
  close(): void {
    this.closed = true;
    this.leases.clear();
    this.idle();
  }

  private idle(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const stream = this.stream;
    this.stream = undefined;
    stream?.end();
  }

  private tick(): void {
    const now = this.now();
    const due: string[] = [];
    for (const k of this.leases.values()) {
      if (now - k.renewedAt > 2 * k.ttlMs) this.lose(k, `no renewal answered for ${(2 * k.ttlMs) / 1000} s (etcd unreachable); its keys have expired`);
      else if (now >= k.dueAt) {
        due.push(k.id);
        k.dueAt = now + k.ttlMs / 3;
      }
    }
    if (due.length > 0) void this.send(due);
  }

  private async send(ids: string[]): Promise<void> {
    try {
      const stream = await this.open();
      for (const id of ids) if (this.leases.has(id)) stream.write({ ID: id });
    } catch {
      // No stream now: the renewals are due again next round, and a long outage ends in a loss.
      for (const id of ids) {
        const k = this.leases.get(id);
        if (k) k.dueAt = this.now() + TICK_MS * 4;
      }
    }
  }

  private open(): Promise<KeepAliveStream> {
    if (this.stream) return Promise.resolve(this.stream);
    this.opening ??= this.client.leaseClient.leaseKeepAlive().then((stream) => {
      stream.on('data', (res: ILeaseKeepAliveResponse) => this.answered(res));
      stream.on('error', () => this.dropped(stream));
      stream.on('end', () => this.dropped(stream));
      if (this.closed || this.leases.size === 0) stream.end();
      else this.stream = stream;
      return stream;
    }).finally(() => (this.opening = undefined));
    return this.opening;
  }

  /** The stream broke (etcd restarted, connection lost): renew everything as soon as a new one opens. */
  private dropped(stream: KeepAliveStream): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    const now = this.now();
    for (const k of this.leases.values()) k.dueAt = Math.min(k.dueAt, now + TICK_MS);
  }

  private answered(res: ILeaseKeepAliveResponse): void {
    const k = this.leases.get(String(res.ID));
    if (!k) return;
    if (Number(res.TTL) <= 0) this.lose(k, 'etcd says it expired or was revoked');
    else k.renewedAt = this.now();
  }

  private lose(k: Kept, why: string): void {
    this.leases.delete(k.id);
    k.onLost(why);
    if (this.leases.size === 0) this.idle();
  }
}
