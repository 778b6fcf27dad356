/**
 * The second level of two-level scheduling, as pure decisions: whether one offer can run one
 * piece of a framework's pending work ({@link checkOffer}), and a greedy round that matches
 * several pieces against several offers ({@link placeMany}). Constraints follow Marathon
 * (`mesosphere.mesos.Constraints`); every rejection carries a {@link Reason} constant and a
 * sentence, which become "why pending" in App conditions and `shoal describe`.
 */
import type { AppSpec, Constraint } from '../api/types.generated';
import { countPorts, normalizeRanges, rangesContain, removePorts, round, subtract, takePorts } from '../api/resources';
import { Heap } from '../util/heap';
import { seededRandom, type Random } from './random';
import type { Offer, PortRange, Scalars } from './types';

/** What one task of an App needs from an offer. */
export interface Demand {
  resources: Scalars;
  /** One entry per port: `hostPort` 0 takes any port of the offer's ranges, else exactly that port. */
  ports: Array<{ hostPort: number }>;
  /** `docker` for a container; undefined for a plain `cmd`, which docker and process both run. */
  runtime?: 'docker' | 'process';
  constraints: Constraint[];
}

/** Where one of the app's non-terminal tasks runs (what UNIQUE, CLUSTER, GROUP_BY and MAX_PER count). */
export interface Placed {
  agent: string;
  hostname: string;
  attributes: Record<string, string>;
}

/**
 * The parts of an offer feasibility reads. An {@link Offer} is one; so is a view of an agent the
 * framework was not offered (to explain "0/5 agents" over all agents), which may be cordoned.
 */
export type OfferView = Pick<Offer, 'agent' | 'hostname' | 'attributes' | 'runtimes' | 'resources'> & {
  /** false for a cordoned agent. Offers only come from schedulable agents, so absent means true. */
  schedulable?: boolean;
};

/**
 * Why an offer cannot run a demand, each with its default sentence. Key order is the order in
 * which the stages of {@link checkOffer} report them (cheapest check first).
 */
export const REASONS = {
  AgentLost: 'agent lost',
  Unschedulable: 'agent unschedulable',
  RuntimeMissing: 'runtime missing',
  InsufficientCpus: 'insufficient cpus',
  InsufficientMem: 'insufficient mem',
  InsufficientDisk: 'insufficient disk',
  AttributeMissing: 'attribute missing',
  ConstraintLike: 'constraint LIKE',
  ConstraintUnlike: 'constraint UNLIKE',
  ConstraintIs: 'constraint IS',
  ConstraintCluster: 'constraint CLUSTER',
  PortsUnavailable: 'ports unavailable',
  ConstraintUnique: 'constraint UNIQUE',
  ConstraintGroupBy: 'constraint GROUP_BY',
  ConstraintMaxPer: 'constraint MAX_PER',
  // Not checks of an offer: why an agent that could run the work was not offered to its framework.
  DeclineFilter: 'declined recently (offer filter)',
  OfferedElsewhere: 'offered to another framework',
} as const;

/** A reason constant: what "why pending" counts. */
export type Reason = keyof typeof REASONS;

/** Every reason, in stage order. */
export const REASON_ORDER = Object.keys(REASONS) as Reason[];

/** An offer that cannot run a demand. */
export interface Rejection {
  ok: false;
  reason: Reason;
  /** Short and shared by every agent rejected the same way, e.g. `constraint UNIQUE hostname`: what summaries count. */
  sentence: string;
  /** The sentence with this agent's numbers, e.g. `insufficient cpus (needs 1, 0.5 free)`. */
  detail: string;
}

/** An offer that can run a demand, with the exact host ports it would take (in the demand's port order). */
export interface Fit {
  ok: true;
  ports: number[];
}

type Operator = Constraint[1];

const OPERATOR_REASON: Record<Operator, Reason> = {
  UNIQUE: 'ConstraintUnique',
  CLUSTER: 'ConstraintCluster',
  GROUP_BY: 'ConstraintGroupBy',
  LIKE: 'ConstraintLike',
  UNLIKE: 'ConstraintUnlike',
  MAX_PER: 'ConstraintMaxPer',
  IS: 'ConstraintIs',
};

