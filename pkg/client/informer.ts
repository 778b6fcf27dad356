/**
 * An informer: a read-only cache of every key under a prefix, kept current by list + watch,
 * that tells handlers what changed. Level-triggered users only need "key K changed"; the
 * cache answers "what is K now". On compaction or an etcd outage it relists and reports the
 * difference, so a missed event never leaves the cache wrong.
 */
import type { Logger } from 'pino';
import { CompactedError } from '../store/errors';
import type { KeyValue, Store, Watch, WatchEvent } from '../store/types';
import { realClock, type Clock, type TimerHandle } from '../util/clock';

export interface InformerHandlers<T> {
  /** Called for a new key, and for keys found again after a relist. */
  onAdd?(key: string, obj: T): void;
  onUpdate?(key: string, obj: T, old: T): void;
  onDelete?(key: string, old: T): void;
}

export interface InformerOptions<T> {
  store: Store;
  /** Key prefix to mirror (ends with '/'). */
  prefix: string;
  /**
   * Turns a stored value into the cached object; undefined skips the key. `from` says how the
   * value came: `watch`, the change itself (a put with createRevision === modRevision is the
   * key's creation); `list`, read by a (re)list, so it may be long past its last write.
   */
  decode(kv: { key: string; value: string; modRevision: number; createRevision: number; from: 'list' | 'watch' }): T | undefined;
  logger: Logger;
  /** Delay before relisting after a failure. @default 1000 */
  retryMs?: number;
  /**
   * How often a watch that delivered nothing is checked against etcd: when keys under the prefix
   * were written after the cache's revision and the watch stayed silent for two checks in a
   * row, it is restarted with a relist. 0 turns the check off. @default 10000
   */
  staleCheckMs?: number;
  /** Time of the retry and staleness timers. @default realClock */
  clock?: Clock;
}

/** A cache of one prefix, fed by list + watch. Never throws from its background loop. */
export class Informer<T> {
  private readonly cache = new Map<string, T>();
  private readonly indexes = new Map<string, CacheIndex<T>>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private watch?: Watch;
  private stopped = false;
  private synced = false;
  private revision = 0;
  private syncWaiters: Array<() => void> = [];
  private staleTimer?: TimerHandle;
  /** Events arrived since the last staleness check. */
  private heard = false;
  /** The last check found writes the watch had not delivered. */
  private behind = false;

  private readonly clock: Clock;

  constructor(private readonly o: InformerOptions<T>) {
    this.clock = o.clock ?? realClock;
  }

  /** Registers handlers; call before start() to see the initial list as adds. */
  addHandlers(h: InformerHandlers<T>): void {
    this.handlers.push(h);
  }

