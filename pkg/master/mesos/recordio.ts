/**
 * RecordIO, the framing of Mesos' streaming responses (the SUBSCRIBE event stream):
 *
 *     records     = *record
 *     record      = record-size LF record-data
 *     record-size = 1*DIGIT          ; bytes of record-data, a uint64
 *
 * (docs/scheduler-http-api.md, "RecordIO response format"). The size counts bytes, not
 * characters: a JSON record with multi-byte UTF-8 is longer than its string length. Chunk
 * boundaries are arbitrary (proxies may re-chunk), so the decoder buffers across pushes.
 * Pure: no I/O.
 */

/** One record: the byte length of the JSON (UTF-8), a newline, the JSON. */
export function encodeRecord(event: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(event), 'utf8');
  return Buffer.concat([Buffer.from(`${json.length}\n`, 'ascii'), json]);
}

export interface RecordIODecoderOptions {
  /** Largest record accepted, in bytes (default 16 MiB). */
  maxRecordBytes?: number;
  /** Parse each record as JSON (default true); false returns each record's bytes as a Buffer. */
  json?: boolean;
}

export const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;

/** Longest length line accepted: 20 digits hold any uint64. */
const MAX_LENGTH_DIGITS = 20;
const NEWLINE = 0x0a;

/**
 * Decodes a RecordIO stream pushed in arbitrary chunks. Each push returns the records it
 * completed (parsed JSON, or Buffers with `json: false`). Throws an Error on a malformed length
 * line, a record larger than the limit, or a record that is not JSON; the decoder is then
 * unusable (the stream has lost its framing), and further pushes throw the same error.
 */
export class RecordIODecoder {
  private readonly max: number;
  private readonly json: boolean;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Byte length of the record being read, once its length line is complete. */
  private expected: number | undefined;
  private failed: Error | undefined;

  constructor(o: RecordIODecoderOptions = {}) {
    this.max = o.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    this.json = o.json ?? true;
  }

  /** Bytes received but not yet returned as records. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Buffer | string): unknown[] {
    if (this.failed) throw this.failed;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (buf.length > 0) {
      this.chunks.push(buf);
      this.buffered += buf.length;
    }
    const out: unknown[] = [];
    try {
      for (;;) {
        if (this.expected === undefined) {
          const line = this.takeLine();
          if (line === undefined) break;
          this.expected = this.parseLength(line);
        }
        if (this.buffered < this.expected) break;
        const data = this.take(this.expected);
        this.expected = undefined;
        out.push(this.json ? this.parse(data) : data);
      }
    } catch (err) {
      this.failed = err as Error;
      throw err;
    }
    return out;
  }

  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** The length line without its newline, or undefined when it is not complete yet. */
  private takeLine(): Buffer | undefined {
    const buf = this.joined();
    const nl = buf.indexOf(NEWLINE);
    if (nl < 0) {
      if (buf.length > MAX_LENGTH_DIGITS) throw new Error(`RecordIO: malformed record length: no newline within ${MAX_LENGTH_DIGITS + 1} bytes (starts ${JSON.stringify(preview(buf))})`);
      // Fail early on a non-digit rather than waiting for a newline that may never come.
      for (const b of buf) if (b < 0x30 || b > 0x39) throw new Error(`RecordIO: malformed record length ${JSON.stringify(preview(buf))}: expected decimal digits and a newline`);
      return undefined;
    }
    const line = buf.subarray(0, nl);
    this.chunks = nl + 1 < buf.length ? [buf.subarray(nl + 1)] : [];
    this.buffered -= nl + 1;
    return line;
  }

  private parseLength(line: Buffer): number {
    const text = line.toString('latin1');
    if (!/^\d{1,20}$/.test(text)) throw new Error(`RecordIO: malformed record length ${JSON.stringify(preview(line))}: expected decimal digits and a newline`);
    const n = Number(text);
    if (n > this.max) throw new Error(`RecordIO: record of ${text} bytes exceeds the limit of ${this.max} bytes`);
    return n;
  }

  private take(n: number): Buffer {
    const buf = this.joined();
    const data = buf.subarray(0, n);
    this.chunks = n < buf.length ? [buf.subarray(n)] : [];
    this.buffered -= n;
    return data;
  }

  private parse(data: Buffer): unknown {
    try {
      return JSON.parse(data.toString('utf8'));
    } catch (err) {
      throw new Error(`RecordIO: record of ${data.length} bytes is not JSON: ${(err as Error).message}`);
    }
  }
}

function preview(buf: Buffer): string {
  return buf.subarray(0, 24).toString('latin1');
}