/** The demand of one instance of `spec`: a container needs docker, a plain `cmd` any runtime. */
export function demandOf(spec: Pick<AppSpec, 'resources' | 'ports' | 'container' | 'constraints'>): Demand {
  return {
    resources: { cpus: spec.resources.cpus, mem: spec.resources.mem, disk: spec.resources.disk },
    ports: (spec.ports ?? []).map((p) => ({ hostPort: p.hostPort ?? 0 })),
    runtime: spec.container ? 'docker' : undefined,
    constraints: spec.constraints ?? [],
  };
}

// ---------------------------------------------------------------------------------------------
// checkOffer: a chain of stages

/** What the stages read. `ports` is the ports stage's output, kept for the final {@link Fit}. */
interface Check {
  demand: Demand;
  offer: OfferView;
  tally: Tally;
  ports: number[];
}

/** One feasibility check: undefined when the offer passes it. */
type Stage = (c: Check) => Rejection | undefined;

const STAGES: readonly Stage[] = [
  schedulableStage, // one flag: a cordoned agent needs no further work
  runtimeStage, // a lookup in a list of at most three names
  scalarStage('cpus'), // one compare each, cpus first as the most often exhausted
  scalarStage('mem'),
  scalarStage('disk'),
  attributeStage, // LIKE, UNLIKE, IS, CLUSTER value, missing attributes: reads only the offer
  portsStage, // walks the offer's port ranges (and records the ports taken)
  placementStage, // UNIQUE, CLUSTER, GROUP_BY, MAX_PER: reads the tally of placed tasks (GROUP_BY: every value)
];

/**
 * Whether `offer` can run `demand`, given where the app's tasks already run (`placed`) and where
 * this round put others (`alsoPlacedThisRound`). Stages run cheapest first and the first
 * rejection is the answer, so the reason reported is the first failing stage.
 */
export function checkOffer(
  demand: Demand,
  offer: OfferView,
  placed: readonly Placed[],
  alsoPlacedThisRound: readonly Placed[] = [],
): Fit | Rejection {
  const tally = newTally(demand.constraints.map((c) => c[0]));
  for (const p of placed) addToTally(tally, p);
  for (const p of alsoPlacedThisRound) addToTally(tally, p);
  return runStages(demand, offer, tally);
}

/** {@link checkOffer} for many offers (or agent views) at once, counting `placed` once. */
export function checkOffers(demand: Demand, offers: readonly OfferView[], placed: readonly Placed[]): Array<Fit | Rejection> {
  const tally = newTally(demand.constraints.map((c) => c[0]));
  for (const p of placed) addToTally(tally, p);
  return offers.map((offer) => runStages(demand, offer, tally));
}

function runStages(demand: Demand, offer: OfferView, tally: Tally): Fit | Rejection {
  const check: Check = { demand, offer, tally, ports: [] };
  for (const stage of STAGES) {
    const rejection = stage(check);
    if (rejection) return rejection;
  }
  return { ok: true, ports: check.ports };
}

function reject(reason: Reason, sentence: string, why: string): Rejection {
  return { ok: false, reason, sentence, detail: `${sentence} (${why})` };
}

function schedulableStage({ offer }: Check): Rejection | undefined {
  return offer.schedulable === false ? reject('Unschedulable', REASONS.Unschedulable, 'cordoned') : undefined;
}

/** Whether an agent with `runtimes` runs `wanted`; hollow (tests, kubemark-style) runs anything. */
export function runtimeMatches(wanted: Demand['runtime'], runtimes: readonly string[]): boolean {
  if (runtimes.includes('hollow')) return true;
  return wanted ? runtimes.includes(wanted) : runtimes.some((r) => r === 'docker' || r === 'process');
}

function runtimeStage({ demand, offer }: Check): Rejection | undefined {
  if (runtimeMatches(demand.runtime, offer.runtimes)) return undefined;
  const sentence = demand.runtime ? `runtime ${demand.runtime} missing` : REASONS.RuntimeMissing;
  return reject('RuntimeMissing', sentence, `agent has ${offer.runtimes.join(', ') || 'none'}`);
}

