/**
 * A framework for tests of the offer loop, written only against the framework contract
 * (pkg/master/framework.ts), as an external framework would be: it wants `want` tasks named
 * `<prefix>-<slot>-<suffix>` of one size, launches greedily into every offer, declines what it
 * cannot use, suppresses when nothing is pending and revives when a task ends. It knows its
 * tasks only from status updates: when registered (also in a new leader's term) it asks the
 * master to reconcile all of them first, so it launches nothing twice.
 */
import { isTerminalState } from '../../pkg/api/tasks';
import { removePorts, takePorts, type Scalars } from '../../pkg/api/resources';
import type { Framework, LaunchRequest, LaunchResult, Offer, SchedulerDriver, TaskRef, TaskStatusUpdate } from '../../pkg/master/framework';

export interface TestFrameworkOptions {
  id: string;
  role: string;
  namePrefix: string;
  want: number;
  resources: Scalars;
  /** Host ports per task (taken from the offer's ranges). */
  ports?: number;
  namespace?: string;
  /** Command of each task. @default "sleep 3600" */
  cmd?: string;
}

export class TestFramework implements Framework {
  readonly id: string;
  readonly role: string;
  readonly updates: TaskStatusUpdate[] = [];
  readonly results: LaunchResult[] = [];
  readonly rescinded: string[] = [];
  offersSeen = 0;
  driver?: SchedulerDriver;
  unregisteredCalls = 0;
  /** How many tasks to keep running; change it and call `driver.revive()` to scale. */
  want: number;
  /** Task name → its last known state (from status updates and reconciliation). */
  readonly states = new Map<string, string>();
  private readonly createdAt = Date.now();
  private seq = 0;
  /** Launched (accepted) and not yet reported: slot → task name. */
  private readonly inflight = new Map<number, string>();

  constructor(private readonly o: TestFrameworkOptions) {
    this.id = o.id;
    this.role = o.role;
    this.want = o.want;
  }

  registered(driver: SchedulerDriver): void {
    this.driver = driver;
    driver.reconcile(); // learn our tasks (a new leader's term) before the first offer
  }

  unregistered(): void {
    this.unregisteredCalls++;
  }

  /** Live (non-terminal) task names, by slot. */
  live(): Map<number, string> {
    const out = new Map<number, string>();
    for (const [name, state] of this.states) {
      const slot = this.slotOf(name);
      if (slot !== undefined && !isTerminalState(state)) out.set(slot, name);
    }
    for (const [slot, name] of this.inflight) if (!out.has(slot)) out.set(slot, name);
    return out;
  }

  /** Slots without a live or in-flight task. */
  pending(): number[] {
    const live = this.live();
    return [...Array(this.want).keys()].filter((i) => !live.has(i));
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
        const launch = this.launch(offer, slot, ports);
        this.inflight.set(slot, launch.taskName);
        launches.push(launch);
        cpus -= this.o.resources.cpus;
        mem -= this.o.resources.mem;
        disk -= this.o.resources.disk;
      }
      if (launches.length) {
        const results = await driver.accept([offer.id], launches);
        this.results.push(...results);
        for (const r of results) if (!r.ok) this.inflight.delete(this.slotOf(r.request.taskName)!);
      } else driver.decline([offer.id], 1);
    }
    if (!this.pending().length) driver.suppress();
  }

  offerRescinded(_driver: SchedulerDriver, offerId: string): void {
    this.rescinded.push(offerId);
  }

  statusUpdate(driver: SchedulerDriver, update: TaskStatusUpdate): void {
    this.updates.push(update);
    const slot = this.slotOf(update.taskName);
    if (slot === undefined) return;
    if (update.reason === 'ReconciliationUnknownTask') this.states.delete(update.taskName);
    else this.states.set(update.taskName, update.state);
    if (this.inflight.get(slot) === update.taskName) this.inflight.delete(slot);
    if (isTerminalState(update.state)) driver.revive();
  }

  /** Kills tasks by name through the driver. */
  kill(names: string[]): ReturnType<SchedulerDriver['kill']> {
    return this.driver!.kill(names.map((taskName): TaskRef => ({ namespace: this.o.namespace ?? 'default', taskName })));
  }

  private slotOf(name: string): number | undefined {
    const m = new RegExp(`^${this.o.namePrefix}-(\\d+)-[a-z0-9]+$`).exec(name);
    return m ? Number(m[1]) : undefined;
  }

  private launch(offer: Offer, slot: number, ports: number[]): LaunchRequest {
    return {
      offerId: offer.id,
      namespace: this.o.namespace ?? 'default',
      taskName: `${this.o.namePrefix}-${slot}-${(this.createdAt % 1e6).toString(36)}${(++this.seq).toString(36)}`,
      resources: this.o.resources,
      ports,
      task: { spec: { cmd: this.o.cmd ?? 'sleep 3600', role: this.role, ports: ports.map(() => ({ hostPort: 1, protocol: 'tcp' as const })) } },
      queuedAt: this.createdAt,
    };
  }
}
