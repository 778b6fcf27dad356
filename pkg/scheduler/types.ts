/**
 * The vocabulary of two-level scheduling, shared by the allocator (first level, the Mesos
 * master's side), the frameworks (second level) and the binder. Plain data only, so the
 * framework side could be served over HTTP (as Mesos' scheduler API is) without change.
 */

import type { Resources, Scalars } from '../api/resources';

export type { PortRange, Resources, Scalars } from '../api/resources';

/** What the allocator knows of one agent (fed from Node objects and the agent's lease key). */
export interface AgentInfo {
  /** Node name. */
  name: string;
  hostname: string;
  capacity: Resources;
  attributes: Record<string, string>;
  /** Runtimes the agent has: docker, process, hollow. */
  runtimes: string[];
  /** false when cordoned (spec.unschedulable). */
  schedulable: boolean;
  /**
   * Mod revision of the agent's lease key `/shoal/leases/nodes/<name>`; 0 when the lease is
   * gone (agent lost). The binder guards every launch on this exact revision.
   */
  leaseRevision: number;
}

/** Resources held by one non-terminal task. Tracked once, untracked once. */
export interface Allocation {
  /** `<namespace>/<task name>` */
  taskKey: string;
  agent: string;
  role: string;
  frameworkId: string;
  resources: Scalars;
  /** Host ports the task holds. */
  ports: number[];
}

/** An offer of one agent's free resources to one framework. */
export interface Offer {
  id: string;
  frameworkId: string;
  agent: string;
  hostname: string;
  attributes: Record<string, string>;
  runtimes: string[];
  /** Free resources on the agent at offer time, ports included. */
  resources: Resources;
  /** Epoch ms after which the offer is rescinded if unanswered. */
  expiresAt: number;
}

/** One task a framework wants launched from an offer. */
export interface LaunchRequest {
  offerId: string;
  namespace: string;
  /** The new Task's name (unique; a replacement gets a new name). */
  taskName: string;
  resources: Scalars;
  /** Exact host ports taken from the offer's ranges. */
  ports: number[];
  /** Everything the binder needs to write the Task (spec without nodeName, owner, labels). */
  task: unknown;
  /** Epoch ms when the framework queued this work: queued→bound latency is measured from it. */
  queuedAt?: number;
}

/** Why a launch did not happen. */
export type LaunchFailureReason =
  | 'OfferUnknown' // expired, rescinded or already used
  | 'InsufficientResources' // more than the offer holds, or ports outside it
  | 'FairShare' // the role is above its DRF share while others wait; retry on a later offer
  | 'AgentLost' // lease guard failed at bind time
  | 'NotLeader' // leader guard failed at bind time
  | 'BindFailed'; // any other write failure

export interface LaunchResult {
  request: LaunchRequest;
  ok: boolean;
  reason?: LaunchFailureReason;
}

/** What the master offers a framework to act on its offers (Mesos' scheduler calls). */
export interface SchedulerDriver {
  /** Launches tasks from offers; what is left of each offer returns to the pool. */
  accept(offerIds: string[], launches: LaunchRequest[]): Promise<LaunchResult[]>;
  /** Declines offers; the agent is not offered to this framework again for refuseSeconds (default 5). */
  decline(offerIds: string[], refuseSeconds?: number): void;
  /** Stop sending offers until revive(). */
  suppress(): void;
  /** Resume offers and clear this framework's decline filters. */
  revive(): void;
}

/** A framework's scheduler: the second level. Events in, calls out through the driver. */
export interface Framework {
  readonly id: string;
  readonly role: string;
  /**
   * New offers. Calls to one framework never overlap (as Mesos' scheduler driver serialises its
   * callbacks): offers made meanwhile wait until the returned promise settles, so a framework
   * that awaits its accepts gets no offers until its binds are written. One that records what
   * it launched when it calls accept (as AppFramework does) should return at once instead.
   */
  resourceOffers(driver: SchedulerDriver, offers: Offer[]): void | Promise<void>;
  offerRescinded(driver: SchedulerDriver, offerId: string): void;
  /** A task of this framework changed state (from the agent's status report or node lifecycle). */
  statusUpdate(driver: SchedulerDriver, update: { namespace: string; taskName: string; state: string; reason?: string; message?: string }): void;
}
