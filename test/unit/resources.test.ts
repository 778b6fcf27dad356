import { add, countPorts, fits, formatPortRanges, normalizeRanges, parsePortRanges, rangesContain, removePorts, subtract, takePorts } from '../../pkg/api/resources';
import type { Scalars } from '../../pkg/scheduler/types';

const s = (cpus: number, mem: number, disk = 0): Scalars => ({ cpus, mem, disk });

describe('scalar arithmetic', () => {
  it('adds tenths of a cpu up exactly', () => {
    let sum = s(0, 0);
    for (let i = 0; i < 10; i++) sum = add(sum, s(0.1, 0));
    expect(sum.cpus).toBe(1);
    expect(add(s(0.1, 0), s(0.2, 0)).cpus).toBe(0.3);
    expect(subtract(s(1, 0), s(0.9, 0)).cpus).toBe(0.1);
  });

  it('fits on every scalar, at the boundary too', () => {
    expect(fits(s(0.3, 10), add(s(0.1, 5), s(0.2, 5)))).toBe(true);
    expect(fits(s(0.3, 11), s(0.3, 10))).toBe(false);
    expect(fits(s(0, 0, 1), s(8, 8, 0))).toBe(false);
  });
});

describe('port ranges', () => {
  const r = parsePortRanges('31000-31004,31010');

  it('parses, normalizes and formats', () => {
    expect(r).toEqual([[31000, 31004], [31010, 31010]]);
    expect(parsePortRanges(' 33000-33010 , 31000-32000,32001-32005, ')).toEqual([[31000, 32005], [33000, 33010]]);
    expect(formatPortRanges(r)).toBe('31000-31004,31010');
    expect(parsePortRanges('')).toEqual([]);
    expect(normalizeRanges([[5, 9], [1, 3], [4, 4], [8, 12]])).toEqual([[1, 12]]);
  });

  it.each(['a-b', '5-1', '70000', '1-2-3', '-5'])('rejects %s', (text) => {
    expect(() => parsePortRanges(text)).toThrow(TypeError);
  });

  it('counts and looks up ports', () => {
    expect(countPorts(r)).toBe(6);
    expect(rangesContain(r, 31004)).toBe(true);
    expect(rangesContain(r, 31005)).toBe(false);
  });

  it('removes ports, splitting ranges', () => {
    expect(removePorts(r, [31000, 31002, 31010, 40000])).toEqual([[31001, 31001], [31003, 31004]]);
    expect(removePorts(r, [])).toEqual(r);
  });

  it('takes the lowest free ports, or nothing when too few are left', () => {
    expect(takePorts(r, 3)).toEqual([31000, 31001, 31002]);
    expect(takePorts(r, 3, [31000, 31002])).toEqual([31001, 31003, 31004]);
    expect(takePorts(r, 2, new Set([31000, 31001, 31002, 31003]))).toEqual([31004, 31010]);
    expect(takePorts(r, 7)).toBeUndefined();
    expect(takePorts(r, 0)).toEqual([]);
  });
});
