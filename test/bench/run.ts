/**
 * Benchmark runner (after `npm run -s build && npx tsc -p tsconfig.bench.json`):
 *
 *   node dist-bench/test/bench/run.js [scenario...] [--agents N] [--tasks M] [--rate R] [--duration S] [--out DIR]
 *
 * Runs the named scenarios (all when none is named), one after another, each on its own etcd and
 * components. For each it writes `<out>/<scenario>.json` (figures, targets and a `machine`
 * block) and prints a Markdown table; then it rewrites `<out>/README.md` from every stored result
 * and, when `<out>` is the default test/bench/results, the part of the repository README between
 * `<!-- bench:start -->` and `<!-- bench:end -->`.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { run as allocatorRun } from './allocator.bench';
import { api } from './api.bench';
import { containers } from './containers.bench';
import { recovery } from './recovery.bench';
import { scheduling } from './scheduling.bench';
import { cleanupAll, repoRoot, type BenchOptions, type Figures, type Scenario } from './lib';

const allocator: Scenario = {
  describe: (f) => `allocator: one allocation round, ${Number(f.agents).toLocaleString('en')} agents × ${f.roles} roles × ${f.frameworks} frameworks`,
  headline: ['roundP50Ms', 'roundP99Ms'],
  targets: { roundP99Ms: '< 100 (Mesos’ own: ~1 s)' },
  run: () => allocatorRun(),
};

export const SCENARIOS: Record<string, Scenario> = { allocator, api, scheduling, containers, recovery };

interface Machine {
  cpus: number;
  model: string;
  memoryGiB: number;
  node: string;
  etcd: string;
}

export interface Result {
  scenario: string;
  date: string;
  options: Record<string, unknown>;
  machine: Machine;
  /** 1-minute load average before and after the run: other work on the machine skews the figures. */
  loadAverage?: { before: number; after: number };
  targets?: Record<string, string>;
  figures: Figures;
}

function etcdVersion(): string {
  try {
    const out = execFileSync(process.env.SHOAL_ETCD_BIN ?? 'etcd', ['--version'], { encoding: 'utf8', timeout: 5000 });
    return /etcd Version:\s*(\S+)/.exec(out)?.[1] ?? 'unknown';
  } catch {
    return 'not installed';
  }
}

export function machine(): Machine {
  const cpus = os.cpus();
  return { cpus: cpus.length, model: cpus[0]?.model.trim() ?? 'unknown', memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10, node: process.version, etcd: etcdVersion() };
}

const round2 = (x: number) => Math.round(x * 100) / 100;

const machineLine = (m: Machine) => `${m.cpus} × ${m.model}, ${m.memoryGiB} GiB, node ${m.node}, etcd ${m.etcd}`;

/** Every figure of each result, with its target. */
function fullTable(results: Result[]): string {
  const lines: string[] = [];
  for (const r of results) {
    const d = SCENARIOS[r.scenario]?.describe(r.figures) ?? r.scenario;
    const load = r.loadAverage ? `, load average ${r.loadAverage.before} before, ${r.loadAverage.after} after` : '';
    lines.push(`### ${r.scenario}`, '', `${d}`, '', `${r.date} — ${machineLine(r.machine)}${load}`, '');
    lines.push('| figure | value | target |', '|---|---:|---:|', ...Object.entries(r.figures).map(([k, v]) => `| ${k} | ${v} | ${(r.targets ?? SCENARIOS[r.scenario]?.targets)?.[k] ?? ''} |`), '');
  }
  return lines.join('\n');
}

/** The headline figures of each result, one table (the README's). */
function headlineTable(results: Result[]): string {
  const lines = ['| scenario | figure | value | target |', '|----------|--------|------:|-------:|'];
  for (const r of results) {
    const s = SCENARIOS[r.scenario];
    if (!s) continue;
    const names = typeof r.figures.skipped === 'string' ? ['skipped'] : s.headline.filter((k) => k in r.figures);
    names.forEach((k, i) => lines.push(`| ${i === 0 ? s.describe(r.figures) : ''} | ${k} | ${r.figures[k]} | ${(r.targets ?? s.targets)?.[k] ?? ''} |`));
  }
  const machines = [...new Set(results.map((r) => machineLine(r.machine)))];
  const when = results.map((r) => `${r.scenario} ${r.date.slice(0, 10)}${r.loadAverage ? `, load average ${r.loadAverage.before}` : ''}`);
  return [...lines, '', `Measured on ${machines.join('; ')} (${when.join('; ')}). Every figure: test/bench/results/README.md.`].join('\n');
}

