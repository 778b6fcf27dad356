/**
 * The vocabulary of two-level scheduling, shared by the allocator (first level, the Mesos
 * master's side), the frameworks (second level) and the binder. Plain data only, so the
 * framework side could be served over HTTP (as Mesos' scheduler API is) without change. The
 * framework contract itself is pkg/master/framework.ts.
 */

import type { Resources, Scalars } from '../api/resources';
import type { TaskPlacement, TaskSpec, TaskTemplate } from '../api/types.generated';

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
  /** Everything the binder needs to write the Task besides the above (schemas/task.json TaskTemplate). */
  task: LaunchTemplate;
  /** Why the task goes to this offer's agent: written into the Task's spec.placement. */
  placement?: TaskPlacement;
  /** Epoch ms when the framework queued this work: queued→bound latency is measured from it. */
  queuedAt?: number;
}

/**
 * A TaskTemplate (schemas/task.json) as a framework writes it: fields left out get the schema's
 * defaults when the binder admits the Task, as for any object a client sends.
 */
export type LaunchTemplate = Omit<TaskTemplate, 'spec'> & { spec: Partial<TaskSpec> };

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
