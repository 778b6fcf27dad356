/**
 * Many agents in one process (Kubernetes' kubemark "hollow nodes"): N agents named
 * `<namePrefix>-<i>` sharing ONE store (one etcd client), started and stopped in parallel batches
 * so a host of thousands neither floods etcd nor takes minutes.
 *
 * Per-agent cost: one etcd watch (etcd3 multiplexes every watcher over one gRPC stream), a few
 * small Maps, and its lease. With `leaseMode: 'per-agent'` each agent's lease has its own etcd3
 * keep-alive stream and two timers (about 12 KiB of heap and one keep-alive RPC every TTL/3 each,
 * measured); `'shared'` grants one lease for the host and attaches every agent's own lease key to it.
 */
import type { Logger } from 'pino';
import { HollowRuntime } from '../runtime/hollow';
import type { Runtime } from '../runtime/types';
import type { Resources } from '../api/resources';
import type { Store } from '../store/types';
import { Agent } from './agent';
import { SharedLease, perAgentLeases } from './leases';
import type { Clock } from '../util/clock';

const DEFAULT_BATCH = 50;
const DEFAULT_LEASE_TTL_SECONDS = 10;

export interface AgentHostOptions {
  store: Store;
  /** The store leases are kept alive through: a connection of its own keeps renewals clear of the agents' bulk traffic. @default store */
  leaseStore?: Store;
  /** etcd key prefix of the cluster. @default '/shoal' */
  prefix?: string;
  /** How many agents. */
  count: number;
  /** Agents are named `<namePrefix>-<i>`, i from 0. @default 'hollow' */
  namePrefix?: string;
  /** Capacity of each agent. */
  capacity: Resources;
  /** Attributes of each agent, or a function of its index (racks, zones). */
  attributes?: Record<string, string> | ((index: number) => Record<string, string>);
  /** A runtime per agent. @default a HollowRuntime each */
  runtime?: (index: number) => Runtime;
  /** Runtimes advertised by each agent. @default the runtime's name */
  runtimes?: string[];
  /** @default 10 */
  leaseTtlSeconds?: number;
  /**
   * `per-agent`: every agent has its own lease (a crash or partition of one agent is seen alone).
   * `shared`: one lease for the host, each agent's key on it (cheap at thousands; the host lives
   * and dies as one, and crashing a single agent leaves its key until the host stops).
   * @default 'per-agent'
   */
  leaseMode?: 'per-agent' | 'shared';
  /** Agents started (or stopped) at once. @default 50 */
  batchSize?: number;
  logger: Logger;
  /** Every agent's clock. @default realClock */
  clock?: Clock;
}

/** N agents on one store. */
export class AgentHost {
  readonly agents: Agent[];
  private readonly shared?: SharedLease;
  private readonly batchSize: number;

  constructor(private readonly o: AgentHostOptions) {
    const ttl = o.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS;
    const leaseStore = o.leaseStore ?? o.store;
    this.shared = o.leaseMode === 'shared' ? new SharedLease(leaseStore, ttl, o.logger) : undefined;
    const leases = this.shared?.provider ?? perAgentLeases(leaseStore);
    this.batchSize = Math.max(1, o.batchSize ?? DEFAULT_BATCH);
    const namePrefix = o.namePrefix ?? 'hollow';
    this.agents = Array.from({ length: o.count }, (_, i) => {
      const nodeName = `${namePrefix}-${i}`;
      return new Agent({
        store: o.store,
        prefix: o.prefix,
        nodeName,
        hostname: nodeName, // distinct hostnames, so UNIQUE/hostname constraints spread over hollow agents
        capacity: o.capacity,
        attributes: typeof o.attributes === 'function' ? o.attributes(i) : o.attributes,
        runtime: o.runtime?.(i) ?? new HollowRuntime(),
        runtimes: o.runtimes,
        leaseTtlSeconds: ttl,
        logger: o.logger,
        clock: o.clock,
        leases,
      });
    });
  }

  /** Starts every agent, `batchSize` at a time; resolves when all registered and watch their assignments. */
  async start(): Promise<void> {
    await this.inBatches((a) => a.start());
    this.o.logger.info({ agents: this.agents.length, leaseMode: this.o.leaseMode ?? 'per-agent' }, 'agent host started');
  }

  /** Stops every agent (revoking: their lease keys vanish at once), then the shared lease if any. */
  async stop({ revoke = true }: { revoke?: boolean } = {}): Promise<void> {
    await this.inBatches((a) => a.stop({ revoke }));
    if (this.shared) {
      if (revoke) await this.shared.revoke().catch(() => undefined);
      else this.shared.release();
    }
  }

  /** The whole host dies at once: no lease is revoked, every lease key expires with its TTL. */
  crash(): void {
    this.agents.forEach((a) => a.crash());
    this.shared?.release();
  }

  private async inBatches(fn: (agent: Agent) => Promise<void>): Promise<void> {
    for (let i = 0; i < this.agents.length; i += this.batchSize) {
      await Promise.all(this.agents.slice(i, i + this.batchSize).map(fn));
    }
  }
}
