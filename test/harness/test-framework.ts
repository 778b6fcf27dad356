/**
 * A framework for tests of the offer loop: it wants `want` tasks named `<prefix>-<i>` of one
 * size, launches greedily into every offer, declines what it cannot use, suppresses when
 * nothing is pending and revives when a task ends. What is pending is derived from the Task
 * informer (never remembered), so a framework in a new leader's term launches nothing twice.
 */
import type { TermContext } from '../../pkg/controllers/manager';
import { isTerminal } from '../../pkg/api/tasks';
import { removePorts, takePorts } from '../../pkg/api/resources';
import type { Framework, LaunchRequest, LaunchResult, Offer, SchedulerDriver, Scalars } from '../../pkg/scheduler/types';

export interface TestFrameworkOptions {
  id: string;
  role: string;
  namePrefix: string;
  want: number;
  resources: Scalars;
  /** Host ports per task (taken from the offer's ranges). */
  ports?: number;
  namespace?: string;
}

export class TestFramework implements Framework {
  readonly id: string;
  readonly role: string;
  readonly updates: Array<{ taskName: string; state: string }> = [];
  readonly results: LaunchResult[] = [];
  readonly rescinded: string[] = [];
  offersSeen = 0;
  private readonly createdAt = Date.now();
  /** Replacement generation per slot, so a replacement gets a new name. */
  private readonly generation = new Map<number, number>();
  /** Launched (bound) but maybe not yet in the informer: slot → task name. */
  private readonly inflight = new Map<number, string>();

  constructor(private readonly o: TestFrameworkOptions, private readonly ctx: TermContext) {
    this.id = o.id;
    this.role = o.role;
  }

  /**
   * Slots without a live (non-terminal) task. A bound launch counts as live until the informer
   * shows its task: the informer lags behind our own writes.
   */
  pending(): number[] {
    const live = new Set<number>();
    const seen = new Set<string>();
    for (const t of this.ctx.informers.tasks.list()) {
      seen.add(t.metadata.name);
      const m = new RegExp(`^${this.o.namePrefix}-(\\d+)-`).exec(t.metadata.name);
      if (m && !isTerminal(t)) live.add(Number(m[1]));
    }
    for (const [slot, name] of this.inflight) {
      if (seen.has(name)) this.inflight.delete(slot);
      else live.add(slot);
    }
    return [...Array(this.o.want).keys()].filter((i) => !live.has(i));
  }

  async resourceOffers(driver: SchedulerDriver, offers: Offer[]): Promise<void> {
    this.offersSeen += offers.length;
    const pending = this.pending();
    for (const offer of offers) {
      const launches: LaunchRequest[] = [];
      let { cpus, mem, disk } = offer.resources;
      let ranges = offer.resources.ports;
      while (pending.length && cpus + 1e-9 >= this.o.resources.cpus && mem >= this.o.resources.mem && disk >= this.o.resources.disk) {
        const ports = takePorts(ranges, this.o.ports ?? 0) ?? [];
        if (ports.length < (this.o.ports ?? 0)) break;
        ranges = removePorts(ranges, ports);
        const slot = pending.shift()!;
        launches.push(this.launch(offer, slot, ports));
        cpus -= this.o.resources.cpus;
        mem -= this.o.resources.mem;
        disk -= this.o.resources.disk;
      }
      if (launches.length) {
        const results = await driver.accept([offer.id], launches);
        this.results.push(...results);
        for (const r of results) if (r.ok) this.inflight.set(Number(/-(\d+)-[^-]+$/.exec(r.request.taskName)![1]), r.request.taskName);
      }
      else driver.decline([offer.id], 1);
    }
    if (!this.pending().length) driver.suppress();
  }

  offerRescinded(_driver: SchedulerDriver, offerId: string): void {
    this.rescinded.push(offerId);
  }

  statusUpdate(driver: SchedulerDriver, update: { taskName: string; state: string }): void {
    this.updates.push({ taskName: update.taskName, state: update.state });
    if (['LOST', 'FAILED', 'KILLED', 'FINISHED', 'ERROR'].includes(update.state)) driver.revive();
  }

  private launch(offer: Offer, slot: number, ports: number[]): LaunchRequest {
    const gen = (this.generation.get(slot) ?? 0) + 1;
    this.generation.set(slot, gen);
    return {
      offerId: offer.id,
      namespace: this.o.namespace ?? 'default',
      taskName: `${this.o.namePrefix}-${slot}-${Date.now().toString(36)}${gen}`,
      resources: this.o.resources,
      ports,
      task: { spec: { cmd: 'sleep 3600', role: this.role, ports: ports.map(() => ({ hostPort: 1 })) } },
      queuedAt: this.createdAt,
    };
  }
}
