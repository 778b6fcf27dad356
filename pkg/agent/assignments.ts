/**
 * An agent's view of `<prefix>/assignments/<node>/`: list, then watch from the list revision;
 * when the watch ends (compaction, etcd gone) list again and hand over the whole set, so the
 * agent diffs it against what it runs. Level-triggered: a missed event costs nothing.
 */
import type { Logger } from 'pino';
import type { TaskSpec } from '../api/types.generated';
import { CompactedError } from '../store/errors';
import type { Store, Watch, WatchEvent } from '../store/types';
import { backoffDelay, errorMessage, sleepUnlessAborted } from '../util/backoff';

/** One assignment: what the binder wrote, the bound Task (`{ metadata: {name, namespace, uid}, spec, status }`). */
export interface Assignment {
  namespace: string;
  name: string;
  uid: string;
  spec: TaskSpec;
  /** Name of the App or Job the task belongs to (its controlling owner reference). */
  owner?: string;
  /**
   * The Task as bound, when this assignment came as a watch event: the binder writes the Task and
   * its assignment with the same value in one transaction, so this is the Task's value at
   * `modRevision` (the compare base of the agent's first status write, which then needs no
   * read). Absent after a relist: an old assignment says nothing of what its Task became since.
   */
  bound?: { value: string; modRevision: number };
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
}

/** List + watch of one agent's assignments, relisting whenever the watch dies. */
export class AssignmentWatch {
  private watch?: Watch;

  constructor(private readonly o: AssignmentWatchOptions) {}

  /** Lists (retrying with backoff until it works or the signal aborts), hands the set over, and watches. */
  async start(): Promise<void> {
    for (let attempt = 0; !this.o.signal.aborted; attempt++) {
      try {
        await this.listAndWatch();
        return;
      } catch (err) {
        this.o.logger.warn({ err: errorMessage(err), attempt }, 'listing assignments failed; retrying');
        await sleepUnlessAborted(backoffDelay(attempt), this.o.signal);
      }
    }
  }

  /** Cancels the watch (the signal must be aborted first so no relist follows). */
  async stop(): Promise<void> {
    const watch = this.watch;
    this.watch = undefined;
    await watch?.cancel();
  }

  private async listAndWatch(): Promise<void> {
    const listed = await this.o.store.list(this.o.prefix);
    if (this.o.signal.aborted) return;
    const all = new Map<string, Assignment>();
    for (const kv of listed.items) {
      const parsed = this.parse(kv.key, kv.value);
      if (parsed) all.set(parsed[0], parsed[1]);
    }
    this.o.handler.reset(all);
    const watch = await this.o.store.watch(this.o.prefix, {
      afterRevision: listed.revision,
      onEvents: (events) => events.forEach((e) => this.apply(e)),
      onError: (err) => this.restart(err),
    });
    if (this.o.signal.aborted) await watch.cancel();
    else this.watch = watch;
  }

  private apply(event: WatchEvent): void {
    if (this.o.signal.aborted) return;
    if (event.type === 'delete') {
      this.o.handler.delete(this.taskKey(event.key));
      return;
    }
    const parsed = this.parse(event.key, event.value);
    if (!parsed) return;
    if (event.createRevision === event.modRevision && parsed[2]) parsed[1].bound = { value: event.value, modRevision: event.modRevision };
    this.o.handler.put(parsed[0], parsed[1]);
  }

  /** The watch is dead: list again (in the background; start() never fails). */
  private restart(err: Error): void {
    this.watch = undefined;
    if (this.o.signal.aborted) return;
    if (err instanceof CompactedError) this.o.logger.info({ err: err.message }, 'assignment watch compacted; relisting');
    else this.o.logger.warn({ err: err.message }, 'assignment watch ended; relisting');
    void this.start();
  }

  private taskKey(key: string): string {
    return key.slice(this.o.prefix.length);
  }

  /**
   * `[namespace/name, assignment, whether it is a whole Task]`, or undefined (logged) for a value
   * that is not an assignment.
   */
  private parse(key: string, value: string): [string, Assignment, boolean] | undefined {
    const taskKey = this.taskKey(key);
    try {
      const { metadata, spec, status } = JSON.parse(value) as { metadata?: { name?: unknown; namespace?: unknown; uid?: unknown; ownerReferences?: Array<{ name?: unknown }> }; spec?: unknown; status?: unknown };
      const [namespace, name] = taskKey.split('/');
      const ok = metadata && metadata.name === name && (metadata.namespace ?? namespace) === namespace && typeof metadata.uid === 'string' && spec && typeof spec === 'object';
      if (!ok) throw new Error('want {metadata: {name, namespace, uid}, spec} matching the key');
      const owner = metadata.ownerReferences?.[0]?.name;
      return [taskKey, { namespace, name, uid: metadata.uid as string, spec: spec as TaskSpec, ...(typeof owner === 'string' ? { owner } : {}) }, typeof status === 'object' && status !== null];
    } catch (err) {
      this.o.logger.warn({ key, err: errorMessage(err) }, 'ignoring malformed assignment');
      return undefined;
    }
  }
}
