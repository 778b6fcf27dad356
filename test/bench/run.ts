/**
 * Benchmark runner: `node dist-bench/test/bench/run.js [scenario...]` (after
 * `npx tsc -p tsconfig.bench.json`). Runs the named scenarios (all when none is named), writes
 * `test/bench/results/<scenario>.json` with the figures and a description of the machine,
 * prints a Markdown table and rewrites `test/bench/results/README.md` from all stored results.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { run as allocator } from './allocator.bench';

type Figures = Record<string, number>;

const SCENARIOS: Record<string, () => Promise<Figures>> = { allocator };

interface Machine {
  cpus: number;
  model: string;
  memoryGiB: number;
  node: string;
  etcd: string;
}

interface Result {
  scenario: string;
  date: string;
  machine: Machine;
  figures: Figures;
}

/** The repository root: the first ancestor of this file with a package.json (works from dist-bench too). */
function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error('no package.json above ' + __dirname);
  }
}

function etcdVersion(): string {
  try {
    const out = execFileSync('etcd', ['--version'], { encoding: 'utf8', timeout: 5000 });
    return /etcd Version:\s*(\S+)/.exec(out)?.[1] ?? 'unknown';
  } catch {
    return 'not installed';
  }
}

function machine(): Machine {
  const cpus = os.cpus();
  return { cpus: cpus.length, model: cpus[0]?.model.trim() ?? 'unknown', memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10, node: process.version, etcd: etcdVersion() };
}

function table(results: Result[]): string {
  const lines: string[] = [];
  for (const r of results) {
    const m = r.machine;
    lines.push(`### ${r.scenario}`, '', `${r.date} — ${m.cpus} × ${m.model}, ${m.memoryGiB} GiB, node ${m.node}, etcd ${m.etcd}`, '');
    lines.push('| figure | value |', '|---|---:|', ...Object.entries(r.figures).map(([k, v]) => `| ${k} | ${v} |`), '');
  }
  return lines.join('\n');
}

/** Writes via a temporary file (ignored by git), so a crashed run never leaves half a result. */
function writeAtomically(file: string, text: string): void {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

function storedResults(dir: string): Result[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Result);
}

async function main(names: string[]): Promise<void> {
  const unknown = names.filter((n) => !(n in SCENARIOS));
  if (unknown.length) throw new Error(`unknown scenario(s): ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  const dir = path.join(repoRoot(), 'test', 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const done: Result[] = [];
  for (const scenario of names.length ? names : Object.keys(SCENARIOS)) {
    const result: Result = { scenario, date: new Date().toISOString(), machine: machine(), figures: await SCENARIOS[scenario]() };
    writeAtomically(path.join(dir, `${scenario}.json`), JSON.stringify(result, null, 2) + '\n');
    done.push(result);
  }
  process.stdout.write(table(done) + '\n');
  const readme = ['# Benchmark results', '', 'Latest run of each scenario (`npx tsc -p tsconfig.bench.json && node dist-bench/test/bench/run.js`).', '', table(storedResults(dir))];
  writeAtomically(path.join(dir, 'README.md'), readme.join('\n'));
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`bench: ${err.message}\n`);
  process.exitCode = 1;
});
