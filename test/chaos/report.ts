/** The fault suite's summary: a Markdown table of the invariants and one of the faults, from a {@link ChaosResult}. */
import type { ChaosResult } from './chaos';

/** The summary printed by `make chaos` and stored beside the JSON. */
export function summaryTable(r: ChaosResult): string {
  const lines = [
    `### chaos ${r.smoke ? 'smoke' : 'suite'}: seed ${r.seed}, ${r.seconds} s of faults — ${r.ok ? 'PASS' : 'FAIL'}`,
    '',
    `${r.date}. Replay: \`make chaos CHAOS_SEED=${r.seed} CHAOS_SECONDS=${r.seconds}${r.smoke ? ' CHAOS_ARGS=--smoke' : ''}\`.`,
    '',
    '| invariant | result | problems |',
    '|---|---|---|',
    ...Object.entries(r.invariants).map(([name, c]) => `| ${name} | ${c.ok ? 'ok' : '**FAIL**'} | ${c.problems.slice(0, 3).join('; ').replace(/\|/g, '\\|')}${c.problems.length > 3 ? ` (+${c.problems.length - 3})` : ''} |`),
    '',
    '| figure | value |',
    '|---|---:|',
    `| faults injected | ${r.faults.length} (${countBy(r.faults.map((f) => f.kind))}) |`,
    `| version changes | ${r.upgrades.map((u) => `${u.version}@${u.appliedAt?.toFixed(1) ?? '—'}s`).join(', ')} |`,
    `| convergence after the last fault | ${r.convergenceSeconds === undefined ? `not within ${r.convergenceBoundSeconds} s` : `${r.convergenceSeconds} s`} |`,
    `| max live tasks at once (ceiling) | ${r.maxLiveTasks} (${r.ceiling}) |`,
    `| Task revisions sampled | ${r.samples} (relists ${r.samplerRelists}) |`,
    '',
    '| at (s) | fault | target | ms | ok | details |',
    '|---:|---|---|---:|---|---|',
    ...r.faults.map((f) => `| ${f.startedAt.toFixed(1)} | ${f.kind} | ${f.target ?? ''} | ${f.durationMs} | ${f.ok ? 'ok' : `**FAIL** ${f.error ?? ''}`} | ${details(f.details)} |`),
    '',
  ];
  return lines.join('\n');
}

function countBy(xs: string[]): string {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return [...m].map(([k, n]) => `${k} ×${n}`).join(', ');
}

function details(d: Record<string, unknown>): string {
  return Object.entries(d)
    .filter(([, v]) => !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('/') : String(v)}`)
    .join(' ')
    .replace(/\|/g, '\\|');
}
