/**
 * A small client for the Mesos v1 scheduler HTTP API (POST /api/v1/scheduler), written from
 * Mesos' documentation only, so that it works against any master that follows it (Shoal's
 * controller-manager or Apache Mesos):
 *
 *  - https://mesos.apache.org/documentation/latest/scheduler-http-api/ (calls, events, 202 for
 *    calls, 307 + Location from a non-leading master, Mesos-Stream-Id, disconnections, heartbeats)
 *  - https://mesos.apache.org/documentation/latest/recordio/ (the framing of the event stream)
 *  - include/mesos/v1/scheduler/scheduler.proto and include/mesos/v1/mesos.proto (field names;
 *    JSON uses the snake_case proto field names, bytes as base64, enums as their names)
 *  - https://mesos.apache.org/documentation/latest/reconciliation/ (explicit/implicit reconcile)
 *
 * Only Node is used (node:http / node:https). Events are typed (see MesosSchedulerEvents).
 *
 *   const s = new MesosScheduler({ master: 'http://127.0.0.1:5050', frameworkInfo: { user: 'me', name: 'demo', roles: ['batch'] } });
 *   s.on('offers', (offers) => ...);  s.on('update', (status) => s.acknowledge(status));
 *   s.start();
 */
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as https from 'node:https';
import { realClock, type Clock, type TimerHandle } from '../util/clock';

// ---------------------------------------------------------------------------------------------
// Protobuf messages as JSON (the subset a scheduler needs; unknown fields pass through).

export interface Id { value: string }
export type FrameworkID = Id;
export type OfferID = Id;
export type AgentID = Id;
export type TaskID = Id;
export type ExecutorID = Id;

export interface Scalar { value: number }
export interface Range { begin: number; end: number }
export interface Ranges { range: Range[] }
export interface ValueSet { item: string[] }

export interface Resource {
  name: string;
  type: 'SCALAR' | 'RANGES' | 'SET' | 'TEXT';
  scalar?: Scalar;
  ranges?: Ranges;
  set?: ValueSet;
  /** Deprecated in Mesos (pre-reservation-refinement); kept for old masters. */
  role?: string;
  allocation_info?: { role?: string };
  reservations?: unknown[];
  [k: string]: unknown;
}

export interface Attribute { name: string; type: string; scalar?: Scalar; ranges?: Ranges; set?: ValueSet; text?: { value: string } }

export interface Offer {
  id: OfferID;
  framework_id: FrameworkID;
  agent_id: AgentID;
  hostname: string;
  resources: Resource[];
  attributes?: Attribute[];
  executor_ids?: ExecutorID[];
  allocation_info?: { role?: string };
  url?: unknown;
  domain?: unknown;
  [k: string]: unknown;
}

export interface EnvironmentVariable { name: string; type?: 'VALUE' | 'SECRET'; value?: string }
export interface CommandInfo {
  /** With shell (the default) value is run by /bin/sh -c. */
  value?: string;
  shell?: boolean;
  arguments?: string[];
  environment?: { variables: EnvironmentVariable[] };
  uris?: Array<{ value: string; executable?: boolean; extract?: boolean; cache?: boolean; output_file?: string }>;
  user?: string;
}

export interface Label { key: string; value?: string }

export interface TaskInfo {
  name: string;
  task_id: TaskID;
  agent_id: AgentID;
  resources: Resource[];
  command?: CommandInfo;
  executor?: unknown;
  container?: unknown;
  labels?: { labels: Label[] };
  kill_policy?: { grace_period?: { nanoseconds: number } };
  [k: string]: unknown;
}

export type TaskState =
  | 'TASK_STAGING' | 'TASK_STARTING' | 'TASK_RUNNING' | 'TASK_KILLING' | 'TASK_FINISHED' | 'TASK_FAILED'
  | 'TASK_KILLED' | 'TASK_ERROR' | 'TASK_LOST' | 'TASK_DROPPED' | 'TASK_UNREACHABLE' | 'TASK_GONE'
  | 'TASK_GONE_BY_OPERATOR' | 'TASK_UNKNOWN';

