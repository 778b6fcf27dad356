/** Command-line flag parsers for commander: a bad value is one line on stderr and exit code 1. */
import { InvalidArgumentError } from 'commander';

/** Wraps a parser so that what it throws becomes commander's "argument ... is invalid" error. */
export const flag = <T>(parse: (v: string) => T) => (v: string): T => {
  try {
    return parse(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

/** A whole number from `min` to `max` ("abc", "1.5" and "" are refused, not read as NaN). */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return flag((v) => {
    const n = Number(v);
    if (!/^\s*-?\d+\s*$/.test(v) || n < min || n > max) throw new Error(`expected a whole number from ${min} to ${max}`);
    return n;
  });
}
