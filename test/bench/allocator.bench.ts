/**
 * Allocator micro-benchmark: one allocation round over 10,000 agents, 100 roles and 100
 * frameworks, each round starting from a state where every offer of the previous round was
 * answered (a few launches accepted, the rest declined with the default refuse seconds), so
 * filters, held ports and DRF order all move as they would in a busy cluster.
 * `BENCH_VERBOSE=1` prints every round.
 */
import { Allocator } from '../../pkg/scheduler/allocator';
import { randomInt, seededRandom, type Random } from '../../pkg/scheduler/random';
import type { AgentInfo, LaunchRequest, Offer } from '../../pkg/scheduler/types';

const AGENTS = 10_000;
const ROLES = 100;
const FRAMEWORKS = 100;
const WARMUP_ROUNDS = 5;
const ROUNDS = 20;
/** Share of its offers on which a framework launches a task; it declines the others. */
const ACCEPT_RATE = 0.05;
const PRELOADED_TASKS = 20_000;

const name = (prefix: string, i: number) => `${prefix}${String(i).padStart(5, '0')}`;

function agentInfo(i: number): AgentInfo {
  const capacity = { cpus: 16, mem: 64 * 1024, disk: 100 * 1024, ports: [[31000, 32000]] as [number, number][] };
  return { name: name('node', i), hostname: `${name('node', i)}.bench`, capacity, attributes: { rack: `r${i % 40}` }, runtimes: ['docker'], schedulable: true, leaseRevision: 1 + i };
}

/** 10k agents, 100 frameworks (one per role) and tasks already running, spread unevenly over roles. */
function setUp(random: Random): Allocator {
  const alloc = new Allocator();
  for (let i = 0; i < AGENTS; i++) alloc.upsertAgent(agentInfo(i));
  for (let f = 0; f < FRAMEWORKS; f++) alloc.addFramework(name('fw', f), name('role', f % ROLES));
  for (let t = 0; t < PRELOADED_TASKS; t++) {
    const role = Math.floor(Math.pow(random(), 2) * ROLES);
    const resources = { cpus: randomInt(random, 1, 8) / 2, mem: randomInt(random, 1, 16) * 256, disk: 0 };
    alloc.track({ taskKey: `bench/pre-${t}`, agent: name('node', randomInt(random, 0, AGENTS - 1)), role: name('role', role), frameworkId: name('fw', role), resources, ports: [31000 + (t % 1000)] });
  }
  return alloc;
}

/** Answers every offer as a busy framework would: launch one task on a few, decline the rest. */
function answerAll(alloc: Allocator, offers: Offer[], random: Random, now: number, seq: { n: number }): number {
  const byFramework = new Map<string, Offer[]>();
  for (const o of offers) (byFramework.get(o.frameworkId) ?? byFramework.set(o.frameworkId, []).get(o.frameworkId)!).push(o);
  let accepted = 0;
  for (const list of byFramework.values()) {
    const chosen = list.filter(() => random() < ACCEPT_RATE);
    const launches = chosen.map((o): LaunchRequest => ({ offerId: o.id, namespace: 'bench', taskName: `t-${seq.n++}`, resources: { cpus: 0.5, mem: 512, disk: 0 }, ports: [o.resources.ports[0][0]], task: { spec: {} } }));
    if (chosen.length > 0) accepted += alloc.accept(chosen.map((o) => o.id), launches, now).accepted.length;
    const chosenIds = new Set(chosen.map((o) => o.id));
    alloc.decline(list.filter((o) => !chosenIds.has(o.id)).map((o) => o.id), undefined, now);
  }
  return accepted;
}

/** Nearest-rank percentile. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const round2 = (x: number) => Math.round(x * 100) / 100;

/** Runs the benchmark; figures are milliseconds per round and counts per round. */
export async function run(): Promise<Record<string, number>> {
  const random = seededRandom(42);
  const alloc = setUp(random);
  const rounds: number[] = [];
  const answers: number[] = [];
  let offered = 0;
  let accepted = 0;
  const seq = { n: 0 };
  for (let r = 0, now = 1_000; r < WARMUP_ROUNDS + ROUNDS; r++, now += 1_000) {
    const start = process.hrtime.bigint();
    alloc.expire(now);
    const offers = alloc.allocate(now);
    const roundMs = ms(start);
    const answerStart = process.hrtime.bigint();
    const launched = answerAll(alloc, offers, random, now, seq);
    if (r < WARMUP_ROUNDS) continue;
    rounds.push(roundMs);
    if (process.env.BENCH_VERBOSE) process.stdout.write(`round ${r}: ${roundMs.toFixed(1)} ms, ${offers.length} offers\n`);
    answers.push(ms(answerStart));
    offered += offers.length;
    accepted += launched;
  }
  rounds.sort((a, b) => a - b);
  answers.sort((a, b) => a - b);
  return {
    agents: AGENTS,
    roles: ROLES,
    frameworks: FRAMEWORKS,
    rounds: ROUNDS,
    roundP50Ms: round2(percentile(rounds, 50)),
    roundP99Ms: round2(percentile(rounds, 99)),
    offersPerRound: Math.round(offered / ROUNDS),
    answerP50Ms: round2(percentile(answers, 50)),
    launchesPerRound: Math.round(accepted / ROUNDS),
    allocations: alloc.stats().allocations,
  };
}