/** Terminal states (mesos.proto TaskState): no further update follows one of these. */
export const TERMINAL_STATES: ReadonlySet<string> = new Set([
  'TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED', 'TASK_ERROR', 'TASK_LOST', 'TASK_DROPPED', 'TASK_GONE', 'TASK_GONE_BY_OPERATOR',
]);

export function isTerminalState(state: string): boolean {
  return TERMINAL_STATES.has(state);
}

export interface TaskStatus {
  task_id: TaskID;
  state: TaskState | string;
  message?: string;
  source?: 'SOURCE_MASTER' | 'SOURCE_AGENT' | 'SOURCE_EXECUTOR' | string;
  reason?: string;
  data?: string;
  agent_id?: AgentID;
  executor_id?: ExecutorID;
  timestamp?: number;
  /** base64 bytes; set on updates that must be acknowledged. */
  uuid?: string;
  healthy?: boolean;
  [k: string]: unknown;
}

export interface Filters {
  /** Seconds the master should not offer the declined resources again. Mesos' default: 5. */
  refuse_seconds?: number;
}

export interface FrameworkInfo {
  user: string;
  name: string;
  id?: FrameworkID;
  /** Seconds the master keeps a disconnected framework's tasks before tearing it down. */
  failover_timeout?: number;
  checkpoint?: boolean;
  /** Deprecated single role. */
  role?: string;
  roles?: string[];
  hostname?: string;
  principal?: string;
  webui_url?: string;
  capabilities?: Array<{ type: string }>;
  labels?: { labels: Label[] };
  [k: string]: unknown;
}

export interface Operation {
  type: 'LAUNCH' | 'LAUNCH_GROUP' | 'RESERVE' | 'UNRESERVE' | 'CREATE' | 'DESTROY' | string;
  id?: Id;
  launch?: { task_infos: TaskInfo[] };
  [k: string]: unknown;
}

export interface SubscribedEvent {
  framework_id: FrameworkID;
  heartbeat_interval_seconds?: number;
  master_info?: unknown;
}

export interface FailureEvent { agent_id?: AgentID; executor_id?: ExecutorID; status?: number }

/** A scheduler Event as JSON (scheduler.proto Event). */
export interface MesosEvent {
  type: 'SUBSCRIBED' | 'OFFERS' | 'INVERSE_OFFERS' | 'RESCIND' | 'RESCIND_INVERSE_OFFER' | 'UPDATE' | 'UPDATE_OPERATION_STATUS' | 'MESSAGE' | 'FAILURE' | 'ERROR' | 'HEARTBEAT' | string;
  subscribed?: SubscribedEvent;
  offers?: { offers?: Offer[]; inverse_offers?: unknown[] };
  rescind?: { offer_id: OfferID };
  update?: { status: TaskStatus };
  message?: { agent_id: AgentID; executor_id: ExecutorID; data: string };
  failure?: FailureEvent;
  error?: { message: string };
  [k: string]: unknown;
}

/** A scheduler Call as JSON (scheduler.proto Call). */
export interface MesosCall {
  type: string;
  framework_id?: FrameworkID;
  [k: string]: unknown;
}

// ---------------------------------------------------------------------------------------------
// RecordIO (https://mesos.apache.org/documentation/latest/recordio/):
//   records = *record;  record = record-size LF record-data;  record-size = 1*DIGIT (uint64)
// Chunk boundaries are meaningless: a record may span chunks and a chunk may hold several.

/** Incremental RecordIO decoder: push() bytes as they come, get the complete records back. */
export class RecordIODecoder {
  private buf: Buffer = Buffer.alloc(0);
  /** Length of the record being read, once its size line is complete. */
  private want: number | undefined;

  /** @param maxRecordBytes a larger size is treated as a corrupt stream */
  constructor(private readonly maxRecordBytes = 256 * 1024 * 1024) {}