const SCALAR_REASON = { cpus: 'InsufficientCpus', mem: 'InsufficientMem', disk: 'InsufficientDisk' } as const;

function scalarStage(name: keyof Scalars): Stage {
  const unit = name === 'cpus' ? '' : ' MiB';
  return ({ demand, offer }) => {
    const need = demand.resources[name];
    const free = offer.resources[name];
    if (round(free - need) >= 0) return undefined;
    return reject(SCALAR_REASON[name], REASONS[SCALAR_REASON[name]], `needs ${need}${unit}, ${free}${unit} free`);
  };
}

function portsStage(check: Check): Rejection | undefined {
  const ports = assignPorts(check.demand.ports, check.offer.resources.ports);
  if (typeof ports === 'string') return reject('PortsUnavailable', REASONS.PortsUnavailable, ports);
  check.ports = ports;
  return undefined;
}

/**
 * The host ports `wanted` would take from `ranges`, in `wanted`'s order, or why they cannot be
 * had. Fixed ports first, so a dynamic port never takes a port the demand names. Without
 * `random` the dynamic ports are the lowest free ones (what feasibility checks and "why
 * pending" use: only whether they fit matters there); with it they are drawn uniformly from all
 * free ones, as Marathon does, so a port held by something else on the host is not handed to
 * every launch in turn.
 */
export function assignPorts(wanted: ReadonlyArray<{ hostPort: number }>, ranges: readonly PortRange[], random?: Random): number[] | string {
  const fixed = wanted.map((p) => p.hostPort).filter((p) => p > 0);
  const twice = fixed.find((p, i) => fixed.indexOf(p) !== i);
  if (twice !== undefined) return `hostPort ${twice} asked for twice`;
  const outside = fixed.find((p) => !rangesContain(ranges, p));
  if (outside !== undefined) return `hostPort ${outside} not offered`;
  const count = wanted.length - fixed.length;
  const dynamic = random && count > 0 ? randomPorts(removePorts(ranges, fixed), count, random) : takePorts(ranges, count, fixed);
  if (!dynamic) {
    const free = countPorts(normalizeRanges(ranges)) - fixed.length;
    return `needs ${count} dynamic port(s), ${free} free`;
  }
  let next = 0;
  return wanted.map((p) => (p.hostPort > 0 ? p.hostPort : dynamic[next++]));
}

/**
 * `count` distinct ports drawn uniformly from `ranges` (undefined when there are fewer): a
 * partial Fisher–Yates over the ports' indices, kept sparse, so a range of thousands of ports
 * costs O(count × ranges), not O(ports).
 */
export function randomPorts(ranges: readonly PortRange[], count: number, random: Random): number[] | undefined {
  const free = normalizeRanges(ranges);
  const total = countPorts(free);
  if (count > total) return undefined;
  const swapped = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (total - i));
    const at = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    out.push(portAt(free, at));
  }
  return out;
}

/** The `index`-th port (from 0) of normalized `ranges`. */
function portAt(ranges: readonly PortRange[], index: number): number {
  let left = index;
  for (const [b, e] of ranges) {
    if (left <= e - b) return b + left;
    left -= e - b + 1;
  }
  throw new RangeError(`port index ${index} beyond the ranges`);
}

// ---------------------------------------------------------------------------------------------
// Constraints (Marathon semantics)

/** Mesos' scalar attribute text: `1.0` and `1` are the same scalar, formatted like Marathon's `0.###`. */
const SCALAR = /^[0-9]+(?:\.[0-9]+)?$/;

/** An attribute value as Marathon reads it from a Mesos attribute: scalars normalized, text as is. */
export function attributeValue(text: string): string {
  return SCALAR.test(text) ? String(Math.round(Number(text) * 1000) / 1000) : text;
}

/** The constraint field's value on an agent: its hostname or an attribute; undefined when it has none. */
export function fieldValue(field: string, on: { hostname: string; attributes: Record<string, string> }): string | undefined {
  if (field === 'hostname') return on.hostname;
  return Object.hasOwn(on.attributes, field) ? attributeValue(on.attributes[field]) : undefined;
}

