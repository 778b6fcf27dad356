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
  /** A client that lets this much output pile up is disconnected. */
  maxBufferedBytes: number;
  onOpen(): void;
  onClose(): void;
}

/** Streams a watch to `res` until the client goes away or the watch fails. */
export async function serveWatch(req: Request, res: Response, o: WatchStreamOptions): Promise<void> {
  let revision = o.resourceVersion ?? 0;
  const initial: ShoalObject[] = [];
  if (!revision) {
    const list = await o.store.list(o.prefix);
    revision = list.revision;
    for (const kv of list.items) initial.push(decodeKeyValue(kv));
  }

  res.status(200).set({ 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
  res.flushHeaders();
  o.onOpen();

  let closed = false;
  let watch: Watch | undefined;
  let lastSend = Date.now();
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(bookmarks);
    void watch?.cancel();
    o.onClose();
    res.end();
  };
  const send = (type: WatchEventType, object: unknown) => {
    if (closed) return;
    res.write(JSON.stringify({ type, object }) + '\n');
    lastSend = Date.now();
    if (res.writableLength > o.maxBufferedBytes) {
      o.logger.warn({ buffered: res.writableLength }, 'watch client too slow; closing its stream');
      close();
    }
  };
  const bookmarks = setInterval(() => {
    if (Date.now() - lastSend >= o.bookmarkMs) send('BOOKMARK', { metadata: { resourceVersion: String(revision) } });
  }, Math.max(50, Math.floor(o.bookmarkMs / 2)));
  req.on('close', close);

  const wanted = (obj: ShoalObject | undefined) => !!obj && (o.name === undefined || obj.metadata.name === o.name) && matchesSelector(o.selector, obj.metadata.labels);
  for (const obj of initial) if (wanted(obj)) send('ADDED', obj);

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
