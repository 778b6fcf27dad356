/**
 * A tiny run of every end-to-end benchmark scenario through the real runner
 * (`node dist-bench/test/bench/run.js <scenario> --out <temp dir> ...`), so the benchmarks keep
 * working while the code under them changes. Each scenario starts its own etcd and components
 * from dist/ (`make test` builds it first); results go to a temp dir, never test/bench/results.
 * Checks that every figure is a finite number, no 5xx, no duplicate tasks, every task RUNNING.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const RUNNER = path.join(ROOT, 'dist-bench/test/bench/run.js');
let out: string;

interface Result {
  scenario: string;
  machine: { cpus: number; memoryGiB: number; node: string; etcd: string };
  figures: Record<string, number | string>;
}

beforeAll(() => {
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.bench.json')], { cwd: ROOT, stdio: 'pipe' });
  out = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bench-smoke-'));
}, 60_000);

afterAll(() => {
  if (out) fs.rmSync(out, { recursive: true, force: true });
});

/** Runs one scenario with tiny sizes; resolves with its result JSON. */
function bench(scenario: string, args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [RUNNER, scenario, '--out', out, '--baseline-seconds', '0.3', ...args], { cwd: ROOT, timeout: 90_000 }, (err, _stdout, stderr) => {
      if (err) {
        // The runner's own verdict first (CI shows the start of a failure), then the tail of the components' output.
        const verdict = stderr.split('\n').filter((l) => l.startsWith(`bench: ${scenario} failed`)).join('\n');
        return reject(new Error(`bench ${scenario} failed: ${verdict || err.message}\n${stderr.slice(-3000)}`));
      }
      resolve(JSON.parse(fs.readFileSync(path.join(out, `${scenario}.json`), 'utf8')) as Result);
    });
  });
}

function expectFiniteFigures(r: Result, except: string[] = []): void {
  expect(r.machine.cpus).toBeGreaterThan(0);
  expect(r.machine.etcd).toMatch(/^\d+\.\d+/);
  for (const [name, value] of Object.entries(r.figures)) {
    if (except.includes(name)) continue;
    expect({ name, finite: typeof value === 'number' && Number.isFinite(value) }).toEqual({ name, finite: true });
  }
  for (const b of ['etcdSequentialPutsPerSecond', 'etcdConcurrentPutsPerSecond', 'etcdBatchedKeysPerSecond']) expect(r.figures[b]).toBeGreaterThan(0);
}

describe('bench smoke', () => {
  test('api: 20/s for 2 s, then 1 s of overload', async () => {
    const r = await bench('api', ['--rate', '20', '--duration', '2', '--overload-duration', '1']);
    expectFiniteFigures(r);
    expect(r.figures.requests).toBe(40);
    expect(r.figures.errors5xx).toBe(0);
    expect(r.figures.errors4xxOther).toBe(0);
    expect(r.figures.timeouts).toBe(0);
    expect(r.figures.overloadErrors5xx).toBe(0);
  }, 60_000);

  test('scheduling: 5 hollow agents × 20 tasks', async () => {
    const r = await bench('scheduling', ['--agents', '5', '--tasks', '20']);
    expectFiniteFigures(r);
    expect(r.figures).toMatchObject({ agents: 5, tasks: 20 });
    expect(r.figures.secondsToAllRunning).toBeGreaterThan(0);
  }, 90_000);

  test('containers: 2 containers (skipped without Docker)', async () => {
    const r = await bench('containers', ['--tasks', '2']);
    if (typeof r.figures.skipped === 'string') {
      process.stderr.write(`bench smoke: containers ${r.figures.skipped}\n`);
      return;
    }
    expectFiniteFigures(r);
    expect(r.figures.tasksNotRunning).toBe(0);
    expect(r.figures.shoalSeconds).toBeGreaterThan(0);
  }, 90_000);

  test('recovery: 2 instances, kill an agent, then the leader', async () => {
    const r = await bench('recovery', ['--tasks', '2']);
    expectFiniteFigures(r);
    expect({ duplicateTasks: r.figures.duplicateTasks, newLeaderIsStandby: r.figures.newLeaderIsStandby, figures: r.figures }).toEqual({ duplicateTasks: 0, newLeaderIsStandby: 1, figures: r.figures });
  }, 90_000);
});