  push(chunk: Buffer | string): Buffer[] {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.buf = this.buf.length ? Buffer.concat([this.buf, bytes]) : bytes;
    const out: Buffer[] = [];
    for (;;) {
      if (this.want === undefined) {
        const lf = this.buf.indexOf(0x0a);
        if (lf < 0) {
          if (this.buf.length > 20 + 2) throw new Error(`RecordIO: record size line too long (${JSON.stringify(this.buf.subarray(0, 24).toString())}...)`);
          return out;
        }
        const line = this.buf.subarray(0, lf).toString('latin1').replace(/\r$/, '');
        this.buf = this.buf.subarray(lf + 1);
        if (line.length === 0) continue; // the documented reader skips empty lines
        if (!/^[0-9]+$/.test(line)) throw new Error(`RecordIO: bad record size ${JSON.stringify(line)}`);
        const size = Number(BigInt(line));
        if (size > this.maxRecordBytes) throw new Error(`RecordIO: record of ${line} bytes is larger than ${this.maxRecordBytes}`);
        this.want = size;
      }
      if (this.buf.length < this.want) return out;
      out.push(Buffer.from(this.buf.subarray(0, this.want)));
      this.buf = this.buf.subarray(this.want);
      this.want = undefined;
    }
  }

  /** Bytes received but not yet part of a complete record. */
  pending(): number {
    return this.buf.length;
  }
}

/** Frames one record: its size in bytes, a line feed, the bytes. */
export function encodeRecordIO(record: string | Buffer): Buffer {
  const data = typeof record === 'string' ? Buffer.from(record) : record;
  return Buffer.concat([Buffer.from(`${data.length}\n`), data]);
}

// ---------------------------------------------------------------------------------------------
// Resource helpers.

export function scalarResource(name: string, value: number, role?: string): Resource {
  const r: Resource = { name, type: 'SCALAR', scalar: { value } };
  if (role !== undefined) r.allocation_info = { role };
  return r;
}

export function rangesResource(name: string, ranges: Array<[number, number]>, role?: string): Resource {
  const r: Resource = { name, type: 'RANGES', ranges: { range: ranges.map(([begin, end]) => ({ begin, end })) } };
  if (role !== undefined) r.allocation_info = { role };
  return r;
}

/** The sum of an offer's scalar resource `name` (e.g. cpus, mem, disk). */
export function scalarOf(resources: Resource[] | undefined, name: string): number {
  return (resources ?? []).filter((r) => r.name === name && r.type === 'SCALAR').reduce((s, r) => s + (r.scalar?.value ?? 0), 0);
}

/** The role an offer (or its resources) was allocated to, for MULTI_ROLE frameworks. */
export function offerRole(offer: Offer): string | undefined {
  return offer.allocation_info?.role ?? offer.resources.find((r) => r.allocation_info?.role)?.allocation_info?.role ?? offer.resources.find((r) => r.role)?.role;
}

// ---------------------------------------------------------------------------------------------
// The scheduler.

export type MesosAuth = { bearer: string } | { principal: string; secret: string };

export interface MesosSchedulerOptions {
  /**
   * One master URL or several (any of them: a standby redirects to the leader with 307), like
   * http://host:5050 or http://host:5050/api/v1/scheduler.
   */
  master: string | string[];
  frameworkInfo: FrameworkInfo;
  /** A framework id from an earlier run: SUBSCRIBE fails over to it (within its failover_timeout). */
  frameworkId?: string;
  auth?: MesosAuth;
  /** subscribe.force: the first SUBSCRIBE only (Mesos recommends false on reconnections). @default false */
  force?: boolean;
  /** Reconnect after the stream ends or fails. @default true */
  reconnect?: boolean;
  /** Exponential backoff between reconnections, with jitter. @default { initialMs: 500, maxMs: 15000 } */
  backoff?: { initialMs?: number; maxMs?: number };
  /** No event for missedHeartbeats × heartbeat_interval_seconds → reconnect. @default 5 */
  missedHeartbeats?: number;
  /** Timeout for a call's response, and for SUBSCRIBE's response headers. @default 75000 (the docs' 75 s) */
  requestTimeoutMs?: number;
  /** @default 5 */
  maxRedirects?: number;
  /** CA certificate (PEM) that verifies an https:// master; default: the system's CAs. */
  ca?: Buffer;
  /** Time of the reconnection backoff and the heartbeat watchdog (tests step a FakeClock). @default the real clock */
  clock?: Clock;
}