/** Writes via a temporary file (ignored by git), so a crashed run never leaves half a result. */
function writeAtomically(file: string, text: string): void {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

function storedResults(dir: string): Result[] {
  const order = Object.keys(SCENARIOS);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Result)
    .sort((a, b) => order.indexOf(a.scenario) - order.indexOf(b.scenario));
}

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

/** Replaces what lies between the markers in README.md; leaves the file alone when they are missing. */
function updateRepoReadme(results: Result[]): void {
  const file = path.join(repoRoot(), 'README.md');
  const text = fs.readFileSync(file, 'utf8');
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) return void process.stderr.write(`bench: README.md has no ${START} … ${END} markers; not updated\n`);
  writeAtomically(file, `${text.slice(0, a + START.length)}\n${headlineTable(results)}\n${text.slice(b)}`);
}

const int = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
  return n;
};

async function main(argv: string[]): Promise<void> {
  const program = new Command('bench')
    .description(`Shoal benchmarks; scenarios: ${Object.keys(SCENARIOS).join(', ')} (all when none is named)`)
    .argument('[scenario...]', 'scenarios to run')
    .option('--agents <n>', 'agents (scheduling: hollow agents)', int('--agents'))
    .option('--tasks <n>', 'tasks or instances (scheduling, containers, recovery)', int('--tasks'))
    .option('--rate <n>', 'api: requests per second', int('--rate'))
    .option('--duration <seconds>', 'api: seconds at --rate', int('--duration'))
    .option('--overload-rate <n>', 'api: requests per second of the overload phase (default 10 × --rate)', int('--overload-rate'))
    .option('--overload-duration <seconds>', 'api: seconds of the overload phase (default 10)', int('--overload-duration'))
    .option('--concurrency <n>', 'containers: parallel `docker run`s (default 4)', int('--concurrency'))
    .option('--max-inflight <n>', 'api: the apiserver\'s --max-inflight (default: its own)', int('--max-inflight'))
    .addOption(new Option('--lease-mode <mode>', 'scheduling: hollow agents with a lease each, or one shared by their host process').choices(['per-agent', 'shared']).default('per-agent'))
    .option('--baseline-seconds <seconds>', 'seconds of each etcd baseline (default 3)', int('--baseline-seconds'))
    .option('--profile', 'api: run the apiserver under node --cpu-prof and print its hottest functions')
    .option('--out <dir>', 'where results go', path.join(repoRoot(), 'test', 'bench', 'results'))
    .option('-v, --verbose', 'progress on stderr')
    .option('--tables-only', 'run nothing: rewrite the tables from the stored results')
    .parse(argv);
  const names: string[] = program.args;
  const o = program.opts() as BenchOptions & { out: string; profile?: boolean; tablesOnly?: boolean };
  const unknown = names.filter((n) => !(n in SCENARIOS));
  if (unknown.length) throw new Error(`unknown scenario(s): ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  const out = path.resolve(o.out);
  fs.mkdirSync(out, { recursive: true });
  const done: Result[] = [];
  const failed: string[] = [];
  for (const scenario of o.tablesOnly ? [] : names.length ? names : Object.keys(SCENARIOS)) {
    const s = SCENARIOS[scenario];
    process.stderr.write(`bench: ${scenario}...\n`);
    let figures: Figures;
    const loadBefore = os.loadavg()[0];
    try {
      figures = await s.run({ ...o, profileOut: o.profile ? path.join(out, `${scenario}.cpuprofile`) : undefined } as BenchOptions);
    } catch (err) {
      process.stderr.write(`bench: ${scenario} failed: ${(err as Error).stack ?? err}\n`);
      failed.push(scenario);
      continue;
    }
    const { out: _out, verbose: _v, tablesOnly: _t, ...options } = o;
    const result: Result = { scenario, date: new Date().toISOString(), options, machine: machine(), loadAverage: { before: round2(loadBefore), after: round2(os.loadavg()[0]) }, targets: s.targets, figures };
    writeAtomically(path.join(out, `${scenario}.json`), JSON.stringify(result, null, 2) + '\n');
    done.push(result);
    process.stdout.write(fullTable([result]) + '\n');
  }
  const stored = storedResults(out);
  writeAtomically(path.join(out, 'README.md'), ['# Benchmark results', '', 'Latest run of each scenario (`make bench`, or `npm run bench -- <scenario>`).', '', fullTable(stored)].join('\n'));
  if (out === path.join(repoRoot(), 'test', 'bench', 'results') && (done.length || o.tablesOnly)) updateRepoReadme(stored);
  if (failed.length) throw new Error(`failed: ${failed.join(', ')}`);
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(`bench: ${sig}: stopping components and removing temp dirs\n`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

main(process.argv).catch((err: Error) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exitCode = 1;
});
