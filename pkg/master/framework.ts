/**
 * The framework contract: what a framework scheduler (the second level of two-level scheduling)
 * implements, and the driver through which it talks to the master. Built-in frameworks (Apps,
 * Jobs) and external ones (the Mesos v1 scheduler API) implement the same contract; see
 * docs/frameworks.md for what an implementer must do.
 *
 * A framework owns its state. It learns about resources only from offers and about its tasks
 * only from status updates (and from `reconcile`), and it acts only through its driver: accept,
 * decline, suppress, revive, kill, reconcile, teardown. Everything here is plain data, so the
 * same contract can be served over HTTP.
 */
import type { Resources } from '../api/resources';
import type { AgentInfo, LaunchRequest, LaunchResult, Offer } from '../scheduler/types';

export type { LaunchRequest, LaunchResult, Offer } from '../scheduler/types';

/** A task of a framework, as the registry names it. */
export interface TaskRef {
  namespace: string;
  taskName: string;
}

/** A task's state as the master knows it (Mesos' TaskStatus). */
export interface TaskStatusUpdate extends TaskRef {
  /** STAGING, STARTING, RUNNING, KILLING, FINISHED, FAILED, KILLED, ERROR, LOST, UNREACHABLE. */
  state: string;
  /** The agent the task is bound to, when known. */
  agent?: string;
  reason?: string;
  message?: string;
  /** Health checks: true/false, absent without checks. */
  healthy?: boolean;
  /** Why the master sends it: the task changed (`agent`, also for node lifecycle), or it answers `reconcile`. */
  source: 'agent' | 'master' | 'reconcile';
}

/**
 * An agent as the master sees it at this moment, offered to this framework or not: what
 * "why pending" is computed over (a framework with no offers still learns why).
 */
export interface AgentView {
  info: AgentInfo;
  /** What is unallocated on it now: capacity minus non-terminal tasks (an outstanding offer does not lower it; see `status`). */
  free: Resources;
  /**
   * Why this framework holds no offer of it, if it holds none: `lost` (lease gone), `cordoned`,
   * `filtered` (this framework declined it recently), `offered` (an outstanding offer to another
   * framework holds its resources), `suppressed` (this framework is suppressed), `none` (it
   * will be offered in a coming round).
   */
  status: 'held' | 'lost' | 'cordoned' | 'filtered' | 'offered' | 'suppressed' | 'none';
}

/** What the master gives a framework to act with (Mesos' scheduler calls). */
export interface SchedulerDriver {
  /** Launches tasks from offers; what is left of each offer returns to the pool. */
  accept(offerIds: string[], launches: LaunchRequest[]): Promise<LaunchResult[]>;
  /** Declines offers; the agent is not offered to this framework again for refuseSeconds (default 5). */
  decline(offerIds: string[], refuseSeconds?: number): void;
  /** Stop sending offers until revive(). */
  suppress(): void;
  /** Resume offers and clear this framework's decline filters. */
  revive(): void;
  /**
   * Kills tasks of this framework: their agents stop them (SIGTERM, then SIGKILL after the
   * task's grace period) and report KILLING, then KILLED. Resolves once the kill is recorded in
   * etcd; tasks that are unknown, already terminal or another framework's are skipped (and named
   * in the result).
   */
  kill(tasks: TaskRef[]): Promise<{ killed: TaskRef[]; skipped: TaskRef[] }>;
  /**
   * Asks for the current state of tasks: the master answers with one status update per task
   * (source `reconcile`), after this call returns. Explicit (a list): a task the master does
   * not know is answered `LOST` with reason `ReconciliationUnknownTask`, as Mesos does.
   * Implicit (no list): every non-terminal task of this framework.
   */
  reconcile(tasks?: TaskRef[]): void;
  /** Kills every task of this framework and unregisters it. */
  teardown(): Promise<void>;
  /** Every agent of the cluster and whether this framework could be offered it now. */
  agents(): AgentView[];
  /** The master's clock (epoch ms), for queue times and refusal stamps. */
  now(): number;
}

/** A framework's scheduler: the second level. Events in, calls out through the driver. */
export interface Framework {
  /** Unique among registered frameworks; tasks carry it in the `shoal.dev/framework` label. */
  readonly id: string;
  /** The DRF role its tasks are accounted to. */
  readonly role: string;
  /**
   * New offers. Calls to one framework never overlap (as Mesos' scheduler driver serialises its
   * callbacks): offers made meanwhile wait until the returned promise settles, so a framework
   * that awaits its accepts gets no offers until its binds are written. One that records what
   * it launched when it calls accept should return at once instead.
   */
  resourceOffers(driver: SchedulerDriver, offers: Offer[]): void | Promise<void>;
  /** An outstanding offer was withdrawn (expired, its agent lost or cordoned). */
  offerRescinded(driver: SchedulerDriver, offerId: string): void;
  /** A task of this framework changed state, or the answer to `reconcile`. */
  statusUpdate(driver: SchedulerDriver, update: TaskStatusUpdate): void;
  /** Called once the master has registered the framework (before any offer). */
  registered?(driver: SchedulerDriver): void;
  /** Called when the framework is unregistered (teardown, or the master's term ended). */
  unregistered?(): void;
}

/** Registering and unregistering frameworks: one way for built-in and external ones alike. */
export interface FrameworkRegistry {
  /** Registers a framework (its id must be new); returns its driver. */
  register(fw: Framework): SchedulerDriver;
  /** Unregisters a framework: its outstanding offers are rescinded, it gets no further calls. Its tasks keep running. */
  unregister(id: string): void;
  /** The registered framework with this id. */
  get(id: string): Framework | undefined;
  /** Registered frameworks, by id. */
  list(): Framework[];
}