export interface SubscribedInfo {
  frameworkId: string;
  streamId: string;
  heartbeatIntervalSeconds?: number;
  /** The URL the subscription was made to (after redirects). */
  master: string;
  /** True when it re-subscribed with an earlier framework id. */
  failover: boolean;
  masterInfo?: unknown;
}

export interface DisconnectedInfo {
  reason: string;
  /** A reconnection is scheduled (false after stop(), teardown(), an ERROR event or a rejected SUBSCRIBE). */
  willReconnect: boolean;
  /** The delay before the reconnection, when there is one. */
  retryInMs?: number;
}

export interface MesosSchedulerEvents {
  subscribed: [SubscribedInfo];
  offers: [Offer[]];
  rescind: [string];
  update: [TaskStatus];
  failure: [FailureEvent];
  /**
   * An ERROR event from the master ("the scheduler should abort"), a SUBSCRIBE the master
   * rejected with 4xx, or an undecodable stream. Without a listener it is not thrown.
   */
  error: [MesosSchedulerError];
  heartbeat: [];
  message: [{ agent_id: AgentID; executor_id: ExecutorID; data: string }];
  disconnected: [DisconnectedInfo];
  /** Every decoded event, including the ones above. */
  event: [MesosEvent];
}

export class MesosSchedulerError extends Error {
  constructor(message: string, readonly kind: 'event' | 'subscribe' | 'stream', readonly status?: number) {
    super(message);
    this.name = 'MesosSchedulerError';
  }
}

/** A call answered with something other than 202 Accepted. */
export class MesosCallError extends Error {
  constructor(readonly callType: string, readonly status: number, readonly body: string) {
    super(`${callType}: HTTP ${status}${body ? `: ${body.trim().slice(0, 500)}` : ''}`);
    this.name = 'MesosCallError';
  }
}

interface RawResponse { status: number; headers: http.IncomingHttpHeaders; body: string; url: string }

const API_PATH = '/api/v1/scheduler';

/** Normalizes a master address to its scheduler endpoint URL. */
export function schedulerUrl(master: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(master) ? master : `http://${master}`;
  const u = new URL(withScheme);
  if (u.pathname === '/' || u.pathname === '') u.pathname = API_PATH;
  return u.toString();
}

/**
 * Where a 307 points. Mesos masters answer `Location: //host:port/api/v1/scheduler`; the
 * 0.24 docs show a bare `host:port`; a full URL works too.
 */
