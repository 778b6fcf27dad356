/**
 * Watch streams: newline-delimited JSON events over one long HTTP response, fed by one etcd
 * watch per stream (the etcd3 client multiplexes them over a single gRPC stream).
 */
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { matchesSelector, type Selector } from '../api/labels';
import type { ShoalObject } from '../api/validation';
import { CompactedError } from '../store/errors';
import { decodeKeyValue, decodeObject } from '../store/objects';
import type { Store, Watch, WatchEvent } from '../store/types';
import { ApiError } from './errors';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchStreamOptions {
  store: Store;
  /** etcd prefix to watch (a kind, optionally in one namespace). */
  prefix: string;
  selector: Selector;
  /** Only this object name (a watch on an item path). */
  name?: string;
  /** Send changes after this revision; undefined or 0: first ADDED for every existing object. */
  resourceVersion?: number;
  logger: Logger;
  /** Quiet time after which a BOOKMARK line is sent. */
  bookmarkMs: number;
  /** A client that lets this much output pile up (after the initial burst) is disconnected. */
  maxBufferedBytes: number;
  /** Called once the stream's headers are sent. */
  onOpen(): void;
  /** Called once when an opened stream ends (never without onOpen before it). */
  onClose(): void;
}

/**
 * Streams a watch to `res` until the client goes away or the watch fails. Memory per stream is
 * bounded: the initial ADDED burst is written, then the etcd watch starts (from the list's
 * revision, so nothing is missed) only once the client has read it (the response drained);
 * after that a client that lets more than `maxBufferedBytes` pile up is disconnected.
 */
export async function serveWatch(_req: Request, res: Response, o: WatchStreamOptions): Promise<void> {
  let closed = false;
  let opened = false;
  let watch: Watch | undefined;
  let bookmarks: NodeJS.Timeout | undefined;
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(bookmarks);
    void watch?.cancel();
    if (opened) o.onClose();
    res.end();
  };
  // Registered before the first await: a client that leaves during the initial list must not
  // leave an etcd watch (and its count) behind.
  res.once('close', close);

  let revision = o.resourceVersion ?? 0;
  const initial: ShoalObject[] = [];
  if (!revision) {
    const list = await o.store.list(o.prefix);
    revision = list.revision;
    for (const kv of list.items) initial.push(decodeKeyValue(kv));
  }
  if (closed || res.destroyed) return;

  res.status(200).set({ 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
  res.flushHeaders();
  opened = true;
  o.onOpen();

  let lastSend = Date.now();
  let live = false;
  const send = (type: WatchEventType, object: unknown) => {
    if (closed) return;
    res.write(JSON.stringify({ type, object }) + '\n');
    lastSend = Date.now();
    if (live && res.writableLength > o.maxBufferedBytes) {
      o.logger.warn({ buffered: res.writableLength, limit: o.maxBufferedBytes }, 'watch client too slow; closing its stream');
      close();
    }
  };
  bookmarks = setInterval(() => {
    if (Date.now() - lastSend >= o.bookmarkMs) send('BOOKMARK', { metadata: { resourceVersion: String(revision) } });
  }, Math.max(50, Math.floor(o.bookmarkMs / 2)));

  const wanted = (obj: ShoalObject | undefined) => !!obj && (o.name === undefined || obj.metadata.name === o.name) && matchesSelector(o.selector, obj.metadata.labels);
  for (const obj of initial) if (wanted(obj)) send('ADDED', obj);
  initial.length = 0;
  // A write refused (needs drain): wait until the socket took it all. Without that, what is left
  // is below the socket's high-water mark and on its way to the kernel.
  if (res.writableNeedDrain) await drained(res);
  if (closed) return;
  live = true;

  const onEvents = (events: WatchEvent[]) => {
    for (const ev of events) {
      revision = Math.max(revision, ev.modRevision);
      const translated = translate(ev, wanted);
      if (translated) send(translated.type, translated.object);
    }
  };
  const onError = (err: Error) => {
    const apiErr = err instanceof CompactedError
      ? new ApiError('Expired', `resourceVersion ${err.requested} is too old (compacted); list again and watch from the list's resourceVersion`)
      : new ApiError('ServiceUnavailable', 'watch ended: etcd is unavailable');
    send('ERROR', apiErr.toStatus());
    close();
  };
  try {
    // prevValue: a DELETED event carries the object's last state, and selectors need the old labels.
    watch = await o.store.watch(o.prefix, { afterRevision: revision, prevValue: true, onEvents, onError });
  } catch (err) {
    onError(err as Error);
    return;
  }
  if (closed) void watch.cancel();
}

/** Resolves when `res` has handed what it buffered to the kernel, or is gone. */
function drained(res: Response): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/**
 * Turns a store event into a watch event for one client. With a selector, objects moving
 * into or out of it appear as ADDED or DELETED, as Kubernetes does.
 */
export function translate(ev: WatchEvent, wanted: (o: ShoalObject | undefined) => boolean): { type: WatchEventType; object: ShoalObject } | undefined {
  const prev = ev.prevValue ? decodeObject(ev.prevValue, ev.modRevision) : undefined;
  if (ev.type === 'delete') return prev && wanted(prev) ? { type: 'DELETED', object: prev } : undefined;
  const obj = decodeObject(ev.value, ev.modRevision);
  const now = wanted(obj);
  const before = ev.createRevision !== ev.modRevision && wanted(prev);
  if (now && before) return { type: 'MODIFIED', object: obj };
  if (now) return { type: 'ADDED', object: obj };
  if (before) return { type: 'DELETED', object: obj };
  return undefined;
}
