/**
 * Job schedules: 5-field cron (through croner) and Chronos' ISO 8601 repeating intervals.
 * Pure: no I/O, no timers; every time is epoch milliseconds passed in.
 *
 * The DST rule, for cron and for the calendar part (years, months, weeks, days) of ISO periods:
 * a wall time that does not exist (skipped by spring-forward) fires at the transition instant;
 * a wall time that occurs twice (repeated by fall-back) fires once, at its first occurrence.
 * A cron schedule whose minute or hour field has a `*` or a step (`*\/30 * * * *`) is an interval
 * schedule instead: it fires on real time, so in the repeated hour it fires in both occurrences
 * and in the skipped hour not at all (Vixie cron's rule, croner's fixedTimeRule "no-wildcard").
 */
import { Cron } from 'croner';

export interface Schedule {
  /** The first fire time strictly after `afterMs` (epoch ms), or undefined when the schedule has no more. */
  next(afterMs: number): number | undefined;
  /** 'cron' | 'iso' */
  readonly kind: 'cron' | 'iso';
}

export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

/** The schedules parseSchedule makes: besides next, they answer "the latest time at or before". */
abstract class BaseSchedule implements Schedule {
  abstract readonly kind: 'cron' | 'iso';
  abstract next(afterMs: number): number | undefined;
  /** The latest fire time t <= atMs, or undefined. */
  abstract latest(atMs: number): number | undefined;
  /** The exact number of fire times t with afterMs < t <= atMs, when cheap to compute (ISO), else undefined. */
  count(_afterMs: number, _atMs: number): number | undefined {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Time zones: wall clock <-> UTC through Intl.

const DAY_MS = 86_400_000;
const MAX_MS = 8.64e15;

interface Wall {
  y: number;
  mo: number; // 1-12
  d: number;
  h: number;
  mi: number;
  s: number;
  ms: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', era: 'short',
      year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

/** A message for a zone that is not an IANA name known to this Node (Intl), or undefined. 'UTC' is valid. */
export function timezoneProblem(tz: string): string | undefined {
  if (typeof tz !== 'string' || tz === '') return 'must be an IANA time zone name such as UTC or Europe/Berlin';
  // Intl also takes UTC offsets ("+01:00") on newer engines; a Job names a zone, whose rules include DST.
  if (/^[+-]/.test(tz) || /^\d/.test(tz)) return `"${tz}" is an offset, not an IANA time zone name (e.g. Europe/Berlin, UTC)`;
  try {
    formatter(tz);
    return undefined;
  } catch {
    return `"${tz}" is not a time zone known to this server (IANA names such as UTC, America/New_York, Europe/Berlin)`;
  }
}

function mod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

/** The wall clock in `tz` at instant `ms`. */
function toWall(ms: number, tz: string): Wall {
  const w: Wall = { y: 0, mo: 0, d: 0, h: 0, mi: 0, s: 0, ms: mod(ms, 1000) };
  let bc = false;
  for (const p of formatter(tz).formatToParts(ms)) {
    switch (p.type) {
      case 'year': w.y = Number(p.value); break;
      case 'month': w.mo = Number(p.value); break;
      case 'day': w.d = Number(p.value); break;
      case 'hour': w.h = Number(p.value) % 24; break;
      case 'minute': w.mi = Number(p.value); break;
      case 'second': w.s = Number(p.value); break;
      case 'era': bc = /^B/i.test(p.value); break;
    }
  }
  if (bc) w.y = 1 - w.y;
  return w;
}

/** The wall clock read as if it were UTC (handles years 0-99, which Date.UTC maps to 19xx). */
function wallAsUtc(w: Wall): number {
  const d = new Date(0);
  d.setUTCFullYear(w.y, w.mo - 1, w.d);
  d.setUTCHours(w.h, w.mi, w.s, w.ms);
  return d.getTime();
}

function utcToWall(ms: number): Wall {
  const d = new Date(ms);
  return { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds(), ms: d.getUTCMilliseconds() };
}

/** Wall clock minus UTC at instant `ms`, in ms. */
function offsetAt(ms: number, tz: string): number {
  return wallAsUtc(toWall(ms, tz)) - ms;
}

/**
 * The instant a wall time in `tz` denotes, by the DST rule: an ambiguous wall time (fall-back)
 * is its first occurrence; a nonexistent one (spring-forward) is the transition instant.
 */
function fromWall(w: Wall, tz: string): number {
  const local = wallAsUtc(w);
  const candidates = [...new Set([offsetAt(local - DAY_MS, tz), offsetAt(local, tz), offsetAt(local + DAY_MS, tz)])]
    .map((o) => local - o);
  const valid = candidates.filter((t) => offsetAt(t, tz) === local - t);
  if (valid.length > 0) return Math.min(...valid);
  // In a gap: the offset changes between the earliest and the latest candidate; find the instant.
  let lo = Math.min(...candidates);
  let hi = Math.max(...candidates);
  const before = offsetAt(lo, tz);
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (offsetAt(mid, tz) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(y: number, mo: number): number {
  return mo === 2 && isLeap(y) ? 29 : MONTH_DAYS[mo - 1];
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

// ---------------------------------------------------------------------------------------------
// Cron.

interface CronField {
  name: string;
  min: number;
  max: number;
  /** The largest step croner accepts (the field's number of values). */
  steps: number;
  names?: Record<string, number>;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

const FIELDS: CronField[] = [
  { name: 'minute', min: 0, max: 59, steps: 60 },
  { name: 'hour', min: 0, max: 23, steps: 24 },
  { name: 'day-of-month', min: 1, max: 31, steps: 31 },
  { name: 'month', min: 1, max: 12, steps: 12, names: Object.fromEntries(MONTHS.map((m, i) => [m, i + 1])) },
  { name: 'day-of-week', min: 0, max: 7, steps: 7, names: Object.fromEntries(DAYS.map((d, i) => [d, i])) },
];

const NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/** Parses one field; returns it with names replaced by numbers (croner's input), or throws ScheduleError. */
function cronField(text: string, f: CronField): string {
  const fail = (m: string): never => {
    throw new ScheduleError(`${f.name} field: ${m}`);
  };
  const value = (v: string): number => {
    if (/^\d+$/.test(v)) {
      const n = Number(v);
      if (n < f.min || n > f.max) fail(`${n} is out of range ${f.min}-${f.max}`);
      return n;
    }
    const named = f.names?.[v.toUpperCase()];
    if (named !== undefined) return named;
    if (/[LW#?]/i.test(v) && /^[\dLW#?]+$/i.test(v)) fail(`"${v}": L, W, # and ? are not supported (numbers${f.names ? ', names' : ''}, *, ranges a-b, steps /n and lists only)`);
    return fail(`"${v}" is not a number${f.names ? ` or a name (${Object.keys(f.names).slice(0, 3).join(', ')}, ...)` : ''}`);
  };
  if (text === '') fail('is empty');
  return text.split(',').map((item) => {
    if (item === '') fail(`empty list element in "${text}"`);
    const m = /^([^/]*)(?:\/(.*))?$/.exec(item)!;
    const [, base, stepText] = m;
    let out: string;
    if (base === '*') out = '*';
    else {
      const range = base.split('-');
      if (range.length > 2 || range.some((r) => r === '')) fail(`"${item}" is not a number, a range a-b, * or a step`);
      const lo = value(range[0]);
      if (range.length === 2) {
        const hi = value(range[1]);
        if (lo > hi) fail(`range ${range[0]}-${range[1]} is reversed`);
        out = `${lo}-${hi}`;
      } else {
        if (stepText !== undefined) fail(`"${item}": a step needs * or a range before it (*/n or a-b/n)`);
        out = `${lo}`;
      }
    }
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText)) fail(`step "${stepText}" in "${item}" is not a number`);
      const step = Number(stepText);
      if (step < 1) fail(`step 0 in "${item}" must be at least 1`);
      if (step > f.steps) fail(`step ${step} in "${item}" is larger than the field (${f.steps} values)`);
      out += `/${step}`;
    }
    return out;
  }).join(',');
}

interface ParsedCron {
  fields: string[];
  /** Vixie: day-of-month and day-of-week are ORed only when neither starts with `*`. */
  domAndDow: boolean;
}

function parseCron(expr: string): ParsedCron {
  let text = expr.trim();
  if (text.startsWith('@')) {
    if (text === '@reboot') throw new ScheduleError('@reboot is not a schedule (a Job without schedule runs once when created)');
    const n = NICKNAMES[text];
    if (n === undefined) throw new ScheduleError(`unknown nickname "${text}" (one of ${Object.keys(NICKNAMES).join(' ')})`);
    text = n;
  }
  const parts = text.split(/\s+/);
  if (parts.length !== 5) {
    throw new ScheduleError(`must be a cron expression of 5 fields (minute hour day-of-month month day-of-week), a nickname such as @daily, or an ISO 8601 interval R[n]/[start]/period; got ${parts.length} field${parts.length === 1 ? '' : 's'}`);
  }
  const fields = parts.map((p, i) => cronField(p, FIELDS[i]));
  return { fields, domAndDow: parts[2].startsWith('*') || parts[4].startsWith('*') };
}

function makeCron(p: ParsedCron, timezone: string): Cron {
  try {
    return new Cron(p.fields.join(' '), {
      timezone, paused: true, mode: '5-part', domAndDow: p.domAndDow, fixedTimeRule: 'no-wildcard',
      alternativeWeekdays: false, sloppyRanges: false,
    });
  } catch (e) {
    throw new ScheduleError(String((e as Error).message ?? e).replace(/^CronPattern: /, ''));
  }
}

class CronSchedule extends BaseSchedule {
  readonly kind = 'cron';
  constructor(private readonly cron: Cron) {
    super();
  }

  next(afterMs: number): number | undefined {
    let t = afterMs;
    for (let i = 0; i < 3; i++) {
      const d = this.cron.nextRun(new Date(t));
      if (!d) return undefined;
      if (d.getTime() > afterMs) return d.getTime();
      t = Math.max(t, d.getTime()) + 1; // not expected (croner's results are strictly later); keeps the contract
    }
    return undefined;
  }

  latest(atMs: number): number | undefined {
    const d = this.cron.previousRuns(1, new Date(atMs + 1))[0];
    return d && d.getTime() <= atMs ? d.getTime() : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// ISO 8601 repeating intervals, Chronos' form R[n]/[start]/period.

interface Period {
  years: number;
  months: number;
  days: number; // weeks × 7 + days
  /** Hours, minutes and seconds as an absolute duration. */
  ms: number;
}

function parsePeriod(text: string): Period {
  const m = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:[.,](\d+))?S)?)?$/.exec(text);
  if (!m || text === 'P' || text.endsWith('T')) {
    throw new ScheduleError(`ISO 8601 interval: "${text}" is not a period PnYnMnWnDTnHnMnS (e.g. PT1H, P1D, P1M; T before hours, minutes, seconds)`);
  }
  const n = (i: number) => (m[i] === undefined ? 0 : Number(m[i]));
  const frac = m[8] === undefined ? 0 : Math.round(Number(`0.${m[8]}`) * 1000);
  const p: Period = {
    years: n(1), months: n(2), days: n(3) * 7 + n(4),
    ms: n(5) * 3_600_000 + n(6) * 60_000 + n(7) * 1000 + frac,
  };
  if (![p.years, p.months, p.days, p.ms].every(Number.isSafeInteger)) throw new ScheduleError(`ISO 8601 interval: period "${text}" is too large`);
  if (p.years === 0 && p.months === 0 && p.days === 0 && p.ms === 0) throw new ScheduleError(`ISO 8601 interval: period "${text}" is zero`);
  return p;
}

/** Start: YYYY-MM-DD[Thh:mm[:ss[.s]]][Z|±hh[:mm]]; without offset it is read in `timezone`. */
function parseStart(text: string, timezone: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(text);
  const bad = (why: string): never => {
    throw new ScheduleError(`ISO 8601 interval: start "${text}" ${why}`);
  };
  if (!m) return bad('is not a date-time YYYY-MM-DDThh:mm:ss[.s][Z|±hh:mm] (empty for the Job\'s creation time)');
  const w: Wall = {
    y: Number(m[1]), mo: Number(m[2]), d: Number(m[3]), h: Number(m[4] ?? 0), mi: Number(m[5] ?? 0), s: Number(m[6] ?? 0),
    ms: m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000),
  };
  if (w.mo < 1 || w.mo > 12) bad(`has month ${w.mo}`);
  if (w.d < 1 || w.d > daysInMonth(w.y, w.mo)) bad(`has day ${w.d}, not in ${w.y}-${m[2]}`);
  if (w.h > 23 || w.mi > 59 || w.s > 59) bad('has a time out of range');
  const zone = m[8];
  if (zone === undefined) return fromWall(w, timezone);
  if (zone === 'Z') return wallAsUtc(w);
  const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!;
  const oh = Number(z[2]);
  const om = Number(z[3] ?? 0);
  if (oh > 23 || om > 59) bad(`has offset ${zone} out of range`);
  return wallAsUtc(w) - (z[1] === '-' ? -1 : 1) * (oh * 3_600_000 + om * 60_000);
}

class IsoSchedule extends BaseSchedule {
  readonly kind = 'iso';
  private readonly startWall: Wall;
  /** A rough length of one period (for the first guess of an index). */
  private readonly approx: number;
  private readonly calendar: boolean;

  constructor(
    private readonly start: number,
    private readonly period: Period,
    /** How many times in all (Infinity for R). */
    private readonly repetitions: number,
    private readonly timezone: string,
  ) {
    super();
    this.startWall = toWall(start, timezone);
    this.calendar = period.years !== 0 || period.months !== 0 || period.days !== 0;
    this.approx = period.years * 365.2425 * DAY_MS + period.months * 30.436875 * DAY_MS + period.days * DAY_MS + period.ms;
  }

  /** The k-th time (k from 0), computed from the start (no drift), or undefined past the end of time. */
  at(k: number): number | undefined {
    if (k === 0) return this.start;
    let t: number;
    if (this.calendar) {
      const w = this.startWall;
      const { years, months, days } = this.period;
      // Years, then months (each clamped to the month's last day, as Joda's Period does), then days.
      let y = w.y + k * years;
      let d = Math.min(w.d, daysInMonth(y, w.mo));
      const m0 = (w.mo - 1) + k * months;
      y += Math.floor(m0 / 12);
      const mo = mod(m0, 12) + 1;
      if (!Number.isSafeInteger(y) || y > 9999) return undefined;
      d = Math.min(d, daysInMonth(y, mo));
      const shifted = wallAsUtc({ ...w, y, mo, d: 1 }) + (d - 1 + k * days) * DAY_MS;
      if (!(Math.abs(shifted) < MAX_MS)) return undefined;
      const target = utcToWall(shifted);
      if (target.y > 9999) return undefined;
      t = fromWall(target, this.timezone);
    } else {
      t = this.start;
    }
    t += k * this.period.ms;
    return Number.isFinite(t) && Math.abs(t) < MAX_MS ? t : undefined;
  }

  /** The smallest k with at(k) > x or at(k) past the end of time (may be >= repetitions). */
  private firstIndexAfter(x: number): number {
    if (x < this.start) return 0;
    let k = Math.max(0, Math.floor((x - this.start) / this.approx) - 1);
    // The guess is off by a few periods at most (month lengths, DST); walk to the exact index.
    for (;;) {
      const t = this.at(k);
      if (t !== undefined && t <= x) break;
      if (k === 0) return 0;
      k = Math.max(0, k - 2);
    }
    for (;;) {
      const t = this.at(k + 1);
      if (t === undefined || t > x) return k + 1;
      k++;
    }
  }

  next(afterMs: number): number | undefined {
    const k = this.firstIndexAfter(afterMs);
    return k >= this.repetitions ? undefined : this.at(k);
  }

  latest(atMs: number): number | undefined {
    const last = Math.min(this.firstIndexAfter(atMs) - 1, this.repetitions - 1);
    return last < 0 ? undefined : this.at(last);
  }

  override count(afterMs: number, atMs: number): number {
    if (atMs <= afterMs) return 0;
    const a = this.firstIndexAfter(afterMs);
    const end = Math.min(this.firstIndexAfter(atMs), this.repetitions);
    return Math.max(0, end - a);
  }
}

function parseIso(expr: string, timezone: string, startMs: number): IsoSchedule {
  const parts = expr.split('/');
  if (parts.length !== 3) {
    throw new ScheduleError(`ISO 8601 interval must be R[n]/[start]/period (e.g. R/2026-12-03T00:00:00Z/PT1H, R5//P1D), got ${parts.length} part${parts.length === 1 ? '' : 's'}`);
  }
  const [r, startText, periodText] = parts;
  const rm = /^R(\d*)$/.exec(r);
  if (!rm) throw new ScheduleError(`ISO 8601 interval: "${r}" must be R (forever) or Rn (n times in all)`);
  const repetitions = rm[1] === '' ? Infinity : Number(rm[1]);
  if (!Number.isSafeInteger(repetitions) && repetitions !== Infinity) throw new ScheduleError(`ISO 8601 interval: ${r} is too large`);
  const period = parsePeriod(periodText);
  const start = startText === '' ? startMs : parseStart(startText, timezone);
  if (!Number.isFinite(start)) throw new ScheduleError('ISO 8601 interval: the start is not a time (no creation time given)');
  return new IsoSchedule(start, period, repetitions, timezone);
}

// ---------------------------------------------------------------------------------------------
// The API.

/**
 * Throws ScheduleError (message names the problem, e.g. "minute field: 61 is out of range 0-59") for a bad
 * expression or zone. `startMs` is the start of an ISO interval whose start is empty (the Job's creation time).
 */
export function parseSchedule(expr: string, timezone: string, startMs: number): Schedule {
  const tzProblem = timezoneProblem(timezone);
  if (tzProblem) throw new ScheduleError(`timezone: ${tzProblem}`);
  if (typeof expr !== 'string' || expr.trim() === '') throw new ScheduleError('is empty');
  if (expr.startsWith('R')) return parseIso(expr, timezone, startMs); // no cron field starts with R
  return new CronSchedule(makeCron(parseCron(expr), timezone));
}

/** Epoch ms of 2000-01-01T00:00Z: cron patterns repeat within 400 years, so "nothing after this" = never. */
const PROBE_FROM = Date.UTC(2000, 0, 1);

/** A message for a bad schedule or undefined (used by admission). The zone is checked too. */
export function scheduleProblem(expr: string, timezone: string): string | undefined {
  try {
    const s = parseSchedule(expr, timezone, PROBE_FROM);
    if (s.kind === 'cron' && s.next(PROBE_FROM) === undefined) {
      return 'never fires: no date matches its day-of-month and month fields (e.g. 30 2 = February 30)';
    }
    return undefined;
  } catch (e) {
    if (e instanceof ScheduleError) return e.message;
    throw e;
  }
}

/** The next `n` fire times after `afterMs`. */
export function nextTimes(s: Schedule, afterMs: number, n: number): number[] {
  const out: number[] = [];
  let t = afterMs;
  while (out.length < n) {
    const x = s.next(t);
    if (x === undefined) break;
    out.push(x);
    t = x;
  }
  return out;
}

export interface DueTimes {
  /** The scheduled time to run now, if any. */
  run?: number;
  /** Due times not run (every due time but the one run). A lower bound when missedCapped. */
  missed: number;
  missedCapped: boolean;
  firstMissed?: number;
  lastMissed?: number;
  /** The first fire time after now (after `since` if the clock went back). */
  next?: number;
}

/**
 * The decision after the controller looks at a schedule: fire times t with since < t <= now.
 * The latest of them runs (`run`) if no deadline is set or now - t <= deadline; every other due time
 * is counted as missed (never one run per missed time, never silently zero). `next` is the first time after now.
 * Work is bounded: at most `maxScan` (default 10000) times are enumerated; beyond that `missed` is a lower
 * bound and `missedCapped` true. The latest due time is found directly (not by enumerating up to it), and
 * ISO intervals count their missed times exactly by index.
 */
export function dueTimes(
  s: Schedule,
  o: { since: number; now: number; startingDeadlineSeconds?: number; maxScan?: number },
): DueTimes {
  const { since, now } = o;
  const maxScan = Math.max(1, o.maxScan ?? 10000);
  const next = s.next(Math.max(now, since));
  const base = s instanceof BaseSchedule ? s : undefined;

  // The latest due time, and (for schedules without `latest`) what a bounded scan saw on the way.
  let latest: number | undefined;
  let scanned: number[] | undefined;
  let scanCapped = false;
  if (base) {
    const l = base.latest(now);
    latest = l !== undefined && l > since ? l : undefined;
  } else {
    scanned = [];
    for (let t = s.next(since); t !== undefined && t <= now; t = s.next(t)) {
      if (scanned.length === maxScan) {
        scanCapped = true;
        break;
      }
      scanned.push(t);
    }
    latest = scanned[scanned.length - 1];
  }
  if (latest === undefined || now <= since) return { missed: 0, missedCapped: false, next };

  const deadlineMs = o.startingDeadlineSeconds === undefined ? undefined : o.startingDeadlineSeconds * 1000;
  const run = deadlineMs === undefined || now - latest <= deadlineMs ? latest : undefined;
  // Missed: due times in (since, missedUpTo].
  const missedUpTo = run === undefined ? latest : latest - 1;
  const result: DueTimes = { missed: 0, missedCapped: false, next };
  if (run !== undefined) result.run = run;
  if (missedUpTo <= since) return result;

  const exact = base?.count(since, missedUpTo);
  if (exact !== undefined) {
    if (exact > 0) {
      result.missed = exact;
      result.firstMissed = s.next(since);
      result.lastMissed = run === undefined ? latest : base!.latest(missedUpTo);
    }
    return result;
  }

  // Enumerate (since, missedUpTo] up to maxScan times.
  let times = scanned;
  let capped = scanCapped;
  if (!times) {
    times = [];
    for (let t = s.next(since); t !== undefined && t <= missedUpTo; t = s.next(t)) {
      if (times.length === maxScan) {
        capped = true;
        break;
      }
      times.push(t);
    }
  } else {
    times = times.filter((t) => t <= missedUpTo);
  }
  if (times.length === 0) return result;
  result.firstMissed = times[0];
  result.missed = times.length;
  if (capped) {
    result.missedCapped = true;
    const last = run === undefined ? latest : base?.latest(missedUpTo);
    if (last !== undefined && last > times[times.length - 1]) {
      result.missed += 1;
      result.lastMissed = last;
    } else {
      result.lastMissed = times[times.length - 1];
    }
  } else {
    result.lastMissed = times[times.length - 1];
  }
  return result;
}