/** The constraint's value read the way the field's values are (hostnames are never scalars). */
function expected(field: string, value: string): string {
  return field === 'hostname' ? value : attributeValue(value);
}

/** `constraint UNIQUE hostname`, `constraint LIKE rack r[12]`: how summaries name a constraint. */
export function constraintSentence([field, op, value]: Constraint): string {
  return `constraint ${op} ${field}${value === undefined ? '' : ` ${value}`}`;
}

function constraintReject(c: Constraint, why: string): Rejection {
  return reject(OPERATOR_REASON[c[1]], constraintSentence(c), why);
}

function attributeStage({ demand, offer }: Check): Rejection | undefined {
  for (const c of demand.constraints) {
    const rejection = attributeCheck(c, fieldValue(c[0], offer));
    if (rejection) return rejection;
  }
  return undefined;
}

/**
 * The checks that need only the offer's own value. Marathon: an agent without the field
 * matches no operator but UNLIKE (it is certainly not like the value).
 */
function attributeCheck(c: Constraint, have: string | undefined): Rejection | undefined {
  const [field, op, value] = c;
  if (have === undefined) {
    return op === 'UNLIKE' ? undefined : reject('AttributeMissing', `attribute ${field} missing`, `needed by ${constraintSentence(c)}`);
  }
  switch (op) {
    case 'LIKE':
    case 'UNLIKE': {
      // Marathon: a LIKE or UNLIKE without a (valid) pattern matches no agent at all.
      const matches = fullMatch(value, have);
      if (matches === undefined) return constraintReject(c, 'no valid regular expression');
      return matches === (op === 'LIKE') ? undefined : constraintReject(c, `${field} is ${have}`);
    }
    case 'IS':
      return value !== undefined && have === expected(field, value) ? undefined : constraintReject(c, `${field} is ${have}`);
    case 'CLUSTER':
      return value === undefined || have === expected(field, value) ? undefined : constraintReject(c, `${field} is ${have}`);
    default:
      return undefined;
  }
}

/** Java's `String.matches`: the whole value; undefined when there is no (valid) pattern. */
function fullMatch(pattern: string | undefined, text: string): boolean | undefined {
  if (pattern === undefined) return undefined;
  const re = compiled(pattern);
  return re ? re.test(text) : undefined;
}

/** Compiled patterns (null: invalid). Apps have few patterns; the cap only bounds pathological churn. */
const patterns = new Map<string, RegExp | null>();

function compiled(pattern: string): RegExp | null {
  let re = patterns.get(pattern);
  if (re !== undefined) return re;
  try {
    re = new RegExp(`^(?:${pattern})$`);
  } catch {
    re = null;
  }
  if (patterns.size >= 1000) patterns.clear();
  patterns.set(pattern, re);
  return re;
}

function placementStage({ demand, offer, tally }: Check): Rejection | undefined {
  for (const c of demand.constraints) {
    const have = fieldValue(c[0], offer);
    // The attribute stage already rejected a missing value for every operator that reaches here.
    const rejection = have === undefined ? undefined : placementCheck(c, have, tally);
    if (rejection) return rejection;
  }
  return undefined;
}

function placementCheck(c: Constraint, have: string, tally: Tally): Rejection | undefined {
  switch (c[1]) {
    case 'UNIQUE':
      return checkUnique(c, have, tally);
    case 'CLUSTER':
      return c[2] === undefined ? checkCluster(c, have, tally) : undefined;
    case 'GROUP_BY':
      return checkGroupBy(c, have, tally);
    case 'MAX_PER':
      return checkMaxPer(c, have, tally);
    default:
      return undefined;
  }
}

/** UNIQUE: no task of the app on an agent with the same value (tasks lacking the field never conflict). */
function checkUnique(c: Constraint, have: string, tally: Tally): Rejection | undefined {
  const other = tally.fields.get(c[0])?.holder.get(have);
  return other === undefined ? undefined : constraintReject(c, `agent ${other} already runs a task of this app with ${c[0]} ${have}`);
}

