/**
 * Event recording: Event objects in etcd attached to a shared lease, so they expire by
 * themselves about an hour later without a garbage collector (one lease per 5 minutes of
 * events, not one per event).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { lookupKind } from '../api/kinds';
import type { Event } from '../api/types.generated';
import { encodeObject, objectKey } from '../store/objects';
import type { Store } from '../store/types';
import { realClock, type Clock } from '../util/clock';

const EVENTS = lookupKind('event')!;
const TTL_SECONDS = 3600;
const LEASE_REUSE_MS = 5 * 60_000;

export interface InvolvedObject {
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
}

export class EventRecorder {
  private lease?: { id: Promise<string>; until: number };

  constructor(private readonly store: Store, private readonly prefix: string, private readonly component: string, private readonly log: Logger, private readonly clock: Clock = realClock) {}

  /** Records an event; failures are logged, never thrown (events are best effort). */
  async record(obj: InvolvedObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const ts = this.clock.date();
    const namespace = obj.namespace ?? 'default';
    const name = `${obj.name}.${ts.getTime().toString(16)}${randomBytes(2).toString('hex')}`.slice(0, 63).replace(/[^a-z0-9-]/g, '-').replace(/-+$/, '');
    const event: Event = {
      apiVersion: 'shoal/v1',
      kind: 'Event',
      metadata: { name, namespace, uid: randomBytes(16).toString('hex'), generation: 1, creationTimestamp: ts.toISOString() },
      involvedObject: { kind: obj.kind, name: obj.name, ...(obj.namespace ? { namespace: obj.namespace } : {}), ...(obj.uid ? { uid: obj.uid } : {}) },
      type,
      reason,
      message,
      source: { component: this.component },
      count: 1,
      firstTimestamp: ts.toISOString(),
      lastTimestamp: ts.toISOString(),
    };
    try {
      await this.store.create(objectKey(this.prefix, EVENTS, namespace, name), encodeObject(event), { leaseId: await this.leaseId(ts.getTime()) });
    } catch (err) {
      this.log.warn({ reason, object: `${obj.kind}/${obj.name}`, err: (err as Error).message }, 'could not record event');
    }
  }

  /** The current shared lease; events recorded at once while it is being granted wait for the same grant. */
  private leaseId(now: number): Promise<string> {
    if (!this.lease || this.lease.until < now) {
      const id = this.store.grantLease(TTL_SECONDS + LEASE_REUSE_MS / 1000);
      this.lease = { id, until: now + LEASE_REUSE_MS };
      id.catch(() => {
        if (this.lease?.id === id) this.lease = undefined; // the next event tries again
      });
    }
    return this.lease.id;
  }
}
