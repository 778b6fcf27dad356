/**
 * The App framework: the second level of the offer loop for Apps, one instance per Mesos role.
 * Its launch queue is not its own: the App controller derives it (desired instances minus
 * non-terminal and in-flight tasks) and this framework only matches it against offers with
 * {@link placeMany} (resources, runtime, ports, Marathon constraints, spread across agents),
 * accepts what fits, declines the rest with a filter, and suppresses itself when nothing waits.
 */
import type { Logger } from 'pino';
import { PendingSummary } from '../../scheduler/pending';
import { placeMany, type Demand, type Placed, type Placement } from '../../scheduler/feasibility';
import { removePorts, subtract } from '../../api/resources';
import type { Framework, LaunchRequest, LaunchResult, Offer, SchedulerDriver } from '../../scheduler/types';
import type { TaskTemplate } from '../../master/binder';
import { newTaskName } from './template';

/** Work waiting for offers: `count` new instances of one App's current configuration. */
export interface PendingWork {
  /** `<namespace>/<name>` of the App. */
  key: string;
  namespace: string;
  appName: string;
  role: string;
  demand: Demand;
  template: TaskTemplate;
  /** The configuration hash this work launches. */
  hash: string;
  /** Instances still to place. The framework lowers it as it launches; the controller recomputes it on every sync. */
  count: number;
  /** Epoch ms since which the App has waited for instances (queued→bound latency). */
  queuedAt: number;
  /** Why the last offers from each agent could not take this work. */
  summary: PendingSummary;
}

/** What the framework needs from the App controller. */
export interface LaunchQueue {
  /** Work of this role with count > 0, oldest first. */
  pending(role: string): PendingWork[];
  /** Where the App's non-terminal and in-flight tasks run (what constraints count). */
  placed(appKey: string): Placed[];
  /** Called before a launch is sent: the task counts as in flight from now on. */
  reserve(appKey: string, taskName: string, where: Placed): void;
  /** A launch did not happen: the task is no longer in flight. */
  release(appKey: string, taskName: string): void;
  /** The App's pending work or its why-pending summary changed: its status should be refreshed. */
  changed(appKey: string): void;
}

/** Filter on declined offers while work waits that they cannot run: the work is retried on them soon. */
const RETRY_REFUSE_SECONDS = 5;
/** Filter when nothing waits (the framework is suppressed too; a revive clears filters). */
const IDLE_REFUSE_SECONDS = 120;
/**
 * Instances of one App placed per round at most. Most Apps place in O(offers + instances × log
 * offers), but GROUP_BY and CLUSTER without a value check every offer for every instance, and a
 * round that takes seconds delays every other framework. The rest go in the next round.
 */
export const MAX_PLACEMENTS_PER_ROUND = 2_000;

/**
 * How many of a round's offers one App's placement looks at, as kube-scheduler's
 * percentageOfNodesToScore: all of them on a small cluster, a share falling from 50 % towards
 * 5 % as the cluster grows, never fewer than {@link MIN_WINDOW} nor than twice the instances
 * placed. Every App checking every offer makes a round O(Apps × agents): at 500 Apps on 5,000
 * agents, 2.5 million checks. Successive Apps look at successive windows (a rotating cursor), so
 * the cluster fills evenly; an App that does not fit in its window is placed on every offer.
 */
export function windowSize(offers: number, instances: number): number {
  const percent = Math.max(5, 50 - offers / 125);
  return Math.min(offers, Math.max(MIN_WINDOW, 2 * instances, Math.ceil((offers * percent) / 100)));
}
const MIN_WINDOW = 100;

export function frameworkIdFor(role: string): string {
  return role === '*' ? 'apps' : `apps-${role}`;
}

export class AppFramework implements Framework {
  readonly id: string;
  private suppressed = false;
  /** Where the next App's window of offers starts (see {@link windowSize}). */
  private cursor = 0;

  constructor(readonly role: string, private readonly queue: LaunchQueue, private readonly log: Logger) {
    this.id = frameworkIdFor(role);
  }

  /** New work arrived: resume offers and clear decline filters. */
  wake(driver: SchedulerDriver): void {
    this.suppressed = false;
    driver.revive();
  }

