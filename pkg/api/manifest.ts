/**
 * Manifest loading: multi-document YAML (and JSON, a subset of YAML) into plain objects,
 * safely, with source lines for every field so errors can point at them.
 *
 * Safety: aliases are refused (a 400-byte "billion laughs" document would otherwise expand
 * to millions of nodes), nesting is capped, duplicate keys are errors, and the CORE schema
 * means no custom tags or implicit timestamps.
 */
import { constructFromEvents, getScalarValue, parseEvents, EVENT_ID, YAMLException, type Event } from 'js-yaml';

/** Deepest nesting a manifest may have; real manifests stay under 15. */
export const MAX_MANIFEST_DEPTH = 64;

/** One document of a manifest file. */
export interface ManifestDocument {
  /** The parsed document (not yet validated). */
  object: unknown;
  /** File name as given by the user (or `<stdin>`). */
  source: string;
  /** 1-based position of the document within its file, counting skipped empty documents. */
  index: number;
  /** 1-based line where the document's content starts. */
  line: number;
  /** 1-based line of a field path such as `spec.ports[0].hostPort`, or of its nearest known parent. */
  lineOf(field: string): number;
}

/** A manifest that cannot be parsed; the message is one line: `file:line:column: reason`. */
export class ManifestError extends Error {
  constructor(readonly source: string, readonly line: number | undefined, reason: string) {
    super(line ? `${source}:${line}: ${reason}` : `${source}: ${reason}`);
    this.name = 'ManifestError';
  }
}

/** Parses every non-empty document in `text`; throws ManifestError with file and line. */
export function parseManifests(text: string, source: string): ManifestDocument[] {
  let events: Event[];
  let values: unknown[];
  try {
    events = parseEvents(text, { filename: source, maxDepth: MAX_MANIFEST_DEPTH });
    values = constructFromEvents(events, { source: text, filename: source, maxAliases: 0 });
  } catch (err) {
    if (err instanceof YAMLException) {
      const mark = (err as YAMLException & { mark?: { line: number; column: number } }).mark;
      const where = mark ? mark.line + 1 : undefined;
      const reason = err.reason === 'aliases exceeded maxAliases (0)' ? 'YAML aliases (*name) are not allowed in manifests' : err.reason;
      throw new ManifestError(source, where, mark ? `column ${mark.column + 1}: ${reason}` : reason);
    }
    if (err instanceof RangeError) throw new ManifestError(source, undefined, 'document is nested too deeply');
    throw err;
  }
  const lines = lineStarts(text);
  const docs = indexDocuments(events, text, lines);
  const out: ManifestDocument[] = [];
  values.forEach((object, i) => {
    if (object === null || object === undefined) return; // empty documents are skipped, as kubectl does
    const fieldLines = docs[i] ?? new Map<string, number>();
    out.push({
      object,
      source,
      index: i + 1,
      line: fieldLines.get('') ?? 1,
      lineOf: (field) => nearestLine(fieldLines, field),
    });
  });
  return out;
}

function nearestLine(fieldLines: Map<string, number>, field: string): number {
  let f = field;
  for (;;) {
    const line = fieldLines.get(f);
    if (line !== undefined) return line;
    if (f === '') return 1;
    const cut = Math.max(f.lastIndexOf('.'), f.lastIndexOf('['));
    f = cut > 0 ? f.slice(0, cut) : '';
  }
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

function lineAt(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

interface Frame {
  kind: 'map' | 'seq';
  path: string;
  next: number; // seq: next index; map: 0 = expecting key, 1 = expecting value
  key: string;
  keyLine: number;
}

/** Walks the parser events once and records the line of every field path, per document. */
function indexDocuments(events: Event[], text: string, starts: number[]): Map<string, number>[] {
  const docs: Map<string, number>[] = [];
  let lines = new Map<string, number>();
  const stack: Frame[] = [];

  // Returns the path of the node that starts now, and records its line.
  const enter = (offset: number): string => {
    const top = stack[stack.length - 1];
    let path = '';
    let line = offset >= 0 ? lineAt(starts, offset) : 1;
    if (top?.kind === 'seq') path = `${top.path}[${top.next++}]`;
    else if (top?.kind === 'map') {
      path = top.path ? `${top.path}.${top.key}` : top.key;
      line = top.keyLine;
      top.next = 0;
    }
    if (!lines.has(path)) lines.set(path, line);
    return path;
  };

  for (const ev of events) {
    switch (ev.type) {
      case EVENT_ID.DOCUMENT:
        lines = new Map();
        docs.push(lines);
        break;
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE: {
        const top = stack[stack.length - 1];
        if (top?.kind === 'map' && top.next === 0) {
          // complex (non-scalar) key: index nothing below it
          top.next = 1;
          top.key = '?';
        }
        const path = enter(ev.start);
        stack.push({ kind: ev.type === EVENT_ID.MAPPING ? 'map' : 'seq', path, next: 0, key: '', keyLine: 0 });
        break;
      }
      case EVENT_ID.SCALAR: {
        const top = stack[stack.length - 1];
        if (top?.kind === 'map' && top.next === 0) {
          top.key = getScalarValue(text, ev);
          top.keyLine = lineAt(starts, Math.max(ev.valueStart, 0));
          top.next = 1;
        } else {
          enter(ev.valueStart);
        }
        break;
      }
      case EVENT_ID.ALIAS:
        enter(ev.anchorStart);
        break;
      case EVENT_ID.POP:
        stack.pop();
        break;
    }
  }
  return docs;
}
