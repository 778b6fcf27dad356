/**
 * The Shoal agent (Mesos agent / kubelet): registers its Node, keeps a lease alive (that IS the
 * heartbeat: the Node is not rewritten per beat), runs what `<prefix>/assignments/<node>/`
 * assigns, and reports each task's status under its own key range, relayed into the Task by
 * the controller-manager (see ./status.ts). Every background loop catches, logs and retries;
 * nothing here may crash the process hosting it (one process can host thousands of hollow
 * agents, see ./host.ts).
 */
import { randomUUID } from 'node:crypto';
import * as os from 'node:os';
import type { Logger } from 'pino';
import { lookupKind } from '../api/kinds';
import type { Condition, Node, NodeStatus, TaskStatus } from '../api/types.generated';
import { admit, compileValidators, formatCauses } from '../api/validation';
import { createRuntime, UNKNOWN_EXIT_CODE } from '../runtime';
import type { ExitDetail, Runtime, RuntimeTaskRef, StartedTask } from '../runtime/types';
import type { Resources } from '../api/resources';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../store/errors';
import { DEFAULT_PREFIX, agentLeaseKey, assignmentPrefix, encodeObject, objectKey } from '../store/objects';
import type { Store } from '../store/types';
import { settlesWithin } from '../util/async';
import { backoffDelay, errorMessage, sleepUnlessAborted } from '../util/backoff';
import { realClock, type Clock } from '../util/clock';
import { EventRecorder } from '../client/events';
import { AssignmentWatch, type Assignment } from './assignments';
import { HealthMonitor, defaultProber } from './health';
import { NodeHeartbeat, perAgentLeases, type AgentLease, type LeaseProvider } from './leases';
import { bindProbe, isPortInUseError, PortWatch, type PortProbe, type PortProtocol } from './ports';
import { StatusReporter, taskRefKey, type TaskRef } from './status';
import { AGENT_VERSION } from './version';

const NODES = lookupKind('node')!;
const DEFAULT_LEASE_TTL_SECONDS = 10;
/** Kill grace for tasks adopted after a restart (their spec is not at hand): TaskSpec's default. */
const DEFAULT_GRACE_SECONDS = 3;
/** Node read-modify-write rounds lost to concurrent writers before backing off. */
const MAX_NODE_CONFLICTS = 10;
const WATCH_CANCEL_TIMEOUT_MS = 2000;

export interface AgentOptions {
  store: Store;
  /** etcd key prefix of the cluster. @default '/shoal' */
  prefix?: string;
  /** The Node's name (a DNS-1123 label). */
  nodeName: string;
  /** What the agent offers: cpus, mem and disk (MiB), host port ranges. */
  capacity: Resources;
  attributes?: Record<string, string>;
  /** The runtime that runs tasks, or its name (`hollow`; docker and process need a RuntimeContext: pass the instance). */
  runtime: string | Runtime;
  /** Runtimes advertised in Node.status.runtimes. @default [runtime.name] */
  runtimes?: string[];
  /** host:port of the agent's HTTP endpoint (logs), advertised in Node.status.address. */
  address?: string;
  /** Node.status.hostname (what `hostname` constraints match). @default os.hostname() */
  hostname?: string;
  /** Lease TTL: how long after the agent dies its node is seen lost. @default 10 */
  leaseTtlSeconds?: number;
  logger: Logger;
  /** Time of timestamps written, retries and timeouts. @default realClock */
  clock?: Clock;
  /** Where leases come from. @default one lease per agent (Store.lease) */
  leases?: LeaseProvider;
  /**
   * How often Node.status.lastHeartbeatTime is refreshed while the lease lives (./leases.ts
   * NodeHeartbeat); 0: never (only at registration). @default 0; startAgent (shoal-agent, shoal
   * dev) sets DEFAULT_HEARTBEAT_INTERVAL_SECONDS (30); hosts of hollow agents leave it off
   */
  heartbeatIntervalSeconds?: number;
  /**
   * How host ports are probed before a task starts on them and while none of the agent's tasks
   * hold them (see ./ports.ts); ports held by another process are not advertised. `false`: no
   * probing. @default a bind test on all interfaces for the process and docker runtimes, none
   * for others (hollow tasks bind nothing)
   */
  portProbe?: PortProbe | false;
  /** Period of the re-probe of held ports and of the range sweep. @default 5000 */
  portProbeIntervalMs?: number;
  /** Ports of the range the sweep probes per period. @default 32 */
  portSweepBatch?: number;
}