/** CLUSTER without value: the first placed task chose the value for all (Marathon: the first, not any). */
function checkCluster(c: Constraint, have: string, tally: Tally): Rejection | undefined {
  if (tally.total === 0) return undefined;
  const chosen = tally.fields.get(c[0])?.first;
  return chosen === have ? undefined : constraintReject(c, `tasks of this app run on ${c[0]} ${chosen ?? '(none)'}`);
}

/**
 * GROUP_BY [n]: an offer whose value no task has yet is fine; otherwise its value must hold the
 * fewest tasks, and (with n) n values must have been seen first.
 */
function checkGroupBy(c: Constraint, have: string, tally: Tally): Rejection | undefined {
  const counts = countsOf(tally, c[0]);
  const mine = counts.get(have);
  if (mine === undefined) return undefined;
  const groups = positiveInt(c[2]) ?? 0;
  if (counts.size < groups) return constraintReject(c, `tasks seen on ${counts.size} of ${groups} ${c[0]} values; waiting for an offer from another`);
  let least = mine;
  for (const n of counts.values()) least = Math.min(least, n);
  return mine === least ? undefined : constraintReject(c, `${c[0]} ${have} has ${mine} task(s), another has ${least}`);
}

/** MAX_PER n: at most n tasks of the app per value. */
function checkMaxPer(c: Constraint, have: string, tally: Tally): Rejection | undefined {
  const max = positiveInt(c[2]);
  if (max === undefined) return constraintReject(c, 'value is not a positive integer');
  const mine = countsOf(tally, c[0]).get(have) ?? 0;
  return mine < max ? undefined : constraintReject(c, `${c[0]} ${have} already has ${mine} task(s)`);
}

// ---------------------------------------------------------------------------------------------
// Tally: the app's tasks counted once, so a check costs the same however many tasks there are

/** Per constraint field: tasks per value, who holds each value, and the first task's value. */
interface FieldTally {
  /** Tasks lacking the field are left out: no offer can join their "group" (offers lacking it are rejected). */
  counts: Map<string, number>;
  /** The first agent seen with each value (what a UNIQUE rejection names). */
  holder: Map<string, string>;
  /** The first task's value (CLUSTER without value); undefined also when that task lacked the field. */
  first?: string;
}

/** The app's placed tasks (then this round's, in order) as the placement stage reads them. */
interface Tally {
  total: number;
  fields: Map<string, FieldTally>;
  perAgent: Map<string, number>;
}

function newTally(fields: Iterable<string>): Tally {
  const tally: Tally = { total: 0, fields: new Map(), perAgent: new Map() };
  for (const f of fields) tally.fields.set(f, { counts: new Map(), holder: new Map() });
  return tally;
}

function addToTally(tally: Tally, p: Placed): void {
  for (const [field, t] of tally.fields) {
    const v = fieldValue(field, p);
    if (tally.total === 0) t.first = v;
    if (v === undefined) continue;
    t.counts.set(v, (t.counts.get(v) ?? 0) + 1);
    if (!t.holder.has(v)) t.holder.set(v, p.agent);
  }
  tally.perAgent.set(p.agent, (tally.perAgent.get(p.agent) ?? 0) + 1);
  tally.total++;
}

function countsOf(tally: Tally, field: string): Map<string, number> {
  return tally.fields.get(field)?.counts ?? new Map();
}

function positiveInt(text: string | undefined): number | undefined {
  return text !== undefined && /^[1-9]\d*$/.test(text) ? Number(text) : undefined;
}

// ---------------------------------------------------------------------------------------------
// placeMany: a greedy round

/** How {@link placeMany} ranks the offers that can run a demand. */
export type Strategy = 'SPREAD' | 'BINPACK';

/** Options of {@link placeMany}. */
export interface PlaceOptions {
  /**
   * SPREAD: fewest tasks of the app on the agent, then most free resources (one agent lost
   * costs the fewest instances). BINPACK: least free resources first (keeps other agents whole
   * for large tasks). Marathon itself takes offers in arrival order; a round of several offers
   * needs a ranking, and these are Nomad's two.
   * @default 'SPREAD'
   */
  strategy?: Strategy;
  /**
   * Check every offer for every demand instead of following only the offers a placement
   * affects. Same result, O(offers × demands): the reference the indexed path is tested against.
   */
  exhaustive?: boolean;
  /**
   * Where dynamic host ports are drawn from (uniform numbers in [0, 1)): each launch's dynamic
   * ports are a random choice among the chosen offer's free ones, not the lowest. Pass a
   * {@link seededRandom} to replay a round exactly.
   * @default a generator seeded once per process, shared by every round
   */
  random?: Random;
}

