/**
 * `make chaos` (after `npm run -s build && npx tsc -p test/chaos/tsconfig.json`):
 *
 *   node dist-bench/test/chaos/run.js [--seed N] [--seconds S] [--smoke] [--out DIR] [--keep]
 *
 * Seed and duration also come from CHAOS_SEED and CHAOS_SECONDS (default: a random seed, 180 s).
 * Writes `<out>/latest.json` (the whole result) and `<out>/latest.md` (the summary table, also
 * printed), and exits 1 when an invariant failed. The seed is printed first: the same seed replays
 * the same schedule of faults.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { runChaos } from './chaos';
import { summaryTable } from './report';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
};

const opts = new Command('chaos')
  .option('--seed <n>', 'seed of the fault schedule (CHAOS_SEED; default random)', int, process.env.CHAOS_SEED ? int(process.env.CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31))
  .option('--seconds <s>', 'how long faults are injected (CHAOS_SECONDS)', int, int(process.env.CHAOS_SECONDS ?? '180'))
  .option('--smoke', 'one fault of each kind (what make test runs)')
  .option('--convergence <s>', 'bound on convergence after the last fault', int, 180)
  .option('--out <dir>', 'where latest.json and latest.md go', join(process.cwd(), 'test/chaos/results'))
  .option('--keep', 'keep the cluster dir (component logs) and print where')
  .parse()
  .opts<{ seed: number; seconds: number; smoke?: boolean; convergence: number; out: string; keep?: boolean }>();

async function main(): Promise<number> {
  process.stderr.write(`chaos: seed ${opts.seed}, ${opts.seconds} s${opts.smoke ? ', smoke' : ''} (replay with CHAOS_SEED=${opts.seed})\n`);
  const started = Date.now();
  const result = await runChaos({
    seed: opts.seed,
    seconds: opts.seconds,
    smoke: !!opts.smoke,
    convergenceSeconds: opts.convergence,
    keep: opts.keep,
    log: (line) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`),
  });
  mkdirSync(opts.out, { recursive: true });
  const table = summaryTable(result);
  writeFileSync(join(opts.out, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(opts.out, 'latest.md'), table);
  process.stdout.write(`${table}\nresults: ${join(opts.out, 'latest.json')}\n`);
  if (result.logsDir) process.stdout.write(`component logs: ${result.logsDir}\n`);
  return result.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`chaos: ${err.stack ?? err.message}\n`);
    process.exit(2);
  },
);