/** A task as this agent knows it. `done`: ended here (or not started: it had ended before); never (re)started while assigned. */
interface LocalTask {
  uid: string;
  phase: 'running' | 'done';
  graceSeconds: number;
  /** Found running at start (adopted after an agent restart); not reported since. */
  adopted?: boolean;
  /** When the runtime was asked to start it: its startedAt if it exits before the start returns. */
  startingAt?: string;
}

/** One agent. start() once; stop() or crash() once. */
export class Agent {
  readonly nodeName: string;
  readonly prefix: string;
  private readonly o: AgentOptions;
  private readonly log: Logger;
  /** The runtime tasks run in (the HTTP server reads logs through it). */
  readonly runtime: Runtime;
  private readonly leases: LeaseProvider;
  private readonly clock: Clock;
  private readonly abort = new AbortController();
  private readonly reporter: StatusReporter;
  private readonly assignments: AssignmentWatch;
  /** Health checks of running tasks (./health.ts); changes become status and events. */
  private readonly health: HealthMonitor;
  private readonly startedAt: string;
  /** What the assignments say should run, by `namespace/name`. */
  private readonly desired = new Map<string, Assignment>();
  /** What runs here (or ran and must not run again while assigned). */
  private readonly tasks = new Map<string, LocalTask>();
  /** Host ports held by other processes; undefined when ports are not probed. */
  private readonly ports?: PortWatch;
  /** The port ranges last written in the Node's capacity (JSON). */
  private advertisedPorts?: string;
  private writingNode = false;
  /** Per-task serialisation: a sync in flight, and whether another was asked for meanwhile. */
  private readonly syncing = new Set<string>();
  /** Whether the tasks that ended while no agent ran were looked for (once, after the first assignment list). */
  private endedChecked = false;
  private readonly dirty = new Set<string>();
  /** The lease being registered or registered with; cleared when lost. */
  private lease?: AgentLease;
  /** Mod revision of the lease key written with `lease`. */
  private leaseRevision = 0;
  /** Set once a registration completed (lease key and Node written), until its lease is lost. */
  private registeredLease?: AgentLease;
  private registering?: Promise<void>;
  private registrations = 0;
  private started = false;
  /** How stop()/crash() let go of the lease; a lease granted after that goes the same way. */
  private exit: 'revoke' | 'release' = 'revoke';

  constructor(options: AgentOptions) {
    this.o = options;
    this.nodeName = options.nodeName;
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.log = options.logger.child({ node: options.nodeName });
    this.runtime = typeof options.runtime === 'string' ? createRuntime(options.runtime) : options.runtime;
    this.leases = options.leases ?? perAgentLeases(options.store);
    this.clock = options.clock ?? realClock;
    this.startedAt = this.clock.date().toISOString();
    const signal = this.abort.signal;
    this.reporter = new StatusReporter({ store: options.store, prefix: this.prefix, node: options.nodeName, logger: this.log, signal, clock: this.clock });
    const handler = { reset: (all: Map<string, Assignment>) => this.resetAssignments(all), put: (k: string, a: Assignment) => this.putAssignment(k, a), delete: (k: string) => this.deleteAssignment(k) };
    this.assignments = new AssignmentWatch({ store: options.store, prefix: assignmentPrefix(this.prefix, this.nodeName), handler, logger: this.log, signal });
    const events = new EventRecorder(options.store, this.prefix, `agent/${options.nodeName}`, this.log, this.clock);
    this.health = new HealthMonitor({ prober: defaultProber(this.runtime, undefined, this.clock), clock: this.clock, logger: this.log, onChange: (ref, healthy, message) => {
      this.log.info({ task: taskRefKey(ref), uid: ref.uid, healthy, message }, healthy ? 'task healthy' : 'task unhealthy');
      this.reporter.report(ref, { healthy, healthMessage: message });
      void events.record({ kind: 'Task', ...ref }, healthy ? 'Normal' : 'Warning', healthy ? 'Healthy' : 'Unhealthy', message);
    }, onReadiness: (ref, ready, results) => {
      // Never `ready: false`: an adopted task that was ready stays so while its checks run again.
      if (ready) this.log.info({ task: taskRefKey(ref), uid: ref.uid }, 'task ready');
      this.reporter.report(ref, ready ? { ready: true, readinessCheckResults: results } : { readinessCheckResults: results });
    } });
    const probe = options.portProbe ?? (['process', 'docker'].includes(this.runtime.name) ? bindProbe() : false);
    if (probe && options.capacity.ports.length > 0) {
      this.ports = new PortWatch({
        ranges: options.capacity.ports, probe, clock: this.clock, logger: this.log, own: () => this.ownPorts(), onTick: () => this.advertisePorts(),
        intervalMs: options.portProbeIntervalMs, sweepBatch: options.portSweepBatch,
      });
    }
    this.validNode(this.newNode()); // a bad name or capacity fails here, not in a retry loop
  }

