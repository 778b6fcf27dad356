/**
 * Scheduling throughput on hollow agents: a real etcd, the apiserver and one controller-manager
 * as child processes, and --agents hollow agents (default 1000) in one more child process
 * (hollow-agents.js, an AgentHost). Apps totalling --tasks instances (default 10,000; 100
 * instances per App, tiny resources, cmd `sleep 3600`) are POSTed through the API, 16 at a time; one
 * etcd watch on the tasks prefix counts them bound (Tasks are created bound) and RUNNING.
 */
import * as path from 'node:path';
import { reportProfile } from './api.bench';
import { mapLimit } from '../../pkg/util/async';
import { etcdBaselines } from './baselines';
import {
  Api, appManifest, cleanupAll, counterValue, cpuSeconds, etcdCounters, etcdDbBytes, histogramCount, histogramQuantile, httpGet, log, logCount, logProblems, onCleanup, peakRss, percentile, round,
  startApiServer, startBenchEtcd, startControllerManager, startHollowAgents, TaskTracker, tempDir, type BenchOptions, type Child, type Figures, type Scenario,
} from './lib';

const NS = 'bench';
const PER_APP = 100;
const POSTS_IN_FLIGHT = 16;

async function run(o: BenchOptions & { profile?: boolean; profileOut?: string }): Promise<Figures> {
  const agents = o.agents ?? 1000;
  const tasks = o.tasks ?? 10_000;
  let profiled: { child: Child; dir: string } | undefined;
  try {
    const dir = tempDir('scheduling');
    const profDir = path.join(dir, 'prof');
    const etcd = await startBenchEtcd(dir);
    log(o.verbose, `etcd at ${etcd.endpoint}`);
    const server = await startApiServer(etcd, dir, { logLevel: 'warn' });
    const cm = await startControllerManager(etcd, dir, 'cm-0', [], o.profile ? ['--cpu-prof', '--cpu-prof-dir', profDir] : undefined);
    if (o.profile) profiled = { child: cm.child, dir: profDir };
    const cmRss = peakRss(cm.child.pid);
    onCleanup('rss sampler', () => cmRss.stop());
    log(o.verbose, `starting ${agents} hollow agents`);
    const agentsStart = Date.now();
    const hollow = await startHollowAgents(etcd, dir, { agents, cpus: 8, mem: 16384, leaseMode: o.leaseMode });
    const agentsSeconds = (Date.now() - agentsStart) / 1000;
    const tracker = await TaskTracker.start(etcd.store);
    const api = new Api(server.url, server.token);
    const apps = Math.ceil(tasks / PER_APP);
    const postedAt = new Map<string, number>();
    log(o.verbose, `applying ${apps} apps, ${tasks} instances`);
    // CPU each process spends from the first POST to all RUNNING: where the 2 cores go.
    const cpuOf = { etcd: etcd.pid, controller: cm.child.pid, agents: hollow.pid, apiserver: server.child.pid, bench: process.pid };
    const cpuBefore = Object.fromEntries(Object.entries(cpuOf).map(([k, pid]) => [k, cpuSeconds(pid)]));
    const etcdBefore = await etcdCounters(etcd.endpoint);
    const t0 = Date.now();
    // Submitted as many clients would (16 at once), not one after another: a sequential loop of
    // 100 POSTs alone takes seconds, which would measure the client rather than the scheduler.
    await mapLimit(Array.from({ length: apps }, (_, i) => i), POSTS_IN_FLIGHT, async (i) => {
      const name = `sched-${i}`;
      const instances = Math.min(PER_APP, tasks - i * PER_APP);
      await api.must('POST', `/api/v1/namespaces/${NS}/apps`, appManifest(name, instances, { cmd: 'sleep 3600', resources: { cpus: 0.01, mem: 1 } }));
      postedAt.set(name, Date.now());
    });
    const submitSeconds = (Date.now() - t0) / 1000;
    const children = [server.child, cm.child, hollow];
    const timeout = 120_000 + tasks * 12;
    let boundAt = 0;
    const withProblems = async (err: Error) => {
      const problems = logProblems(cm.child);
      // What the offer loop was doing when it stopped making progress.
      const loop = (await httpGet(cm.metricsUrl)).body.split('\n').filter((l) => /^shoal_(offers_total|launches_total|agents)\{/.test(l));
      throw new Error([err.message, ...(problems.length ? ['controller-manager warnings:', ...problems] : []), 'offer loop:', ...loop].join('\n  '));
    };
    await tracker.until(`${tasks} tasks bound`, timeout, () => {
      if (tracker.bound >= tasks) boundAt ||= Date.now();
      return tracker.bound >= tasks;
    }, children, o.verbose).catch(withProblems);
    log(o.verbose, `all bound after ${(boundAt - t0) / 1000} s`);
    await tracker.until(`${tasks} tasks RUNNING`, timeout, () => tracker.running >= tasks, children, o.verbose).catch(withProblems);
    const runningAt = Date.now();
    const etcdAfter = await etcdCounters(etcd.endpoint);
    // During the run only: the etcd baselines below saturate etcd on purpose.
    const leadershipLosses = logProblems(cm.child, 100).filter((p) => p.includes('lost leadership')).length;
    const agentLeasesLost = logCount(hollow, 'lease lost; re-registering');
    const cpu = Object.fromEntries(Object.entries(cpuOf).map(([k, pid]) => [`cpuSeconds${k[0].toUpperCase()}${k.slice(1)}`, round(cpuSeconds(pid) - cpuBefore[k], 1)]));
    const metrics = (await httpGet(cm.metricsUrl)).body;
    const appToBound = [...tracker.tasks.values()].filter((t) => t.app && t.seenBoundAt).map((t) => t.seenBoundAt! - (postedAt.get(t.app!) ?? t0)).sort((a, b) => a - b);
    const secondsToAllBound = (boundAt - t0) / 1000;
    const secondsToAllRunning = (runningAt - t0) / 1000;
    const histogramBound = histogramCount(metrics, 'shoal_scheduling_latency_seconds') > 0;
    const dbBytes = await etcdDbBytes(etcd.endpoint);
    const controllerRssMiB = cmRss.peakMiB();
    await hollow.stop();
    log(o.verbose, 'etcd baselines');
    const baselines = await etcdBaselines(etcd.endpoint, o.baselineSeconds ?? 3);
    return {
      agents,
      tasks,
      apps,
      secondsToRegisterAgents: round(agentsSeconds, 1),
      secondsToSubmitApps: round(submitSeconds),
      secondsToAllBound: round(secondsToAllBound),
      secondsToAllRunning: round(secondsToAllRunning),
      boundPerSecond: Math.round(tasks / secondsToAllBound),
      runningPerSecond: Math.round(tasks / secondsToAllRunning),
      // From the controller-manager's histogram (bucket upper bounds) when it observed any;
      // else from this process's view: the App's POST answered → the Task first seen bound.
      queuedToBoundP50Ms: round(histogramBound ? histogramQuantile(metrics, 'shoal_scheduling_latency_seconds', 0.5) * 1000 : percentile(appToBound, 50)),
      queuedToBoundP99Ms: round(histogramBound ? histogramQuantile(metrics, 'shoal_scheduling_latency_seconds', 0.99) * 1000 : percentile(appToBound, 99)),
      queuedToBoundFromHistogram: histogramBound ? 1 : 0,
      appPostToBoundP50Ms: round(percentile(appToBound, 50)),
      appPostToBoundP99Ms: round(percentile(appToBound, 99)),
      offerRoundP99Ms: round(histogramQuantile(metrics, 'shoal_allocation_round_duration_seconds', 0.99) * 1000),
      allocationRounds: histogramCount(metrics, 'shoal_allocation_round_duration_seconds'),
      controllerRssMiB,
      // The longest the controller-manager's event loop was blocked (its leader lease is renewed from it).
      controllerEventLoopLagMaxMs: round(counterValue(metrics, 'nodejs_eventloop_lag_max_seconds') * 1000),
      leadershipLosses,
      // Agent leases etcd expired during the run (each agent then re-registers; its tasks may be LOST).
      agentLeasesLost,
      etcdDbMiB: round(dbBytes / 2 ** 20, 1),
      ...cpu,
      // What etcd did for the run: raft proposals (write transactions), reads, and bytes sent to clients (watches, reads).
      etcdProposals: etcdAfter.proposals - etcdBefore.proposals,
      etcdRanges: etcdAfter.ranges - etcdBefore.ranges,
      etcdSentMiB: round((etcdAfter.sentBytes - etcdBefore.sentBytes) / 2 ** 20, 1),
      ...baselines,
    };
  } finally {
    if (profiled) await reportProfile('controller-manager', profiled.child, profiled.dir, o.profileOut);
    await cleanupAll();
  }
}

export const scheduling: Scenario = {
  describe: (f) => `scheduling: ${Number(f.tasks).toLocaleString('en')} instances (Apps of ${PER_APP}) on ${Number(f.agents).toLocaleString('en')} hollow agents`,
  headline: [
    'secondsToSubmitApps', 'secondsToAllBound', 'secondsToAllRunning', 'boundPerSecond', 'queuedToBoundP99Ms', 'offerRoundP99Ms', 'controllerRssMiB',
    'leadershipLosses', 'agentLeasesLost', 'cpuSecondsEtcd', 'cpuSecondsController', 'cpuSecondsAgents', 'etcdProposals', 'etcdConcurrentPutsPerSecond', 'etcdBatchedKeysPerSecond',
  ],
  targets: {
    boundPerSecond: '≥ 3,750',
    queuedToBoundP99Ms: '≤ 1,000',
    secondsToAllRunning: '≤ 60 at 5,000 × 50,000',
    controllerRssMiB: '≤ 1,024 at 5,000 × 50,000',
    leadershipLosses: '0',
    agentLeasesLost: '0',
  },
  run,
};
