import { Heap } from '../../pkg/util/heap';
import { seededRandom } from '../../pkg/scheduler/random';

describe('Heap', () => {
  it('pops in comparator order, duplicates included', () => {
    const random = seededRandom(3);
    const h = new Heap<number>((a, b) => a - b);
    const values = Array.from({ length: 500 }, () => Math.floor(random() * 50));
    values.forEach((v) => h.push(v));
    expect(h.size).toBe(500);
    const out: number[] = [];
    for (let v = h.pop(); v !== undefined; v = h.pop()) out.push(v);
    expect(out).toEqual([...values].sort((a, b) => a - b));
    expect(h.size).toBe(0);
  });

  it('interleaves pushes and pops', () => {
    const h = new Heap<string>((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    h.push('c');
    h.push('a');
    expect(h.pop()).toBe('a');
    h.push('b');
    expect([h.pop(), h.pop(), h.pop()]).toEqual(['b', 'c', undefined]);
  });
});