  /** Host ports not advertised because another process holds them, sorted. */
  portsInUse(): number[] {
    return this.ports?.heldPorts() ?? [];
  }

  /** Re-probes the held ports and sweeps the next batch of the range now (what the periodic probe does). */
  probePorts(): Promise<void> {
    return this.ports?.tick() ?? Promise.resolve();
  }

  /** Whether stop() or crash() was called. */
  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  /** Mod revision of the current registration's lease key (what the binder guards on); 0 while unregistered. */
  get registration(): number {
    return this.registeredLease && this.registeredLease === this.lease ? this.leaseRevision : 0;
  }

  /** The lease id of the current registration; undefined while unregistered. */
  get leaseId(): string | undefined {
    return this.registeredLease && this.registeredLease === this.lease ? this.lease.id : undefined;
  }

  /** Whether this agent knows the task: running here, or ended here while still assigned. */
  knowsTask(namespace: string, name: string): boolean {
    const key = taskRefKey({ namespace, name });
    return this.tasks.has(key) || this.desired.has(key);
  }

  /** Tasks running here now, as `namespace/name`, sorted. */
  runningTasks(): string[] {
    return [...this.tasks].filter(([, t]) => t.phase === 'running').map(([k]) => k).sort();
  }

  /**
   * Adopts what the runtime already runs, registers (retrying with backoff while etcd is
   * unreachable) and starts following assignments. Resolves once all that is done, or at stop.
   */
  async start(): Promise<void> {
    if (this.started) throw new Error(`agent ${this.nodeName} was already started`);
    this.started = true;
    compileValidators(); // not at the first assignment
    await this.adopt();
    await this.register();
    await this.assignments.start();
    this.startHeartbeat();
    if (!this.stopped) this.ports?.start();
  }

