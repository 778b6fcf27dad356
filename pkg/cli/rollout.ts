/**
 * The pure parts of `shoal rollout`: where an App's rollout stands (from the App alone), what
 * changed between two stored spec versions, and `--timeout` durations.
 */
import type { AppRevision } from '../api/apps';
import type { App } from '../api/types.generated';
import { CliError } from './errors';
import { findCondition } from './printers';

/** Where a rollout stands: still going (with what to print), finished, or failed. */
export type RolloutState =
  | { phase: 'waiting'; message: string }
  | { phase: 'done'; message: string }
  | { phase: 'failed'; message: string };

/**
 * kubectl's rollout status decision for an App. Done: the controller saw this generation
 * (observedGeneration) and its deployment to it Succeeded. Failed: that deployment missed its
 * progress deadline (Progressing=False, ProgressDeadlineExceeded) or is Failed.
 */
export function rolloutState(app: App): RolloutState {
  const name = app.metadata.name;
  const generation = app.metadata.generation ?? 1;
  const st = app.status ?? {};
  const d = st.deployment;
  if ((st.observedGeneration ?? 0) < generation || d?.targetVersion !== generation) {
    return { phase: 'waiting', message: `Waiting for app "${name}" spec update to be observed...` };
  }
  const progressing = findCondition(st.conditions, 'Progressing');
  if (d.state === 'Failed' || (progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded')) {
    return { phase: 'failed', message: `app "${name}" exceeded its progress deadline` };
  }
  if (d.state === 'Succeeded') return { phase: 'done', message: `app "${name}" successfully rolled out` };
  const total = d.total ?? st.instances ?? app.spec?.instances ?? 0;
  const updated = st.updatedInstances ?? 0;
  const available = st.availableInstances ?? 0;
  const wait = (what: string): RolloutState => ({ phase: 'waiting', message: `Waiting for app "${name}" rollout to finish: ${what}...` });
  if (updated < total) return wait(`${updated} out of ${total} new instances have been updated`);
  const running = (st.tasksStaged ?? 0) + (st.tasksRunning ?? 0);
  if (running > updated) return wait(`${running - updated} old instances are pending termination`);
  return wait(`${Math.min(available, updated)} of ${updated} updated instances are available`);
}

/** Spec keys whose changes are listed as a whole (free-form maps), not key by key. */
const WHOLE = new Set(['env', 'labels']);

/**
 * What differs between two spec versions, as top-level spec keys, one level deeper for nested
 * objects: `env, container.image`. `<none>` when they are equal.
 */
export function changeSummary(prev: unknown, next: unknown): string {
  const changed: string[] = [];
  const a = asRecord(prev);
  const b = asRecord(next);
  for (const key of unionKeys(a, b)) {
    if (same(a[key], b[key])) continue;
    const pa = a[key];
    const pb = b[key];
    if (!WHOLE.has(key) && isPlainObject(pa) && isPlainObject(pb)) {
      for (const sub of unionKeys(pa, pb)) if (!same(pa[sub], pb[sub])) changed.push(`${key}.${sub}`);
    } else {
      changed.push(key);
    }
  }
  return changed.length ? changed.join(', ') : '<none>';
}

/** History rows oldest first: REVISION, CREATED (age, via `age`), CHANGE against the revision before. */
export function historyRows(revisions: AppRevision[], age: (ts: string) => string): string[][] {
  const sorted = [...revisions].sort((x, y) => x.generation - y.generation);
  return sorted.map((r, i) => {
    const prev = sorted[i - 1];
    const change = prev && prev.generation === r.generation - 1 ? changeSummary(prev.spec, r.spec)
      : r.generation === 1 ? 'created'
      : prev ? changeSummary(prev.spec, r.spec)
      : '<unknown: earlier revisions pruned>';
    return [String(r.generation), age(r.createdAt), change];
  });
}

/**
 * The revision `undo` goes back to: `toRevision` when given, else the newest older than the
 * App's current generation. Throws CliError when there is none.
 */
export function undoTarget(name: string, generation: number, revisions: AppRevision[], toRevision?: number): AppRevision {
  if (toRevision !== undefined) {
    const r = revisions.find((x) => x.generation === toRevision);
    if (!r) {
      const known = revisions.map((x) => x.generation).sort((x, y) => x - y).join(', ');
      throw new CliError(`app "${name}" has no revision ${toRevision} (stored: ${known || 'none'})`);
    }
    return r;
  }
  const older = revisions.filter((x) => x.generation < generation).sort((x, y) => y.generation - x.generation);
  if (!older.length) throw new CliError(`app "${name}" has no previous revision to roll back to`);
  return older[0];
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `10m`, `90s`, `1h30m`, `500ms`, or a bare number of seconds; 0 means no limit. Milliseconds. */
export function parseDuration(flag: string, text: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (let m: RegExpExecArray | null; (m = re.exec(t)); ) {
    if (m.index !== consumed) break;
    total += Number(m[1]) * UNITS[m[2]];
    consumed = m.index + m[0].length;
  }
  if (!t || consumed !== t.length) throw new CliError(`${flag} must be a duration such as 30s, 10m or 1h, not "${text}"`);
  return total;
}

function asRecord(v: unknown): Record<string, unknown> {
  return isPlainObject(v) ? v : {};
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function unionKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(b), ...Object.keys(a)])];
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (!isPlainObject(v)) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
}
