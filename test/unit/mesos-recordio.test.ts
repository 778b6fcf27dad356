import { DEFAULT_MAX_RECORD_BYTES, encodeRecord, RecordIODecoder } from '../../pkg/master/mesos/recordio';

const events = [
  { type: 'SUBSCRIBED', subscribed: { framework_id: { value: 'fw-1' }, heartbeat_interval_seconds: 15 } },
  { type: 'HEARTBEAT' },
  { type: 'UPDATE', update: { status: { task_id: { value: 'tâche-ü-日本-🐟' }, state: 'TASK_RUNNING', message: 'ça marche ✓' } } },
];

describe('encodeRecord', () => {
  it('prefixes the JSON with its byte length and a newline', () => {
    expect(encodeRecord({ type: 'HEARTBEAT' }).toString('utf8')).toBe('20\n{"type":"HEARTBEAT"}');
  });

  it('counts bytes, not characters, for multi-byte UTF-8', () => {
    const buf = encodeRecord({ m: 'é🐟' });
    const json = JSON.stringify({ m: 'é🐟' });
    expect(json.length).toBe(11);
    expect(Buffer.byteLength(json)).toBe(14);
    expect(buf.toString('utf8')).toBe(`14\n${json}`);
  });
});

describe('RecordIODecoder', () => {
  const stream = Buffer.concat(events.map(encodeRecord));

  it('decodes several records in one chunk', () => {
    expect(new RecordIODecoder().push(stream)).toEqual(events);
  });

  it('decodes a stream split at every byte boundary', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new RecordIODecoder();
      const got = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(got).toEqual(events);
      expect(d.pending).toBe(0);
    }
  });

  it('decodes a stream pushed one byte at a time (multi-byte characters split)', () => {
    const d = new RecordIODecoder();
    const got: unknown[] = [];
    for (let i = 0; i < stream.length; i++) got.push(...d.push(stream.subarray(i, i + 1)));
    expect(got).toEqual(events);
  });

  it('decodes a stream split at every pair of boundaries', () => {
    const small = Buffer.concat([encodeRecord({ a: 'ü' }), encodeRecord({ b: 1 })]);
    for (let i = 0; i <= small.length; i++) {
      for (let j = i; j <= small.length; j++) {
        const d = new RecordIODecoder();
        const got = [...d.push(small.subarray(0, i)), ...d.push(small.subarray(i, j)), ...d.push(small.subarray(j))];
        expect(got).toEqual([{ a: 'ü' }, { b: 1 }]);
      }
    }
  });

  it('accepts strings', () => {
    expect(new RecordIODecoder().push('2\n{}3\n[1]')).toEqual([{}, [1]]);
  });

  it('keeps an incomplete record until the rest arrives', () => {
    const d = new RecordIODecoder();
    expect(d.push('11\n{"a":')).toEqual([]);
    expect(d.pending).toBe(5);
    expect(d.push('12345}')).toEqual([{ a: 12345 }]);
  });

  it('returns raw records with json: false', () => {
    const out = new RecordIODecoder({ json: false }).push(Buffer.from('3\nabc0\n'));
    expect(out.map((b) => (b as Buffer).toString())).toEqual(['abc', '']);
  });

  it('defaults the record limit to 16 MiB', () => {
    expect(DEFAULT_MAX_RECORD_BYTES).toBe(16 * 1024 * 1024);
    expect(() => new RecordIODecoder().push(`${16 * 1024 * 1024 + 1}\n`)).toThrow(/exceeds the limit of 16777216 bytes/);
    expect(new RecordIODecoder().push(`${16 * 1024 * 1024}\n`)).toEqual([]);
  });

  it.each([
    ['letters in the length', 'abc\n{}', /malformed record length "abc"/],
    ['a sign', '-2\n{}', /malformed record length "-2"/],
    ['a blank line', '\n{}', /malformed record length ""/],
    ['spaces', ' 2\n{}', /malformed record length " 2"/],
    ['a length with no newline, too long', '123456789012345678901', /no newline within 21 bytes/],
    ['JSON where the length should be', '{"type":"HEARTBEAT"}', /malformed record length/],
    ['a record that is not JSON', '3\nabc', /record of 3 bytes is not JSON/],
    ['an empty record', '0\n', /record of 0 bytes is not JSON/],
    ['a record over the limit', '101\n', /record of 101 bytes exceeds the limit of 100 bytes/],
  ])('throws on %s', (_what, input, message) => {
    expect(() => new RecordIODecoder({ maxRecordBytes: 100 }).push(input)).toThrow(message);
  });

  it('fails early on a non-digit before the newline arrives', () => {
    expect(() => new RecordIODecoder().push('1x')).toThrow(/malformed record length "1x"/);
  });

  it('stays failed after an error', () => {
    const d = new RecordIODecoder();
    expect(() => d.push('x\n')).toThrow(/malformed/);
    expect(() => d.push('2\n{}')).toThrow(/malformed/);
  });

  it('returns the records completed before a malformed one only by throwing', () => {
    const d = new RecordIODecoder();
    expect(d.push('2\n{}')).toEqual([{}]);
    expect(() => d.push('zz\n')).toThrow(/malformed/);
  });
});
