/**
 * An agent's view of `<prefix>/assignments/<node>/`, kept by an Informer (list, watch from the
 * list revision, relist when the watch ends or goes silent): after the first list the agent gets
 * the whole set, then every change, a relist included, key by key. Level-triggered: a missed
 * event costs nothing.
 */
import type { Logger } from 'pino';
import type { TaskSpec } from '../api/types.generated';
import { Informer } from '../client/informer';
import type { Store } from '../store/types';
import { errorMessage } from '../util/backoff';

/** One assignment: what the binder wrote, the bound Task (`{ metadata: {name, namespace, uid}, spec, status }`). */
export interface Assignment {
  namespace: string;
  name: string;
  uid: string;
  spec: TaskSpec;
  /** Name of the App or Job the task belongs to (its controlling owner reference). */
  owner?: string;
}

/** Receives the assignment set; keys are `namespace/name`. */
export interface AssignmentHandler {
  /** The complete set after a (re)list: anything not in it is no longer assigned. */
  reset(all: Map<string, Assignment>): void;
  put(key: string, assignment: Assignment): void;
  delete(key: string): void;
}

export interface AssignmentWatchOptions {
  store: Store;
  /** assignmentPrefix(prefix, node); ends with '/'. */
  prefix: string;
  handler: AssignmentHandler;
  logger: Logger;
  /** Ends the loop (the agent stopped). */
  signal: AbortSignal;
  /**
   * The Informer's check for a watch gone silent (it costs an idle agent one count request per
   * check; a host of thousands of hollow agents pays it thousands of times). 0: off. @default 30000
   */
  staleCheckMs?: number;
}

/** One agent's assignments: an Informer over its prefix, handing changes to the agent. */
export class AssignmentWatch {
  private readonly informer: Informer<Assignment>;
  /** The agent has had the first complete set; until then changes only fill the cache. */
  private synced = false;

  constructor(private readonly o: AssignmentWatchOptions) {
    this.informer = new Informer<Assignment>({
      store: o.store,
      prefix: o.prefix,
      logger: o.logger,
      staleCheckMs: o.staleCheckMs ?? 30_000,
      decode: (kv) => this.parse(kv),
    });
    this.informer.addHandlers({
      onAdd: (key, a) => this.put(key, a),
      onUpdate: (key, a) => this.put(key, a),
      onDelete: (key) => {
        if (this.live()) this.o.handler.delete(this.taskKey(key));
      },
    });
  }

  /**
   * Lists (retrying until it works or the signal aborts), hands the whole set over, and follows
   * changes. Resolves once the set is handed over, or when the signal aborts; never fails.
   */
  async start(): Promise<void> {
    const { signal } = this.o;
    if (signal.aborted) return;
    let onAbort!: () => void;
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', (onAbort = () => resolve()), { once: true }));
    try {
      await Promise.race([this.informer.start(), aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (signal.aborted) return;
    // Read from the cache at this moment: whatever changed since the list is in it, and every
    // later change reaches the handler.
    const all = new Map<string, Assignment>();
    for (const [key, a] of this.informer.entries()) all.set(this.taskKey(key), a);
    this.synced = true;
    this.o.handler.reset(all);
  }

  /** Stops watching (the signal must be aborted first so nothing more reaches the handler). */
  async stop(): Promise<void> {
    await this.informer.stop();
  }

  private live(): boolean {
    return this.synced && !this.o.signal.aborted;
  }

  private put(key: string, a: Assignment): void {
    if (this.live()) this.o.handler.put(this.taskKey(key), a);
  }

  private taskKey(key: string): string {
    return key.slice(this.o.prefix.length);
  }

  /**
   * The assignment under `key`, or undefined (logged) for a value that is not one.
   */
  private parse(kv: { key: string; value: string }): Assignment | undefined {
    const taskKey = this.taskKey(kv.key);
    try {
      const { metadata, spec } = JSON.parse(kv.value) as { metadata?: { name?: unknown; namespace?: unknown; uid?: unknown; ownerReferences?: Array<{ name?: unknown }> }; spec?: unknown };
      const [namespace, name] = taskKey.split('/');
      const ok = metadata && metadata.name === name && (metadata.namespace ?? namespace) === namespace && typeof metadata.uid === 'string' && spec && typeof spec === 'object';
      if (!ok) throw new Error('want {metadata: {name, namespace, uid}, spec} matching the key');
      const owner = metadata.ownerReferences?.[0]?.name;
      const a: Assignment = { namespace, name, uid: metadata.uid as string, spec: spec as TaskSpec, ...(typeof owner === 'string' ? { owner } : {}) };
      return a;
    } catch (err) {
      this.o.logger.warn({ key: kv.key, err: errorMessage(err) }, 'ignoring malformed assignment');
      return undefined;
    }
  }
}
