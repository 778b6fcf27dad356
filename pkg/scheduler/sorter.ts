/**
 * Sorters: the fairness policy of the allocator behind one question, `sort()` — in which
 * order should clients (roles) be offered resources? As in Mesos, the offer loop only consumes
 * the order, so DRF can be swapped for a random order without touching the loop.
 */
import { add, subtract, zero } from '../api/resources';
import { Random, seededRandom } from './random';
import type { Scalars } from './types';

/** Orders clients (roles) for resource offers. Mirrors Mesos' `Sorter`. */
export interface Sorter {
  /** Adds a client; `weight` (default 1) divides its share, so weight 2 is entitled to twice as much. */
  add(client: string, weight?: number): void;
  /** Forgets a client and its allocation. */
  remove(client: string): void;
  /** Records that `resources` were allocated to `client`. */
  allocated(client: string, resources: Scalars): void;
  /** Records that `resources` allocated to `client` were released. */
  unallocated(client: string, resources: Scalars): void;
  /** Sets the pool all shares are relative to (the sum of all agents' capacity). */
  setTotal(total: Scalars): void;
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

/** Dominant Resource Fairness: lowest weighted dominant share first, ties by client name. */
export class DRFSorter implements Sorter {
  private readonly clients = new Map<string, Client>();
  private total: Scalars = zero();

  add(client: string, weight = 1): void {
    const existing = this.clients.get(client);
    if (existing) existing.weight = checkWeight(client, weight);
    else this.clients.set(client, { weight: checkWeight(client, weight), allocation: zero() });
  }

  remove(client: string): void {
    this.clients.delete(client);
  }

  allocated(client: string, resources: Scalars): void {
    const c = this.get(client);
    c.allocation = add(c.allocation, resources);
  }

  unallocated(client: string, resources: Scalars): void {
    const c = this.get(client);
    c.allocation = subtract(c.allocation, resources);
  }

  setTotal(total: Scalars): void {
    this.total = { cpus: total.cpus, mem: total.mem, disk: total.disk };
  }

  /** The weighted dominant share of `client` (0 for an unknown client). */
  share(client: string): number {
    const c = this.clients.get(client);
    return c ? dominantShare(c.allocation, this.total, c.weight) : 0;
  }

  sort(): string[] {
    // Shares are quantized so equal fractions reached by different arithmetic tie (and fall to the name).
    const keyed = [...this.clients].map(([name, c]) => ({ name, share: quantize(dominantShare(c.allocation, this.total, c.weight)) }));
    keyed.sort((x, y) => x.share - y.share || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    return keyed.map((k) => k.name);
  }

  private get(client: string): Client {
    const c = this.clients.get(client);
    if (!c) throw new Error(`sorter: unknown client "${client}"`);
    return c;
  }
}

/**
 * A weighted random order (each sort draws anew from a seeded generator): the fairness
 * policy for "no policy", and a check that the offer loop depends on nothing but the order.
 */
export class RandomSorter implements Sorter {
  private readonly weights = new Map<string, number>();
  private readonly random: Random;

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  add(client: string, weight = 1): void {
    this.weights.set(client, checkWeight(client, weight));
  }

  remove(client: string): void {
    this.weights.delete(client);
  }

  /** Ignored: a random order does not depend on allocations. */
  allocated(_client: string, _resources: Scalars): void {}

  /** Ignored, like {@link allocated}. */
  unallocated(_client: string, _resources: Scalars): void {}

  /** Ignored, like {@link allocated}. */
  setTotal(_total: Scalars): void {}

  /** Efraimidis–Spirakis: key u^(1/w), largest first, so weight 2 tends to come first twice as often. */
  sort(): string[] {
    const names = [...this.weights.keys()].sort();
    const keyed = names.map((name) => ({ name, key: Math.pow(this.random(), 1 / (this.weights.get(name) ?? 1)) }));
    keyed.sort((x, y) => y.key - x.key);
    return keyed.map((k) => k.name);
  }
}
