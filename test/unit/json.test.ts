import { runInNewContext } from 'node:vm';
import { jsonEqual } from '../../pkg/util/json';

describe('jsonEqual', () => {
  it.each([
    [{ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }, true],
    [{ a: 1 }, { a: 1, b: undefined }, true],
    [[1, 2], [2, 1], false],
    [{ a: [] }, { a: {} }, false],
    [{ a: null }, { a: undefined }, false],
    [1, '1', false],
    [{ a: 1 }, { a: 1, b: 2 }, false],
  ])('%j vs %j → %s', (a, b, expected) => {
    expect(jsonEqual(a, b)).toBe(expected);
  });

  it('ignoresPrototypesFromAnotherRealm', () => {
    expect(jsonEqual(runInNewContext('({a: [1, {}]})'), { a: [1, {}] })).toBe(true);
  });
});
