/**
 * Recovery from crashes, every component a separate process: a real etcd, the apiserver, two
 * controller-managers (one leads, one stands by) and three agents (process runtime, each with its
 * own data dir, node name and host port range, a short lease TTL). One App of N instances
 * (--tasks, default 6, `sleep 3600`). Once all run:
 * 1. SIGKILL the agent with most tasks; time until N tasks RUNNING again, none on the dead node.
 * 2. SIGKILL the leading controller-manager and at once scale the App up by 2; time until the
 *    2 new tasks are bound (the standby must take the lead and schedule them).
 * Every 100 ms the live (non-terminal) tasks of the App are counted: anything above the wanted
 * number is a duplicate.
 */
import { etcdBaselines } from './baselines';
import {
  Api, appManifest, cleanupAll, leaderIdentity, log, onCleanup, round, sleep, startAgent, startApiServer, startBenchEtcd, startControllerManager,
  TaskTracker, TERMINAL, tempDir, type BenchOptions, type Child, type Figures, type Scenario, type TrackedTask,
} from './lib';

const NS = 'bench';
const APP = 'recovery';
const AGENT_LEASE_TTL = 3;
const LEADER_LEASE = 3;
const AGENTS = 3;

async function run(o: BenchOptions): Promise<Figures> {
  const n = o.tasks ?? 6;
  let sampler: NodeJS.Timeout | undefined;
  let tracker: TaskTracker | undefined;
  // Process-runtime tasks outlive their agents (each is its own process group): kill them once
  // everything else has stopped (registered first, so it runs last; also on Ctrl-C).
  onCleanup('task processes', () => {
    for (const pid of tracker?.pids ?? []) {
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
  try {
    const dir = tempDir('recovery');
    const etcd = await startBenchEtcd(dir);
    const server = await startApiServer(etcd, dir);
    const cms = new Map<string, Child>();
    for (const id of ['cm-a', 'cm-b']) cms.set(id, (await startControllerManager(etcd, dir, id, ['--leader-lease', String(LEADER_LEASE)])).child);
    const agents = new Map<string, Child>();
    for (let i = 0; i < AGENTS; i++) {
      const node = `agent-${i}`;
      const from = 31000 + i * 1000;
      agents.set(node, await startAgent(etcd, dir, { node, runtime: 'process', cpus: 2, mem: 2048, ports: `${from}-${from + 999}`, leaseTtlSeconds: AGENT_LEASE_TTL }));
    }
    const tr = (tracker = await TaskTracker.start(etcd.store));
    const api = new Api(server.url, server.token);
    const all = () => [server.child, ...cms.values(), ...agents.values()].filter((c) => c.alive());
    // Tasks of the killed agent are UNREACHABLE (kept until expunged, replaced at once): not live,
    // so not duplicates; a duplicate is a reachable task beyond the instances wanted.
    const live = (): TrackedTask[] => tr.ofApp(APP).filter((t) => !TERMINAL.has(t.state ?? '') && t.state !== 'UNREACHABLE');
    const runningOn = (pred: (node: string) => boolean) => tr.ofApp(APP).filter((t) => t.state === 'RUNNING' && pred(t.node ?? ''));

    let wanted = n;
    let duplicates = 0;
    let samples = 0;
    sampler = setInterval(() => {
      samples++;
      duplicates = Math.max(duplicates, live().length - wanted);
    }, 100);

    log(o.verbose, `App of ${n}`);
    await api.must('POST', `/api/v1/namespaces/${NS}/apps`, appManifest(APP, n, { cmd: 'sleep 3600', resources: { cpus: 0.1, mem: 16 } }));
    await tr.until(`${n} tasks RUNNING`, 60_000, () => runningOn(() => true).length >= n, all());

    // 1. Kill the busiest agent.
    const perNode = new Map<string, number>();
    for (const t of runningOn(() => true)) perNode.set(t.node!, (perNode.get(t.node!) ?? 0) + 1);
    const [victim, victimTasks] = [...perNode.entries()].sort((a, b) => b[1] - a[1])[0];
    log(o.verbose, `SIGKILL ${victim} (${victimTasks} tasks)`);
    const k0 = Date.now();
    agents.get(victim)!.kill('SIGKILL');
    await agents.get(victim)!.exited;
    await tr.until(`${n} tasks RUNNING off ${victim}`, 60_000 + AGENT_LEASE_TTL * 1000, () => runningOn((node) => node !== victim).length >= n && runningOn((node) => node === victim).length === 0, all());
    const secondsToReplacementsRunning = (Date.now() - k0) / 1000;

    // 2. Kill the leading controller-manager and scale up at once.
    const leader = await leaderIdentity(etcd.store);
    if (!leader || !cms.has(leader)) throw new Error(`leader key names ${leader ?? 'nobody'}, not one of ${[...cms.keys()].join(', ')}`);
    const before = new Set(tr.ofApp(APP).map((t) => t.name));
    log(o.verbose, `SIGKILL leader ${leader}; scale to ${n + 2}`);
    const l0 = Date.now();
    cms.get(leader)!.kill('SIGKILL');
    // Gone before the wait below picks its children by alive(): a child dying during a wait fails it.
    await cms.get(leader)!.exited;
    wanted = n + 2;
    await api.must('PATCH', `/api/v1/namespaces/${NS}/apps/${APP}`, { spec: { instances: n + 2 } }, 'application/merge-patch+json');
    const fresh = () => tr.ofApp(APP).filter((t) => !before.has(t.name) && t.node && !TERMINAL.has(t.state ?? ''));
    await tr.until('2 new tasks bound by the new leader', 60_000 + LEADER_LEASE * 1000, () => fresh().length >= 2, all());
    const secondsToNewLeaderScheduling = (Date.now() - l0) / 1000;
    const newLeader = await leaderIdentity(etcd.store);
    await tr.until(`${n + 2} tasks RUNNING`, 60_000, () => runningOn((node) => node !== victim).length >= n + 2, all());
    await sleep(500); // a few more samples for duplicates after things settle
    clearInterval(sampler);
    const baselines = await etcdBaselines(etcd.endpoint, o.baselineSeconds ?? 3);
    return {
      instances: n,
      agents: AGENTS,
      agentLeaseTtlSeconds: AGENT_LEASE_TTL,
      leaderLeaseSeconds: LEADER_LEASE,
      killedAgentTasks: victimTasks,
      secondsToReplacementsRunning: round(secondsToReplacementsRunning),
      secondsToNewLeaderScheduling: round(secondsToNewLeaderScheduling),
      newLeaderIsStandby: newLeader && newLeader !== leader ? 1 : 0,
      duplicateTasks: duplicates,
      samples,
      ...baselines,
    };
  } finally {
    if (sampler) clearInterval(sampler);
    await cleanupAll();
  }
}

export const recovery: Scenario = {
  describe: (f) => `recovery: App of ${f.instances} on ${f.agents} process agents; SIGKILL the busiest agent, then the leading controller-manager`,
  headline: ['secondsToReplacementsRunning', 'secondsToNewLeaderScheduling', 'duplicateTasks', 'agentLeaseTtlSeconds'],
  targets: { secondsToReplacementsRunning: '≤ 15', secondsToNewLeaderScheduling: '≤ 5', duplicateTasks: '0' },
  run,
};
