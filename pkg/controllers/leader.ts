/**
 * Leader election for the controller-manager on etcd: the leader is whoever created the
 * leader key, attached to its own lease. Every write the leader makes compares that key's mod
 * revision (the Fence), so a leader that was paused past its lease can never write after
 * another took over: its transactions simply fail.
 */
import type { Logger } from 'pino';
import { AlreadyExistsError } from '../store/errors';
import { leaderKey } from '../store/objects';
import type { Fence, Lease, Store, Watch } from '../store/types';
import { realClock, type Clock } from '../util/clock';

export type { Fence } from '../store/types';

export interface LeaderElectorOptions {
  store: Store;
  prefix: string;
  /** Who we are (host/pid), stored in the key for operators. */
  identity: string;
  /** Lease TTL: how long a dead leader holds the key. @default 5 */
  ttlSeconds?: number;
  logger: Logger;
  /** Time of `since` and of the wait between campaigns. @default realClock */
  clock?: Clock;
}

export interface LeaderCallbacks {
  /** Called on winning, with the fence for every write; `signal` aborts when leadership ends. */
  onStartedLeading(fence: Fence, signal: AbortSignal): void | Promise<void>;
  onStoppedLeading?(): void;
}

/** Campaigns until stop(); leads while its lease lives. */
export class LeaderElector {
  private stopped = false;
  private lease?: Lease;
  private leading?: AbortController;
  private wake?: () => void;
  private readonly clock: Clock;

  constructor(private readonly o: LeaderElectorOptions) {
    this.clock = o.clock ?? realClock;
  }

  /** Campaigns in the background until stop(). */
  run(cb: LeaderCallbacks): void {
    void this.loop(cb);
  }

  isLeader(): boolean {
    return !!this.leading && !this.leading.signal.aborted;
  }

  /** Gives up leadership at once (revokes the lease, so a successor takes over immediately). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.leading?.abort();
    await this.lease?.revoke().catch(() => undefined);
  }

  private async loop(cb: LeaderCallbacks): Promise<void> {
    const key = leaderKey(this.o.prefix);
    while (!this.stopped) {
      try {
        const lost = new AbortController();
        let why = '';
        this.lease = await this.o.store.lease(this.o.ttlSeconds ?? 5, (err) => {
          why = err.message;
          lost.abort();
        });
        const rev = await this.o.store.create(key, JSON.stringify({ identity: this.o.identity, since: this.clock.date().toISOString() }), { leaseId: this.lease.id });
        this.leading = lost;
        this.o.logger.info({ identity: this.o.identity, revision: rev }, 'became leader');
        await cb.onStartedLeading({ key, modRevision: rev }, lost.signal);
        await new Promise<void>((resolve) => (lost.signal.aborted ? resolve() : lost.signal.addEventListener('abort', () => resolve())));
        this.o.logger.warn({ identity: this.o.identity, why: why || 'stopped' }, 'lost leadership');
        cb.onStoppedLeading?.();
      } catch (err) {
        await this.lease?.revoke().catch(() => undefined);
        if (!(err instanceof AlreadyExistsError)) this.o.logger.warn({ err: (err as Error).message }, 'election attempt failed');
        await this.waitForVacancy(key);
      }
    }
  }

  /** Waits until the leader key is deleted (its owner stopped or died), or 2 s pass. */
  private async waitForVacancy(key: string): Promise<void> {
    let watch: Watch | undefined;
    await new Promise<void>((resolve) => {
      const timer = this.clock.setTimeout(resolve, 2000);
      this.wake = () => {
        this.clock.clearTimeout(timer);
        resolve();
      };
      this.o.store.revision()
        .then((rev) => this.o.store.watch(key, {
          afterRevision: rev,
          onEvents: (evs) => evs.some((e) => e.type === 'delete' && e.key === key) && this.wake?.(),
          onError: () => this.wake?.(),
        }))
        .then((w) => (watch = w), () => undefined);
    });
    await watch?.cancel();
  }
}
