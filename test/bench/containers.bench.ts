/**
 * Containers: what Shoal adds on top of Docker. K busybox containers (--tasks, default 20)
 * started by plain `docker run -d`, --concurrency (default 4) at a time, timed and removed, before
 * and after (the baseline is the mean of the two) the same K as ONE App through Shoal (etcd, apiserver, controller-manager and one agent
 * `--runtime docker`, all child processes), timed from the POST to all K Tasks RUNNING; then
 * the App is deleted and the scenario waits until none of its containers remains.
 * Needs a Docker daemon and the local image shoal/busybox:latest (hack/start-dockerd.sh,
 * hack/build-images.sh, which it runs); without them the result is `skipped` with the reason.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { etcdBaselines } from './baselines';
import {
  Api, appManifest, cleanupAll, log, onCleanup, percentile, repoRoot, round, startAgent, startApiServer, startBenchEtcd, startControllerManager,
  TaskTracker, tempDir, waitFor, type BenchOptions, type Figures, type Scenario,
} from './lib';

const run$ = promisify(execFile);
const IMAGE = 'shoal/busybox:latest';
const COMMAND = ['/bin/busybox', 'sleep', '3600'];
const NS = 'bench';

/** Undefined when a daemon answers and the image is there (starting and building them if needed), else why not. */
export function dockerUnavailable(): string | undefined {
  const root = repoRoot();
  for (const script of ['hack/start-dockerd.sh', 'hack/build-images.sh']) {
    const r = spawnSync(path.join(root, script), { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) return `${script}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').pop()}`;
  }
  return undefined;
}

const docker = async (...args: string[]): Promise<string> => (await run$('docker', args, { timeout: 120_000 })).stdout.trim();

/** Removes every container carrying `label` (key=value). */
async function removeLabelled(label: string): Promise<void> {
  const ids = (await docker('ps', '-aq', '--filter', `label=${label}`)).split('\n').filter(Boolean);
  for (let i = 0; i < ids.length; i += 50) await docker('rm', '-f', ...ids.slice(i, i + 50));
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

async function run(o: BenchOptions): Promise<Figures> {
  const k = o.tasks ?? 20;
  const concurrency = o.concurrency ?? 4;
  const why = dockerUnavailable();
  if (why) {
    process.stderr.write(`bench: containers skipped: no Docker (${why})\n`);
    return { skipped: `no Docker daemon or image: ${why}`, containers: k };
  }
  const runId = randomBytes(4).toString('hex');
  try {
    // 1. Plain docker run, timed before and after Shoal's run (the mean is the baseline, so that
    // a machine busier in one half than in the other does not decide the ratio).
    const label = `shoal-bench=${runId}`;
    onCleanup('plain containers', () => removeLabelled(label));
    const dockerRun = async (round: string): Promise<number> => {
      log(o.verbose, `docker run × ${k}, ${concurrency} at a time`);
      const d0 = Date.now();
      await pool(Array.from({ length: k }, (_, i) => i), concurrency, async (i) => void (await docker('run', '-d', '--label', label, '--name', `shoal-bench-${runId}-${round}-${i}`, IMAGE, ...COMMAND)));
      const seconds = (Date.now() - d0) / 1000;
      await removeLabelled(label);
      return seconds;
    };
    const dockerBefore = await dockerRun('a');

    // 2. The same K as one App through Shoal.
    const dir = tempDir('containers');
    const etcd = await startBenchEtcd(dir);
    const server = await startApiServer(etcd, dir);
    const cm = await startControllerManager(etcd, dir, 'cm-0');
    const node = `bench-docker-${runId}`;
    onCleanup('shoal containers', () => removeLabelled(`shoal.node=${node}`));
    const agent = await startAgent(etcd, dir, { node, runtime: 'docker', cpus: Math.max(2, k * 0.05 + 1), mem: k * 32 + 512, ports: '31000-32000' });
    const tracker = await TaskTracker.start(etcd.store);
    const api = new Api(server.url, server.token);
    const app = 'containers';
    const children = [server.child, cm.child, agent];
    log(o.verbose, `POST app of ${k} containers`);
    const s0 = Date.now();
    await api.must('POST', `/api/v1/namespaces/${NS}/apps`, appManifest(app, k, { container: { image: IMAGE, command: COMMAND }, resources: { cpus: 0.05, mem: 32 } }));
    const running = () => tracker.ofApp(app).filter((t) => t.state === 'RUNNING');
    await tracker.until(`${k} container tasks RUNNING`, 60_000 + k * 3000, () => running().length >= k, children);
    const shoalSeconds = (Date.now() - s0) / 1000;
    const starts = running().map((t) => (t.startedAt ? Date.parse(t.startedAt) : t.seenRunningAt!) - s0).sort((a, b) => a - b);
    const failed = tracker.ofApp(app).filter((t) => t.state && t.state !== 'RUNNING').length;

    log(o.verbose, 'DELETE app; waiting for its containers to go');
    const x0 = Date.now();
    await api.must('DELETE', `/api/v1/namespaces/${NS}/apps/${app}`);
    await waitFor('the App\'s containers to be removed', 60_000 + k * 2000, async () => (await docker('ps', '-aq', '--filter', `label=shoal.node=${node}`)) === '', { intervalMs: 250, children });
    const deleteSeconds = (Date.now() - x0) / 1000;
    const dockerAfter = await dockerRun('b');
    const dockerSeconds = (dockerBefore + dockerAfter) / 2;
    const baselines = await etcdBaselines(etcd.endpoint, o.baselineSeconds ?? 3);
    return {
      containers: k,
      concurrency,
      dockerSeconds: round(dockerSeconds),
      dockerSecondsBefore: round(dockerBefore),
      dockerSecondsAfter: round(dockerAfter),
      shoalSeconds: round(shoalSeconds),
      ratio: round(shoalSeconds / dockerSeconds),
      startLatencyP50Ms: Math.round(percentile(starts, 50)),
      startLatencyP99Ms: Math.round(percentile(starts, 99)),
      tasksNotRunning: failed,
      deleteSeconds: round(deleteSeconds),
      ...baselines,
    };
  } finally {
    await cleanupAll();
  }
}

export const containers: Scenario = {
  describe: (f) => `containers: ${f.containers} busybox containers, \`docker run -d\` × ${f.concurrency ?? 4} in parallel vs one App through Shoal`,
  headline: ['dockerSeconds', 'shoalSeconds', 'ratio', 'startLatencyP50Ms', 'startLatencyP99Ms', 'deleteSeconds'],
  targets: { ratio: '≤ 1.25' },
  run,
};
