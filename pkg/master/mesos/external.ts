/**
 * An external framework: one more implementation of the framework contract, whose scheduler is a
 * remote process speaking the Mesos v1 scheduler HTTP API. Offers and status updates go out as
 * events on its subscription stream; its calls come in through {@link SchedulerApiServer}.
 *
 * While no stream is open (disconnected), it holds no offers (it is suppressed) and its tasks keep
 * running until its failover timeout. Status updates carry a uuid and are kept in etcd until the
 * scheduler acknowledges them (the latest per task), and are sent again on every subscription and
 * every {@link RESEND_MS}; reconciliation answers carry none.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { TERMINAL_STATES } from '../../api/tasks';
import type { Framework as FrameworkObject, Task } from '../../api/types.generated';
import type { Store } from '../../store/types';
import { fencedTxn } from '../../store/fenced';
import type { Fence } from '../../store/types';
import type { Framework, SchedulerDriver, TaskStatusUpdate } from '../framework';
import type { Offer } from '../../scheduler/types';
import { offerToMesos, statusToMesos } from './convert';
import type { Event as MesosEvent } from './types';

/** Unacknowledged status updates are sent again this often. */
export const RESEND_MS = 10_000;
/** Annotation on a framework's Task: the Mesos task id it was launched with. */
export const MESOS_TASK_ID = 'mesos.shoal.dev/task-id';

/** An open subscription stream. */
export interface Stream {
  readonly id: string;
  send(event: MesosEvent): void;
  /** Ends the stream (after an optional last event). */
  close(last?: MesosEvent): void;
}

export interface ExternalFrameworkOptions {
  object: FrameworkObject;
  store: Store;
  prefix: string;
  fence: Fence;
  logger: Logger;
  /** The framework's Task by name (for its Mesos task id), from the informer. */
  task(taskName: string): Task | undefined;
}

interface Unacked {
  uuid: string;
  status: Record<string, unknown>;
}

/** Where a framework's unacknowledged updates are kept: `<prefix>/mesos/updates/<framework>/<task name>`. */
export function updatesPrefix(prefix: string, frameworkId: string): string {
  return `${prefix}/mesos/updates/${frameworkId}/`;
}

export class ExternalFramework implements Framework {
  readonly id: string;
  readonly role: string;
  driver?: SchedulerDriver;
  stream?: Stream;
  /** Outstanding offers, by id. */
  readonly offers = new Map<string, Offer>();
  /** Task name → Mesos task id, for reconciliation answers of tasks Shoal does not know. */
  readonly asked = new Map<string, string>();
  /** The scheduler asked for no offers (SUPPRESS) and has not revived since. */
  suppressedByScheduler = false;
  private readonly unacked = new Map<string, Unacked>();
  private readonly log: Logger;

  constructor(readonly o: ExternalFrameworkOptions) {
    this.id = o.object.metadata.name;
    this.role = o.object.spec.role;
    this.log = o.logger.child({ framework: this.id });
  }

  get object(): FrameworkObject {
    return this.o.object;
  }

  set object(obj: FrameworkObject) {
    this.o.object = obj;
  }

  // ---- the contract ----

  registered(driver: SchedulerDriver): void {
    this.driver = driver;
    if (!this.stream) driver.suppress();
  }

  unregistered(): void {
    this.driver = undefined;
    this.offers.clear();
  }

  resourceOffers(driver: SchedulerDriver, offers: Offer[]): void {
    if (!this.stream) {
      driver.decline(offers.map((o) => o.id), 0);
      driver.suppress();
      return;
    }
    for (const o of offers) this.offers.set(o.id, o);
    this.stream.send({ type: 'OFFERS', offers: { offers: offers.map((o) => offerToMesos(o, this.id, this.role)) } } as MesosEvent);
  }

  offerRescinded(_driver: SchedulerDriver, offerId: string): void {
    if (!this.offers.delete(offerId)) return;
    this.stream?.send({ type: 'RESCIND', rescind: { offer_id: { value: offerId } } } as MesosEvent);
  }

