/**
 * The fault suite: a seeded schedule of faults against a {@link ChaosCluster} while an App of 10
 * on 3 process agents is rolled from version to version, then the invariants of invariants.ts.
 * Shared by `make chaos` (run.ts, minutes of random faults) and the smoke in `make test`
 * (test/e2e/chaos-smoke.test.ts, one fault of each kind).
 *
 * Faults (each waits for what it broke to be restarted before the next starts):
 * - agent-kill: SIGKILL an agent, start it again after 0-3 s (its tasks must be adopted, not restarted).
 * - leader-kill / standby-kill: SIGKILL the leading / the standby controller-manager, restart after 0-3 s.
 * - apiserver-kill: SIGKILL the apiserver, restart after 0-3 s (version changes retry meanwhile).
 * - agent-loop: SIGKILL and restart one agent 5 times, 1-2.5 s apart.
 * - stale-leader: SIGSTOP the leader past its lease; the standby must take over; then the new
 *   leader is SIGSTOPped for a short window while the old one is SIGCONTed: every etcd write in
 *   that window is recorded, and none may be one only a controller-manager makes.
 * - compact-paused: SIGSTOP the leader, write 300 × 24 kB App annotations (more than its gRPC and
 *   TCP buffers hold, so etcd's side of its watches falls behind), compact etcd to the current
 *   revision, SIGCONT: its informers must see the compaction and relist.
 */
import { randomInt, seededRandom, shuffle } from '../../pkg/scheduler/random';
import type { Watch, WatchEvent } from '../../pkg/store/types';
import { AGENTS, ChaosCluster, CONTROLLER_MANAGERS, LEADER_LEASE_S, PREFIX, taskView } from './cluster';
import { CapacitySampler, capacityCeiling, finalAppCheck, matchOneToOne, staleWindowViolations, type CheckResult, type WindowWrite } from './invariants';

