/**
 * Sorters: the fairness policy of the allocator behind one question, `sort()` — in which
 * order should clients (roles, or the frameworks of one role) be offered resources? As in
 * Mesos, the offer loop only consumes the order, so DRF can be swapped for a random order
 * without touching the loop.
 *
 * A sorter is also the allocator's one share ledger: what each client holds and the pool all
 * shares are relative to live here and nowhere else. The allocator's offer order (`sort()`) and
 * its accept-time fairness check (`share()`) read the same numbers, so they cannot disagree.
 */
import { add, subtract, zero } from '../api/resources';
import { Random, seededRandom } from './random';
import type { Scalars } from './types';

/** Orders clients for resource offers and keeps their allocations. Mirrors Mesos' `Sorter`. */
export interface Sorter {
  /** Adds a client, or sets the weight of a known one; `weight` (default 1) divides its share, so weight 2 is entitled to twice as much. */
  add(client: string, weight?: number): void;
  /** Forgets a client and its allocation. */
  remove(client: string): void;
  /** Whether `client` was added and not removed since. */
  contains(client: string): boolean;
  /** Records that `resources` were allocated to `client`. Throws for an unknown client. */
  allocated(client: string, resources: Scalars): void;
  /** Records that `resources` allocated to `client` were released. Throws for an unknown client. */
  unallocated(client: string, resources: Scalars): void;
  /** What `client` holds (zero for an unknown client). */
  allocation(client: string): Scalars;
  /** Sets the pool all shares are relative to (the sum of all agents' capacity). */
  setTotal(total: Scalars): void;
  /** The pool, as last set. */
  total(): Scalars;
  /** The weighted dominant share of `client` in the pool (0 for an unknown client). */
  share(client: string): number;
  /** Clients, first to be offered first. Deterministic for a given history. */
  sort(): string[];
}

/**
 * A client's weighted dominant share: the largest fraction it holds of any resource of the
 * pool, divided by its weight. Resources the pool has none of are skipped (Mesos does the
 * same), so an empty cluster gives everyone share 0 instead of NaN.
 */
export function dominantShare(allocated: Scalars, total: Scalars, weight = 1): number {
  let share = 0;
  if (total.cpus > 0) share = Math.max(share, allocated.cpus / total.cpus);
  if (total.mem > 0) share = Math.max(share, allocated.mem / total.mem);
  if (total.disk > 0) share = Math.max(share, allocated.disk / total.disk);
  return share / weight;
}

/** Throws a `TypeError` unless `weight` is a finite number > 0. */
export function checkWeight(client: string, weight: number): number {
  if (!(Number.isFinite(weight) && weight > 0)) throw new TypeError(`weight of "${client}" must be > 0, got ${weight}`);
  return weight;
}

function quantize(share: number): number {
  return Math.round(share * 1e12) / 1e12;
}

interface Client {
  weight: number;
  allocation: Scalars;
}

/**
 * The ledger every sorter keeps (Mesos' random sorter keeps allocations too): clients with
 * their weights and allocations, and the pool. Subclasses only decide the order.
 */
abstract class Ledger implements Sorter {
  protected readonly clients = new Map<string, Client>();
  private pool: Scalars = zero();

  add(client: string, weight = 1): void {
    const existing = this.clients.get(client);
    if (existing) existing.weight = checkWeight(client, weight);
    else this.clients.set(client, { weight: checkWeight(client, weight), allocation: zero() });
  }

  remove(client: string): void {
    this.clients.delete(client);
  }

  contains(client: string): boolean {
    return this.clients.has(client);
  }

  allocated(client: string, resources: Scalars): void {
    const c = this.get(client);
    c.allocation = add(c.allocation, resources);
  }

  unallocated(client: string, resources: Scalars): void {
    const c = this.get(client);
    c.allocation = subtract(c.allocation, resources);
  }

  allocation(client: string): Scalars {
    const a = this.clients.get(client)?.allocation ?? zero();
    return { cpus: a.cpus, mem: a.mem, disk: a.disk };
  }

  setTotal(total: Scalars): void {
    this.pool = { cpus: total.cpus, mem: total.mem, disk: total.disk };
  }

  total(): Scalars {
    return { ...this.pool };
  }

  share(client: string): number {
    const c = this.clients.get(client);
    return c ? dominantShare(c.allocation, this.pool, c.weight) : 0;
  }

  abstract sort(): string[];

  private get(client: string): Client {
    const c = this.clients.get(client);
    if (!c) throw new Error(`sorter: unknown client "${client}"`);
    return c;
  }
}

/** Dominant Resource Fairness: lowest weighted dominant share first, ties by client name. */
export class DRFSorter extends Ledger {
  sort(): string[] {
    // Shares are quantized so equal fractions reached by different arithmetic tie (and fall to the name).
    const keyed = [...this.clients.keys()].map((name) => ({ name, share: quantize(this.share(name)) }));
    keyed.sort((x, y) => x.share - y.share || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    return keyed.map((k) => k.name);
  }
}

/**
 * A weighted random order (each sort draws anew from a seeded generator): the fairness
 * policy for "no policy", and a check that the offer loop depends on nothing but the order.
 * It keeps the ledger like any sorter (shares are still reported), but its order ignores it.
 */
export class RandomSorter extends Ledger {
  private readonly random: Random;

  constructor(seed: number) {
    super();
    this.random = seededRandom(seed);
  }

  /** Efraimidis–Spirakis: key u^(1/w), largest first, so weight 2 tends to come first twice as often. */
  sort(): string[] {
    const names = [...this.clients.keys()].sort();
    const keyed = names.map((name) => ({ name, key: Math.pow(this.random(), 1 / this.clients.get(name)!.weight) }));
    keyed.sort((x, y) => y.key - x.key);
    return keyed.map((k) => k.name);
  }
}
