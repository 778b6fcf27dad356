/**
 * Where an agent gets its lease. By default each agent has its own (Store.lease: one etcd
 * keep-alive stream and timer per agent). A host of thousands of hollow agents can share ONE
 * lease instead (kubemark-style): each agent still writes its own lease KEY attached to it, so
 * the binder and node lifecycle see per-agent keys, but keep-alive costs one stream per process.
 */
import type { Logger } from 'pino';
import type { Node } from '../api/types.generated';
import { LeaseLostError } from '../store/errors';
import type { Lease, Store } from '../store/types';
import { errorMessage, sleepUnlessAborted } from '../util/backoff';
import type { Clock } from '../util/clock';

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

/** How often an agent refreshes its Node's status.lastHeartbeatTime. */
export const DEFAULT_HEARTBEAT_INTERVAL_SECONDS = 30;
/** Node write conflicts (other writers) retried at once within one beat. */
const HEARTBEAT_CONFLICT_RETRIES = 3;

export interface NodeHeartbeatOptions {
  store: Store;
  /** The Node's key. */
  nodeKey: string;
  /** The agent's lease key. */
  leaseKey: string;
  /**
   * Mod revision of the lease key of the agent's live registration; 0 while it has none (then
   * nothing is written). A renewal keeps that key; a lease that was not renewed in time expired
   * and took the key with it, so the write's compare fails.
   */
  leaseRevision: () => number;
  intervalSeconds: number;
  clock: Clock;
  /** Aborted when the agent stops: the loop ends. */
  signal: AbortSignal;
  logger: Logger;
}

/**
 * Node.status.lastHeartbeatTime: when the agent was last heard from, at a low rate. Liveness is
 * the lease (renewed every TTL/3, no Node write per renewal); every `intervalSeconds` this
 * writes the time to the Node in one txn that also compares the agent's lease key, so the time
 * only moves while the lease is alive in etcd, i.e. while its renewals succeed. The first beat
 * comes after a random part of the interval (agents started together do not write together).
 */
export class NodeHeartbeat {
  constructor(private readonly o: NodeHeartbeatOptions) {}

  /** Runs the loop in the background until the signal aborts; a failed beat is logged and skipped. */
  start(): void {
    void this.loop();
  }

  private async loop(): Promise<void> {
    const intervalMs = this.o.intervalSeconds * 1000;
    let delay = intervalMs * (0.5 + Math.random() / 2);
    while (await sleepUnlessAborted(delay, this.o.signal, this.o.clock)) {
      delay = intervalMs;
      try {
        await this.beat();
      } catch (err) {
        this.o.logger.debug({ err: errorMessage(err) }, 'heartbeat not written; next one in an interval');
      }
    }
  }

  /**
   * Writes now as lastHeartbeatTime; true when written. False without a live registration, when
   * the lease key changed (lease lost: the agent re-registers, which writes the Node anyway), or
   * when the Node is gone.
   */
  async beat(): Promise<boolean> {
    for (let round = 0; round <= HEARTBEAT_CONFLICT_RETRIES; round++) {
      const leaseRevision = this.o.leaseRevision();
      if (leaseRevision === 0 || this.o.signal.aborted) return false;
      const [kv, leaseKv] = await this.o.store.getMany([this.o.nodeKey, this.o.leaseKey]);
      if (!kv || leaseKv?.modRevision !== leaseRevision) return false;
      const node = JSON.parse(kv.value) as Node;
      const { resourceVersion: _rv, ...metadata } = node.metadata;
      const value = JSON.stringify({ ...node, metadata, status: { ...node.status, lastHeartbeatTime: this.o.clock.date().toISOString() } });
      const compares = [{ key: this.o.nodeKey, modRevision: kv.modRevision }, { key: this.o.leaseKey, modRevision: leaseRevision }];
      if ((await this.o.store.txn(compares, [{ op: 'put', key: this.o.nodeKey, value }])) !== undefined) return true;
    }
    return false;
  }
}