/** The default {@link PlaceOptions.random}: one sequence across rounds, so a retried launch draws anew. */
const defaultRandom: Random = seededRandom(Date.now());

/** One task to launch: which demand, from which offer, with which host ports. */
export interface Launch {
  demandIndex: number;
  offerId: string;
  agent: string;
  ports: number[];
  /** How many of the offers could run the demand when it was placed ("why placed"). */
  feasible: number;
  /** The chosen offer's ranking keys (see {@link Strategy}). */
  rank: { groupLoad: number; appTasks: number; free: number };
}

/** A demand no offer could run, with how many offers rejected it for each reason. */
export interface Unplaced {
  demandIndex: number;
  reasons: Partial<Record<Reason, number>>;
  /** Each offer's rejection, for a per-agent "why pending" (see `PendingSummary.record`). */
  rejections: Array<{ offerId: string; agent: string; rejection: Rejection }>;
}

/** The outcome of {@link placeMany}. */
export interface Placement {
  launches: Launch[];
  unplaced: Unplaced[];
}

/** Fills the defaults of {@link PlaceOptions}; throws a `TypeError` naming a bad field. */
export function compilePlaceOptions(options: PlaceOptions = {}): Required<PlaceOptions> {
  const strategy = options.strategy ?? 'SPREAD';
  if (strategy !== 'SPREAD' && strategy !== 'BINPACK') throw new TypeError(`PlaceOptions.strategy must be SPREAD or BINPACK, got ${String(strategy)}`);
  const random = options.random ?? defaultRandom;
  if (typeof random !== 'function') throw new TypeError(`PlaceOptions.random must be a function, got ${typeof random}`);
  return { strategy, exhaustive: options.exhaustive ?? false, random };
}

/** An offer as the round has left it. */
interface Slot {
  offer: Offer;
  view: OfferView;
}

/** A slot that can run the current demand, with its ranking keys. */
interface Candidate {
  slot: Slot;
  ports: number[];
  groupLoad: number;
  appTasks: number;
  free: number;
}

/**
 * Places `demands` (of one app, in order) on `offers`, greedily and deterministically (but for
 * the dynamic host ports, drawn from {@link PlaceOptions.random}): each demand goes to the best
 * offer that can run it, and what it takes (scalars, ports) is gone for the next; constraints
 * count the app's `placed` tasks plus this round's launches.
 */
