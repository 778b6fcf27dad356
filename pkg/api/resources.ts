/**
 * Resources, the vocabulary agents, the allocator and frameworks share, and their arithmetic:
 * scalars (cpus, mem, disk) rounded to a fixed grid so fractional cpus add up exactly, and
 * host port ranges (inclusive `[begin, end]` pairs). Every function is pure and returns new
 * values; inputs are never mutated.
 */

/** Inclusive port range [begin, end]. */
export type PortRange = [number, number];

/** Scalar resources: cpus in cores, mem and disk in MiB. */
export interface Scalars {
  cpus: number;
  mem: number;
  disk: number;
}

/** Scalars plus host port ranges. */
export interface Resources extends Scalars {
  ports: PortRange[];
}

/** Scalars are kept on a 1e-6 grid: 0.1 + 0.2 must equal 0.3, or a full agent never "fits". */
export const RESOLUTION = 1e-6;

const SCALE = 1 / RESOLUTION;
const MAX_PORT = 65535;

/** Rounds `x` to the scalar grid ({@link RESOLUTION}). */
export function round(x: number): number {
  return Math.round(x * SCALE) / SCALE;
}

/** The empty scalar vector. */
export function zero(): Scalars {
  return { cpus: 0, mem: 0, disk: 0 };
}

/** `a + b`, on the grid. */
export function add(a: Scalars, b: Scalars): Scalars {
  return { cpus: round(a.cpus + b.cpus), mem: round(a.mem + b.mem), disk: round(a.disk + b.disk) };
}

/** `a - b`, on the grid; may be negative (use {@link nonNegative} to clamp). */
export function subtract(a: Scalars, b: Scalars): Scalars {
  return { cpus: round(a.cpus - b.cpus), mem: round(a.mem - b.mem), disk: round(a.disk - b.disk) };
}

/** `s` with negative components replaced by 0 (over-committed agents have nothing free, not less). */
export function nonNegative(s: Scalars): Scalars {
  return { cpus: Math.max(0, s.cpus), mem: Math.max(0, s.mem), disk: Math.max(0, s.disk) };
}

/** Whether `need` fits into `free` on every scalar, compared on the grid. */
export function fits(need: Scalars, free: Scalars): boolean {
  return round(free.cpus - need.cpus) >= 0 && round(free.mem - need.mem) >= 0 && round(free.disk - need.disk) >= 0;
}

/** Whether every component is a finite number ≥ 0 (what a launch may ask for). */
export function isValidDemand(s: Scalars): boolean {
  return [s.cpus, s.mem, s.disk].every((x) => Number.isFinite(x) && x >= 0);
}

/** Ranges sorted by begin, with overlapping and adjacent ranges merged. */
export function normalizeRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = ranges.filter(([b, e]) => b <= e).sort((x, y) => x[0] - y[0]);
  const out: PortRange[] = [];
  for (const [b, e] of sorted) {
    const last = out[out.length - 1];
    if (last && b <= last[1] + 1) last[1] = Math.max(last[1], e);
    else out.push([b, e]);
  }
  return out;
}

/** Whether `port` lies in one of `ranges`. */
export function rangesContain(ranges: readonly PortRange[], port: number): boolean {
  for (const [b, e] of ranges) if (port >= b && port <= e) return true;
  return false;
}

/** How many ports `ranges` hold (ranges are assumed disjoint, as normalized ranges are). */
export function countPorts(ranges: readonly PortRange[]): number {
  let n = 0;
  for (const [b, e] of ranges) n += e - b + 1;
  return n;
}

/** `ranges` without `ports`, split where a removed port falls inside a range. */
export function removePorts(ranges: readonly PortRange[], ports: Iterable<number>): PortRange[] {
  const holes = [...new Set(ports)].sort((a, b) => a - b);
  if (holes.length === 0) return ranges.map(([b, e]): PortRange => [b, e]);
  const out: PortRange[] = [];
  for (const [b, e] of ranges) {
    let start = b;
    for (const p of holes) {
      if (p < start || p > e) continue;
      if (p > start) out.push([start, p - 1]);
      start = p + 1;
    }
    if (start <= e) out.push([start, e]);
  }
  return out;
}

/**
 * The `count` lowest ports of `ranges` not in `used`, or undefined when there are not enough.
 * Lowest first keeps assignments predictable and leaves the high end of a range contiguous.
 */
export function takePorts(ranges: readonly PortRange[], count: number, used?: Iterable<number>): number[] | undefined {
  if (count <= 0) return [];
  const taken = new Set(used ?? []);
  const out: number[] = [];
  for (const [b, e] of normalizeRanges(ranges)) {
    for (let p = b; p <= e; p++) {
      if (taken.has(p)) continue;
      out.push(p);
      if (out.length === count) return out;
    }
  }
  return undefined;
}

const PORT_OR_RANGE = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/;

/**
 * Parses `31000-32000,33000-33100` (a single port `8080` is the range 8080-8080, blanks are
 * ignored) into sorted, non-overlapping inclusive ranges (adjacent ones merged). An empty string means no ports.
 * Throws a `TypeError` naming the bad piece; overlapping ranges are an error (an operator's typo).
 */
export function parsePortRanges(text: string): PortRange[] {
  const ranges = text.split(',').map((item) => item.trim()).filter((item) => item !== '').map(parsePortRange);
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    const [prev, cur] = [ranges[i - 1], ranges[i]];
    if (cur[0] <= prev[1]) throw new TypeError(`port ranges ${prev[0]}-${prev[1]} and ${cur[0]}-${cur[1]} overlap`);
  }
  return normalizeRanges(ranges); // adjacent ranges merge
}

function parsePortRange(item: string): PortRange {
  const m = PORT_OR_RANGE.exec(item);
  if (!m) throw new TypeError(`"${item}" is not a port or a port range like 31000-32000`);
  const begin = Number(m[1]);
  const end = m[2] === undefined ? begin : Number(m[2]);
  for (const port of [begin, end]) {
    if (port < 1 || port > MAX_PORT) throw new TypeError(`port ${port} in "${item}" is outside 1-${MAX_PORT}`);
  }
  if (begin > end) throw new TypeError(`port range "${item}" ends before it begins`);
  return [begin, end];
}

/** Formats ranges as `"31000-32000,33000"` (the inverse of {@link parsePortRanges}). */
export function formatPortRanges(ranges: readonly PortRange[]): string {
  return ranges.map(([b, e]) => (b === e ? `${b}` : `${b}-${e}`)).join(',');
}
