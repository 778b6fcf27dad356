/** The agent's flag parsing: port ranges, attributes, amounts, names. */
import { checkNodeName, defaultNodeName, parseAmount, parseAttributes, parsePort, parsePortRanges, parseSeconds } from '../../pkg/agent/config';

describe('parsePortRanges', () => {
  it('parses ranges and single ports, sorted', () => {
    expect(parsePortRanges('31000-32000,33000-33100')).toEqual([
      [31000, 32000],
      [33000, 33100],
    ]);
    expect(parsePortRanges('33000-33100, 8080')).toEqual([
      [8080, 8080],
      [33000, 33100],
    ]);
    expect(parsePortRanges('')).toEqual([]);
  });

  it.each([
    ['31000-', /"31000-" is not a port or a port range like 31000-32000/],
    ['abc', /"abc" is not a port/],
    ['0-10', /port 0 in "0-10" is outside 1-65535/],
    ['65000-70000', /port 70000 .* outside 1-65535/],
    ['32000-31000', /ends before it begins/],
    ['31000-32000,31500-33000', /port ranges 31000-32000 and 31500-33000 overlap/],
    ['-5', /not a port/],
  ])('rejects %p', (text, message) => {
    expect(() => parsePortRanges(text)).toThrow(message);
  });
});

describe('parseAttributes', () => {
  it('parses key=value pairs, trimming spaces; values may be empty or contain =', () => {
    expect(parseAttributes('rack=r1,zone=a')).toEqual({ rack: 'r1', zone: 'a' });
    expect(parseAttributes(' rack = r1 , gpu=, kv=a=b')).toEqual({ rack: 'r1', gpu: '', kv: 'a=b' });
    expect(parseAttributes('')).toEqual({});
  });

  it.each([
    ['rack', /attribute "rack" is not key=value/],
    ['=r1', /attribute key "" must be/],
    ['ra ck=r1', /attribute key "ra ck" must be/],
    ['rack=r1,rack=r2', /attribute "rack" is given twice/],
    ['hostname=h1', /attribute key "hostname" is reserved/],
    ['constructor=x', /reserved/],
    ['__proto__=x', /attribute key "__proto__" must be/],
    ['rack=r1,,zone=a', /attribute "" is not key=value/],
  ])('rejects %p', (text, message) => {
    expect(() => parseAttributes(text)).toThrow(message);
  });

  it('returns a plain object without inherited surprises', () => {
    const attrs = parseAttributes('toString=x');
    expect(Object.keys(attrs)).toEqual(['toString']);
  });
});

describe('other agent flags', () => {
  it('parseAmount accepts non-negative numbers and names the flag otherwise', () => {
    expect(parseAmount('--cpus', '2.5')).toBe(2.5);
    expect(parseAmount('--mem', '0')).toBe(0);
    expect(() => parseAmount('--cpus', '-1')).toThrow('--cpus must be a number >= 0, got "-1"');
    expect(() => parseAmount('--mem', 'lots')).toThrow(/--mem must be a number/);
    expect(() => parseAmount('--mem', '')).toThrow(/--mem must be a number/);
  });

  it('parseSeconds and parsePort', () => {
    expect(parseSeconds('10')).toBe(10);
    expect(() => parseSeconds('0')).toThrow(/seconds >= 1/);
    expect(() => parseSeconds('1.5')).toThrow(/seconds >= 1/);
    expect(parsePort('5051')).toBe(5051);
    expect(() => parsePort('70000')).toThrow(/not a port number/);
    expect(() => parsePort('x')).toThrow(/not a port number/);
  });

  it('node names must be DNS-1123 labels; the default comes from the host name', () => {
    expect(checkNodeName('node-1')).toBe('node-1');
    expect(() => checkNodeName('Node_1')).toThrow(/must be a DNS-1123 label/);
    expect(defaultNodeName('Worker-7.example.com')).toBe('worker-7');
  });
});
