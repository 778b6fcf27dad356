import {
  dueTimes, nextTimes, parseSchedule, ScheduleError, scheduleProblem, timezoneProblem, type Schedule,
} from '../../pkg/api/schedule';

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString().replace('.000Z', 'Z'));
const times = (expr: string, after: string, n: number, tz = 'UTC', start = 0) =>
  nextTimes(parseSchedule(expr, tz, start), ms(after), n).map(iso);

describe('cron', () => {
  it.each([
    ['month ends: day 31 skips short months', '0 0 31 * *', '2026-01-31T00:00:00Z', ['2026-03-31T00:00:00Z', '2026-05-31T00:00:00Z', '2026-07-31T00:00:00Z', '2026-08-31T00:00:00Z']],
    ['leap days', '0 0 29 2 *', '2025-01-01T00:00:00Z', ['2028-02-29T00:00:00Z', '2032-02-29T00:00:00Z']],
    ['every 15 minutes', '*/15 * * * *', '2026-01-01T00:07:00Z', ['2026-01-01T00:15:00Z', '2026-01-01T00:30:00Z', '2026-01-01T00:45:00Z']],
    // Both day fields restricted: either matches (Vixie). 2026-01-02 is a Friday.
    ['dom OR dow', '0 0 13 * 5', '2026-01-01T00:00:00Z', ['2026-01-02T00:00:00Z', '2026-01-09T00:00:00Z', '2026-01-13T00:00:00Z', '2026-01-16T00:00:00Z']],
    // A day field starting with * counts as unrestricted (Vixie): both must match. Mondays on odd days.
    ['dom */2 AND dow', '0 0 */2 * 1', '2026-01-01T00:00:00Z', ['2026-01-05T00:00:00Z', '2026-01-19T00:00:00Z', '2026-02-09T00:00:00Z']],
    ['dow only', '0 0 * * 1', '2026-01-01T00:00:00Z', ['2026-01-05T00:00:00Z', '2026-01-12T00:00:00Z']],
    ['dow 7 is Sunday', '0 0 * * 7', '2026-01-01T00:00:00Z', ['2026-01-04T00:00:00Z', '2026-01-11T00:00:00Z']],
    ['names', '0 9 * FEB-MAR mon-fri', '2026-01-01T00:00:00Z', ['2026-02-02T09:00:00Z', '2026-02-03T09:00:00Z']],
    ['lists and ranges with steps', '0,30 8-12/4 * * *', '2026-01-01T00:00:00Z', ['2026-01-01T08:00:00Z', '2026-01-01T08:30:00Z', '2026-01-01T12:00:00Z', '2026-01-01T12:30:00Z']],
    ['tabs and extra spaces', ' 0\t0  1 1 * ', '2026-01-01T00:00:00Z', ['2027-01-01T00:00:00Z']],
    ['a time zone', '0 9 * * *', '2026-06-01T00:00:00Z', ['2026-06-01T07:00:00Z'], 'Europe/Berlin'],
  ])('%s', (_name, expr, after, want, tz = 'UTC') => {
    expect(times(expr, after, want.length, tz)).toEqual(want);
  });

  it.each([
    ['@yearly', '0 0 1 1 *'], ['@annually', '0 0 1 1 *'], ['@monthly', '0 0 1 * *'], ['@weekly', '0 0 * * 0'],
    ['@daily', '0 0 * * *'], ['@midnight', '0 0 * * *'], ['@hourly', '0 * * * *'],
  ])('nickname %s = %s', (nick, pattern) => {
    expect(times(nick, '2026-05-17T13:21:00Z', 5)).toEqual(times(pattern, '2026-05-17T13:21:00Z', 5));
    expect(parseSchedule(nick, 'UTC', 0).kind).toBe('cron');
  });

  it('isStrictlyAfterTheGivenTime', () => {
    const s = parseSchedule('* * * * *', 'UTC', 0);
    expect(iso(s.next(ms('2026-01-01T12:00:00Z')))).toBe('2026-01-01T12:01:00Z');
    expect(iso(s.next(ms('2026-01-01T11:59:59.999Z')))).toBe('2026-01-01T12:00:00Z');
  });

  it.each([
    ['6 fields (seconds)', '0 0 0 * * *', /5 fields.*got 6/],
    ['7 fields', '0 0 0 * * * 2026', /5 fields/],
    ['too few', '* *', /5 fields.*got 2/],
    ['minute out of range', '61 * * * *', /^minute field: 61 is out of range 0-59$/],
    ['hour out of range', '0 24 * * *', /^hour field: 24 is out of range 0-23$/],
    ['day 0', '0 0 0 * *', /^day-of-month field: 0 is out of range 1-31$/],
    ['month 13', '0 0 1 13 *', /^month field: 13 is out of range 1-12$/],
    ['dow 8', '0 0 * * 8', /^day-of-week field: 8 is out of range 0-7$/],
    ['reversed range', '5-1 * * * *', /^minute field: range 5-1 is reversed/],
    ['step 0', '*/0 * * * *', /^minute field: step 0/],
    ['step too big', '*/61 * * * *', /^minute field: step 61 .*larger/],
    ['step after a number', '5/10 * * * *', /^minute field: .*needs \* or a range/],
    ['not a number', 'x * * * *', /^minute field: "x" is not a number/],
    ['unknown month name', '0 0 1 JANUARY *', /^month field: "JANUARY"/],
    ['L', '0 0 L * *', /^day-of-month field: "L": L, W, # and \? are not supported/],
    ['nth weekday', '0 0 * * 5#2', /^day-of-week field: "5#2"/],
    ['empty list element', '1,,2 * * * *', /^minute field: empty list element/],
    ['unknown nickname', '@fortnightly', /unknown nickname "@fortnightly"/],
    ['@reboot', '@reboot', /@reboot is not a schedule/],
    ['never fires', '0 0 30 2 *', /never fires/],
  ])('refuses %s', (_name, expr, message) => {
    expect(scheduleProblem(expr, 'UTC')).toMatch(message);
  });

  it('throwsScheduleError', () => {
    expect(() => parseSchedule('61 * * * *', 'UTC', 0)).toThrow(ScheduleError);
    expect(() => parseSchedule('* * * * *', 'Mars/Olympus', 0)).toThrow(/timezone: .*Mars\/Olympus/);
  });
});

describe('timezones', () => {
  it.each(['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Etc/GMT+5'])('accepts %s', (tz) => {
    expect(timezoneProblem(tz)).toBeUndefined();
  });
  it.each([['Mars/Olympus', /not a time zone/], ['+01:00', /offset/], ['', /IANA/]])('refuses %s', (tz, message) => {
    expect(timezoneProblem(tz)).toMatch(message);
    expect(scheduleProblem('@daily', tz)).toMatch(message);
  });
});

describe('ISO 8601 repeating intervals', () => {
  const start = '2026-01-01T00:00:00Z';
  it('R5 runs 5 times in all', () => {
    const s = parseSchedule(`R5/${start}/PT1H`, 'UTC', 0);
    expect(s.kind).toBe('iso');
    expect(nextTimes(s, ms(start) - 1, 10).map(iso)).toEqual([
      '2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z', '2026-01-01T02:00:00Z', '2026-01-01T03:00:00Z', '2026-01-01T04:00:00Z',
    ]);
    expect(s.next(ms('2026-01-01T04:00:00Z'))).toBeUndefined();
    expect(iso(s.next(ms('2026-01-01T03:59:59Z')))).toBe('2026-01-01T04:00:00Z');
  });
  it('R1 runs once, R0 never', () => {
    expect(times(`R1/${start}/P1D`, '2025-01-01T00:00:00Z', 3)).toEqual([start]);
    expect(times(`R0/${start}/P1D`, '2025-01-01T00:00:00Z', 3)).toEqual([]);
  });
  it('R runs forever', () => {
    const s = parseSchedule(`R/${start}/PT1M`, 'UTC', 0);
    expect(iso(s.next(ms('2126-01-01T00:00:30Z')))).toBe('2126-01-01T00:01:00Z');
    expect(nextTimes(s, ms(start) - 1, 1000)).toHaveLength(1000);
  });
  it('an empty start is startMs (the Job\'s creation time)', () => {
    const created = ms('2026-04-05T06:07:08.009Z');
    const s = parseSchedule('R3//PT1H', 'UTC', created);
    expect(nextTimes(s, created - 1, 5).map(iso)).toEqual(['2026-04-05T06:07:08.009Z', '2026-04-05T07:07:08.009Z', '2026-04-05T08:07:08.009Z']);
  });
  it('P1M clamps to month ends without drift', () => {
    expect(times('R/2026-01-31T10:00:00Z/P1M', '2026-01-31T10:00:00Z', 5)).toEqual([
      '2026-02-28T10:00:00Z', '2026-03-31T10:00:00Z', '2026-04-30T10:00:00Z', '2026-05-31T10:00:00Z', '2026-06-30T10:00:00Z',
    ]);
    expect(iso(parseSchedule('R/2026-01-31T10:00:00Z/P1M', 'UTC', 0).next(ms('2028-02-01T00:00:00Z')))).toBe('2028-02-29T10:00:00Z');
  });
  it('leap day with P1Y', () => {
    expect(times('R/2024-02-29T00:00:00Z/P1Y', '2024-02-29T00:00:00Z', 4)).toEqual([
      '2025-02-28T00:00:00Z', '2026-02-28T00:00:00Z', '2027-02-28T00:00:00Z', '2028-02-29T00:00:00Z',
    ]);
  });
  it('periods: weeks, mixed, fractions of seconds', () => {
    expect(times(`R/${start}/P1W`, start, 1)).toEqual(['2026-01-08T00:00:00Z']);
    expect(times(`R/${start}/P1DT1H30M`, start, 2)).toEqual(['2026-01-02T01:30:00Z', '2026-01-03T03:00:00Z']);
    expect(nextTimes(parseSchedule(`R/${start}/PT0.5S`, 'UTC', 0), ms(start), 2).map(iso)).toEqual(['2026-01-01T00:00:00.500Z', '2026-01-01T00:00:01Z']);
  });
  it('starts: offsets, Z, none (the Job\'s zone), date only', () => {
    expect(times('R/2026-07-01T12:00:00+02:00/P1D', '2026-01-01T00:00:00Z', 1)).toEqual(['2026-07-01T10:00:00Z']);
    expect(times('R/2026-07-01T12:00:00.250-0530/P1D', '2026-01-01T00:00:00Z', 1).map((t) => t)).toEqual(['2026-07-01T17:30:00.250Z']);
    expect(times('R/2026-07-01T12:00:00/P1D', '2026-01-01T00:00:00Z', 1, 'Europe/Berlin')).toEqual(['2026-07-01T10:00:00Z']);
    expect(times('R/2026-07-01/P1D', '2026-01-01T00:00:00Z', 1, 'America/New_York')).toEqual(['2026-07-01T04:00:00Z']);
  });
  it.each([
    ['two parts', 'R5/PT1H', /R\[n\]\/\[start\]\/period.*got 2/],
    ['bad repetitions', 'Rx//PT1H', /"Rx" must be R/],
    ['zero period', `R/${start}/P0D`, /period "P0D" is zero/],
    ['zero time period', `R/${start}/PT0S`, /is zero/],
    ['empty period', `R/${start}/P`, /not a period/],
    ['T without time', `R/${start}/P1DT`, /not a period/],
    ['no P', `R/${start}/1H`, /not a period/],
    ['month 13', 'R/2026-13-01T00:00:00Z/PT1H', /start "2026-13-01T00:00:00Z" has month 13/],
    ['February 30', 'R/2026-02-30T00:00:00Z/PT1H', /has day 30/],
    ['not a date', 'R/tomorrow/PT1H', /start "tomorrow" is not a date-time/],
    ['a space for empty start', 'R/ /PT1H', /start " " is not a date-time/],
    ['hour 25', 'R/2026-01-01T25:00:00Z/PT1H', /time out of range/],
  ])('refuses %s', (_name, expr, message) => {
    expect(scheduleProblem(expr, 'UTC')).toMatch(message);
  });
});

/*
 * The DST rule. A wall time that does not exist (spring-forward) fires at the transition instant;
 * a wall time that occurs twice (fall-back) fires once, at its first occurrence. This holds for
 * fixed-time cron (no * and no step in minute and hour) and for the day/month/year part of ISO
 * periods. Cron with * or a step in minute or hour runs on real time instead (Vixie): in the
 * repeated hour it fires in both occurrences, in the skipped hour not at all.
 * America/New_York 2026: 03-08 02:00 EST -> 03:00 EDT (07:00Z); 11-01 02:00 EDT -> 01:00 EST (06:00Z).
 * Europe/Berlin 2026: 03-29 02:00 CET -> 03:00 CEST (01:00Z); 10-25 03:00 CEST -> 02:00 CET (01:00Z).
 */
describe('DST', () => {
  const NY = 'America/New_York';
  const BER = 'Europe/Berlin';
  it.each([
    ['NY cron, skipped 02:30 fires at the transition', '30 2 * * *', NY, '2026-03-07T12:00:00Z', ['2026-03-08T07:00:00Z', '2026-03-09T06:30:00Z']],
    ['NY cron, repeated 01:30 fires once (first)', '30 1 * * *', NY, '2026-10-31T12:00:00Z', ['2026-11-01T05:30:00Z', '2026-11-02T06:30:00Z']],
    ['NY cron, a list is fixed-time too', '30 1,13 * * *', NY, '2026-11-01T04:00:00Z', ['2026-11-01T05:30:00Z', '2026-11-01T18:30:00Z']],
    ['NY */30 fires through both 01:xx hours', '*/30 * * * *', NY, '2026-11-01T04:50:00Z', ['2026-11-01T05:00:00Z', '2026-11-01T05:30:00Z', '2026-11-01T06:00:00Z', '2026-11-01T06:30:00Z', '2026-11-01T07:00:00Z']],
    ['NY */30 skips the missing hour', '*/30 * * * *', NY, '2026-03-08T06:10:00Z', ['2026-03-08T06:30:00Z', '2026-03-08T07:00:00Z', '2026-03-08T07:30:00Z']],
    ['Berlin cron, skipped 02:30', '30 2 * * *', BER, '2026-03-28T12:00:00Z', ['2026-03-29T01:00:00Z', '2026-03-30T00:30:00Z']],
    ['Berlin cron, repeated 02:30', '30 2 * * *', BER, '2026-10-24T12:00:00Z', ['2026-10-25T00:30:00Z', '2026-10-26T01:30:00Z']],
    ['NY ISO P1D into the gap', 'R/2026-03-07T02:30:00/P1D', NY, '2026-03-01T00:00:00Z', ['2026-03-07T07:30:00Z', '2026-03-08T07:00:00Z', '2026-03-09T06:30:00Z']],
    ['NY ISO P1D into the overlap', 'R/2026-10-31T01:30:00/P1D', NY, '2026-10-01T00:00:00Z', ['2026-10-31T05:30:00Z', '2026-11-01T05:30:00Z', '2026-11-02T06:30:00Z']],
    ['Berlin ISO P1D into the gap', 'R/2026-03-28T02:30:00/P1D', BER, '2026-03-01T00:00:00Z', ['2026-03-28T01:30:00Z', '2026-03-29T01:00:00Z', '2026-03-30T00:30:00Z']],
    ['Berlin ISO P1D into the overlap', 'R/2026-10-24T02:30:00/P1D', BER, '2026-10-01T00:00:00Z', ['2026-10-24T00:30:00Z', '2026-10-25T00:30:00Z', '2026-10-26T01:30:00Z']],
    ['ISO P1D keeps the wall time (start given in UTC)', 'R/2026-03-07T12:00:00Z/P1D', NY, '2026-03-01T00:00:00Z', ['2026-03-07T12:00:00Z', '2026-03-08T11:00:00Z']],
    ['ISO PT1H is absolute', 'R/2026-03-08T05:00:00Z/PT1H', NY, '2026-03-01T00:00:00Z', ['2026-03-08T05:00:00Z', '2026-03-08T06:00:00Z', '2026-03-08T07:00:00Z', '2026-03-08T08:00:00Z']],
    ['ISO start in the gap', 'R/2026-03-08T02:30:00/PT1H', NY, '2026-03-01T00:00:00Z', ['2026-03-08T07:00:00Z', '2026-03-08T08:00:00Z']],
    ['ISO start in the overlap is the first', 'R/2026-11-01T01:30:00/PT1H', NY, '2026-10-01T00:00:00Z', ['2026-11-01T05:30:00Z', '2026-11-01T06:30:00Z']],
  ])('%s', (_name, expr, tz, after, want) => {
    expect(times(expr, after, want.length, tz)).toEqual(want);
  });
});

describe('dueTimes', () => {
  const minute = parseSchedule('* * * * *', 'UTC', 0);
  const at = (s: string) => ms(`2026-01-01T${s}Z`);
  const pretty = (d: ReturnType<typeof dueTimes>) => ({
    ...d, run: iso(d.run), firstMissed: iso(d.firstMissed), lastMissed: iso(d.lastMissed), next: iso(d.next),
  });

  it('nothingDue', () => {
    expect(pretty(dueTimes(minute, { since: at('12:00:10'), now: at('12:00:50') }))).toEqual({
      missed: 0, missedCapped: false, next: '2026-01-01T12:01:00Z',
      run: undefined, firstMissed: undefined, lastMissed: undefined,
    });
  });
  it('oneDue', () => {
    expect(pretty(dueTimes(minute, { since: at('11:59:30'), now: at('12:00:10') }))).toMatchObject({
      run: '2026-01-01T12:00:00Z', missed: 0, missedCapped: false, next: '2026-01-01T12:01:00Z',
    });
  });
  it('aTimeEqualToSinceIsNotDueAgain', () => {
    expect(dueTimes(minute, { since: at('12:00:00'), now: at('12:00:30') })).toEqual({ missed: 0, missedCapped: false, next: at('12:01:00') });
  });
  it('severalDueWithoutDeadline: the latest runs, the rest are missed', () => {
    expect(pretty(dueTimes(minute, { since: at('11:55:30'), now: at('12:00:10') }))).toEqual({
      run: '2026-01-01T12:00:00Z', missed: 4, missedCapped: false,
      firstMissed: '2026-01-01T11:56:00Z', lastMissed: '2026-01-01T11:59:00Z', next: '2026-01-01T12:01:00Z',
    });
  });
  it('deadlineMet', () => {
    expect(dueTimes(minute, { since: at('11:55:30'), now: at('12:00:10'), startingDeadlineSeconds: 10 })).toMatchObject({ run: at('12:00:00'), missed: 4 });
  });
  it('deadlinePassedForTheLatest: nothing runs, all are missed', () => {
    expect(pretty(dueTimes(minute, { since: at('11:55:30'), now: at('12:00:10'), startingDeadlineSeconds: 5 }))).toEqual({
      run: undefined, missed: 5, missedCapped: false,
      firstMissed: '2026-01-01T11:56:00Z', lastMissed: '2026-01-01T12:00:00Z', next: '2026-01-01T12:01:00Z',
    });
  });
  it('hugeDowntimeWithAPerMinuteCron: bounded work, capped count', () => {
    const since = ms('2016-01-01T00:00:30Z');
    const now = ms('2026-01-01T12:00:10Z');
    // Bounded: the default maxScan (10,000) stops the count (a lower bound), whatever the downtime.
    const d = dueTimes(minute, { since, now });
    expect(pretty(d)).toEqual({
      run: '2026-01-01T12:00:00Z', missed: 10001, missedCapped: true,
      firstMissed: '2016-01-01T00:01:00Z', lastMissed: '2026-01-01T11:59:00Z', next: '2026-01-01T12:01:00Z',
    });
    const small = dueTimes(minute, { since, now, startingDeadlineSeconds: 5, maxScan: 100 });
    expect(small).toEqual({ missed: 101, missedCapped: true, firstMissed: since + 30_000, lastMissed: ms('2026-01-01T12:00:00Z'), next: ms('2026-01-01T12:01:00Z') });
  });
  it('R5Exhausted: next undefined, exact count', () => {
    const s = parseSchedule('R5/2026-01-01T00:00:00Z/PT1H', 'UTC', 0);
    expect(pretty(dueTimes(s, { since: ms('2025-12-31T00:00:00Z'), now: ms('2026-01-01T10:00:00Z') }))).toEqual({
      run: '2026-01-01T04:00:00Z', missed: 4, missedCapped: false,
      firstMissed: '2026-01-01T00:00:00Z', lastMissed: '2026-01-01T03:00:00Z', next: undefined,
    });
    expect(dueTimes(s, { since: ms('2026-01-01T04:00:00Z'), now: ms('2026-01-02T00:00:00Z') })).toEqual({ missed: 0, missedCapped: false, next: undefined });
  });
  it('isoCountsExactlyAfterHugeDowntime', () => {
    const s = parseSchedule('R/2016-01-01T00:00:00Z/PT1S', 'UTC', 0);
    const d = dueTimes(s, { since: ms('2016-01-01T00:00:00Z'), now: ms('2026-01-01T00:00:00Z'), startingDeadlineSeconds: 60 });
    expect(d).toMatchObject({ run: ms('2026-01-01T00:00:00Z'), missedCapped: false, firstMissed: ms('2016-01-01T00:00:01Z'), lastMissed: ms('2025-12-31T23:59:59Z') });
    expect(d.missed).toBe((ms('2026-01-01T00:00:00Z') - ms('2016-01-01T00:00:00Z')) / 1000 - 1);
  });
  it('clockWentBack: nothing due, next after since', () => {
    expect(dueTimes(minute, { since: at('12:00:10'), now: at('11:00:00') })).toEqual({ missed: 0, missedCapped: false, next: at('12:01:00') });
  });
  it('worksOnAnySchedule (enumerating)', () => {
    const every10: Schedule = { kind: 'iso', next: (t) => (Math.floor(t / 10) + 1) * 10 };
    expect(dueTimes(every10, { since: 5, now: 42 })).toEqual({ run: 40, missed: 3, missedCapped: false, firstMissed: 10, lastMissed: 30, next: 50 });
    expect(dueTimes(every10, { since: 5, now: 1000, maxScan: 10 })).toMatchObject({ missedCapped: true, missed: 9 });
  });
});

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('properties', () => {
  const zones = ['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'Asia/Kolkata'];
  const rand = rng(13);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: T[]) => xs[int(0, xs.length - 1)];
  const field = (lo: number, hi: number): string => {
    const a = int(lo, hi);
    const b = int(a, hi);
    return pick(['*', `*/${int(1, hi - lo + 1)}`, `${a}`, `${a}-${b}`, `${a},${b}`, `${a}-${b}/${int(1, 3)}`]);
  };
  const pattern = () => [field(0, 59), field(0, 23), field(1, 28), field(1, 12), field(0, 6)].join(' ');
  const T0 = ms('2020-01-01T00:00:00Z');
  const T1 = ms('2030-01-01T00:00:00Z');

  it('cron: next(t) > t, monotone in t, no time twice', () => {
    for (let i = 0; i < 150; i++) {
      const expr = pattern();
      const tz = pick(zones);
      const s = parseSchedule(expr, tz, 0);
      const a = T0 + Math.floor(rand() * (T1 - T0));
      const b = a + Math.floor(rand() * 3 * 86_400_000);
      const na = s.next(a);
      const nb = s.next(b);
      const ctx = { expr, tz, a: iso(a), b: iso(b) };
      expect({ ...ctx, ok: na === undefined || na > a }).toEqual({ ...ctx, ok: true });
      expect({ ...ctx, ok: na === undefined || nb === undefined || na <= nb }).toEqual({ ...ctx, ok: true });
      const seq = nextTimes(s, a, 20);
      const increasing = seq.every((t, j) => j === 0 || t > seq[j - 1]);
      expect({ ...ctx, increasing, unique: new Set(seq).size === seq.length }).toEqual({ ...ctx, increasing: true, unique: true });
    }
  });

  it('iso: next(t) > t, increasing, agrees with dueTimes', () => {
    for (let i = 0; i < 150; i++) {
      const period = pick(['PT1H', 'PT90M', 'P1D', 'P1W', 'P1M', 'P1Y', 'P1DT1H', 'P3M', 'PT7S', 'P1MT1S']);
      const tz = pick(zones);
      const start = new Date(T0 + Math.floor(rand() * (T1 - T0))).toISOString().slice(0, 19);
      const expr = `R${pick(['', '3', '50'])}/${start}/${period}`;
      const s = parseSchedule(expr, tz, 0);
      const a = T0 + Math.floor(rand() * (T1 - T0));
      const seq = nextTimes(s, a, 20);
      const ctx = { expr, tz, a: iso(a) };
      const ok = seq.every((t, j) => t > (j === 0 ? a : seq[j - 1]));
      expect({ ...ctx, ok }).toEqual({ ...ctx, ok: true });
      if (seq.length >= 3) {
        const d = dueTimes(s, { since: a, now: seq[2] });
        expect({ ...ctx, run: d.run, missed: d.missed, first: d.firstMissed }).toEqual({ ...ctx, run: seq[2], missed: 2, first: seq[0] });
      }
    }
  });
});
