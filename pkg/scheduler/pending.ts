/**
 * "Why is this not running?": the outcome of each agent for a framework's pending work (the
 * checks of an offer, or why the agent was not offered), summed up the way Kubernetes' scheduler does
 * (`0/5 agents available: 3 insufficient cpus, 2 constraint UNIQUE hostname.`), for an App's
 * status condition message and `shoal describe`. Pure bookkeeping: no time, no I/O.
 */
import { REASON_ORDER, REASONS, type Reason, type Rejection } from './feasibility';

/**
 * What one agent's last offer did: could run the work (`ok`), or was rejected — a bare reason
 * (counted under its default sentence) or a {@link Rejection} (counted under its own sentence).
 */
export type Outcome = 'ok' | Reason | (Pick<Rejection, 'reason'> & Partial<Pick<Rejection, 'sentence' | 'detail'>>);

/** One line of a summary: how many agents were rejected with the same sentence. */
export interface ReasonCount {
  reason: Reason;
  count: number;
  sentence: string;
  /** The first few agents (by name) rejected this way, each with its own details. */
  agents: Array<{ name: string; detail: string }>;
}

/** Example agents kept per reason. */
export const EXAMPLES_PER_REASON = 3;

/** What {@link PendingSummary.summary} returns. */
export interface PendingReport {
  /** Distinct agents with a recorded outcome. */
  agentsSeen: number;
  /** Agents whose last offer could run the work. */
  available: number;
  /** Most frequent first; ties in stage order, then by sentence. */
  reasons: ReasonCount[];
}

interface Recorded {
  reason: Reason;
  sentence: string;
  detail: string;
}

/**
 * The last outcome per agent for one framework's (or one app's) pending work. Recording an agent
 * again replaces its outcome: only the latest offer says what the agent can do now.
 */
export class PendingSummary {
  private readonly outcomes = new Map<string, Recorded | 'ok'>();

  /** Records what the last offer from `agent` did. */
  record(agent: string, outcome: Outcome): void {
    this.outcomes.set(agent, normalize(outcome));
  }

  /** Counts per sentence, most frequent first. */
  summary(): PendingReport {
    const bySentence = new Map<string, ReasonCount>();
    let available = 0;
    for (const [agent, o] of this.outcomes) {
      if (o === 'ok') {
        available++;
        continue;
      }
      let r = bySentence.get(o.sentence);
      if (!r) bySentence.set(o.sentence, (r = { reason: o.reason, sentence: o.sentence, count: 0, agents: [] }));
      r.count++;
      r.agents.push({ name: agent, detail: o.detail });
    }
    for (const r of bySentence.values()) r.agents = r.agents.sort((a, b) => compare(a.name, b.name)).slice(0, EXAMPLES_PER_REASON);
    const reasons = [...bySentence.values()].sort(
      (a, b) => b.count - a.count || REASON_ORDER.indexOf(a.reason) - REASON_ORDER.indexOf(b.reason) || compare(a.sentence, b.sentence),
    );
    return { agentsSeen: this.outcomes.size, available, reasons };
  }

  /** `0/5 agents available: 3 insufficient cpus, 2 constraint UNIQUE hostname.` */
  message(): string {
    const { agentsSeen, available, reasons } = this.summary();
    const head = `${available}/${agentsSeen} agents available`;
    if (agentsSeen === 0) return `${head}: no agents registered.`;
    if (reasons.length === 0) return `${head}.`;
    return `${head}: ${reasons.map((r) => `${r.count} ${r.sentence}`).join(', ')}.`;
  }
}

function normalize(outcome: Outcome): Recorded | 'ok' {
  if (outcome === 'ok') return 'ok';
  const given = typeof outcome === 'string' ? { reason: outcome } : outcome;
  const sentence: string = given.sentence ?? REASONS[given.reason];
  return { reason: given.reason, sentence, detail: given.detail ?? sentence };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