  statusUpdate(_driver: SchedulerDriver, u: TaskStatusUpdate): void {
    const taskId = this.taskIdOf(u.taskName);
    if (taskId === undefined) return;
    // Asked-about names are only needed for this answer (a Task, if any, carries its id).
    if (u.source === 'reconcile' || TERMINAL_STATES.has(u.state) || u.state === 'DROPPED') this.asked.delete(u.taskName);
    const now = Date.now();
    if (u.source === 'reconcile') {
      // As Mesos: a reconciliation answer carries no uuid, and its reason is REASON_RECONCILIATION.
      const status = { ...statusToMesos({ ...u, taskId }, { timestamp: now, partitionAware: this.partitionAware() }), reason: 'REASON_RECONCILIATION' };
      this.stream?.send({ type: 'UPDATE', update: { status } } as MesosEvent);
      return;
    }
    const uuid = Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64');
    const status = statusToMesos({ ...u, taskId }, { uuid, timestamp: now, partitionAware: this.partitionAware() }) as unknown as Record<string, unknown>;
    this.unacked.set(u.taskName, { uuid, status });
    void this.persist(u.taskName, { uuid, status });
    this.stream?.send({ type: 'UPDATE', update: { status } } as unknown as MesosEvent);
  }

  // ---- the server's side ----

  /** A new subscription: the old stream (if any) is closed, unacknowledged updates are sent again. */
  attach(stream: Stream): void {
    const old = this.stream;
    this.stream = stream;
    if (old && old.id !== stream.id) old.close({ type: 'ERROR', error: { message: 'Framework failed over' } } as MesosEvent);
    // Offers held for the old stream are gone with it: the new scheduler never saw them.
    if (this.driver && this.offers.size) this.driver.decline([...this.offers.keys()], 0);
    this.offers.clear();
    this.resend();
  }

  /** The stream ended: offers go back, no new ones come (its tasks keep running). */
  detach(stream: Stream): boolean {
    if (this.stream?.id !== stream.id) return false;
    this.stream = undefined;
    if (this.driver) {
      if (this.offers.size) this.driver.decline([...this.offers.keys()], 0);
      this.driver.suppress();
    }
    this.offers.clear();
    return true;
  }

  /** ACKNOWLEDGE: the update with this uuid is done; true when it matched the one kept. */
  async acknowledge(taskName: string, uuid: string): Promise<boolean> {
    const u = this.unacked.get(taskName);
    if (!u || u.uuid !== uuid) return false;
    this.unacked.delete(taskName);
    await fencedTxn(this.o, [], [{ op: 'delete', key: updatesPrefix(this.o.prefix, this.id) + taskName }]);
    return true;
  }

  /** Sends every unacknowledged update again. */
  resend(): void {
    if (!this.stream) return;
    for (const u of this.unacked.values()) this.stream.send({ type: 'UPDATE', update: { status: u.status } } as unknown as MesosEvent);
  }

  /** Loads the updates kept in etcd (a new leader, or a framework subscribing again). */
  async load(): Promise<void> {
    const { items } = await this.o.store.list(updatesPrefix(this.o.prefix, this.id));
    for (const kv of items) {
      try {
        const u = JSON.parse(kv.value) as Unacked;
        const name = kv.key.slice(updatesPrefix(this.o.prefix, this.id).length);
        if (!this.unacked.has(name)) this.unacked.set(name, u);
      } catch {
        this.log.warn({ key: kv.key }, 'unreadable kept status update; dropped');
      }
    }
  }

  /** Forgets the framework's kept updates (torn down). */
  async forgetUpdates(): Promise<void> {
    const p = updatesPrefix(this.o.prefix, this.id);
    this.unacked.clear();
    await fencedTxn(this.o, [], [{ op: 'deleteRange', key: p, end: prefixEndOf(p) }]);
  }

  private partitionAware(): boolean {
    return (this.o.object.spec.capabilities ?? []).includes('PARTITION_AWARE');
  }

  private taskIdOf(taskName: string): string | undefined {
    return this.o.task(taskName)?.metadata.annotations?.[MESOS_TASK_ID] ?? this.asked.get(taskName);
  }

  private async persist(taskName: string, u: Unacked): Promise<void> {
    try {
      await fencedTxn(this.o, [], [{ op: 'put', key: updatesPrefix(this.o.prefix, this.id) + taskName, value: JSON.stringify(u) }]);
    } catch (err) {
      this.log.warn({ task: taskName, err: (err as Error).message }, 'status update not kept in etcd (sent anyway)');
    }
  }
}

function prefixEndOf(p: string): string {
  return p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);
}
