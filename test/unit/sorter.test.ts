import { dominantShare, DRFSorter, RandomSorter } from '../../pkg/scheduler/sorter';
import type { Scalars } from '../../pkg/scheduler/types';

const s = (cpus: number, mem: number, disk = 0): Scalars => ({ cpus, mem, disk });

function drf(total: Scalars, clients: Record<string, { alloc: Scalars; weight?: number }>): DRFSorter {
  const sorter = new DRFSorter();
  sorter.setTotal(total);
  for (const [name, c] of Object.entries(clients)) {
    sorter.add(name, c.weight);
    sorter.allocated(name, c.alloc);
  }
  return sorter;
}

describe('DRFSorter', () => {
  it('puts the lowest dominant share first', () => {
    // total cpus 10 mem 100; a: 1 cpu 20 mem → max(.1, .2) = .2; b: 3 cpus 10 mem → max(.3, .1) = .3
    const sorter = drf(s(10, 100), { b: { alloc: s(3, 10) }, a: { alloc: s(1, 20) } });
    expect(sorter.share('a')).toBeCloseTo(0.2);
    expect(sorter.share('b')).toBeCloseTo(0.3);
    expect(sorter.sort()).toEqual(['a', 'b']);
  });

  it('compares dominant shares even when they are on different resources', () => {
    // total cpus 9 mem 18 (the DRF paper): a holds <3, 12> → mem 12/18 = .667; b holds <6, 2> → cpu 6/9 = .667;
    // c holds <1, 10> → mem 10/18 = .556
    const sorter = drf(s(9, 18), { a: { alloc: s(3, 12) }, b: { alloc: s(6, 2) }, c: { alloc: s(1, 10) } });
    expect(sorter.sort()).toEqual(['c', 'a', 'b']);
  });

  it('divides the share by the weight', () => {
    // total cpus 10 mem 100; a: .2; b weight 2: .3/2 = .15 → b first
    const sorter = drf(s(10, 100), { a: { alloc: s(1, 20) }, b: { alloc: s(3, 10), weight: 2 } });
    expect(sorter.share('b')).toBeCloseTo(0.15);
    expect(sorter.sort()).toEqual(['b', 'a']);
  });

  it('breaks ties by client name', () => {
    // total cpus 4 mem 40; z: 1 cpu → .25; a: 10 mem → .25; m: nothing → 0
    const sorter = drf(s(4, 40), { z: { alloc: s(1, 0) }, a: { alloc: s(0, 10) }, m: { alloc: s(0, 0) } });
    expect(sorter.sort()).toEqual(['m', 'a', 'z']);
  });

  it('treats shares reached by different float arithmetic as equal', () => {
    // total cpus 3 mem 30; a: 0.1 + 0.2 cpus → .1; b: 3 mem → .1 (0.1 + 0.2 !== 0.3 in floats)
    const sorter = drf(s(3, 30), { b: { alloc: s(0, 3) }, a: { alloc: s(0.1, 0) } });
    sorter.allocated('a', s(0.2, 0));
    sorter.unallocated('a', s(0.2, 0));
    expect(sorter.sort()).toEqual(['a', 'b']);
  });

  it('skips resources the pool has none of', () => {
    // total cpus 0 mem 0 disk 0 → every share 0, order by name
    const empty = drf(s(0, 0), { b: { alloc: s(1, 1) }, a: { alloc: s(2, 2) } });
    expect(empty.share('a')).toBe(0);
    expect(empty.sort()).toEqual(['a', 'b']);
    // total cpus 10 mem 0: a: 2 cpus → .2; b: 1 cpu (and mem the pool lacks) → .1
    const noMem = drf(s(10, 0), { a: { alloc: s(2, 0) }, b: { alloc: s(1, 50) } });
    expect(noMem.sort()).toEqual(['b', 'a']);
  });

  it('follows unallocation', () => {
    // total cpus 10 mem 100; a: .5 then releases 4 cpus → .1; b: .3
    const sorter = drf(s(10, 100), { a: { alloc: s(5, 0) }, b: { alloc: s(3, 0) } });
    expect(sorter.sort()).toEqual(['b', 'a']);
    sorter.unallocated('a', s(4, 0));
    expect(sorter.sort()).toEqual(['a', 'b']);
  });

  it('follows a change of the total', () => {
    // total cpus 10 mem 100: a 4 cpus → .4, b 30 mem → .3; total cpus 20 mem 100: a → .2, b → .3
    const sorter = drf(s(10, 100), { a: { alloc: s(4, 0) }, b: { alloc: s(0, 30) } });
    expect(sorter.sort()).toEqual(['b', 'a']);
    sorter.setTotal(s(20, 100));
    expect(sorter.sort()).toEqual(['a', 'b']);
  });

  it('forgets removed clients and their allocation', () => {
    const sorter = drf(s(10, 100), { a: { alloc: s(1, 0) }, b: { alloc: s(2, 0) } });
    sorter.remove('a');
    expect(sorter.sort()).toEqual(['b']);
    // re-added a starts from nothing: 0 < b's .2
    sorter.add('a');
    expect(sorter.share('a')).toBe(0);
    expect(sorter.sort()).toEqual(['a', 'b']);
  });

  it('rejects non-positive weights and unknown clients', () => {
    const sorter = new DRFSorter();
    expect(() => sorter.add('a', 0)).toThrow(TypeError);
    expect(() => sorter.add('a', -1)).toThrow(TypeError);
    expect(() => sorter.allocated('ghost', s(1, 1))).toThrow(/unknown client "ghost"/);
  });

  it('is the ledger: allocation, pool and membership as recorded', () => {
    // total cpus 9 mem 18; a holds <1, 4> twice → <2, 8>: max(2/9, 8/18) = .444
    const sorter = drf(s(9, 18), { a: { alloc: s(1, 4) } });
    sorter.allocated('a', s(1, 4));
    expect(sorter.allocation('a')).toEqual(s(2, 8));
    expect(sorter.total()).toEqual(s(9, 18));
    expect(sorter.share('a')).toBeCloseTo(4 / 9);
    expect(sorter.contains('a')).toBe(true);
    // reads are copies: changing one changes nothing recorded
    sorter.allocation('a').cpus = 100;
    sorter.total().cpus = 100;
    expect(sorter.share('a')).toBeCloseTo(4 / 9);
    // unknown clients hold nothing
    expect(sorter.contains('ghost')).toBe(false);
    expect(sorter.allocation('ghost')).toEqual(s(0, 0));
    expect(sorter.share('ghost')).toBe(0);
  });

  it('keeps the allocation when a known client is added again with a new weight', () => {
    // total cpus 10 mem 100; a: 4 cpus → .4; added again with weight 2 → .2
    const sorter = drf(s(10, 100), { a: { alloc: s(4, 0) } });
    sorter.add('a', 2);
    expect(sorter.allocation('a')).toEqual(s(4, 0));
    expect(sorter.share('a')).toBeCloseTo(0.2);
  });

  it('computes the dominant share directly', () => {
    // <3 cpus, 1 mem> of <9, 18> → max(.333, .056) = .333; weight 2 → .167
    expect(dominantShare(s(3, 1), s(9, 18))).toBeCloseTo(1 / 3);
    expect(dominantShare(s(3, 1), s(9, 18), 2)).toBeCloseTo(1 / 6);
  });
});