export function resolveRedirect(current: string, location: string): string {
  const base = new URL(current);
  let target: URL;
  if (location.startsWith('//')) target = new URL(`${base.protocol}${location}`);
  else if (/^[a-z]+:\/\//i.test(location)) target = new URL(location);
  else if (location.startsWith('/')) target = new URL(location, base);
  else target = new URL(`${base.protocol}//${location}`);
  if (target.pathname === '/' || target.pathname === '') target.pathname = API_PATH;
  return target.toString();
}

type State = 'idle' | 'connecting' | 'subscribed' | 'backoff' | 'stopped';

export class MesosScheduler extends EventEmitter<MesosSchedulerEvents> {
  private readonly masters: string[];
  private readonly o: MesosSchedulerOptions;
  private readonly clock: Clock;
  private state: State = 'idle';
  private fwId: string | undefined;
  private sid: string | undefined;
  /** The leader, once a redirect or a subscription told us. */
  private leader: string | undefined;
  private attempt = 0;
  private generation = 0;
  private streamReq: http.ClientRequest | undefined;
  private reconnectTimer: TimerHandle | undefined;
  private heartbeatTimer: TimerHandle | undefined;
  private heartbeatMs: number | undefined;
  private subscribedOnce = false;
  /** TEARDOWN sent: the master ending the stream (or an ERROR saying it removed us) is expected. */
  private tearingDown = false;
  private inflight = 0;
  private readonly callAgents: { http: http.Agent; https: https.Agent };

  constructor(options: MesosSchedulerOptions) {
    super();
    this.o = options;
    this.callAgents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true, ...(options.ca && { ca: options.ca }) }) };
    this.clock = options.clock ?? realClock;
    const list = Array.isArray(options.master) ? options.master : [options.master];
    if (!list.length) throw new Error('MesosScheduler: no master');
    this.masters = list.map(schedulerUrl);
    this.fwId = options.frameworkId;
  }

  /** The framework id (known after SUBSCRIBED, or given). */
  get frameworkId(): string | undefined {
    return this.fwId;
  }

  /** The Mesos-Stream-Id of the current subscription. */
  get streamId(): string | undefined {
    return this.sid;
  }

  get subscribed(): boolean {
    return this.state === 'subscribed';
  }

  /** Subscribes, and keeps subscribed (reconnecting) until stop() or teardown(). */
  start(): void {
    if (this.state !== 'idle' && this.state !== 'stopped') return;
    this.state = 'connecting';
    this.attempt = 0;
    this.tearingDown = false;
    this.connect();
  }

  /** Closes the stream and stops reconnecting; the framework stays registered (failover_timeout runs). */
  stop(): void {
    this.shutdown('stopped');
  }

  // -------------------------------------------------------------------------------------------
  // Calls (https://mesos.apache.org/documentation/latest/scheduler-http-api/#calls)

  /** ACCEPT offers with LAUNCH operations for the given tasks (no tasks: same as DECLINE). */
  accept(offerIds: string[], taskInfos: TaskInfo[], filters?: Filters): Promise<void> {
    const operations: Operation[] = taskInfos.length ? [{ type: 'LAUNCH', launch: { task_infos: taskInfos } }] : [];
    return this.acceptOperations(offerIds, operations, filters);
  }

  acceptOperations(offerIds: string[], operations: Operation[], filters?: Filters): Promise<void> {
    return this.call({ type: 'ACCEPT', accept: { offer_ids: offerIds.map(id), operations, ...(filters ? { filters } : {}) } });
  }

  decline(offerIds: string[], filters?: Filters): Promise<void> {
    return this.call({ type: 'DECLINE', decline: { offer_ids: offerIds.map(id), ...(filters ? { filters } : {}) } });
  }

  /** REVIVE: removes the filters set by ACCEPT/DECLINE (and un-suppresses). */
  revive(roles?: string[]): Promise<void> {
    return this.call({ type: 'REVIVE', ...(roles?.length ? { revive: { roles } } : {}) });
  }

  /** SUPPRESS: no more offers until REVIVE. */
  suppress(roles?: string[]): Promise<void> {
    return this.call({ type: 'SUPPRESS', ...(roles?.length ? { suppress: { roles } } : {}) });
  }

  kill(taskId: string, agentId?: string): Promise<void> {
    return this.call({ type: 'KILL', kill: { task_id: id(taskId), ...(agentId ? { agent_id: id(agentId) } : {}) } });
  }

  /**
   * ACKNOWLEDGE an update. Per the docs only updates with a uuid are acknowledged ("the scheduler
   * must not acknowledge status updates that do not have status.uuid() set"): without one this
   * resolves without sending anything.
   */
  acknowledge(status: TaskStatus): Promise<void> {
    if (!status.uuid) return Promise.resolve();
    if (!status.agent_id) return Promise.reject(new Error(`acknowledge ${status.task_id.value}: the update has a uuid but no agent_id`));
    return this.call({ type: 'ACKNOWLEDGE', acknowledge: { agent_id: status.agent_id, task_id: status.task_id, uuid: status.uuid } });
  }

  /**
   * RECONCILE: explicit for the given tasks (unknown ones come back TASK_LOST), implicit (every
   * task the master knows of this framework) without.
   */
  reconcile(tasks?: Array<{ taskId: string; agentId?: string }>): Promise<void> {
    const list = (tasks ?? []).map((t) => ({ task_id: id(t.taskId), ...(t.agentId ? { agent_id: id(t.agentId) } : {}) }));
    return this.call({ type: 'RECONCILE', reconcile: { tasks: list } });
  }

  /** TEARDOWN: the master kills every task and removes the framework; then stops this client. */
  async teardown(): Promise<void> {
    this.tearingDown = true;
    try {
      await this.call({ type: 'TEARDOWN' });
    } finally {
      this.fwId = undefined;
      this.shutdown('teardown');
    }
  }

  /** Sends any call (framework_id is filled in); resolves on 202 Accepted. */
  async call(call: MesosCall): Promise<void> {
    if (!this.fwId || !this.sid || this.state !== 'subscribed') {
      throw new MesosCallError(call.type, 0, 'not subscribed (calls are only allowed after SUBSCRIBED)');
    }
    const body = JSON.stringify({ framework_id: { value: this.fwId }, ...call });
    this.inflight++;
    let res: RawResponse;
    try {
      res = await this.request(this.leader ?? this.masters[0], body, { 'Mesos-Stream-Id': this.sid });
    } finally {
      if (--this.inflight === 0 && (this.state as State) === 'stopped') this.closeCallSockets();
    }
    if (res.status !== 202) throw new MesosCallError(call.type, res.status, res.body);
  }

  // -------------------------------------------------------------------------------------------
  // The subscription stream.

  private subscribeBody(): string {
    const info: FrameworkInfo = { ...this.o.frameworkInfo };
    if (this.fwId) info.id = { value: this.fwId };
    if (this.o.auth && 'principal' in this.o.auth && !info.principal) info.principal = this.o.auth.principal;
    const call: MesosCall = { type: 'SUBSCRIBE', subscribe: { framework_info: info, ...(this.o.force && !this.subscribedOnce ? { force: true } : {}) } };
    if (this.fwId) call.framework_id = { value: this.fwId };
    return JSON.stringify(call);
  }

  /** Candidates in order: the last known leader, then the configured masters, rotating per attempt. */
  private candidate(): string {
    const list = this.leader ? [this.leader, ...this.masters.filter((m) => m !== this.leader)] : this.masters;
    return list[this.attempt % list.length];
  }

  private connect(redirectsLeft = this.o.maxRedirects ?? 5, url = this.candidate()): void {
    if (this.state === 'stopped') return;
    const gen = ++this.generation;
    const failover = Boolean(this.fwId);
    const body = this.subscribeBody();
    const target = new URL(url);
    const mod = target.protocol === 'https:' ? https : http;
    const req = mod.request(target, {
      method: 'POST',
      agent: false, // its own connection: calls must use a different one
      ...(this.o.ca && { ca: this.o.ca }),
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json',
        Connection: 'keep-alive',
        'Content-Length': Buffer.byteLength(body),
        ...this.authHeader(),
      },
    });
    this.streamReq = req;
    // Until SUBSCRIBED arrives, the request timeout stands in for the heartbeat timer.
    this.armWatchdog(gen, this.o.requestTimeoutMs ?? 75_000, 'no SUBSCRIBED event in time');
    req.on('response', (res) => {
      if (gen !== this.generation) return res.destroy();
      const status = res.statusCode ?? 0;
      if (status === 307 || status === 301 || status === 302 || status === 303 || status === 308) {
        const loc = res.headers.location;
        res.resume();
        req.destroy();
        if (!loc) return this.lost(gen, `redirect ${status} without Location`);
        if (redirectsLeft <= 0) return this.lost(gen, `too many redirects (last to ${loc})`);
        this.leader = resolveRedirect(url, loc);
        this.clearWatchdog();
        return this.connect(redirectsLeft - 1, this.leader);
      }
      if (status !== 200) {
        readBody(res).then((text) => {
          if (gen !== this.generation) return;
          req.destroy();
          // 4xx other than 408/429: the master refused this SUBSCRIBE (bad request, auth, role); retrying will not help.
          if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
            this.fatal(new MesosSchedulerError(`SUBSCRIBE rejected: HTTP ${status}: ${text.trim()}`, 'subscribe', status));
          } else {
            this.lost(gen, `SUBSCRIBE: HTTP ${status}: ${text.trim().slice(0, 200)}`);
          }
        }, () => this.lost(gen, `SUBSCRIBE: HTTP ${status}`));
        return;
      }
      const streamId = firstHeader(res.headers['mesos-stream-id']);
      const decoder = new RecordIODecoder();
      let gotSubscribed = false;
      res.on('data', (chunk: Buffer) => {
        if (gen !== this.generation) return;
        let records: Buffer[];
        try {
          records = decoder.push(chunk);
        } catch (err) {
          this.emitError(new MesosSchedulerError((err as Error).message, 'stream'));
          return this.lost(gen, (err as Error).message);
        }
        for (const rec of records) {
          if (gen !== this.generation) return;
          let ev: MesosEvent;
          try {
            ev = JSON.parse(rec.toString('utf8')) as MesosEvent;
          } catch (err) {
            this.emitError(new MesosSchedulerError(`undecodable event: ${(err as Error).message}`, 'stream'));
            return this.lost(gen, 'undecodable event');
          }
          if (!gotSubscribed) {
            if (ev.type !== 'SUBSCRIBED') {
              if (ev.type === 'ERROR') return this.handleEvent(gen, ev);
              return this.lost(gen, `first event was ${ev.type}, not SUBSCRIBED`);
            }
            gotSubscribed = true;
            this.onSubscribed(gen, ev, url, streamId, failover);
            continue;
          }
          this.handleEvent(gen, ev);
        }
      });
      res.on('end', () => this.lost(gen, 'the master ended the stream'));
      res.on('close', () => this.lost(gen, 'the stream closed'));
      res.on('error', (err) => this.lost(gen, `stream error: ${err.message}`));
    });
    req.on('error', (err) => this.lost(gen, `SUBSCRIBE to ${url}: ${err.message}`));
    req.end(body);
  }

  private onSubscribed(gen: number, ev: MesosEvent, url: string, streamId: string | undefined, failover: boolean): void {
    const sub = ev.subscribed;
    if (!sub?.framework_id?.value) return this.lost(gen, 'SUBSCRIBED without framework_id');
    if (!streamId) return this.lost(gen, 'SUBSCRIBE response without Mesos-Stream-Id');
    this.fwId = sub.framework_id.value;
    this.sid = streamId;
    this.leader = url;
    this.state = 'subscribed';
    this.attempt = 0;
    this.subscribedOnce = true;
    const hb = sub.heartbeat_interval_seconds;
    this.heartbeatMs = hb && hb > 0 ? hb * 1000 * (this.o.missedHeartbeats ?? 5) : undefined;
    this.clearWatchdog();
    if (this.heartbeatMs) this.armWatchdog(gen, this.heartbeatMs, 'missed heartbeats');
    this.emit('event', ev);
    this.emit('subscribed', {
      frameworkId: this.fwId, streamId, heartbeatIntervalSeconds: hb, master: url, failover, masterInfo: sub.master_info,
    });
  }

  private handleEvent(gen: number, ev: MesosEvent): void {
    if (this.heartbeatMs) this.armWatchdog(gen, this.heartbeatMs, 'missed heartbeats');
    this.emit('event', ev);
    switch (ev.type) {
      case 'HEARTBEAT':
        this.emit('heartbeat');
        break;
      case 'OFFERS':
        if (ev.offers?.offers?.length) this.emit('offers', ev.offers.offers);
        break;
      case 'RESCIND':
        if (ev.rescind?.offer_id) this.emit('rescind', ev.rescind.offer_id.value);
        break;
      case 'UPDATE':
        if (ev.update?.status) this.emit('update', ev.update.status);
        break;
      case 'FAILURE':
        this.emit('failure', ev.failure ?? {});
        break;
      case 'MESSAGE':
        if (ev.message) this.emit('message', ev.message);
        break;
      case 'ERROR': {
        if (this.tearingDown) return this.shutdown('teardown'); // the master saying it removed us
        // "The scheduler should abort on receiving this event": stop, and let the user decide.
        const msg = ev.error?.message ?? (typeof ev.message === 'string' ? ev.message : 'unknown error');
        this.fatal(new MesosSchedulerError(msg, 'event'));
        break;
      }
      default:
        break; // unknown events are ignored (the enum may grow)
    }
  }

  private emitError(err: MesosSchedulerError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private fatal(err: MesosSchedulerError): void {
    this.emitError(err);
    this.shutdown(err.message);
  }

  /** The current subscription is gone: reconnect with backoff (once per generation). */
  private lost(gen: number, reason: string): void {
    if (gen !== this.generation || this.state === 'stopped') return;
    // After TEARDOWN the master closes the stream: that is the end, not a disconnection to recover from.
    if (this.tearingDown) return this.shutdown('teardown');
    this.generation++; // later callbacks of this connection are stale
    this.clearWatchdog();
    this.streamReq?.destroy();
    this.streamReq = undefined;
    this.sid = undefined;
    if (this.o.reconnect === false) {
      this.state = 'stopped';
      this.emit('disconnected', { reason, willReconnect: false });
      return;
    }
    const delay = this.backoffDelay();
    this.attempt++;
    this.state = 'backoff';
    this.emit('disconnected', { reason, willReconnect: true, retryInMs: delay });
    this.reconnectTimer = this.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state !== 'backoff') return;
      this.state = 'connecting';
      this.connect();
    }, delay);
  }

  /** Exponential (initial × 2^attempt, capped) with jitter: a random delay in [half, full]. */
  private backoffDelay(): number {
    const initial = this.o.backoff?.initialMs ?? 500;
    const max = this.o.backoff?.maxMs ?? 15_000;
    const full = Math.min(max, initial * 2 ** Math.min(this.attempt, 30));
    return Math.round(full / 2 + Math.random() * (full / 2));
  }

  private shutdown(reason: string): void {
    const was = this.state;
    this.state = 'stopped';
    this.generation++;
    this.clearWatchdog();
    this.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.streamReq?.destroy();
    this.streamReq = undefined;
    this.sid = undefined;
    // Calls still in flight (TEARDOWN's own answer, typically) finish first.
    if (this.inflight === 0) this.closeCallSockets();
    if (was !== 'stopped' && was !== 'idle') this.emit('disconnected', { reason, willReconnect: false });
  }

  private closeCallSockets(): void {
    this.callAgents.http.destroy();
    this.callAgents.https.destroy();
  }

  private armWatchdog(gen: number, ms: number, reason: string): void {
    this.clearWatchdog();
    this.heartbeatTimer = this.clock.setTimeout(() => this.lost(gen, reason), ms);
  }

  private clearWatchdog(): void {
    this.clock.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private authHeader(): Record<string, string> {
    const a = this.o.auth;
    if (!a) return {};
    if ('bearer' in a) return { Authorization: `Bearer ${a.bearer}` };
    return { Authorization: `Basic ${Buffer.from(`${a.principal}:${a.secret}`).toString('base64')}` };
  }

  /** One non-streaming POST, following 307s (the new location becomes the leader). */
  private async request(url: string, body: string, extra: Record<string, string>): Promise<RawResponse> {
    let target = url;
    for (let left = this.o.maxRedirects ?? 5; ; left--) {
      const res = await this.post(target, body, extra);
      const loc = res.headers.location;
      if ((res.status === 307 || res.status === 308) && loc && left > 0) {
        target = resolveRedirect(target, loc);
        this.leader = target;
        continue;
      }
      return res;
    }
  }

  private post(url: string, body: string, extra: Record<string, string>): Promise<RawResponse> {
    const target = new URL(url);
    const isHttps = target.protocol === 'https:';
    const mod = isHttps ? https : http;
    return new Promise<RawResponse>((resolve, reject) => {
      const req = mod.request(target, {
        method: 'POST',
        agent: isHttps ? this.callAgents.https : this.callAgents.http,
        timeout: this.o.requestTimeoutMs ?? 75_000,
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/json',
          'Content-Length': Buffer.byteLength(body),
          ...this.authHeader(),
          ...extra,
        },
      });
      req.on('timeout', () => req.destroy(new Error(`no response from ${url} in ${this.o.requestTimeoutMs ?? 75_000} ms`)));
      req.on('error', reject);
      req.on('response', (res) => {
        readBody(res).then((text) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, url }), reject);
      });
      req.end(body);
    });
  }
}

function id(value: string): Id {
  return { value };
}

function firstHeader(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

function readBody(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    res.on('data', (c: Buffer) => parts.push(c));
    res.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    res.on('error', reject);
  });
}