  /** Starts list + watch in the background; resolves once the first list is in the cache. */
  async start(): Promise<void> {
    void this.relist();
    await this.waitForSync();
  }

  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** The revision the cache reflects. */
  lastRevision(): number {
    return this.revision;
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  /** Every cached object. The objects are shared: copy before changing them. */
  list(): T[] {
    return [...this.cache.values()];
  }

  entries(): IterableIterator<[string, T]> {
    return this.cache.entries();
  }

  /**
   * Adds a secondary index (client-go's Indexer): cached objects by the value `valueOf` derives
   * from each (undefined: not indexed). Kept up to date with the cache, so a lookup costs what it
   * returns, not a scan of the cache.
   */
  addIndex(name: string, valueOf: (obj: T) => string | undefined): void {
    if (this.indexes.has(name)) throw new Error(`index ${name} already exists`);
    const index = new CacheIndex(valueOf);
    for (const [key, obj] of this.cache) index.add(key, obj);
    this.indexes.set(name, index);
  }

  /** The cached objects whose index `name` has `value`. The objects are shared: copy before changing them. */
  byIndex(name: string, value: string): T[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`no index ${name}`);
    return [...index.keysOf(value)].map((key) => this.cache.get(key)!);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.staleTimer) this.clock.clearInterval(this.staleTimer);
    await this.watch?.cancel();
  }

  private async relist(): Promise<void> {
    while (!this.stopped) {
      try {
        const list = await this.o.store.list(this.o.prefix);
        this.replace(list.items);
        this.revision = list.revision;
        this.markSynced();
        this.watch = await this.o.store.watch(this.o.prefix, {
          afterRevision: list.revision,
          onEvents: (events) => {
            this.heard = true;
            this.apply(events);
          },
          onError: (err) => this.onWatchError(err),
        });
        if (this.stopped) await this.watch.cancel();
        else this.watchForStalls();
        return;
      } catch (err) {
        this.o.logger.warn({ prefix: this.o.prefix, err: (err as Error).message }, 'informer list failed; retrying');
        await this.clock.sleep(this.o.retryMs ?? 1000);
      }
    }
  }

  /** Starts the staleness check (once per informer). */
  private watchForStalls(): void {
    const every = this.o.staleCheckMs ?? 10_000;
    if (this.staleTimer || every <= 0) return;
    this.staleTimer = this.clock.setInterval(() => void this.checkStale(), every);
    this.staleTimer.unref();
  }

  /**
   * A watch can go silent without an error (seen with etcd far behind under a write burst: the
   * cache kept LOST tasks as running for minutes). Silent twice in a row while etcd holds newer
   * writes under the prefix: relist and watch again.
   */
  private async checkStale(): Promise<void> {
    const heard = this.heard;
    this.heard = false;
    if (heard || !this.watch || this.stopped) {
      this.behind = false;
      return;
    }
    try {
      const newer = await this.o.store.countNewer(this.o.prefix, this.revision);
      if (newer === 0 || this.heard) {
        this.behind = false;
        return;
      }
      if (!this.behind) {
        this.behind = true; // delivery may just be slow: look again next time
        return;
      }
      this.behind = false;
      this.o.logger.warn({ prefix: this.o.prefix, revision: this.revision, newer }, 'watch silent while newer writes exist; relisting');
      const watch = this.watch;
      this.watch = undefined;
      await watch.cancel();
      if (!this.stopped) await this.relist();
    } catch (err) {
      this.o.logger.debug({ prefix: this.o.prefix, err: (err as Error).message }, 'staleness check failed');
    }
  }

  private onWatchError(err: Error): void {
    if (this.stopped) return;
    const why = err instanceof CompactedError ? 'compacted' : err.message;
    this.o.logger.info({ prefix: this.o.prefix, why }, 'watch ended; relisting');
    this.clock.setTimeout(() => void this.relist(), err instanceof CompactedError ? 0 : this.o.retryMs ?? 1000);
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  /** Replaces the cache with a fresh list and reports the difference. */
  private replace(items: KeyValue[]): void {
    const seen = new Set<string>();
    for (const kv of items) {
      seen.add(kv.key);
      this.put(kv.key, kv.value, kv.modRevision, kv.createRevision, 'list');
    }
    for (const [key, old] of [...this.cache]) {
      if (seen.has(key)) continue;
      this.remove(key, old);
    }
  }

  private apply(events: WatchEvent[]): void {
    for (const ev of events) {
      this.revision = Math.max(this.revision, ev.modRevision);
      if (ev.type === 'put') {
        this.put(ev.key, ev.value, ev.modRevision, ev.createRevision, 'watch');
        continue;
      }
      const old = this.cache.get(ev.key);
      if (old !== undefined) this.remove(ev.key, old);
    }
  }

  private put(key: string, value: string, modRevision: number, createRevision: number, from: 'list' | 'watch'): void {
    let obj: T | undefined;
    try {
      obj = this.o.decode({ key, value, modRevision, createRevision, from });
    } catch (err) {
      this.o.logger.warn({ key, err: (err as Error).message }, 'skipping undecodable value');
    }
    const old = this.cache.get(key);
    if (obj === undefined) {
      if (old !== undefined) this.remove(key, old);
      return;
    }
    this.cache.set(key, obj);
    for (const index of this.indexes.values()) index.update(key, obj, old);
    if (old === undefined) this.emit((h) => h.onAdd?.(key, obj!));
    else this.emit((h) => h.onUpdate?.(key, obj!, old));
  }

  private remove(key: string, old: T): void {
    this.cache.delete(key);
    for (const index of this.indexes.values()) index.remove(key, old);
    this.emit((h) => h.onDelete?.(key, old));
  }

  private emit(fn: (h: InformerHandlers<T>) => void): void {
    for (const h of this.handlers) {
      try {
        fn(h);
      } catch (err) {
        this.o.logger.error({ err: (err as Error).message }, 'informer handler threw');
      }
    }
  }
}

/** Cache keys by a value derived from each cached object. */
class CacheIndex<T> {
  private readonly keys = new Map<string, Set<string>>();

  constructor(private readonly valueOf: (obj: T) => string | undefined) {}

  keysOf(value: string): ReadonlySet<string> {
    return this.keys.get(value) ?? new Set();
  }

  add(key: string, obj: T): void {
    const value = this.valueOf(obj);
    if (value === undefined) return;
    let set = this.keys.get(value);
    if (!set) this.keys.set(value, (set = new Set()));
    set.add(key);
  }

  remove(key: string, obj: T): void {
    const value = this.valueOf(obj);
    if (value === undefined) return;
    const set = this.keys.get(value);
    set?.delete(key);
    if (set?.size === 0) this.keys.delete(value);
  }

  update(key: string, obj: T, old: T | undefined): void {
    if (old !== undefined) {
      if (this.valueOf(old) === this.valueOf(obj)) return;
      this.remove(key, old);
    }
    this.add(key, obj);
  }
}