describe('RandomSorter', () => {
  const orders = (seed: number, n: number) => {
    const sorter = new RandomSorter(seed);
    for (const c of ['a', 'b', 'c', 'd']) sorter.add(c);
    return Array.from({ length: n }, () => sorter.sort().join(''));
  };

  it('replays the same orders for the same seed', () => {
    expect(orders(7, 20)).toEqual(orders(7, 20));
  });

  it('varies the order between sorts and seeds', () => {
    expect(new Set(orders(7, 20)).size).toBeGreaterThan(1);
    expect(orders(7, 20)).not.toEqual(orders(8, 20));
  });

  it('keeps the same ledger as DRF: allocations, pool and weighted shares', () => {
    const sorter = new RandomSorter(1);
    sorter.setTotal(s(10, 100));
    sorter.add('a', 2);
    sorter.allocated('a', s(4, 10));
    // a: max(.4, .1) / 2 = .2
    expect(sorter.allocation('a')).toEqual(s(4, 10));
    expect(sorter.share('a')).toBeCloseTo(0.2);
    sorter.remove('a');
    expect(sorter.contains('a')).toBe(false);
    expect(() => sorter.allocated('a', s(1, 1))).toThrow(/unknown client "a"/);
  });

  it('ignores allocations in its order and puts heavier clients first more often', () => {
    const sorter = new RandomSorter(1);
    sorter.add('light', 1);
    sorter.add('heavy', 4);
    sorter.allocated('light', s(0, 0));
    sorter.allocated('heavy', s(100, 100));
    let heavyFirst = 0;
    for (let i = 0; i < 1000; i++) if (sorter.sort()[0] === 'heavy') heavyFirst++;
    // P(heavy first) = 4 / (4 + 1) = .8
    expect(heavyFirst).toBeGreaterThan(700);
    expect(heavyFirst).toBeLessThan(900);
  });
});
