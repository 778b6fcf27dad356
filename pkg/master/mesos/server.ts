/**
 * The Mesos v1 scheduler HTTP API (`POST /api/v1/scheduler`), served by every controller-manager
 * and handled by the leader: a standby answers 307 with the leader's address, as a Mesos master
 * that is not leading does. External frameworks are Framework objects in etcd, so a new leader
 * rebuilds them (disconnected until their schedulers subscribe again) and their tasks are
 * ordinary Tasks. See docs/frameworks.md for the subset served and the differences from Mesos.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { lookupKind } from '../../api/kinds';
import { isTerminal } from '../../api/tasks';
import type { Framework as FrameworkObject, Task } from '../../api/types.generated';
import { FRAMEWORK_LABEL, lastSegment, type ClusterInformers } from '../../client/informers';
import { AuthenticationError, type TokenAuthenticator, type User } from '../../client/tokens';
import { fencedBatches, fencedTxn, NotLeaderError } from '../../store/fenced';
import { assignmentKey, encodeObject, objectKey } from '../../store/objects';
import type { Fence, Store } from '../../store/types';
import type { Clock } from '../../util/clock';
import type { FrameworkRegistry } from '../framework';
import { CallError, frameworkRole, launchesFromAccept, parseCall, taskNameFor } from './convert';
import { ExternalFramework, MESOS_TASK_ID, RESEND_MS, type Stream } from './external';
import { encodeRecord } from './recordio';
import type { Call, MasterInfo, Event as MesosEvent } from './types';

const FRAMEWORKS = lookupKind('framework')!;
const TASKS = lookupKind('task')!;
/** The Mesos release whose scheduler API this one follows (what `GET /version` answers). */
export const MESOS_API_VERSION = '1.11.0';
/** Ended tasks kept per framework (for `shoal get tasks` and reconciliation); older ones are deleted. */
export const ENDED_TASKS_KEPT = 100;
/** Bodies larger than this are refused (413). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** What the server needs of a leadership term. */
export interface SchedulerApiTerm {
  store: Store;
  prefix: string;
  fence: Fence;
  informers: ClusterInformers;
  frameworks: FrameworkRegistry;
  clock: Clock;
}

export interface SchedulerApiOptions {
  /** The controller-manager's identity (written with the leader's address). */
  identity: string;
  logger: Logger;
  /** Without one, calls are not authenticated (a dev cluster). */
  authenticator?: TokenAuthenticator;
  /** @default 15 */
  heartbeatIntervalSeconds?: number;
  /** Namespace of external frameworks' tasks. @default 'default' */
  namespace?: string;
  /** The store standbys read the leader's address from (any connection to the same etcd). */
  store: Store;
  /** @default '/shoal' */
  prefix?: string;
}

/** `<prefix>/mesos/leader`: `{identity, address}` of the controller-manager handling the API. */
export function schedulerLeaderKey(prefix: string): string {
  return `${prefix}/mesos/leader`;
}

interface Session {
  fw: ExternalFramework;
  user?: User;
}

export class SchedulerApiServer {
  private server?: Server | import("node:https").Server;
  private address?: string;
  /** The rebuild of a term that has just begun (attach), while it runs. */
  private attaching?: Promise<void>;
  /** How clients reach this API (the standbys' 307 names the leader with it: every member serves alike). */
  private scheme: 'http' | 'https' = 'http';
  private term?: SchedulerApiTerm;
  private readonly sessions = new Map<string, Session>();
  private readonly failoverTimers = new Map<string, ReturnType<Clock['setTimeout']>>();
  private resendTimer?: ReturnType<Clock['setInterval']>;
  private readonly log: Logger;
  private readonly prefix: string;

  constructor(private readonly o: SchedulerApiOptions) {
    this.log = o.logger.child({ component: 'scheduler-api' });
    this.prefix = o.prefix ?? '/shoal';
  }

