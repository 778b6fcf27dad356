/**
 * Where an agent gets its lease. By default each agent has its own (Store.lease: one etcd
 * keep-alive stream and timer per agent). A host of thousands of hollow agents can share ONE
 * lease instead (kubemark-style): each agent still writes its own lease KEY attached to it, so
 * the binder and node lifecycle see per-agent keys, but keep-alive costs one stream per process.
 */
import type { Logger } from 'pino';
import { LeaseLostError } from '../store/errors';
import type { Lease, Store } from '../store/types';
import { errorMessage } from '../util/backoff';

/** A lease as an agent holds it. */
export interface AgentLease extends Lease {
  /**
   * True when other agents hold the same lease: revoke() and release() then only let go of it,
   * so a stopping agent must delete its own key, and a crashed one's key lives on with the host.
   */
  readonly shared?: boolean;
}

/** Grants an agent a lease kept alive until revoke()/release(); onLost as in Store.lease. */
export type LeaseProvider = (ttlSeconds: number, onLost: (err: Error) => void) => Promise<AgentLease>;

/** One lease per agent: Store.lease as it is. */
export function perAgentLeases(store: Store): LeaseProvider {
  return (ttl, onLost) => store.lease(ttl, onLost);
}

interface Generation {
  lease: Promise<Lease>;
  holders: Set<(err: Error) => void>;
  lost: boolean;
}

/**
 * One store lease shared by many agents. When it is lost every holder hears it (and re-registers,
 * which grants the next shared lease once for all of them). Grants are coalesced: a thousand
 * agents starting together cause one grant.
 */
export class SharedLease {
  private current?: Generation;
  private closed = false;

  constructor(private readonly store: Store, private readonly ttlSeconds: number, private readonly logger: Logger) {}

  /** A LeaseProvider handing out this shared lease (its TTL wins over the one asked for). */
  readonly provider: LeaseProvider = (_ttl, onLost) => this.acquire(onLost);

  /** Revokes the shared lease: every key attached to it (all agents' lease keys) is deleted at once. */
  async revoke(): Promise<void> {
    this.closed = true;
    const gen = this.current;
    this.current = undefined;
    if (gen) await (await gen.lease.catch(() => undefined))?.revoke();
  }

  /** Stops keep-alive without revoking (the whole host "crashed"): every agent's key expires with the TTL. */
  release(): void {
    this.closed = true;
    const gen = this.current;
    this.current = undefined;
    gen?.lease.then((l) => l.release(), () => undefined);
  }

  private async acquire(onLost: (err: Error) => void): Promise<AgentLease> {
    if (this.closed) throw new Error('shared lease is closed');
    const gen = this.current ?? this.grant();
    const lease = await gen.lease;
    // Lost between the grant and now: its holders were already told, so this one must retry.
    if (gen.lost) throw new LeaseLostError(lease.id, 'shared lease lost before use');
    gen.holders.add(onLost);
    const letGo = () => void gen.holders.delete(onLost);
    return { id: lease.id, shared: true, revoke: async () => letGo(), release: letGo };
  }

  private grant(): Generation {
    const gen: Generation = { holders: new Set(), lost: false, lease: undefined as unknown as Promise<Lease> };
    gen.lease = this.store.lease(this.ttlSeconds, (err) => this.lost(gen, err));
    gen.lease.then(
      (l) => this.logger.info({ lease: l.id, ttlSeconds: this.ttlSeconds }, 'shared agent lease granted'),
      () => this.current === gen && (this.current = undefined), // the next acquire grants again
    );
    this.current = gen;
    return gen;
  }

  private lost(gen: Generation, err: Error): void {
    gen.lost = true;
    if (this.current === gen) this.current = undefined;
    this.logger.warn({ err: errorMessage(err), agents: gen.holders.size }, 'shared agent lease lost');
    const holders = [...gen.holders];
    gen.holders.clear();
    for (const onLost of holders) {
      try {
        onLost(err);
      } catch (e) {
        this.logger.error({ err: errorMessage(e) }, 'lease holder threw on lease loss');
      }
    }
  }
}