export const FAULT_KINDS = ['agent-kill', 'leader-kill', 'standby-kill', 'apiserver-kill', 'agent-loop', 'stale-leader', 'compact-paused', 'etcd-member-kill'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * The smoke's kinds: every kind, as `make chaos` (one of each). Its etcd has 3 members, as `make
 * chaos`'s, so that a member can be killed: about 10 s more than the single-member smoke without
 * the member kill (64 s against 54 s on a loaded 2-core machine).
 */
export const SMOKE_FAULT_KINDS: readonly FaultKind[] = FAULT_KINDS;
/** Members of the suite's etcd (smoke or not): etcd-member-kill kills one of them. */
export const ETCD_MEMBERS = 3;

export const APP = 'chaos';
/** An App of 0 instances whose annotations compact-paused rewrites to flood the paused controller's watches. */
export const FILLER_APP = 'chaos-filler';
export const INSTANCES = 10;
export const UPGRADE = { minimumHealthCapacity: 0.5, maximumOverCapacity: 0.2 };

export interface PlannedFault {
  /** Seconds after the faults start when it is due (it starts later when the previous one overran). */
  at: number;
  kind: FaultKind;
  /** Seed of this fault's own choices (which agent, how long down), so a plan replays exactly. */
  seed: number;
}

export interface Plan {
  seed: number;
  seconds: number;
  faults: PlannedFault[];
  /** Version changes of the App: seconds after the start, and the version. */
  upgrades: Array<{ at: number; version: string }>;
}

/**
 * The schedule for a seed. `smoke`: one fault of each kind in a random order, spread over
 * `seconds`, and version changes at 0 and half way. Otherwise: every kind once in a random order,
 * then random kinds 2-6 s apart until `seconds`, and a version change every 30 s.
 */
export function planSchedule(seed: number, seconds: number, smoke: boolean): Plan {
  const random = seededRandom(seed);
  const kinds = shuffle(random, [...(smoke ? SMOKE_FAULT_KINDS : FAULT_KINDS)]);
  const faults: PlannedFault[] = [];
  const next = () => randomInt(random, 0, 2 ** 31 - 1);
  if (smoke) {
    kinds.forEach((kind, i) => faults.push({ at: Math.round((i * seconds * 10) / kinds.length) / 10, kind, seed: next() }));
    return { seed, seconds, faults, upgrades: [{ at: 0, version: 'v2' }, { at: Math.round(seconds / 2), version: 'v3' }] };
  }
  let at = 0;
  for (let i = 0; at < seconds; i++) {
    faults.push({ at, kind: i < kinds.length ? kinds[i]! : FAULT_KINDS[randomInt(random, 0, FAULT_KINDS.length - 1)]!, seed: next() });
    at += randomInt(random, 2, 6);
  }
  const upgrades = [];
  for (let t = 0, v = 2; t < seconds; t += 30, v++) upgrades.push({ at: t, version: `v${v}` });
  return { seed, seconds, faults, upgrades };
}

/** The App manifest at a version (the version is in the tasks' env, so each version is a rolling upgrade). */
export function appManifest(version: string): object {
  return {
    apiVersion: 'shoal/v1',
    kind: 'App',
    metadata: { name: APP },
    spec: {
      instances: INSTANCES,
      cmd: 'sleep 1; touch ready; exec sleep 100000',
      env: { CHAOS_VERSION: version },
      resources: { cpus: 0.1, mem: 16 },
      healthChecks: [{ protocol: 'COMMAND', command: { value: 'test -f ready' }, gracePeriodSeconds: 30, delaySeconds: 0, intervalSeconds: 1, timeoutSeconds: 3, maxConsecutiveFailures: 3 }],
      upgradeStrategy: UPGRADE,
      // An agent away for a restart keeps its tasks counted: no replacement runs beside them.
      unreachableStrategy: { inactiveAfterSeconds: 300, expungeAfterSeconds: 600 },
      taskKillGracePeriodSeconds: 1,
    },
  };
}

export interface FaultRecord {
  kind: FaultKind;
  target?: string;
  plannedAt: number;
  /** Seconds after the faults started. */
  startedAt: number;
  durationMs: number;
  ok: boolean;
  details: Record<string, unknown>;
  error?: string;
}

export interface ChaosResult {
  seed: number;
  smoke: boolean;
  seconds: number;
  date: string;
  plan: Plan;
  faults: FaultRecord[];
  upgrades: Array<{ version: string; plannedAt: number; appliedAt?: number; error?: string }>;
  finalVersion: string;
  /** Seconds from the last fault's end until every invariant held (undefined: not within the bound). */
  convergenceSeconds?: number;
  convergenceBoundSeconds: number;
  ceiling: number;
  maxLiveTasks: number;
  maxLiveAtRevision: number;
  samples: number;
  samplerRelists: number;
  invariants: Record<string, CheckResult>;
  ok: boolean;
  logsDir?: string;
}

export interface ChaosOptions {
  seed: number;
  seconds: number;
  smoke: boolean;
  convergenceSeconds?: number;
  /** Keep the cluster's dir (logs) after the run. */
  keep?: boolean;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Serialises the App's version changes with the stale-leader window (nothing but agents may write in it). */
class Mutex {
  private tail = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** Runs the whole suite: start, v1 converged, faults with version changes, convergence, invariants. */
export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? (() => undefined);
  const plan = planSchedule(o.seed, o.seconds, o.smoke);
  const bound = o.convergenceSeconds ?? 120;
  log(`seed ${o.seed}: ${plan.faults.map((f) => `${f.at}s ${f.kind}`).join(', ')}`);
  const cluster = await ChaosCluster.start({ keep: o.keep, etcdMembers: ETCD_MEMBERS });
  const ceiling = capacityCeiling(INSTANCES, UPGRADE.maximumOverCapacity, UPGRADE.minimumHealthCapacity);
  const sampler = new CapacitySampler(ceiling);
  let watch: TaskWatch | undefined;
  try {
    await cluster.apply('app-v1', appManifest('v1'));
    await cluster.apply('filler', { apiVersion: 'shoal/v1', kind: 'App', metadata: { name: FILLER_APP }, spec: { instances: 0, cmd: 'sleep 1', resources: { cpus: 0.1, mem: 16 } } });
    await cluster.waitFor('v1 converged', 90_000, async () => finalAppCheck(await cluster.tasks(), APP, INSTANCES, 'v1').ok);
    log('v1 converged; faults start');
    watch = await TaskWatch.start(cluster, sampler);
    const writes = new Mutex();
    const t0 = Date.now();
    const upgrades: ChaosResult['upgrades'] = plan.upgrades.map((u) => ({ version: u.version, plannedAt: u.at }));
    const upgrading = (async () => {
      for (const u of upgrades) {
        await sleep(Math.max(0, t0 + u.plannedAt * 1000 - Date.now()));
        try {
          await writes.run(() => cluster.apply(`app-${u.version}`, appManifest(u.version), 120_000));
          u.appliedAt = (Date.now() - t0) / 1000;
          log(`${u.appliedAt.toFixed(1)}s: App → ${u.version}`);
        } catch (err) {
          u.error = (err as Error).message;
        }
      }
    })();
    const faults: FaultRecord[] = [];
    for (const f of plan.faults) {
      await sleep(Math.max(0, t0 + f.at * 1000 - Date.now()));
      const startedAt = (Date.now() - t0) / 1000;
      const rec: FaultRecord = { kind: f.kind, plannedAt: f.at, startedAt, durationMs: 0, ok: true, details: {} };
      const began = Date.now();
      try {
        await injectFault(cluster, f, rec, writes);
      } catch (err) {
        rec.ok = false;
        rec.error = (err as Error).message;
      }
      rec.durationMs = Date.now() - began;
      faults.push(rec);
      log(`${startedAt.toFixed(1)}s: ${f.kind}${rec.target ? ` ${rec.target}` : ''} (${rec.durationMs} ms)${rec.ok ? '' : `: FAILED ${rec.error}`}`);
    }
    await upgrading;
    const faultsEnd = Date.now();
    for (const c of cluster.components.values()) if (!c.alive()) c.start(); // a fault that failed half way
    const finalVersion = plan.upgrades[plan.upgrades.length - 1]!.version;
    let final = await snapshotChecks(cluster, finalVersion);
    const deadline = faultsEnd + bound * 1000;
    while (!(final.app.ok && final.match.ok) && Date.now() < deadline) {
      await sleep(500);
      final = await snapshotChecks(cluster, finalVersion);
    }
    const converged = final.app.ok && final.match.ok;
    const convergenceSeconds = converged ? Math.round((Date.now() - faultsEnd) / 100) / 10 : undefined;
    log(converged ? `converged ${convergenceSeconds} s after the last fault` : `NOT converged within ${bound} s`);
    await watch.stop();
    const invariants: Record<string, CheckResult> = {
      faultsInjected: { ok: faults.every((r) => r.ok), problems: faults.filter((r) => !r.ok).map((r) => `${r.kind} at ${r.startedAt}s: ${r.error}`) },
      versionChanges: { ok: upgrades.every((u) => !u.error), problems: upgrades.filter((u) => u.error).map((u) => `${u.version}: ${u.error}`) },
      staleLeaderWritesNothing: staleCheck(faults),
      oneToOne: final.match,
      appAtInstancesAndVersion: final.app,
      overCapacityAndResurrection: sampler.check(),
    };
    const result: ChaosResult = {
      seed: o.seed,
      smoke: o.smoke,
      seconds: o.seconds,
      date: new Date().toISOString(),
      plan,
      faults,
      upgrades,
      finalVersion,
      convergenceSeconds,
      convergenceBoundSeconds: bound,
      ceiling,
      maxLiveTasks: sampler.maxLive,
      maxLiveAtRevision: sampler.maxLiveAtRevision,
      samples: sampler.samples,
      samplerRelists: watch.relists,
      invariants,
      ok: Object.values(invariants).every((c) => c.ok),
      logsDir: o.keep ? `${cluster.dir}/logs` : undefined,
    };
    if (!result.ok) log(`FAILED; component output tails:\n${[...cluster.components.values()].map((c) => `--- ${c.name}\n${c.tail(1500)}`).join('\n')}`);
    return result;
  } finally {
    await watch?.stop();
    await cluster.stop();
  }
}

function staleCheck(faults: FaultRecord[]): CheckResult {
  const stale = faults.filter((f) => f.kind === 'stale-leader');
  const problems = stale.flatMap((f) => (f.details.violations as string[] | undefined) ?? []);
  return { ok: problems.length === 0 && stale.every((f) => f.ok), problems };
}

async function snapshotChecks(cluster: ChaosCluster, version: string): Promise<{ app: CheckResult; match: CheckResult }> {
  const tasks = await cluster.tasks();
  return { app: finalAppCheck(tasks, APP, INSTANCES, version), match: matchOneToOne(tasks, cluster.records(), cluster.processes()) };
}

async function injectFault(cluster: ChaosCluster, f: PlannedFault, rec: FaultRecord, writes: Mutex): Promise<void> {
  const random = seededRandom(f.seed);
  const pickAgent = () => AGENTS[randomInt(random, 0, AGENTS.length - 1)]!;
  const downMs = () => randomInt(random, 0, 3000);
  switch (f.kind) {
    case 'agent-kill':
      return killAndRestart(cluster, (rec.target = pickAgent()), downMs(), rec);
    case 'apiserver-kill':
      await killAndRestart(cluster, (rec.target = 'apiserver'), downMs(), rec);
      await cluster.waitFor('the apiserver answering', 30_000, async () => (await cluster.shoal('get', 'nodes')).code === 0);
      return;
    case 'leader-kill':
    case 'standby-kill': {
      const leader = await cluster.waitFor('a leader', 30_000, () => cluster.leader());
      const target = f.kind === 'leader-kill' ? leader.identity : CONTROLLER_MANAGERS.find((n) => n !== leader.identity)!;
      rec.target = target;
      await killAndRestart(cluster, target, downMs(), rec);
      const t = Date.now();
      const next = await cluster.waitFor('a leader after the kill', 30_000, async () => {
        const l = await cluster.leader();
        return l && l.modRevision !== (f.kind === 'leader-kill' ? leader.modRevision : -1) && l;
      });
      rec.details.leaderAfter = next.identity;
      rec.details.leaderAfterMs = Date.now() - t;
      return;
    }
    case 'agent-loop': {
      const node = (rec.target = pickAgent());
      const gaps: number[] = [];
      for (let i = 0; i < 5; i++) {
        await cluster.get(node).restart();
        const gap = randomInt(random, 1000, 2500);
        gaps.push(gap);
        await sleep(gap);
      }
      rec.details.restarts = 5;
      rec.details.gapsMs = gaps;
      return;
    }
    case 'stale-leader':
      return writes.run(() => staleLeader(cluster, rec));
    case 'compact-paused':
      return compactPaused(cluster, rec);
    case 'etcd-member-kill':
      rec.target = `etcd-${await cluster.killEtcdMember(randomInt(random, 0, ETCD_MEMBERS - 1), downMs())}`;
      return;
  }
}

async function killAndRestart(cluster: ChaosCluster, name: string, downMs: number, rec: FaultRecord): Promise<void> {
  const c = cluster.get(name);
  await c.signal('SIGKILL');
  await sleep(downMs);
  c.start();
  rec.details.downMs = downMs;
}

/** Waits until `name`'s log, after byte `from`, has `text`; false after `ms`. */
async function logged(cluster: ChaosCluster, name: string, from: number, text: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cluster.get(name).log().slice(from).includes(text)) return true;
    await sleep(100);
  }
  return false;
}

/** See the module comment. Runs under the writes mutex: no version change lands in the window. */
async function staleLeader(cluster: ChaosCluster, rec: FaultRecord): Promise<void> {
  const before = await cluster.waitFor('a leader', 30_000, () => cluster.leader());
  const old = cluster.get(before.identity);
  const other = cluster.get(CONTROLLER_MANAGERS.find((n) => n !== before.identity)!);
  rec.target = old.name;
  // The standby may itself be restarting (an earlier fault): it must run to take over.
  if (!other.alive()) other.start();
  const oldLog = old.logSize();
  const otherLog = other.logSize();
  const stoppedAt = Date.now();
  await old.signal('SIGSTOP');
  let after;
  try {
    after = await cluster.waitFor(`${other.name} taking over from the stopped ${old.name}`, LEADER_LEASE_S * 1000 + 30_000, async () => {
      const l = await cluster.leader();
      return l && l.identity === other.name && l;
    });
    rec.details.takeoverMs = Date.now() - stoppedAt;
    // Let the new leader work (start its controllers, act on the rollout) while the old one sleeps.
    await logged(cluster, other.name, otherLog, 'controllers started', 10_000);
    await sleep(1000);
  } catch (err) {
    await old.signal('SIGCONT');
    throw err;
  }
  // The window: only the old leader could write as a controller-manager now.
  await other.signal('SIGSTOP');
  const windowWrites: WindowWrite[] = [];
  let cut = false;
  const from = await cluster.store.revision();
  const leaderKey = `${PREFIX}/leader/controller-manager`;
  const w = await cluster.store.watch(`${PREFIX}/`, {
    afterRevision: from,
    prevValue: true,
    onEvents: (evs: WatchEvent[]) => {
      for (const e of evs) {
        if (cut) return;
        if (e.key === leaderKey) {
          cut = true; // a new term: from here on a write may be legitimate
          return;
        }
        windowWrites.push({ type: e.type, key: e.key.slice(PREFIX.length), value: e.value, prevValue: e.prevValue });
      }
    },
    onError: () => (cut = true),
  });
  const windowStart = Date.now();
  await old.signal('SIGCONT');
  // At least 1.2 s (the deposed leader's timers and watch backlog run), at most 2 s: the new
  // leader's lease (LEADER_LEASE_S, renewed every third of it) must outlive its pause.
  const noticed = await logged(cluster, old.name, oldLog, 'lost leadership', 2000);
  await sleep(Math.max(0, 1200 - (Date.now() - windowStart)));
  const windowMs = Date.now() - windowStart;
  await w.cancel();
  await other.signal('SIGCONT');
  const staleNoticed = noticed || (await logged(cluster, old.name, oldLog, 'lost leadership', 15_000));
  const holder = await cluster.leader();
  const violations = staleWindowViolations(windowWrites);
  rec.details = { ...rec.details, newLeader: after.identity, windowMs, windowWrites: windowWrites.length, windowCutByNewTerm: cut, violations, staleLoggedLostLeadership: staleNoticed, holderAfter: holder?.identity };
  if (!staleNoticed) throw new Error(`${old.name} never logged 'lost leadership' after SIGCONT`);
  if (violations.length) throw new Error(`the deposed leader wrote: ${violations.join('; ')}`);
}

/** See the module comment. */
async function compactPaused(cluster: ChaosCluster, rec: FaultRecord): Promise<void> {
  const leader = await cluster.waitFor('a leader', 30_000, () => cluster.leader());
  const cm = cluster.get(leader.identity);
  rec.target = cm.name;
  const from = cm.logSize();
  const t = Date.now();
  await cm.signal('SIGSTOP');
  try {
    // More events than etcd's per-stream buffer (128) and more bytes than gRPC and TCP buffer, on
    // an App the controller-manager watches (FILLER_APP, 0 instances: reconciling it does nothing).
    const key = `${PREFIX}/registry/apps/default/${FILLER_APP}`;
    const kv = await cluster.store.get(key);
    if (!kv) throw new Error(`${key} is missing`);
    const app = JSON.parse(kv.value) as { metadata: { annotations?: Record<string, string> } };
    const filler = 'x'.repeat(24_000);
    for (let i = 0; i < 300; i += 30) {
      await Promise.all(Array.from({ length: 30 }, (_, j) => cluster.store.txn([], [{ op: 'put', key, value: JSON.stringify({ ...app, metadata: { ...app.metadata, annotations: { ...app.metadata.annotations, 'chaos.shoal.dev/filler': `${i + j}${filler}` } } }) }])));
    }
    await cluster.store.txn([], [{ op: 'put', key, value: kv.value }]);
    rec.details.fillerWrites = 301;
    rec.details.compactedTo = await cluster.compact();
  } finally {
    await cm.signal('SIGCONT');
    rec.details.pausedMs = Date.now() - t;
  }
  rec.details.relistedAfterCompaction = await logged(cluster, cm.name, from, '"why":"compacted"', 10_000);
  rec.details.leaderAfter = (await cluster.leader())?.identity;
}

/** The sampler's feed: the App's Tasks, revision by revision, from an etcd watch (relisting after a compaction). */
class TaskWatch {
  relists = 0;
  private watch?: Watch;
  private stopped = false;

  private constructor(private readonly cluster: ChaosCluster, private readonly sampler: CapacitySampler) {}

  static async start(cluster: ChaosCluster, sampler: CapacitySampler): Promise<TaskWatch> {
    const w = new TaskWatch(cluster, sampler);
    await w.listAndWatch();
    return w;
  }

  private async listAndWatch(): Promise<void> {
    const prefix = `${PREFIX}/registry/tasks/`;
    const { items, revision } = await this.cluster.store.list(prefix);
    const known = items.map((kv) => taskView(kv.value)).filter((t) => t.app === APP);
    this.sampler.resync(revision, known.map((t) => ({ name: t.name, state: t.state })));
    this.watch = await this.cluster.store.watch(prefix, {
      afterRevision: revision,
      onEvents: (evs) => {
        const byRev = new Map<number, Array<{ name: string; state?: string }>>();
        for (const e of evs) {
          const name = e.key.slice(e.key.lastIndexOf('/') + 1);
          const change = e.type === 'delete' ? { name } : (() => {
            const t = taskView(e.value);
            return t.app === APP ? { name, state: t.state } : undefined;
          })();
          if (change) byRev.set(e.modRevision, [...(byRev.get(e.modRevision) ?? []), change]);
        }
        for (const [rev, changes] of byRev) this.sampler.apply(rev, changes);
      },
      onError: () => {
        if (this.stopped) return;
        this.relists++;
        void this.listAndWatch().catch(() => undefined);
      },
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.watch?.cancel();
  }
}