  /** Listens (HTTPS with `tls`); resolves with the bound port. */
  async listen(port: number, host = '127.0.0.1', tls?: { cert: Buffer; key: Buffer }): Promise<number> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    const server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler) : createServer(handler);
    this.scheme = tls ? 'https' : 'http';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const bound = (server.address() as AddressInfo).port;
    this.address = `${host}:${bound}`;
    this.log.info({ address: this.address }, 'Mesos scheduler API listening');
    return bound;
  }

  async close(): Promise<void> {
    await this.detach();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  // ---- terms ----

  /**
   * This controller-manager leads: rebuild every framework from etcd and advertise the address.
   * Calls that arrive meanwhile wait for the rebuild (a framework re-subscribing with its id must
   * find itself, not be told it was removed).
   */
  async attach(term: SchedulerApiTerm): Promise<void> {
    this.term = term;
    const rebuilt = this.rebuild(term);
    this.attaching = rebuilt;
    try {
      await rebuilt;
    } finally {
      if (this.attaching === rebuilt) this.attaching = undefined;
    }
  }

  private async rebuild(term: SchedulerApiTerm): Promise<void> {
    if (this.address) {
      await fencedTxn(term, [], [{ op: 'put', key: schedulerLeaderKey(this.prefix), value: JSON.stringify({ identity: this.o.identity, address: this.address }) }]);
    }
    for (const obj of term.informers.frameworks.list()) {
      if (obj.status?.state === 'inactive') {
        void this.remove(obj.metadata.name, 'torn down before the leader changed');
        continue;
      }
      const fw = await this.register(obj);
      // Nobody can be connected to a new leader yet: the failover timeout runs from now.
      await this.markDisconnected(fw, term.clock.now());
    }
    term.informers.frameworks.addHandlers({
      onDelete: (_k, obj) => void this.remove(obj.metadata.name, 'Framework object deleted (shoal delete framework)'),
    });
    // As Mesos: every subscribed framework hears of an agent that is gone (its lease expired).
    term.informers.leases.addHandlers({
      onDelete: (key) => {
        if (this.term !== term) return;
        const agent = lastSegment(key);
        for (const f of term.frameworks.list()) {
          if (f instanceof ExternalFramework) f.stream?.send({ type: 'FAILURE', failure: { agent_id: { value: agent } } } as MesosEvent);
        }
      },
    });
    this.resendTimer = term.clock.setInterval(() => {
      for (const f of term.frameworks.list()) {
        if (!(f instanceof ExternalFramework)) continue;
        f.resend();
        void this.collectGarbage(f).catch((err: Error) => this.log.warn({ framework: f.id, err: err.message }, 'ended tasks not collected'));
      }
      void this.collectOrphans().catch((err: Error) => this.log.warn({ err: err.message }, 'ended tasks of removed frameworks not collected'));
    }, RESEND_MS);
    this.resendTimer.unref?.();
  }

  /** The term ended: every stream closes (schedulers reconnect to the new leader). */
  async detach(): Promise<void> {
    const term = this.term;
    this.term = undefined;
    if (!term) return;
    term.clock.clearInterval(this.resendTimer);
    for (const t of this.failoverTimers.values()) term.clock.clearTimeout(t);
    this.failoverTimers.clear();
    for (const { fw } of this.sessions.values()) fw.stream?.close({ type: 'ERROR', error: { message: 'Master is no longer the leader' } } as MesosEvent);
    this.sessions.clear();
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET' && (url.pathname === '/version' || url.pathname === '/master/version')) {
        return json(res, 200, { version: MESOS_API_VERSION, shoal: true, build_user: 'shoal', git_tag: MESOS_API_VERSION });
      }
      if (url.pathname !== '/api/v1/scheduler') return text(res, 404, `No endpoint ${url.pathname}: the scheduler API is POST /api/v1/scheduler`);
      if (req.method !== 'POST') return text(res, 405, `Expecting 'POST', received '${req.method}'`, { allow: 'POST' });
      if (!this.term) return this.redirect(res);
      await this.attaching?.catch(() => undefined);
      if (!this.term) return this.redirect(res);
      const user = this.authenticate(req, res);
      if (user === null) return;
      const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (type === 'application/x-protobuf') return text(res, 415, 'Shoal accepts only application/json calls (Content-Type: application/json)');
      if (type !== 'application/json') return text(res, 415, `Expecting 'Content-Type' of application/json, received '${type || 'none'}'`);
      const accept = String(req.headers.accept ?? 'application/json');
      if (!/application\/json|\*\/\*/.test(accept) && accept !== '') return text(res, 406, 'Shoal streams application/json only');
      const body = await readBody(req);
      let call: Call;
      try {
        call = parseCall(JSON.parse(body.toString('utf8')));
      } catch (err) {
        if (err instanceof SyntaxError) return text(res, 400, `Failed to parse body into JSON: ${err.message}`);
        throw err;
      }
      if (call.type === 'SUBSCRIBE') return await this.subscribe(call, user, req, res);
      await this.call(call, user, req);
      res.writeHead(202).end();
    } catch (err) {
      if (err instanceof CallError) return text(res, err.status, err.message);
      if (err instanceof NotLeaderError) return this.redirect(res);
      if (err instanceof BodyTooLarge) return text(res, 413, err.message);
      this.log.error({ err: (err as Error).message, stack: (err as Error).stack }, 'scheduler call failed');
      if (!res.headersSent) text(res, 500, 'Internal error (logged by the controller-manager)');
      else res.end();
    }
  }

  /** 307 to the leader, as a Mesos master that is not leading answers; 503 while there is none. */
  private async redirect(res: ServerResponse): Promise<void> {
    const kv = await this.o.store.get(schedulerLeaderKey(this.prefix)).catch(() => undefined);
    const leader = kv ? (JSON.parse(kv.value) as { identity: string; address: string }) : undefined;
    if (!leader || leader.identity === this.o.identity) return text(res, 503, 'No leading master (a leader election is under way); retry shortly');
    res.writeHead(307, { location: `${this.scheme}://${leader.address}/api/v1/scheduler` }).end();
  }

  /** The caller, or null once a 401 has been sent; undefined without an authenticator. */
  private authenticate(req: IncomingMessage, res: ServerResponse): User | undefined | null {
    if (!this.o.authenticator) return undefined;
    try {
      return this.o.authenticator.authenticate(req.headers.authorization, { basic: true });
    } catch (err) {
      if (!(err instanceof AuthenticationError)) throw err;
      text(res, 401, err.message, { 'www-authenticate': 'Basic realm="mesos"' });
      return null;
    }
  }

  // ---- SUBSCRIBE ----

  private async subscribe(call: Call, user: User | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const term = this.term!;
    const info = call.subscribe!.framework_info;
    const role = frameworkRole(info);
    if (user && !mayUseRole(user, role)) throw new CallError(403, `Principal '${user.name}' is not authorized to register frameworks with role '${role}' (frameworkRoles in the token file)`);
    const now = term.clock.now();
    let fw: ExternalFramework;
    const wanted = info.id?.value ?? call.framework_id?.value;
    if (wanted) {
      const existing = term.frameworks.get(wanted);
      if (!(existing instanceof ExternalFramework)) throw new CallError(403, `Framework ${wanted} has been removed (torn down or past its failover timeout); subscribe without an id`);
      if (existing.object.spec.principal && user && existing.object.spec.principal !== user.name) {
        throw new CallError(403, `Framework ${wanted} belongs to principal '${existing.object.spec.principal}'`);
      }
      if (existing.role !== role) throw new CallError(400, `Framework ${wanted} has role '${existing.role}'; changing the role on failover is not supported`);
      fw = existing;
      this.clearFailover(fw.id);
      await this.writeObject(fw, {
        ...fw.object.spec,
        name: info.name,
        failoverTimeoutSeconds: info.failover_timeout ?? fw.object.spec.failoverTimeoutSeconds,
        ...(info.webui_url ? { webuiUrl: info.webui_url } : {}),
      }, { state: 'connected', reregisteredTime: iso(now), lastSeenTime: iso(now), leader: this.o.identity });
    } else {
      const obj: FrameworkObject = {
        apiVersion: 'shoal/v1', kind: 'Framework',
        metadata: { name: randomUUID(), uid: randomUUID(), generation: 1, creationTimestamp: iso(now) },
        spec: {
          name: info.name, user: info.user, role, namespace: this.o.namespace ?? 'default',
          ...(user ? { principal: user.name } : info.principal ? { principal: info.principal } : {}),
          failoverTimeoutSeconds: info.failover_timeout ?? 0,
          capabilities: (info.capabilities ?? []).map((c) => c.type).filter((t): t is string => typeof t === 'string'),
          ...(info.hostname ? { hostname: info.hostname } : {}),
          ...(info.webui_url ? { webuiUrl: info.webui_url } : {}),
          checkpoint: info.checkpoint ?? false,
        },
        status: { state: 'connected', registeredTime: iso(now), lastSeenTime: iso(now), leader: this.o.identity },
      };
      const key = objectKey(this.prefix, FRAMEWORKS, undefined, obj.metadata.name);
      if ((await fencedTxn(term, [{ key, modRevision: 0 }], [{ op: 'put', key, value: encodeObject(obj) }])) === undefined) throw new CallError(409, 'Framework id collision; subscribe again');
      fw = await this.register({ ...obj, metadata: { ...obj.metadata } });
      this.log.info({ framework: fw.id, name: info.name, role, principal: obj.spec.principal }, 'framework registered');
    }

    const streamId = randomUUID();
    res.writeHead(200, { 'content-type': 'application/json', 'mesos-stream-id': streamId, 'cache-control': 'no-cache' });
    res.flushHeaders();
    const heartbeat = this.o.heartbeatIntervalSeconds ?? 15;
    const send = (e: MesosEvent) => {
      if (!res.writableEnded) res.write(encodeRecord(e));
    };
    let timer: ReturnType<Clock['setInterval']> | undefined;
    const stream: Stream = {
      id: streamId,
      send,
      close: (last) => {
        if (last) send(last);
        term.clock.clearInterval(timer);
        if (!res.writableEnded) res.end();
      },
    };
    this.sessions.set(streamId, { fw, user });
    send({
      type: 'SUBSCRIBED',
      subscribed: {
        framework_id: { value: fw.id },
        heartbeat_interval_seconds: heartbeat,
        master_info: masterInfo(this.o.identity, this.address),
      },
    } as MesosEvent);
    fw.attach(stream);
    // Offers again: the new scheduler has seen none (unless it asked to stay suppressed).
    if (!fw.suppressedByScheduler) fw.driver?.revive();
    timer = term.clock.setInterval(() => send({ type: 'HEARTBEAT' } as MesosEvent), heartbeat * 1000);
    const closed = () => {
      term.clock.clearInterval(timer);
      this.sessions.delete(streamId);
      if (this.term !== term) return;
      if (fw.detach(stream)) void this.markDisconnected(fw, term.clock.now()).catch((err: Error) => this.log.warn({ framework: fw.id, err: err.message }, 'disconnect not recorded'));
    };
    req.socket.once('close', closed);
    res.once('close', closed);
    this.log.info({ framework: fw.id, stream: streamId, failover: Boolean(wanted) }, 'framework subscribed');
  }

  // ---- other calls ----

  private async call(call: Call, user: User | undefined, req: IncomingMessage): Promise<void> {
    const term = this.term!;
    // In Mesos' order: the framework, then the stream id header, then whether it matches.
    const frameworkId = call.framework_id!.value;
    const fw = term.frameworks.get(frameworkId);
    if (!(fw instanceof ExternalFramework)) throw new CallError(403, `Framework ${frameworkId} cannot be found`);
    if (!fw.stream) throw new CallError(403, `Framework ${frameworkId} is not subscribed`);
    const streamId = req.headers['mesos-stream-id'];
    if (typeof streamId !== 'string' || !streamId) throw new CallError(400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header");
    if (fw.stream.id !== streamId) {
      throw new CallError(400, `The stream ID '${streamId}' included in this request didn't match the stream ID currently associated with framework ID ${frameworkId}`);
    }
    if (user && fw.object.spec.principal && user.name !== fw.object.spec.principal) throw new CallError(403, `Principal '${user.name}' may not make calls for framework ${frameworkId}`);
    const driver = fw.driver!;
    const ns = fw.object.spec.namespace;
    switch (call.type) {
      case 'TEARDOWN':
        // The scheduler asked: its stream just ends (an ERROR event would tell it to abort).
        await this.remove(fw.id, 'TEARDOWN', { quiet: true });
        return;
      case 'ACCEPT': {
        const accept = call.accept!;
        const existing = new Set(term.informers.tasks.byIndex('framework', fw.id).map((t) => t.metadata.name));
        let planned;
        try {
          planned = launchesFromAccept(accept, fw.offers, { frameworkId: fw.id, role: fw.role, namespace: ns, existingTaskNames: existing });
        } catch (err) {
          // Nothing launched: the call's offers go back to the pool, as Mesos recovers invalid offers' resources.
          const ids = (accept.offer_ids ?? []).map((o) => o?.value).filter((id): id is string => typeof id === 'string' && fw.offers.has(id));
          for (const id of ids) fw.offers.delete(id);
          if (ids.length) driver.decline(ids, 0);
          // Shoal answers a bad ACCEPT at once (4xx) and, as Mesos does, also drops each of its tasks
          // with an update, so a scheduler that tracks tasks by their updates sees them end.
          if (err instanceof CallError) this.dropTasks(fw, accept, err);
          throw err;
        }
        for (const id of planned.offerIds) fw.offers.delete(id);
        const ids = new Map(planned.launches.map((l) => [l.taskName, String(l.task.metadata?.annotations?.[MESOS_TASK_ID] ?? l.taskName)]));
        for (const [name, id] of ids) fw.asked.set(name, id);
        if (planned.launches.length === 0) {
          driver.decline(planned.offerIds, accept.filters?.refuse_seconds ?? 5);
          return;
        }
        void driver.accept(planned.offerIds, planned.launches).then((results) => {
          for (const r of results) {
            if (r.ok) continue;
            // As Mesos: a launch that did not happen is TASK_DROPPED (TASK_LOST without PARTITION_AWARE).
            fw.statusUpdate(driver, { namespace: ns, taskName: r.request.taskName, state: 'DROPPED', reason: r.reason ?? 'BindFailed', message: `launch refused by the master: ${r.reason ?? 'BindFailed'}`, source: 'master' });
          }
        }, (err: Error) => this.log.error({ framework: fw.id, err: err.message }, 'accept failed'));
        return;
      }
      case 'DECLINE': {
        const ids = (call.decline!.offer_ids ?? []).map((o) => o.value).filter((id) => fw.offers.delete(id));
        if (ids.length) driver.decline(ids, call.decline!.filters?.refuse_seconds ?? 5);
        return;
      }
      case 'REVIVE':
        checkRoles(call.revive?.roles, fw.role, 'revive');
        fw.suppressedByScheduler = false;
        driver.revive();
        return;
      case 'SUPPRESS':
        checkRoles(call.suppress?.roles, fw.role, 'suppress');
        fw.suppressedByScheduler = true;
        driver.suppress();
        return;
      case 'KILL': {
        const taskId = call.kill!.task_id.value;
        const taskName = taskNameFor(fw.id, taskId);
        fw.asked.set(taskName, taskId);
        const { killed } = await driver.kill([{ namespace: ns, taskName }]);
        // Mesos answers a kill of a task it does not know with TASK_LOST.
        if (killed.length === 0 && !this.liveTask(ns, taskName)) fw.statusUpdate(driver, { namespace: ns, taskName, state: 'LOST', reason: 'ReconciliationUnknownTask', message: 'kill of an unknown task', source: 'master' });
        return;
      }
      case 'ACKNOWLEDGE': {
        const a = call.acknowledge!;
        await fw.acknowledge(taskNameFor(fw.id, a.task_id.value), a.uuid);
        return;
      }
      case 'RECONCILE': {
        const tasks = call.reconcile?.tasks ?? [];
        if (tasks.length === 0) return driver.reconcile();
        const refs = tasks.map((t) => {
          const taskName = taskNameFor(fw.id, t.task_id.value);
          fw.asked.set(taskName, t.task_id.value);
          return { namespace: ns, taskName };
        });
        driver.reconcile(refs);
        return;
      }
      default:
        throw new CallError(400, `Call ${call.type} is not supported by Shoal (no executors, operations or inverse offers): see docs/frameworks.md`);
    }
  }

  /** TASK_DROPPED (TASK_LOST without PARTITION_AWARE) for every task of a refused ACCEPT. */
  private dropTasks(fw: ExternalFramework, accept: NonNullable<Call['accept']>, err: CallError): void {
    const reason = err.mesosReason === 'REASON_TASK_INVALID' ? 'TaskInvalid' : 'InvalidOffers';
    const seen = new Set<string>();
    for (const op of accept.operations ?? []) {
      for (const t of op?.launch?.task_infos ?? []) {
        const id = t?.task_id?.value;
        if (typeof id !== 'string' || !id || seen.has(id)) continue;
        seen.add(id);
        const taskName = taskNameFor(fw.id, id);
        if (this.liveTask(fw.object.spec.namespace, taskName)) continue; // a duplicate of a running task: that one goes on
        fw.asked.set(taskName, id);
        fw.statusUpdate(fw.driver!, { namespace: fw.object.spec.namespace, taskName, state: 'DROPPED', reason, message: err.message, source: 'master' });
      }
    }
  }

  // ---- lifecycle ----

  private async register(obj: FrameworkObject): Promise<ExternalFramework> {
    const term = this.term!;
    const existing = term.frameworks.get(obj.metadata.name);
    if (existing instanceof ExternalFramework) {
      existing.object = obj;
      return existing;
    }
    const fw = new ExternalFramework({
      object: obj, store: term.store, prefix: this.prefix, fence: term.fence, logger: this.log,
      task: (name) => term.informers.tasks.get(objectKey(this.prefix, TASKS, obj.spec.namespace, name)),
    });
    await fw.load();
    term.frameworks.register(fw);
    return fw;
  }

  private async markDisconnected(fw: ExternalFramework, now: number): Promise<void> {
    const timeout = fw.object.spec.failoverTimeoutSeconds ?? 0;
    this.log.info({ framework: fw.id, failoverTimeoutSeconds: timeout }, 'framework disconnected; its tasks keep running until the failover timeout');
    await this.writeObject(fw, fw.object.spec, { ...fw.object.status, state: 'disconnected', disconnectedTime: iso(now), lastSeenTime: iso(now) }).catch(() => undefined);
    this.clearFailover(fw.id);
    const term = this.term;
    if (!term) return;
    const t = term.clock.setTimeout(() => {
      this.failoverTimers.delete(fw.id);
      if (!fw.stream) void this.remove(fw.id, `failover timeout (${timeout}s) passed`);
    }, timeout * 1000);
    t.unref?.();
    this.failoverTimers.set(fw.id, t);
  }

  private clearFailover(id: string): void {
    const t = this.failoverTimers.get(id);
    if (t !== undefined) this.term?.clock.clearTimeout(t);
    this.failoverTimers.delete(id);
  }

  /** Tears a framework down: its tasks are killed, its stream closed, its object and updates deleted. */
  private async remove(id: string, why: string, o: { quiet?: boolean } = {}): Promise<void> {
    const term = this.term;
    if (!term) return;
    this.clearFailover(id);
    const fw = term.frameworks.get(id);
    const key = objectKey(this.prefix, FRAMEWORKS, undefined, id);
    if (fw instanceof ExternalFramework) {
      this.log.info({ framework: id, why }, 'framework torn down: its tasks are killed');
      fw.stream?.close(o.quiet ? undefined : ({ type: 'ERROR', error: { message: `Framework removed: ${why}` } } as MesosEvent));
      await fw.driver?.teardown();
      await fw.forgetUpdates();
    }
    await fencedTxn(term, [], [{ op: 'delete', key }]);
    // Its ended tasks go with it (the ones being killed stay until they have ended).
    await this.collectGarbage(id, 0);
  }

  /**
   * Deletes a framework's ended tasks beyond the newest `keep` (Mesos keeps a bounded number of
   * completed tasks per framework too); with the Task go its assignment key and kept update.
   */
  private async collectGarbage(fw: ExternalFramework | string, keep = ENDED_TASKS_KEPT): Promise<void> {
    const term = this.term;
    if (!term) return;
    const id = typeof fw === 'string' ? fw : fw.id;
    const ended = term.informers.tasks.byIndex('framework', id).filter(isTerminal)
      .sort((a, b) => (Date.parse(b.status?.finishedAt ?? '') || 0) - (Date.parse(a.status?.finishedAt ?? '') || 0));
    const gone = ended.slice(keep);
    if (!gone.length) return;
    await fencedBatches(term, gone.flatMap((t) => [
      { op: 'delete' as const, key: objectKey(this.prefix, TASKS, t.metadata.namespace, t.metadata.name) },
      ...(t.spec.nodeName ? [{ op: 'delete' as const, key: assignmentKey(this.prefix, t.spec.nodeName, t.metadata.namespace ?? 'default', t.metadata.name) }] : []),
    ]));
  }

  /** Ended tasks of external frameworks that are gone (killed at their removal, ended since). */
  private async collectOrphans(): Promise<void> {
    const term = this.term;
    if (!term) return;
    const orphans = term.informers.tasks.list().filter((t) => isTerminal(t) && t.metadata.annotations?.[MESOS_TASK_ID] !== undefined && !term.frameworks.get(t.metadata.labels?.[FRAMEWORK_LABEL] ?? ''));
    if (!orphans.length) return;
    await fencedBatches(term, orphans.flatMap((t) => [
      { op: 'delete' as const, key: objectKey(this.prefix, TASKS, t.metadata.namespace, t.metadata.name) },
      ...(t.spec.nodeName ? [{ op: 'delete' as const, key: assignmentKey(this.prefix, t.spec.nodeName, t.metadata.namespace ?? 'default', t.metadata.name) }] : []),
    ]));
  }

  private async writeObject(fw: ExternalFramework, spec: FrameworkObject['spec'], status: FrameworkObject['status']): Promise<void> {
    const term = this.term;
    if (!term) return;
    const key = objectKey(this.prefix, FRAMEWORKS, undefined, fw.id);
    const kv = await term.store.get(key);
    if (!kv) return;
    const cur = JSON.parse(kv.value) as FrameworkObject;
    const next: FrameworkObject = { ...cur, spec, status };
    await fencedTxn(term, [{ key, modRevision: kv.modRevision }], [{ op: 'put', key, value: encodeObject(next) }]);
    fw.object = next;
  }

  private liveTask(ns: string, name: string): Task | undefined {
    const t = this.term?.informers.tasks.get(objectKey(this.prefix, TASKS, ns, name));
    return t && !isTerminal(t) ? t : undefined;
  }
}

function mayUseRole(user: User, role: string): boolean {
  if (user.frameworkRoles?.includes('*') || user.frameworkRoles?.includes(role)) return true;
  return user.roles.some((b) => b.namespace === '*' && b.role === 'admin');
}

function checkRoles(roles: string[] | undefined, role: string, what: string): void {
  const other = (roles ?? []).find((r) => r !== role);
  if (other !== undefined) throw new CallError(400, `Cannot ${what} role '${other}': the framework is not subscribed to it (its role is '${role}')`);
}

function masterInfo(identity: string, address: string | undefined): MasterInfo {
  const [hostname, port] = (address ?? '127.0.0.1:5050').split(':');
  return { id: identity, ip: 0, port: Number(port), hostname, version: MESOS_API_VERSION, address: { hostname, port: Number(port) } };
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const len = Number(req.headers['content-length'] ?? 0);
    if (len > MAX_BODY_BYTES) {
      req.resume();
      return reject(new BodyTooLarge(`Request body of ${len} bytes is over the limit of ${MAX_BODY_BYTES}`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.destroy();
        reject(new BodyTooLarge(`Request body is over the limit of ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function text(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(message);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
