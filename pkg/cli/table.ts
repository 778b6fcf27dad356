/**
 * A tiny tabwriter (kubectl's settings: cells padded by 3 spaces, minimum column width 6, no
 * padding after the last column) and kubectl's human durations for AGE columns.
 */

const PADDING = 3;
const MIN_WIDTH = 6;

/** Column widths (padding included) fitting every row; the last column gets no width. */
export function columnWidths(rows: string[][]): number[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, MIN_WIDTH, cell.length + PADDING);
    });
  }
  return widths;
}

/** Formats one row with the given widths; cells wider than their column push the rest right. */
export function formatRow(row: string[], widths: number[]): string {
  let line = '';
  row.forEach((cell, i) => {
    const last = i === row.length - 1;
    line += last ? cell : cell.padEnd(Math.max(widths[i] ?? 0, cell.length + PADDING));
  });
  return line.trimEnd();
}

/** Aligns rows into whitespace-separated columns, like kubectl. */
export function formatTable(rows: string[][]): string[] {
  const widths = columnWidths(rows);
  return rows.map((row) => formatRow(row, widths));
}

/** kubectl's HumanDuration: `45s`, `3m10s`, `5h`, `2d4h`, `400d`, `3y`. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) return withRest(minutes, 'm', seconds % 60, 's');
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) return withRest(hours, 'h', minutes % 60, 'm');
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) return withRest(days, 'd', hours % 24, 'h');
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.trunc(days / 365);
  if (hours < 24 * 365 * 8) return withRest(years, 'y', days % 365, 'd');
  return `${years}y`;
}

function withRest(major: number, majorUnit: string, minor: number, minorUnit: string): string {
  return minor === 0 ? `${major}${majorUnit}` : `${major}${majorUnit}${minor}${minorUnit}`;
}

/** Age of an RFC 3339 timestamp at `now`; `<unknown>` when absent or unparsable (kubectl). */
export function age(timestamp: string | undefined, now: number): string {
  if (!timestamp) return '<unknown>';
  const t = Date.parse(timestamp);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}
