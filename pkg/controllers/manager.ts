/**
 * The controller-manager: campaigns for leadership and, while it leads, runs the master
 * (allocator + offer loop + binder) with its frameworks, the node lifecycle controller and the
 * task status relay (agents' reports into Tasks).
 * Everything is rebuilt from etcd at the start of each term, so a new leader needs nothing
 * from the old one; every write is fenced on the leader key.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { compileValidators } from '../api/validation';
import { Binder } from '../master/binder';
import { Master } from '../master/master';
import type { AllocatorOptions } from '../scheduler/allocator';
import type { Framework } from '../master/framework';
import { realClock, type Clock } from '../util/clock';
import type { Store } from '../store/types';
import { AppController } from './apps/controller';
import { JobController, JobMetrics } from './jobs/controller';
import { TaskStatusRelay, TaskStatusRelayMetrics } from './taskstatus/relay';
import type { SchedulerApiServer } from '../master/mesos/server';
import type { TermContext } from './context';
import { EventRecorder } from '../client/events';
import { clusterInformers, type ClusterInformers } from '../client/informers';
import { LeaderElector, type Fence } from './leader';
import { NodeLifecycleController } from './nodelifecycle';

export type { TermContext } from './context';

export interface ControllerManagerOptions {
  store: Store;
  /**
   * The store leader election keeps its lease alive through. Give it a connection of its own
   * (as kube-controller-manager's separate leader-election client): on the shared one, a watch
   * backlog of tens of thousands of task events can hold up lease renewals past the TTL, and a
   * busy but healthy leader loses its term. @default store
   */
  leaderStore?: Store;
  /** @default "/shoal" */
  prefix?: string;
  identity: string;
  logger: Logger;
  registry: Registry;
  /**
   * Builds extra frameworks for each leadership term (tests; later external ones): they are
   * registered through the same registry as the built-in ones.
   */
  frameworks?: (ctx: TermContext) => Framework[];
  /** @default 5 */
  leaderLeaseSeconds?: number;
  allocationIntervalMs?: number;
  /** See MasterOptions.batchWindowMs. */
  batchWindowMs?: number;
  allocator?: AllocatorOptions;
  clock?: Clock;
  lostTaskGraceSeconds?: number;
  /** The Mesos scheduler API this controller-manager serves: it handles calls while this one leads. */
  schedulerApi?: SchedulerApiServer;
}

/** A running term: what must be stopped when leadership ends. */
interface Term {
  informers: ClusterInformers;
  master: Master;
  lifecycle: NodeLifecycleController;
  apps: AppController;
  jobs: JobController;
  relay: TaskStatusRelay;
}

export class ControllerManager {
  private readonly elector: LeaderElector;
  private term?: Term;
  private readonly prefix: string;
  private readonly jobMetrics: JobMetrics;
  private readonly relayMetrics: TaskStatusRelayMetrics;

  constructor(private readonly o: ControllerManagerOptions) {
    this.prefix = o.prefix ?? '/shoal';
    this.jobMetrics = new JobMetrics(o.registry);
    this.relayMetrics = new TaskStatusRelayMetrics(o.registry);
    this.elector = new LeaderElector({ store: o.leaderStore ?? o.store, prefix: this.prefix, identity: o.identity, ttlSeconds: o.leaderLeaseSeconds, logger: o.logger });
  }

  start(): void {
    compileValidators(); // before campaigning, not in the first term's first bind
    this.elector.run({
      onStartedLeading: (fence, signal) => this.lead(fence, signal),
      onStoppedLeading: () => void this.endTerm(),
    });
  }

  isLeader(): boolean {
    return this.elector.isLeader();
  }

  /** The master of the current term (tests and metrics). */
  master(): Master | undefined {
    return this.term?.master;
  }

  async stop(): Promise<void> {
    await this.endTerm();
    await this.elector.stop();
  }

  private async lead(fence: Fence, signal: AbortSignal): Promise<void> {
    const { store, logger } = this.o;
    const clock = this.o.clock ?? realClock;
    const informers = clusterInformers(store, this.prefix, logger, clock);
    await informers.start();
    if (signal.aborted) return void informers.stop();
    const events = new EventRecorder(store, this.prefix, 'controller-manager', logger, clock);
    const master = new Master({
      informers, store, prefix: this.prefix, fence, logger, registry: this.o.registry, clock,
      binder: new Binder(store, this.prefix, logger, clock),
      allocationIntervalMs: this.o.allocationIntervalMs, batchWindowMs: this.o.batchWindowMs, allocator: this.o.allocator,
    });
    const ctx: TermContext = { store, prefix: this.prefix, informers, fence, events, logger, frameworks: master, clock };
    for (const fw of this.o.frameworks?.(ctx) ?? []) master.register(fw);
    const lifecycle = new NodeLifecycleController({ ...ctx, lostTaskGraceSeconds: this.o.lostTaskGraceSeconds });
    const apps = new AppController(ctx);
    const jobs = new JobController({ ...ctx, metrics: this.jobMetrics });
    const relay = new TaskStatusRelay({ ...ctx, metrics: this.relayMetrics });
    relay.start();
    master.start();
    lifecycle.start();
    apps.start();
    jobs.start();
    this.term = { informers, master, lifecycle, apps, jobs, relay };
    if (this.o.schedulerApi) {
      await this.o.schedulerApi.attach({ store, prefix: this.prefix, fence, informers, frameworks: master, clock }).catch((err: Error) => {
        logger.error({ err: err.message }, 'scheduler API not attached to this term');
      });
    }
    logger.info({ identity: this.o.identity }, 'controllers started');
  }

  private async endTerm(): Promise<void> {
    const term = this.term;
    this.term = undefined;
    if (!term) return;
    await this.o.schedulerApi?.detach();
    term.apps.stop();
    term.jobs.stop();
    term.relay.stop();
    term.master.stop();
    term.lifecycle.stop();
    await term.informers.stop();
    this.o.logger.info({ identity: this.o.identity }, 'controllers stopped');
  }
}