  /**
   * Stops the agent. `revoke: true` (clean shutdown) revokes the lease so the node is seen gone at
   * once; `revoke: false` only stops keep-alive, like a killed process: the lease key vanishes
   * when the TTL runs out. Tasks keep running either way (an agent restart adopts them).
   */
  async stop({ revoke = true }: { revoke?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.exit = revoke ? 'revoke' : 'release';
    this.abort.abort();
    this.health.stopAll();
    this.ports?.stop();
    this.runtime.close?.();
    const lease = this.lease;
    this.lease = undefined;
    if (lease && !revoke) lease.release();
    // Bounded: with etcd unreachable the cancel is never confirmed, and a SIGTERM must still end.
    await settlesWithin(this.assignments.stop(), WATCH_CANCEL_TIMEOUT_MS, this.clock);
    if (lease && revoke) await this.revoke(lease);
    this.log.info({ revoked: revoke }, 'agent stopped');
  }

  /** Simulates a killed agent: stops everything at once without revoking (stop({revoke: false}) without waiting). */
  crash(): void {
    if (this.stopped) return;
    this.exit = 'release';
    this.abort.abort();
    this.health.stopAll();
    this.ports?.stop();
    this.runtime.close?.();
    this.lease?.release();
    this.lease = undefined;
    void this.assignments.stop().catch(() => undefined);
    this.log.warn('agent crashed (simulated): lease released, not revoked');
  }

  /** Refreshes Node.status.lastHeartbeatTime every heartbeatIntervalSeconds while registered (see NodeHeartbeat). */
  private startHeartbeat(): void {
    const seconds = this.o.heartbeatIntervalSeconds ?? 0;
    if (seconds <= 0 || this.stopped) return;
    new NodeHeartbeat({
      store: this.o.store, nodeKey: objectKey(this.prefix, NODES, undefined, this.nodeName), leaseKey: agentLeaseKey(this.prefix, this.nodeName),
      leaseRevision: () => this.registration, intervalSeconds: seconds, clock: this.clock, signal: this.abort.signal, logger: this.log,
    }).start();
  }

  // ---- registration ----------------------------------------------------------------------

  /** Registers until it works or the agent stops; one registration loop at a time. */
  private register(): Promise<void> {
    this.registering ??= this.registerLoop().finally(() => (this.registering = undefined));
    return this.registering;
  }

  private async registerLoop(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.registerOnce();
        return;
      } catch (err) {
        if (this.stopped) return;
        this.log.warn({ err: errorMessage(err), attempt }, 'registration failed; retrying');
        await sleepUnlessAborted(backoffDelay(attempt), this.abort.signal, this.clock);
      }
    }
  }

  /**
   * Grants a lease, puts the lease key on it, then writes the Node. The lease key first: node
   * lifecycle marks a Node without a lease key NotReady, which would undo our Ready=True.
   */
  private async registerOnce(): Promise<void> {
    const lease: AgentLease = await this.leases(this.o.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS, (err) => this.onLeaseLost(lease, err));
    if (this.stopped) {
      // stop() or crash() came during the grant and could not see this lease: let go of it their way.
      if (this.exit === 'revoke') await this.revoke(lease);
      else lease.release();
      return;
    }
    this.lease = lease;
    try {
      const value = JSON.stringify({ node: this.nodeName, startedAt: this.startedAt });
      const key = agentLeaseKey(this.prefix, this.nodeName);
      const revision = await this.o.store.txn([], [{ op: 'put', key, value, leaseId: lease.id }]);
      this.leaseRevision = revision!; // a txn without compares always applies
      const action = await this.upsertNode();
      if (this.lease !== lease) throw new Error('lease lost during registration');
      this.registeredLease = lease;
      this.registrations++;
      const msg = this.registrations === 1 ? 'registered' : 're-registered';
      // Back after losing the lease (a partition, a slow etcd): node lifecycle may have marked our
      // tasks UNREACHABLE meanwhile. Those still running say so again (a new report: node
      // lifecycle marked the old one superseded); for LOST ones (expunged) the assignment is gone,
      // and the relay deletes it for any the registry ended otherwise, so they stop here.
      if (this.registrations > 1) {
        for (const [key, t] of this.tasks) {
          if (t.phase !== 'running' || t.adopted) continue;
          const [namespace, name] = splitKey(key);
          this.reporter.report({ namespace, name, uid: t.uid }, { state: 'RUNNING' }, {}, { force: true });
        }
      }
      this.log.info({ lease: lease.id, leaseRevision: revision, nodeObject: action, ttlSeconds: this.o.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS }, msg);
    } catch (err) {
      if (this.lease === lease) this.lease = undefined;
      // Best effort (it expires anyway); never for a stopped agent: a crash must not revoke.
      if (!this.stopped) await lease.revoke().catch(() => undefined);
      throw err;
    }
  }

  private onLeaseLost(lease: AgentLease, err: Error): void {
    if (this.lease !== lease || this.stopped) return; // an old lease, or we are leaving anyway
    this.lease = undefined;
    this.log.warn({ lease: lease.id, err: err.message }, 'lease lost; re-registering');
    void this.register();
  }

  private async revoke(lease: AgentLease): Promise<void> {
    try {
      await lease.revoke();
      // A shared lease lives on for the other agents: take our own key off it.
      if (lease.shared) await this.o.store.delete(agentLeaseKey(this.prefix, this.nodeName), this.leaseRevision);
    } catch (err) {
      if (!(err instanceof NotFoundError || err instanceof ConflictError)) this.log.warn({ err: errorMessage(err) }, 'revoking the lease failed; it will expire');
    }
  }

  /** Creates the Node, or CAS-updates its status (spec, e.g. a cordon, stays the operator's). */
  private async upsertNode(): Promise<'created' | 'updated'> {
    const key = objectKey(this.prefix, NODES, undefined, this.nodeName);
    for (let round = 0; round < MAX_NODE_CONFLICTS; round++) {
      const kv = await this.o.store.get(key);
      try {
        if (!kv) {
          await this.o.store.create(key, encodeObject(this.validNode(this.newNode())));
          return 'created';
        }
        const current = JSON.parse(kv.value) as Node;
        await this.o.store.update(key, encodeObject(this.validNode({ ...current, status: this.nodeStatus(current.status) })), kv.modRevision);
        return 'updated';
      } catch (err) {
        if (!(err instanceof AlreadyExistsError || err instanceof ConflictError || err instanceof NotFoundError)) throw err;
      }
    }
    throw new Error(`node ${this.nodeName} kept changing under ${MAX_NODE_CONFLICTS} registration writes`);
  }

  private newNode(): Node {
    const now = this.clock.date().toISOString();
    return {
      apiVersion: 'shoal/v1',
      kind: 'Node',
      metadata: { name: this.nodeName, uid: randomUUID(), generation: 1, creationTimestamp: now },
      spec: { unschedulable: false },
      status: this.nodeStatus(undefined),
    };
  }

  /** Status as this agent sees itself; other writers' conditions are kept, Ready=True keeps its transition time. */
  private nodeStatus(prev: NodeStatus | undefined): NodeStatus {
    const now = this.clock.date().toISOString();
    const prevReady = prev?.conditions?.find((c) => c.type === 'Ready');
    const ready: Condition =
      prevReady?.status === 'True'
        ? { ...prevReady, reason: 'AgentRegistered' }
        : { type: 'Ready', status: 'True', reason: 'AgentRegistered', message: 'the agent registered and keeps its lease alive', lastTransitionTime: now };
    const ports = this.ports?.advertised() ?? this.o.capacity.ports;
    this.advertisedPorts = JSON.stringify(ports);
    const status: NodeStatus = {
      // Ports another process holds are carved out, so the master offers none of them.
      capacity: { ...this.o.capacity, ports },
      attributes: this.o.attributes ?? {},
      hostname: this.o.hostname ?? os.hostname(),
      runtimes: this.o.runtimes ?? [this.runtime.name],
      agentVersion: AGENT_VERSION,
      conditions: [...(prev?.conditions ?? []).filter((c) => c.type !== 'Ready'), ready],
      // The time of registration, then refreshed every heartbeatIntervalSeconds while the lease
      // lives (NodeHeartbeat); liveness itself is the lease key, renewed without Node writes.
      lastHeartbeatTime: now,
    };
    if (this.o.address !== undefined) status.address = this.o.address;
    return status;
  }

  /**
   * Rewrites the Node when the ports to advertise changed since it was last written (held ports
   * found or freed); only while registered (a registration writes them anyway). A failed write
   * is tried again after the next probe.
   */
  private advertisePorts(): void {
    if (!this.ports || this.writingNode || this.stopped || this.registration === 0) return;
    if (JSON.stringify(this.ports.advertised()) === this.advertisedPorts) return;
    this.writingNode = true;
    this.upsertNode()
      .then(() => this.log.info({ ports: this.advertisedPorts, inUse: this.portsInUse() }, 'advertised host ports changed'))
      .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'writing advertised host ports failed; retrying after the next probe'))
      .finally(() => {
        this.writingNode = false;
        if (!this.stopped && JSON.stringify(this.ports?.advertised()) !== this.advertisedPorts) this.advertisePorts();
      });
  }

  /** Host ports of the tasks assigned here that run or are about to (not those that ended): the agent's own. */
  private ownPorts(): Set<number> {
    const out = new Set<number>();
    for (const [k, a] of this.desired) {
      if (this.tasks.get(k)?.phase === 'done') continue;
      for (const p of a.spec.ports ?? []) out.add(p.hostPort);
    }
    return out;
  }

  /**
   * Probes the task's host ports before it starts: the first one held, with who holds it (a
   * task of this agent, or another process: then it is no longer advertised); undefined when all are free.
   */
  private async heldPort(key: string, want: Assignment): Promise<{ port: number; by: string } | undefined> {
    if (!this.ports) return undefined;
    for (const p of want.spec.ports ?? []) {
      const protocols: PortProtocol[] = p.protocol === 'udp' ? ['tcp', 'udp'] : ['tcp'];
      const owner = [...this.desired].find(([k, a]) => k !== key && this.tasks.get(k)?.phase === 'running' && (a.spec.ports ?? []).some((q) => q.hostPort === p.hostPort));
      if (owner) {
        // Our own task: not carved out (it is freed when that task ends).
        if (!(await this.ports.probe(p.hostPort, protocols))) return { port: p.hostPort, by: `task ${owner[0]}` };
        continue;
      }
      if ((await this.ports.check(p.hostPort, protocols)).length > 0) {
        this.advertisePorts();
        return { port: p.hostPort, by: 'another process' };
      }
    }
    return undefined;
  }

  /** Marks the task's host ports another process holds after a runtime start failed binding one; the first, if any. */
  private async heldAfterBindFailure(key: string, want: Assignment): Promise<number | undefined> {
    const held = await this.heldPort(key, want).catch(() => undefined);
    return held?.port;
  }

  /** Admits a Node (defaults + schema); a failure is a configuration error. */
  private validNode(node: Node): Node {
    const admitted = admit(node);
    if (!admitted.ok) throw new Error(`invalid Node for agent ${this.nodeName}: ${formatCauses(admitted.causes)}`);
    return admitted.object as Node;
  }

  // ---- assignments and tasks -------------------------------------------------------------

  /** Takes over tasks the runtime already runs (started before this agent restarted). */
  private async adopt(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        for (const ref of await this.runtime.list()) {
          const key = taskRefKey(ref);
          this.tasks.set(key, { uid: ref.uid, phase: 'running', graceSeconds: DEFAULT_GRACE_SECONDS, adopted: true });
          await this.runtime.adopt?.(ref, (code, detail) => this.onExit(key, ref.uid, code, detail));
        }
        if (this.tasks.size > 0) this.log.info({ tasks: this.runningTasks() }, 'adopted running tasks');
        return;
      } catch (err) {
        this.log.warn({ err: errorMessage(err), attempt }, 'listing runtime tasks failed; retrying');
        await sleepUnlessAborted(backoffDelay(attempt), this.abort.signal, this.clock);
      }
    }
  }

  private resetAssignments(all: Map<string, Assignment>): void {
    const keys = new Set([...this.desired.keys(), ...all.keys(), ...this.tasks.keys()]);
    this.desired.clear();
    all.forEach((a, k) => this.desired.set(k, a));
    keys.forEach((k) => this.sync(k));
    if (!this.endedChecked) {
      this.endedChecked = true;
      void this.finishEndedUnassigned();
    }
  }

  /**
   * Tasks that ended while no agent ran here and are no longer assigned: the registry withdrew
   * them (a kill whose KILLED an earlier agent process did not live to write). Reports each
   * KILLED (the relay ignores it when the Task is gone or already terminal), then removes
   * what it left. Runs once, after the first full list of assignments.
   */
  private async finishEndedUnassigned(): Promise<void> {
    let ended: RuntimeTaskRef[];
    try {
      ended = (await this.runtime.listEnded?.()) ?? [];
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'listing ended runtime tasks failed');
      return;
    }
    for (const ref of ended) {
      const key = taskRefKey(ref);
      if (this.stopped || this.desired.has(key) || this.tasks.has(key)) continue;
      this.log.info({ task: key, uid: ref.uid }, 'task ended while the agent was down and is no longer assigned; reporting KILLED');
      this.reporter.report(ref, { state: 'KILLED', reason: 'TaskKilled', message: `ended while agent ${this.nodeName} was down; no longer assigned`, finishedAt: this.clock.date().toISOString() });
      await this.reporter.whenSettled(ref);
      if (this.desired.has(key) || this.tasks.has(key)) continue;
      await this.runtime.remove?.(ref.namespace, ref.name).catch((err: unknown) => this.log.warn({ task: key, err: errorMessage(err) }, 'task leftovers not removed'));
    }
  }

  private putAssignment(key: string, assignment: Assignment): void {
    this.desired.set(key, assignment);
    this.sync(key);
  }

  private deleteAssignment(key: string): void {
    this.desired.delete(key);
    this.sync(key);
  }

  /** Converges one task; runs of the same task never overlap (level-triggered, coalesced). */
  private sync(key: string): void {
    if (this.stopped) return;
    if (this.syncing.has(key)) {
      this.dirty.add(key);
      return;
    }
    this.syncing.add(key);
    void this.syncLoop(key);
  }

  private async syncLoop(key: string): Promise<void> {
    for (let attempt = 0; !this.stopped; ) {
      this.dirty.delete(key);
      try {
        await this.syncTask(key);
        attempt = 0;
      } catch (err) {
        this.log.warn({ task: key, err: errorMessage(err), attempt }, 'task sync failed; retrying');
        await sleepUnlessAborted(backoffDelay(attempt++), this.abort.signal, this.clock);
        this.dirty.add(key);
      }
      if (!this.dirty.has(key)) break;
    }
    this.syncing.delete(key);
  }

  /** What runs must match what is assigned: stop the unassigned and the replaced; start the new. */
  private async syncTask(key: string): Promise<void> {
    const want = this.desired.get(key);
    let have = this.tasks.get(key);
    if (have && (!want || want.uid !== have.uid)) {
      await this.kill(key, have, want ? 'replaced' : 'unassigned');
      have = undefined;
    }
    if (!want) {
      if (!this.tasks.has(key)) this.reporter.forget(key);
      return;
    }
    if (!have) return this.launch(key, want);
    if (have.adopted) {
      have.adopted = false; // say once that it runs (the registry may have marked it UNREACHABLE; if it ended it, the relay has it stopped)
      this.reporter.report(this.ref(want), { state: 'RUNNING', hostPorts: hostPorts(want) }, { startedAt: this.clock.date().toISOString() }, { force: true });
      this.startProbing(want, this.clock.now()); // its start time is not at hand: the grace period starts again
    }
  }

  /** Stops a task that is no longer assigned (or was replaced) and reports it KILLED. */
  private async kill(key: string, task: LocalTask, reason: 'unassigned' | 'replaced'): Promise<void> {
    const [namespace, name] = splitKey(key);
    this.health.stop(key);
    if (task.phase === 'running') {
      if (task.graceSeconds > 0) this.reporter.report({ namespace, name, uid: task.uid }, { state: 'KILLING' });
      await this.runtime.stop(namespace, name, task.graceSeconds);
      this.log.info({ task: key, uid: task.uid, reason }, 'task stopped');
      const status: TaskStatus = { state: 'KILLED', reason: 'TaskKilled', message: `assignment removed from agent ${this.nodeName}`, finishedAt: this.clock.date().toISOString() };
      this.reporter.report({ namespace, name, uid: task.uid }, status);
    }
    // The KILLED must be written before the task's trace goes: an agent that died in between would
    // find nothing on its restart to report, and the Task would stay KILLING for ever.
    await this.reporter.whenSettled({ namespace, name });
    // Unassigned means the Task is gone from the registry (or replaced): nothing will read its
    // output again, so its exited container or work dir goes too (a job's every run left one).
    await this.runtime.remove?.(namespace, name).catch((err: unknown) => this.log.warn({ task: key, err: errorMessage(err) }, 'task leftovers not removed'));
    this.tasks.delete(key);
  }

  /** Starts an assigned task unless this agent reported it ended before; then reports RUNNING. */
  private async launch(key: string, want: Assignment): Promise<void> {
    const verdict = await this.reporter.verdict(this.ref(want));
    if (this.desired.get(key)?.uid !== want.uid || this.stopped) return; // superseded while reading: the next sync decides
    const graceSeconds = want.spec.taskKillGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS;
    if (verdict === 'terminal') {
      this.tasks.set(key, { uid: want.uid, phase: 'done', graceSeconds });
      this.log.info({ task: key, uid: want.uid }, 'task not started: it ended here before (this agent reported it)');
      return;
    }
    // A task that ended while no agent watched it is known to the runtime, not listed as running:
    // take its recorded exit instead of starting it a second time.
    if (await this.runtime.adopt?.(this.ref(want), (code, detail) => this.onExit(key, want.uid, code, detail))) {
      this.tasks.set(key, { uid: want.uid, phase: 'running', graceSeconds, adopted: true });
      return;
    }
    // Started once, and its container or process is gone without a trace (a host reboot, a
    // removed container): a task never runs twice, so it is LOST and its framework replaces it.
    // Hollow runtimes keep nothing across restarts, so they re-run instead.
    if (verdict === 'started' && this.runtime.name !== 'hollow') {
      this.tasks.set(key, { uid: want.uid, phase: 'done', graceSeconds });
      this.log.warn({ task: key, uid: want.uid }, 'task gone while the agent was down; reporting LOST');
      this.reporter.report(this.ref(want), { state: 'LOST', reason: 'TaskGone', message: `its ${this.runtime.name} task was gone when agent ${this.nodeName} restarted (host reboot or removed by hand)`, finishedAt: this.clock.date().toISOString() });
      return;
    }
    // A host port something else holds: the start would fail binding it (Mesos has no such check;
    // Marathon's random ports make a relaunch land elsewhere, and the port is no longer offered).
    const held = await this.heldPort(key, want);
    if (this.desired.get(key)?.uid !== want.uid || this.stopped) return;
    if (held) {
      this.tasks.set(key, { uid: want.uid, phase: 'done', graceSeconds });
      const message = `host port ${held.port} is in use on node ${this.nodeName} by ${held.by}`;
      this.log.warn({ task: key, uid: want.uid, port: held.port, by: held.by }, 'task not started: host port in use');
      this.reporter.report(this.ref(want), { state: 'FAILED', reason: 'PortInUse', message, finishedAt: this.clock.date().toISOString() });
      return;
    }
    // Recorded as running before it starts: a quick command can exit (onExit) before start() resolves.
    const local: LocalTask = { uid: want.uid, phase: 'running', graceSeconds };
    this.tasks.set(key, local);
    // Mesos' STARTING while a real runtime creates the task (a docker run takes ~0.6 s); hollow
    // tasks go straight to RUNNING, which keeps simulated clusters at one write per task.
    if (this.runtime.name !== 'hollow') this.reporter.report(this.ref(want), { state: 'STARTING' }, { stagedAt: this.clock.date().toISOString() });
    let started: StartedTask;
    local.startingAt = this.clock.date().toISOString();
    try {
      started = await this.runtime.start({ ...this.ref(want), spec: want.spec, owner: want.owner }, (code, detail) => this.onExit(key, want.uid, code, detail));
    } catch (err) {
      local.phase = 'done';
      this.log.warn({ task: key, uid: want.uid, err: errorMessage(err) }, 'task failed to start');
      // A start that can never succeed here (image absent, policy) is ERROR, as Mesos reports it.
      const permanent = (err as { code?: string }).code === 'ImageNotPresent' || (err as { code?: string }).code === 'Policy';
      // A bind failure (docker publishes ports itself): a port taken since the probe; probe again to stop advertising it.
      const portInUse = !permanent && isPortInUseError(err);
      if (portInUse) await this.heldAfterBindFailure(key, want);
      const reason = permanent ? String((err as { code?: string }).code) : portInUse ? 'PortInUse' : 'StartFailed';
      this.reporter.report(this.ref(want), { state: permanent ? 'ERROR' : 'FAILED', reason, message: errorMessage(err), finishedAt: this.clock.date().toISOString() });
      return;
    }
    const startedAt = this.clock.date().toISOString();
    this.log.info({ task: key, uid: want.uid, runtime: this.runtime.name, ...started }, 'task started');
    if (local.phase !== 'running') return; // already exited, and reported so (with startingAt as its start)
    this.reporter.report(this.ref(want), { state: 'RUNNING', startedAt, hostPorts: hostPorts(want), ...started }, { stagedAt: startedAt });
    this.startProbing(want, this.clock.now());
  }

  /** Health checks for a running task; hollow tasks serve nothing to probe. */
  private startProbing(want: Assignment, startedAtMs: number): void {
    if (this.runtime.name !== 'hollow' && !this.stopped) this.health.start(this.ref(want), want.spec, startedAtMs);
  }

  /** The runtime says a task ended by itself (and why, when it knows: an OOM kill). */
  private onExit(key: string, uid: string, code: number, detail?: ExitDetail): void {
    const local = this.tasks.get(key);
    if (!local || local.uid !== uid || local.phase !== 'running') return;
    local.phase = 'done';
    this.health.stop(key);
    if (!this.desired.has(key)) this.tasks.delete(key);
    const [namespace, name] = splitKey(key);
    this.log.info({ task: key, uid, exitCode: code }, 'task exited');
    const status: TaskStatus = { state: code === 0 ? 'FINISHED' : 'FAILED', finishedAt: this.clock.date().toISOString() };
    if (code === UNKNOWN_EXIT_CODE) status.message = 'ended while no exit code could be recorded (killed with its watcher, or the machine restarted)';
    else {
      status.exitCode = code;
      if (code !== 0) status.message = `exited with code ${code}`;
    }
    if (code !== 0 && detail) Object.assign(status, { reason: detail.reason, message: code === UNKNOWN_EXIT_CODE ? detail.message : `${detail.message} (exit code ${code})` });
    // A quick command can exit before start() returns, so before RUNNING (and its startedAt) is
    // reported: it did run, and a job's run start and schedule lag need the time.
    this.reporter.report({ namespace, name, uid }, status, local.startingAt ? { startedAt: local.startingAt } : {});
  }

  private ref(a: Assignment): TaskRef {
    return { namespace: a.namespace, name: a.name, uid: a.uid };
  }
}

function hostPorts(a: Assignment): number[] {
  return (a.spec.ports ?? []).map((p) => p.hostPort);
}

function splitKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}