export function placeMany(demands: readonly Demand[], offers: readonly Offer[], placed: readonly Placed[], options?: PlaceOptions): Placement {
  const { strategy, exhaustive, random } = compilePlaceOptions(options);
  const rank = strategy === 'SPREAD' ? bySpread : byBinpack;
  const slots: Slot[] = offers.map((offer) => ({ offer, view: { ...offer, resources: { ...offer.resources } } }));
  const scale = freeScale(offers);
  const tally = newTally(new Set(demands.flatMap((d) => d.constraints.map((c) => c[0]))));
  for (const p of placed) addToTally(tally, p);
  const out: Placement = { launches: [], unplaced: [] };
  let run: IndexedRun | undefined;
  demands.forEach((demand, demandIndex) => {
    // Nothing changed since the same demand failed just before: the answer is the same, and
    // skipping the re-check keeps a large pending queue on a full cluster linear.
    const last = out.unplaced[out.unplaced.length - 1];
    if (demandIndex > 0 && demands[demandIndex - 1] === demand && last?.demandIndex === demandIndex - 1) {
      out.unplaced.push({ demandIndex, reasons: { ...last.reasons }, rejections: [...last.rejections] });
      return;
    }
    let best: Candidate | undefined;
    let feasible = 0;
    let tried: Array<{ slot: Slot; result: Fit | Rejection }> | undefined;
    if (!exhaustive && isLocal(demand)) {
      if (run?.demand !== demand) run = new IndexedRun(demand, slots, tally, scale, rank);
      best = run.best();
      feasible = run.feasible();
    } else {
      run = undefined; // this demand changes the tally in ways an indexed run does not follow
      tried = slots.map((slot) => ({ slot, result: runStages(demand, slot.view, tally) }));
      const fits = tried.flatMap(({ slot, result }) => (result.ok ? [candidate(slot, result.ports, demand, tally, scale)] : []));
      feasible = fits.length;
      best = fits.sort(rank)[0];
    }
    if (!best) {
      // The indexed run keeps no rejections: the reasons are collected once, when nothing fits.
      tried ??= slots.map((slot) => ({ slot, result: runStages(demand, slot.view, tally) }));
      out.unplaced.push(unplacedOf(demandIndex, tried));
      return;
    }
    const { offer } = best.slot;
    // The checks took the lowest free ports (only whether they fit decides); the launch draws
    // its dynamic ones at random among the same free ports, once per launch on either path.
    const ports = demand.ports.some((p) => p.hostPort === 0) ? (assignPorts(demand.ports, best.slot.view.resources.ports, random) as number[]) : best.ports;
    consume(best.slot, demand.resources, ports);
    const where = { agent: offer.agent, hostname: offer.hostname, attributes: offer.attributes };
    addToTally(tally, where);
    run?.placed(best.slot, where);
    out.launches.push({ demandIndex, offerId: offer.id, agent: offer.agent, ports, feasible, rank: { groupLoad: best.groupLoad, appTasks: best.appTasks, free: Math.round(best.free * 1000) / 1000 } });
  });
  return out;
}

/**
 * Whether a placement of `demand` changes only the checks and ranks of offers that share its
 * agent or the value of one of its UNIQUE/MAX_PER fields. GROUP_BY ranks every offer by the
 * load of its value, and CLUSTER without a value is decided by the first placement: both can
 * change every offer, so those demands take the exhaustive path.
 */
function isLocal(demand: Demand): boolean {
  return demand.constraints.every(([, op, value]) => op !== 'GROUP_BY' && !(op === 'CLUSTER' && value === undefined));
}

/**
 * One demand placed repeatedly (an App's instances): every offer is checked once, the ones
 * that fit wait in a heap by rank, and a placement re-checks only the offers it can affect
 * (same slot, same agent, same UNIQUE/MAX_PER value). It picks exactly what the exhaustive
 * path picks, in O(offers + placements × log offers) instead of O(offers × placements).
 */
class IndexedRun {
  private readonly heap: Heap<Candidate & { version: number }>;
  private readonly version = new Map<Slot, number>();
  private readonly byAgent = new Map<string, Slot[]>();
  /** Per UNIQUE/MAX_PER field: the slots with each value. */
  private readonly byValue = new Map<string, Map<string, Slot[]>>();
  /** Slots whose last check passed. */
  private readonly fitting = new Set<Slot>();

  constructor(
    readonly demand: Demand,
    slots: readonly Slot[],
    private readonly tally: Tally,
    private readonly scale: Scalars,
    rank: (a: Candidate, b: Candidate) => number,
  ) {
    this.heap = new Heap<Candidate & { version: number }>(rank);
    const fields = new Set(demand.constraints.filter(([, op]) => op === 'UNIQUE' || op === 'MAX_PER').map(([f]) => f));
    for (const f of fields) this.byValue.set(f, new Map());
    for (const slot of slots) {
      push(this.byAgent, slot.offer.agent, slot);
      for (const [f, m] of this.byValue) {
        const v = fieldValue(f, slot.offer);
        if (v !== undefined) push(m, v, slot);
      }
      this.check(slot);
    }
  }

  /** The best slot for the demand now, left in the heap (a placement re-checks it). */
  best(): Candidate | undefined {
    for (;;) {
      const top = this.heap.pop();
      if (!top || top.version === this.version.get(top.slot)) {
        if (top) this.heap.push(top);
        return top;
      }
    }
  }

