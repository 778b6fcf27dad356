/**
 * Watches on top of the etcd3 client's Watcher: conversion to WatchEvent, per-revision
 * batches, compaction detection and a correct resume revision after reconnects.
 */
import type { Etcd3, IEvent, IWatchResponse, Watcher } from 'etcd3';
import { CompactedError, UnavailableError } from './errors';
import type { Watch, WatchEvent, WatchOptions } from './types';

/** Watcher -> compact_revision of the canceled response with which etcd ended it. */
const compactRevisions = new WeakMap<object, number>();
const patchedManagers = new WeakSet<object>();

interface CancelHandler {
  handleCancelResponse(watcher: object, res: IWatchResponse): void;
}

/**
 * etcd reports "your start revision is compacted" by canceling the watch with
 * `compact_revision` set, but etcd3 1.1.2 turns that into a bare EtcdError("Watcher canceled: ")
 * and drops the revision. Wrap this client's (private) watch manager to remember the revision per
 * watcher. If a later etcd3 renames the method this does nothing and compaction surfaces as
 * UnavailableError; the contract test "watch from a compacted revision" catches that.
 */
export function recordCompactRevisions(client: Etcd3): void {
  const manager = (client as unknown as { watchManager?: CancelHandler }).watchManager;
  if (!manager || typeof manager.handleCancelResponse !== 'function' || patchedManagers.has(manager)) return;
  patchedManagers.add(manager);
  const original = manager.handleCancelResponse;
  manager.handleCancelResponse = function (this: unknown, watcher: object, res: IWatchResponse) {
    const compactRevision = Number(res.compact_revision ?? 0);
    if (compactRevision > 0) compactRevisions.set(watcher, compactRevision);
    return original.call(this, watcher, res);
  };
}

/** One Store watch backed by one etcd3 Watcher. */
export class EtcdWatch implements Watch {
  /** First revision not yet delivered: where a reconnect must resume. */
  private nextRevision: number;
  private ended = false;
  private cancelling?: Promise<void>;
  private readonly watcher: Watcher;
  /** Settles when etcd itself ended the watcher (after which etcd3 can no longer cancel it). */
  private readonly endedByEtcd: Promise<void>;

  constructor(
    client: Etcd3,
    private readonly prefix: string,
    startRevision: number,
    private readonly opts: WatchOptions,
    private readonly onEnd: (watch: EtcdWatch) => void,
  ) {
    this.nextRevision = startRevision;
    // watcher() rather than create(): listeners are attached before any I/O, so an 'error'
    // right after the 'created' response cannot be emitted while nobody listens.
    const builder = client.watch().prefix(prefix).startRevision(String(startRevision));
    this.watcher = (opts.prevValue ? builder.withPreviousKV() : builder).watcher();
    let markEnded!: () => void;
    this.endedByEtcd = new Promise((resolve) => (markEnded = resolve));
    this.watcher.on('data', (res) => this.handleData(res));
    this.watcher.on('disconnected', (err?: Error) => {
      // Resuming cannot help when a response is larger than this client accepts: etcd sends the
      // same backlog again. End the watch, so that its owner relists (paged) and watches anew.
      if (isTooLarge(err)) this.endWithError(err);
      else this.setResumeRevision();
    });
    this.watcher.on('error', (err) => {
      markEnded();
      this.handleError(err);
    });
  }

  /** Stops delivery at once; resolves when etcd confirmed (or cannot confirm) the cancel. */
  cancel(): Promise<void> {
    if (!this.cancelling) {
      const alreadyEnded = this.ended;
      this.end();
      // After etcd ended a watcher, etcd3 keeps its stale id and watcher.cancel() would wait
      // forever for a confirmation that never comes.
      this.cancelling = alreadyEnded
        ? Promise.resolve()
        : Promise.race([this.watcher.cancel().catch(() => undefined), this.endedByEtcd]);
    }
    return this.cancelling;
  }

  private handleData(res: IWatchResponse): void {
    if (this.ended) return;
    if (res.events.length === 0) {
      // A progress notification; etcd only sends those to watchers that are caught up.
      this.nextRevision = Math.max(this.nextRevision, Number(res.header.revision) + 1);
      return;
    }
    for (const batch of byRevision(res.events.map(toWatchEvent))) {
      if (this.ended) return; // onEvents may cancel the watch
      this.nextRevision = batch[0].modRevision + 1;
      callSafely(() => this.opts.onEvents(batch));
    }
  }

  /**
   * etcd3 resumes from the header revision of the last response, which runs ahead of the
   * events delivered while a large history is still being replayed; resume from ours instead.
   */
  private setResumeRevision(): void {
    this.watcher.request.start_revision = String(this.nextRevision);
  }

  private endWithError(err: Error): void {
    if (this.ended) return;
    this.handleError(err);
    void this.watcher.cancel().catch(() => undefined);
  }

  private handleError(err: Error): void {
    if (this.ended) return;
    this.end();
    const compactRevision = compactRevisions.get(this.watcher);
    const error = compactRevision
      ? new CompactedError(this.nextRevision, compactRevision)
      : new UnavailableError(`etcd ended the watch on ${this.prefix}: ${err.message}`, err);
    callSafely(() => this.opts.onError(error));
  }

  private end(): void {
    this.ended = true;
    this.onEnd(this);
  }
}

/** gRPC's RESOURCE_EXHAUSTED: a message over the client's receive limit. */
function isTooLarge(err: Error | undefined): err is Error {
  return (err as { code?: unknown } | undefined)?.code === 8;
}

/** Converts one etcd event (prevValue when the watch asked for prev_kv). */
export function toWatchEvent(ev: IEvent): WatchEvent {
  const isPut = ev.type === 'Put';
  const event: WatchEvent = {
    type: isPut ? 'put' : 'delete',
    key: ev.kv.key.toString(),
    value: isPut ? ev.kv.value.toString() : '',
    modRevision: Number(ev.kv.mod_revision),
    createRevision: Number(ev.kv.create_revision),
  };
  if (ev.prev_kv) event.prevValue = ev.prev_kv.value.toString();
  return event;
}

/** Splits revision-ordered events into one batch per revision (one txn = one batch). */
export function byRevision(events: WatchEvent[]): WatchEvent[][] {
  const batches: WatchEvent[][] = [];
  for (const ev of events) {
    const last = batches[batches.length - 1];
    if (last && last[0].modRevision === ev.modRevision) last.push(ev);
    else batches.push([ev]);
  }
  return batches;
}

/**
 * Runs a caller's callback; a throw is rethrown on a later tick (as etcd3 does) so it is still
 * reported but cannot corrupt the etcd3 stream state we are called from.
 */
function callSafely(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    setImmediate(() => {
      throw err;
    });
  }
}