  async resourceOffers(driver: SchedulerDriver, offers: Offer[]): Promise<void> {
    const work = this.queue.pending(this.role);
    if (work.length === 0) {
      driver.decline(offers.map((o) => o.id), IDLE_REFUSE_SECONDS);
      this.suppress(driver);
      return;
    }
    const left = offers.map((o) => ({ ...o, resources: { ...o.resources } }));
    const byId = new Map(left.map((o) => [o.id, o]));
    const launches: LaunchRequest[] = [];
    const owners = new Map<string, string>();
    let waiting = false;
    for (const w of work) {
      const why = w.summary.message();
      const n = Math.min(w.count, MAX_PLACEMENTS_PER_ROUND);
      const placement = this.place(new Array<Demand>(n).fill(w.demand), left, this.queue.placed(w.key));
      for (const l of placement.launches) {
        const offer = byId.get(l.offerId)!;
        offer.resources = { ...subtract(offer.resources, w.demand.resources), ports: removePorts(offer.resources.ports, l.ports) };
        const taskName = newTaskName(w.appName);
        this.queue.reserve(w.key, taskName, { agent: offer.agent, hostname: offer.hostname, attributes: offer.attributes });
        owners.set(taskName, w.key);
        w.summary.record(offer.agent, 'ok');
        launches.push({ offerId: l.offerId, namespace: w.namespace, taskName, resources: w.demand.resources, ports: l.ports, task: w.template, queuedAt: w.queuedAt });
      }
      w.count -= placement.launches.length;
      const first = placement.unplaced[0];
      if (first) {
        waiting = true;
        for (const r of first.rejections) w.summary.record(r.agent, r.rejection);
        this.log.debug({ app: w.key, unplaced: placement.unplaced.length, why: w.summary.message() }, 'instances wait for offers');
      }
      if (w.count > 0) waiting = true;
      // Launches reach the controller through the Task informer; only a new "why pending" needs a status refresh.
      if (w.summary.message() !== why) this.queue.changed(w.key);
    }
    const used = new Set(launches.map((l) => l.offerId));
    const unused = offers.filter((o) => !used.has(o.id)).map((o) => o.id);
    if (unused.length) driver.decline(unused, waiting ? RETRY_REFUSE_SECONDS : IDLE_REFUSE_SECONDS);
    // The launches are reserved (in flight) already: the next offers need not wait for the binds.
    if (launches.length) void driver.accept([...used], launches).then((results) => this.launched(results, owners), (err: Error) => this.launched(launches.map((request) => ({ request, ok: false, reason: 'BindFailed' })), owners, err));
    if (this.queue.pending(this.role).length === 0) this.suppress(driver);
  }

  /** Bind results: what did not happen is no longer in flight, and its App is synced again. */
  private launched(results: LaunchResult[], owners: Map<string, string>, err?: Error): void {
    if (err) this.log.error({ err: err.message, launches: results.length }, 'accept failed');
    for (const r of results) {
      if (r.ok) continue;
      const key = owners.get(r.request.taskName)!;
      this.queue.release(key, r.request.taskName);
      this.queue.changed(key);
    }
  }

  /** placeMany on this App's window of the offers, or on all of them when the window cannot take every instance. */
  private place(demands: Demand[], offers: Offer[], placed: Placed[]): Placement {
    const size = windowSize(offers.length, demands.length);
    if (size >= offers.length) return placeMany(demands, offers, placed);
    const start = this.cursor % offers.length;
    this.cursor = start + size;
    const window = offers.slice(start, start + size);
    if (window.length < size) window.push(...offers.slice(0, size - window.length));
    const placement = placeMany(demands, window, placed);
    return placement.unplaced.length === 0 ? placement : placeMany(demands, offers, placed);
  }

  offerRescinded(): void {
    // Offers are used or declined within the round they arrive in; nothing is held.
  }

  statusUpdate(): void {
    // The App controller follows tasks through the Task informer, which also survives leader changes.
  }

  private suppress(driver: SchedulerDriver): void {
    if (this.suppressed) return;
    this.suppressed = true;
    driver.suppress();
  }
}