  /** How many slots can run the demand now. */
  feasible(): number {
    return this.fitting.size;
  }

  /** The demand was placed on `slot`: re-check every slot whose answer or rank may have changed. */
  placed(slot: Slot, where: Placed): void {
    const affected = new Set<Slot>([slot, ...(this.byAgent.get(where.agent) ?? [])]);
    for (const [f, m] of this.byValue) {
      const v = fieldValue(f, where);
      for (const s of (v === undefined ? undefined : m.get(v)) ?? []) affected.add(s);
    }
    for (const s of affected) this.check(s);
  }

  private check(slot: Slot): void {
    const version = (this.version.get(slot) ?? 0) + 1;
    this.version.set(slot, version);
    const result = runStages(this.demand, slot.view, this.tally);
    if (result.ok) {
      this.fitting.add(slot);
      this.heap.push({ ...candidate(slot, result.ports, this.demand, this.tally, this.scale), version });
    } else this.fitting.delete(slot);
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

function candidate(slot: Slot, ports: number[], demand: Demand, tally: Tally, scale: Scalars): Candidate {
  const appTasks = tally.perAgent.get(slot.offer.agent) ?? 0;
  return { slot, ports, groupLoad: groupLoad(demand, slot.view, tally), appTasks, free: freeScore(slot.view.resources, scale) };
}

/** Tasks already on the offer's value of each GROUP_BY field, summed. */
function groupLoad(demand: Demand, view: OfferView, tally: Tally): number {
  let load = 0;
  for (const [field, op] of demand.constraints) {
    const v = op === 'GROUP_BY' ? fieldValue(field, view) : undefined;
    if (v !== undefined) load += countsOf(tally, field).get(v) ?? 0;
  }
  return load;
}

/**
 * Least loaded GROUP_BY value first under either strategy: Marathon's per-offer check accepts
 * any value tied for fewest, so a round that sees several values must pick the emptiest itself
 * or it would fill one rack before the next.
 */
function byGroupLoad(a: Candidate, b: Candidate): number {
  return a.groupLoad - b.groupLoad;
}

function bySpread(a: Candidate, b: Candidate): number {
  return byGroupLoad(a, b) || a.appTasks - b.appTasks || b.free - a.free || byIdentity(a, b);
}

function byBinpack(a: Candidate, b: Candidate): number {
  return byGroupLoad(a, b) || a.free - b.free || byIdentity(a, b);
}

/** Ties break on agent then offer id, so the input order of offers never changes the result. */
function byIdentity(a: Candidate, b: Candidate): number {
  return compare(a.slot.offer.agent, b.slot.offer.agent) || compare(a.slot.offer.id, b.slot.offer.id);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The largest free amount of each scalar among the offers: free resources are scored relative to it. */
function freeScale(offers: readonly Offer[]): Scalars {
  const max = (k: keyof Scalars) => Math.max(0, ...offers.map((o) => o.resources[k]));
  return { cpus: max('cpus'), mem: max('mem'), disk: max('disk') };
}

/** Mean share of the round's largest free amount, over the scalars any offer has: 1 is the roomiest. */
function freeScore(free: Scalars, scale: Scalars): number {
  const keys = (['cpus', 'mem', 'disk'] as const).filter((k) => scale[k] > 0);
  return keys.length === 0 ? 0 : keys.reduce((sum, k) => sum + free[k] / scale[k], 0) / keys.length;
}

function consume(slot: Slot, need: Scalars, ports: number[]): void {
  const left = subtract(slot.view.resources, need);
  slot.view = { ...slot.view, resources: { ...left, ports: removePorts(slot.view.resources.ports, ports) } };
}

function unplacedOf(demandIndex: number, tried: Array<{ slot: Slot; result: Fit | Rejection }>): Unplaced {
  const unplaced: Unplaced = { demandIndex, reasons: {}, rejections: [] };
  for (const { slot, result } of tried) {
    if (result.ok) continue;
    unplaced.reasons[result.reason] = (unplaced.reasons[result.reason] ?? 0) + 1;
    unplaced.rejections.push({ offerId: slot.offer.id, agent: slot.offer.agent, rejection: result });
  }
  return unplaced;
}
