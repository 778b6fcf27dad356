/**
 * Pieces of the watch client that need no network: NDJSON line splitting and the bookkeeping
 * that turns a relist (after a 410 Expired) into the ADDED/MODIFIED/DELETED events the
 * consumer missed, so `get -w` keeps printing a coherent history.
 */
import type { ShoalObject } from '../api/validation';
import { CliError } from './errors';

/** One change from a watch stream (BOOKMARK and ERROR lines are handled by the client). */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: ShoalObject;
}

/** A line longer than this is not a watch event but a broken or hostile server. */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

/** Splits a byte stream into non-empty trimmed lines. */
export async function* ndjsonLines(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield line;
    }
    if (buf.length > MAX_LINE_BYTES) throw new CliError('watch stream sent a line over 16 MiB');
  }
  buf += decoder.decode();
  if (buf.trim()) yield buf.trim();
}

function keyOf(obj: ShoalObject): string {
  return `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
}

/** Remembers the last version of every object seen, to drop replays and to diff a relist. */
export class WatchTracker {
  private readonly known = new Map<string, ShoalObject>();

  constructor(initial: Iterable<ShoalObject> = []) {
    for (const obj of initial) this.known.set(keyOf(obj), obj);
  }

  /** Records an event; false when it repeats what is already known (a resumed stream replaying). */
  observe(ev: WatchEvent): boolean {
    const key = keyOf(ev.object);
    if (ev.type === 'DELETED') {
      // Always shown: a deletion is never replayed after a resume, and the object may not have been tracked.
      this.known.delete(key);
      return true;
    }
    const prev = this.known.get(key);
    this.known.set(key, ev.object);
    return !(prev && prev.metadata.resourceVersion === ev.object.metadata.resourceVersion);
  }

  /** Replaces the known set with a fresh list and returns the events that explain the difference. */
  resync(items: ShoalObject[]): WatchEvent[] {
    const events: WatchEvent[] = [];
    const seen = new Set<string>();
    for (const obj of items) {
      const key = keyOf(obj);
      seen.add(key);
      const prev = this.known.get(key);
      if (!prev) events.push({ type: 'ADDED', object: obj });
      else if (prev.metadata.resourceVersion !== obj.metadata.resourceVersion) events.push({ type: 'MODIFIED', object: obj });
    }
    for (const [key, obj] of this.known) if (!seen.has(key)) events.push({ type: 'DELETED', object: obj });
    this.known.clear();
    for (const obj of items) this.known.set(keyOf(obj), obj);
    return events;
  }
}
