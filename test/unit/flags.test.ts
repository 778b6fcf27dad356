/** Daemon flag parsers: a bad number is refused with the flag named, never read as NaN. */
import { InvalidArgumentError } from 'commander';
import { flag, integer } from '../../pkg/util/flags';

describe('integer', () => {
  it.each([['0', 0], ['7070', 7070], [' 12 ', 12], ['65535', 65535]])('reads %p as %p', (text, n) => {
    expect(integer(0, 65535)(text)).toBe(n);
  });

  it.each(['abc', '', '1.5', '1e3', '0x10', '-1', '65536', 'NaN'])('refuses %p', (text) => {
    expect(() => integer(0, 65535)(text)).toThrow(InvalidArgumentError);
    expect(() => integer(0, 65535)(text)).toThrow('expected a whole number from 0 to 65535');
  });
});

describe('flag', () => {
  it('turns what a parser throws into commander\'s one-line argument error', () => {
    const parse = flag((v) => {
      if (v !== 'ok') throw new Error(`"${v}" is not ok`);
      return v;
    });
    expect(parse('ok')).toBe('ok');
    expect(() => parse('no')).toThrow(new InvalidArgumentError('"no" is not ok'));
  });
});
