/**
 * Health checks run by the agent: HTTP, TCP and COMMAND probes of the tasks
 * running on this machine, and the decision whether a task is healthy.
 *
 * Semantics (Marathon's, with one deliberate difference noted):
 * - **delaySeconds**: the first probe runs `delaySeconds` after the task started; then one
 *   probe every `intervalSeconds` (measured from the start of the previous probe; probes of one
 *   check never overlap).
 * - **timeoutSeconds**: a probe that has not answered by then fails ("timed out after Ns"); the
 *   request / connection / command is aborted, never left hanging.
 * - **gracePeriodSeconds**: failures within the grace period after the task started are
 *   ignored, until the first success; after a first success the grace period no longer applies.
 * - **maxConsecutiveFailures**: a success makes the check healthy and resets the failure count;
 *   the check turns unhealthy once `maxConsecutiveFailures` failures (that count) follow each
 *   other; fewer leave its previous verdict (healthy, or unknown before any verdict). `0`: the
 *   check never turns unhealthy. Difference from Marathon: Marathon reports a check not alive
 *   after any failure and *kills* the task after maxConsecutiveFailures; Shoal's agent kills
 *   nothing and turns `healthy` false after maxConsecutiveFailures (the issue's "Done when").
 * - A check is **unknown** until its first verdict. A task is healthy when all its checks are
 *   healthy, unhealthy when any is unhealthy, unknown otherwise (nothing is reported then); a
 *   task without checks never gets a `healthy` field.
 *
 * Readiness checks (Marathon's): an HTTP or HTTPS GET of `path` on the task's port
 * (`portName`, else `portIndex`, else the first); the first as soon as the task runs, then one
 * every `intervalSeconds` (from the start of the previous) until one answers a status in
 * `httpStatusCodesForReady` within `timeoutSeconds`. Then the check is done: the task is ready
 * for good (readiness gates a new task's start, it is not a health check). Once every check of
 * the task passed, `status.ready` is set true; until then each check's last result (and with
 * `preserveLastResponse`, the response) is reported when it changes. HTTPS does not verify the
 * task's certificate, as Marathon's does not.
 *
 * The decision part (HealthState, overallHealth, ReadinessState) is pure: time comes in as `now`
 * (ms). The probers and HealthMonitor do the I/O and the timers, on an injected Clock (unref'd
 * on the real one: they never keep a process alive).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { Logger } from 'pino';
import type { HealthCheck, ReadinessCheck, ReadinessCheckResult, TaskSpec } from '../api/types.generated';
import type { Runtime } from '../runtime/types';
import { errorMessage } from '../util/backoff';
import { realClock, type Clock, type TimerHandle } from '../util/clock';
import { taskRefKey, type TaskRef } from './status';

/** Marathon's defaults (schemas/meta.json), for specs that did not go through admission. */
const DEFAULTS = { protocol: 'HTTP', path: '/', gracePeriodSeconds: 300, intervalSeconds: 60, timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15 } as const;
/** Marathon's readiness defaults (schemas/meta.json). */
const READINESS_DEFAULTS = { name: 'readinessCheck', protocol: 'HTTP', path: '/', intervalSeconds: 30, timeoutSeconds: 10, httpStatusCodesForReady: [200], preserveLastResponse: false } as const;
/** A probe reason is kept this short in the status (command output can be long). */
const MAX_REASON = 300;
/** A readiness response body is kept this long (preserveLastResponse): status lives in etcd. */
export const MAX_READINESS_BODY = 4096;

export type Verdict = 'healthy' | 'unhealthy' | 'unknown';

/** The outcome of one probe. */
export interface ProbeResult {
  ok: boolean;
  /** Why it failed (or what it saw). */
  reason?: string;
}

/** A HealthCheck with every default filled. */
export type FullHealthCheck = HealthCheck;

export function withDefaults(c: Partial<HealthCheck>): FullHealthCheck {
  return { ...DEFAULTS, ...stripUndefined(c) } as FullHealthCheck;
}

/** The state of one check of one task. Pure: `now` (ms since the epoch) is passed in. */
export class HealthState {
  private verdictNow: Verdict = 'unknown';
  private failures = 0;
  private succeededOnce = false;
  private lastFailure?: string;

  constructor(readonly check: FullHealthCheck, readonly startedAtMs: number) {}

  get verdict(): Verdict {
    return this.verdictNow;
  }

  /** Consecutive failures that counted (outside the grace period). */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** The reason of the last failure that counted. */
  get lastFailureReason(): string | undefined {
    return this.lastFailure;
  }

  /** When the first probe is due. */
  firstProbeAt(): number {
    return this.startedAtMs + this.check.delaySeconds * 1000;
  }

  /** Whether a failure at `now` is ignored: within the grace period, before any success. */
  inGracePeriod(now: number): boolean {
    return !this.succeededOnce && now < this.startedAtMs + this.check.gracePeriodSeconds * 1000;
  }

  /** Takes one probe result and returns the check's verdict after it. */
  record(result: ProbeResult, now: number): Verdict {
    if (result.ok) {
      this.succeededOnce = true;
      this.failures = 0;
      this.verdictNow = 'healthy';
      return this.verdictNow;
    }
    if (this.inGracePeriod(now)) return this.verdictNow;
    this.failures++;
    this.lastFailure = result.reason ?? 'failed';
    const max = this.check.maxConsecutiveFailures;
    if (max > 0 && this.failures >= max) this.verdictNow = 'unhealthy';
    return this.verdictNow;
  }
}

/** A task's health from its checks' verdicts: undefined when it has none, or none decided yet. */
export function overallHealth(verdicts: Verdict[]): boolean | undefined {
  if (verdicts.length === 0) return undefined;
  if (verdicts.some((v) => v === 'unhealthy')) return false;
  return verdicts.every((v) => v === 'healthy') ? true : undefined;
}

// ---- probers ---------------------------------------------------------------------------------

/** Where the check's port is: spec.ports[portIndex], or the port named portName (index 0 by default). */
export function checkHostPort(check: Pick<HealthCheck, 'portName' | 'portIndex'>, spec: Pick<TaskSpec, 'ports'>): number | string {
  const ports = spec.ports ?? [];
  if (check.portName !== undefined) {
    const p = ports.find((x) => x.name === check.portName);
    return p ? p.hostPort : `the task has no port named ${check.portName}`;
  }
  const i = check.portIndex ?? 0;
  return ports[i] ? ports[i].hostPort : `the task has no port at index ${i}`;
}

/** GET http://host:port/path: 2xx–3xx is healthy. Aborted after `timeoutMs`. */
export function probeHttp(host: string, port: number, path: string, timeoutMs: number, clock: Clock = realClock): Promise<ProbeResult> {
  const url = `http://${host}:${port}${path.startsWith('/') ? path : `/${path}`}`;
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = http.get(url, { agent: false, headers: { 'user-agent': 'shoal-agent-health', connection: 'close' } }, (res) => {
      const code = res.statusCode ?? 0;
      res.resume();
      finish(code >= 200 && code < 400 ? { ok: true, reason: `HTTP GET ${url} returned ${code}` } : { ok: false, reason: `HTTP GET ${url} returned ${code}` });
    });
    req.on('error', (err) => finish({ ok: false, reason: `HTTP GET ${url} failed: ${errorMessage(err)}` }));
    const timer = clock.setTimeout(() => finish({ ok: false, reason: `HTTP GET ${url} timed out after ${timeoutMs / 1000}s` }), timeoutMs).unref();
  });
}

/** A TCP connect to host:port within `timeoutMs`. */
export function probeTcp(host: string, port: number, timeoutMs: number, clock: Clock = realClock): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const sock = net.connect({ host, port });
    sock.once('connect', () => finish({ ok: true, reason: `TCP ${host}:${port} accepted` }));
    sock.once('error', (err) => finish({ ok: false, reason: `TCP connect to ${host}:${port} failed: ${errorMessage(err)}` }));
    const timer = clock.setTimeout(() => finish({ ok: false, reason: `TCP connect to ${host}:${port} timed out after ${timeoutMs / 1000}s` }), timeoutMs).unref();
  });
}

/** runtime.exec of the command in the task's context: exit 0 is healthy. */
export async function probeCommand(runtime: Pick<Runtime, 'exec'>, ref: { namespace: string; name: string }, command: string, timeoutSeconds: number, clock: Clock = realClock): Promise<ProbeResult> {
  if (!runtime.exec) return { ok: false, reason: 'COMMAND checks need a runtime with exec' };
  let timer: TimerHandle | undefined;
  // The runtime enforces the timeout itself; this guard (1 s later) only protects against a runtime that hangs.
  const guard = new Promise<ProbeResult>((resolve) => {
    timer = clock.setTimeout(() => resolve({ ok: false, reason: `command timed out after ${timeoutSeconds}s` }), timeoutSeconds * 1000 + 1000).unref();
  });
  const run = runtime.exec(ref.namespace, ref.name, command, timeoutSeconds).then(
    (r): ProbeResult => {
      if (r.timedOut) return { ok: false, reason: `command timed out after ${timeoutSeconds}s` };
      const out = r.output.trim();
      return r.exitCode === 0 ? { ok: true } : { ok: false, reason: `command exited with code ${r.exitCode}${out ? `: ${out}` : ''}` };
    },
    (err): ProbeResult => ({ ok: false, reason: `command could not run: ${errorMessage(err)}` }),
  );
  try {
    return await Promise.race([run, guard]);
  } finally {
    clock.clearTimeout(timer);
  }
}

/** Runs one probe of `check` against a task; never rejects. */
export type Prober = (ref: TaskRef, spec: TaskSpec, check: FullHealthCheck) => Promise<ProbeResult>;

/** The real prober: HTTP and TCP against `host` (the agent's own machine), COMMAND via the runtime. */
export function defaultProber(runtime: Pick<Runtime, 'exec'>, host = '127.0.0.1', clock: Clock = realClock): Prober {
  return async (ref, spec, check) => {
    try {
      if (check.protocol === 'COMMAND') return await probeCommand(runtime, ref, check.command?.value ?? '', check.timeoutSeconds, clock);
      const port = checkHostPort(check, spec);
      if (typeof port === 'string') return { ok: false, reason: port };
      const timeoutMs = check.timeoutSeconds * 1000;
      return check.protocol === 'TCP' ? await probeTcp(host, port, timeoutMs, clock) : await probeHttp(host, port, check.path, timeoutMs, clock);
    } catch (err) {
      return { ok: false, reason: errorMessage(err) };
    }
  };
}

// ---- readiness -------------------------------------------------------------------------------

export function readinessWithDefaults(c: Partial<ReadinessCheck>): ReadinessCheck {
  return { ...READINESS_DEFAULTS, ...stripUndefined(c) } as ReadinessCheck;
}

/** The outcome of one readiness probe. */
export interface ReadinessProbeResult {
  ready: boolean;
  /** What it saw: `HTTP GET <url> returned 503 (ready: 200)`, a connection error, a timeout. */
  message: string;
  /** The response, when there was one. */
  response?: { status: number; contentType?: string; body?: string };
}

/**
 * The state of one readiness check of one task. Pure. Ready after the first probe that passes,
 * and for good: no probe is needed after that.
 */
export class ReadinessState {
  private last?: ReadinessProbeResult;

  constructor(readonly check: ReadinessCheck) {}

  get ready(): boolean {
    return this.last?.ready === true;
  }

  /** Takes one probe result (ignored once ready). */
  record(result: ReadinessProbeResult): void {
    if (!this.ready) this.last = result;
  }

  /** The check's result as Task status reports it; undefined before the first probe. */
  result(): ReadinessCheckResult | undefined {
    if (!this.last) return undefined;
    const r: ReadinessCheckResult = { name: this.check.name, ready: this.last.ready, message: truncate(this.last.message) };
    if (this.check.preserveLastResponse && this.last.response) r.lastResponse = this.last.response;
    return r;
  }
}

/**
 * GET (HTTP or HTTPS, the certificate unchecked) of the check's path: ready when the status is
 * one of `codes`. The body is read (up to {@link MAX_READINESS_BODY}) only when `keepBody`.
 * Aborted after `timeoutMs`; never rejects.
 */
export function probeReadiness(
  protocol: 'HTTP' | 'HTTPS', host: string, port: number, path: string, codes: number[], timeoutMs: number, keepBody: boolean, clock: Clock = realClock,
): Promise<ReadinessProbeResult> {
  const scheme = protocol === 'HTTPS' ? 'https' : 'http';
  const url = `${scheme}://${host}:${port}${path.startsWith('/') ? path : `/${path}`}`;
  const get = protocol === 'HTTPS' ? https.get : http.get;
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ReadinessProbeResult) => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = get(url, { agent: false, rejectUnauthorized: false, headers: { 'user-agent': 'shoal-agent-readiness', connection: 'close' } }, (res) => {
      const status = res.statusCode ?? 0;
      const ready = codes.includes(status);
      const message = `${protocol} GET ${url} returned ${status}${ready ? '' : ` (ready: ${codes.join(', ')})`}`;
      const contentType = res.headers['content-type'];
      const respond = (body?: string) => finish({ ready, message, response: { status, ...(contentType ? { contentType } : {}), ...(body !== undefined ? { body } : {}) } });
      if (!keepBody) {
        res.resume();
        return respond();
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        if (body.length >= MAX_READINESS_BODY) respond(body.slice(0, MAX_READINESS_BODY));
      });
      res.on('end', () => respond(body));
      res.on('error', () => respond(body));
    });
    req.on('error', (err) => finish({ ready: false, message: `${protocol} GET ${url} failed: ${errorMessage(err)}` }));
    const timer = clock.setTimeout(() => finish({ ready: false, message: `${protocol} GET ${url} timed out after ${timeoutMs / 1000}s` }), timeoutMs).unref();
  });
}

/** Runs one probe of a readiness check against a task; never rejects. */
export type ReadinessProber = (ref: TaskRef, spec: TaskSpec, check: ReadinessCheck) => Promise<ReadinessProbeResult>;

/** The real readiness prober: HTTP(S) against `host` (the agent's own machine). */
export function defaultReadinessProber(host = '127.0.0.1', clock: Clock = realClock): ReadinessProber {
  return async (_ref, spec, check) => {
    try {
      const port = checkHostPort(check, spec);
      if (typeof port === 'string') return { ready: false, message: port };
      return await probeReadiness(check.protocol, host, port, check.path, check.httpStatusCodesForReady, check.timeoutSeconds * 1000, check.preserveLastResponse, clock);
    } catch (err) {
      return { ready: false, message: errorMessage(err) };
    }
  };
}

// ---- monitor ----------------------------------------------------------------------------------

export interface HealthMonitorOptions {
  prober: Prober;
  /** The task's overall health changed (never called with unknown). */
  onChange(ref: TaskRef, healthy: boolean, message: string): void;
  /** Probes readiness checks. @default defaultReadinessProber on 127.0.0.1 */
  readinessProber?: ReadinessProber;
  /**
   * A readiness result changed: `ready` once every readiness check passed (then never again for
   * the task), else false with each check's last result.
   */
  onReadiness?(ref: TaskRef, ready: boolean, results: ReadinessCheckResult[]): void;
  logger?: Logger;
  /** Time and timers. @default realClock */
  clock?: Clock;
}

interface Watched {
  ref: TaskRef;
  spec: TaskSpec;
  states: HealthState[];
  timers: Array<TimerHandle | undefined>;
  healthy?: boolean;
  readiness: ReadinessState[];
  readinessTimers: Array<TimerHandle | undefined>;
  /** The readiness results last reported (JSON), so an unchanged result is not written again. */
  readinessReported?: string;
  stopped: boolean;
}

/** Probes the checks of running tasks: one unref'd timer per task check. */
export class HealthMonitor {
  private readonly tasks = new Map<string, Watched>();
  private readonly clock: Clock;
  private readonly readinessProber: ReadinessProber;

  constructor(private readonly o: HealthMonitorOptions) {
    this.clock = o.clock ?? realClock;
    this.readinessProber = o.readinessProber ?? defaultReadinessProber('127.0.0.1', this.clock);
  }

  /** Task keys (`namespace/name`) being probed. */
  watched(): string[] {
    return [...this.tasks.keys()].sort();
  }

  /**
   * Starts probing a task's health and readiness checks (replacing any earlier probing of the
   * same key). No checks: nothing. Readiness is probed at once, health checks after delaySeconds.
   */
  start(ref: TaskRef, spec: TaskSpec, startedAtMs: number): void {
    const key = taskRefKey(ref);
    this.stop(key);
    const checks = (spec.healthChecks ?? []).map(withDefaults);
    const readiness = (spec.readinessChecks ?? []).map(readinessWithDefaults);
    if (checks.length === 0 && readiness.length === 0) return;
    const w: Watched = {
      ref, spec, states: checks.map((c) => new HealthState(c, startedAtMs)), timers: checks.map(() => undefined),
      readiness: readiness.map((c) => new ReadinessState(c)), readinessTimers: readiness.map(() => undefined), stopped: false,
    };
    this.tasks.set(key, w);
    w.states.forEach((s, i) => this.schedule(w, i, s.firstProbeAt() - this.clock.now()));
    w.readiness.forEach((_s, i) => this.scheduleReadiness(w, i, 0));
  }

  /** Stops probing a task; a probe in flight is ignored when it ends. */
  stop(key: string): void {
    const w = this.tasks.get(key);
    if (!w) return;
    w.stopped = true;
    w.timers.forEach((t) => this.clock.clearTimeout(t));
    w.readinessTimers.forEach((t) => this.clock.clearTimeout(t));
    this.tasks.delete(key);
  }

  stopAll(): void {
    [...this.tasks.keys()].forEach((k) => this.stop(k));
  }

  private schedule(w: Watched, i: number, delayMs: number): void {
    if (w.stopped) return;
    w.timers[i] = this.clock.setTimeout(() => void this.probe(w, i), Math.max(0, delayMs)).unref();
  }

  private scheduleReadiness(w: Watched, i: number, delayMs: number): void {
    if (w.stopped) return;
    w.readinessTimers[i] = this.clock.setTimeout(() => void this.probeReadiness(w, i), Math.max(0, delayMs)).unref();
  }

  /** One readiness probe; the next one `intervalSeconds` after this one began, until the check passes. */
  private async probeReadiness(w: Watched, i: number): Promise<void> {
    const state = w.readiness[i];
    const began = this.clock.now();
    let result: ReadinessProbeResult;
    try {
      result = await this.readinessProber(w.ref, w.spec, state.check);
    } catch (err) {
      result = { ready: false, message: errorMessage(err) };
    }
    if (w.stopped) return;
    state.record(result);
    if (!state.ready) {
      this.o.logger?.debug({ task: taskRefKey(w.ref), check: state.check.name, message: result.message }, 'readiness check not passed');
      this.scheduleReadiness(w, i, state.check.intervalSeconds * 1000 - (this.clock.now() - began));
    }
    this.reportReadiness(w);
  }

  /** Reports the task's readiness when its results changed; ready once every check passed. */
  private reportReadiness(w: Watched): void {
    const results = w.readiness.map((s) => s.result()).filter((r): r is ReadinessCheckResult => r !== undefined);
    const ready = w.readiness.every((s) => s.ready);
    const json = JSON.stringify([ready, results]);
    if (json === w.readinessReported) return;
    w.readinessReported = json;
    this.o.onReadiness?.(w.ref, ready, results);
  }

  private async probe(w: Watched, i: number): Promise<void> {
    const state = w.states[i];
    const began = this.clock.now();
    let result: ProbeResult;
    try {
      result = await this.o.prober(w.ref, w.spec, state.check);
    } catch (err) {
      result = { ok: false, reason: errorMessage(err) };
    }
    if (w.stopped) return;
    const before = state.verdict;
    const now = this.clock.now();
    const after = state.record(result, now);
    if (!result.ok && after !== 'unhealthy') {
      this.o.logger?.debug({ task: taskRefKey(w.ref), check: i, reason: result.reason, failures: state.consecutiveFailures, grace: state.inGracePeriod(now) }, 'health check failed');
    }
    if (before !== after) this.update(w);
    this.schedule(w, i, state.check.intervalSeconds * 1000 - (now - began));
  }

  private update(w: Watched): void {
    const healthy = overallHealth(w.states.map((s) => s.verdict));
    if (healthy === undefined || healthy === w.healthy) return;
    w.healthy = healthy;
    let message: string;
    if (healthy) message = w.states.length === 1 ? 'health check passed' : `all ${w.states.length} health checks passed`;
    else {
      const i = w.states.findIndex((s) => s.verdict === 'unhealthy');
      const s = w.states[i];
      const which = w.states.length > 1 ? `health check ${i} (${s.check.protocol})` : `${s.check.protocol} health check`;
      message = truncate(`${which} failed ${s.consecutiveFailures} times in a row: ${s.lastFailureReason}`);
    }
    this.o.onChange(w.ref, healthy, message);
  }
}

function truncate(s: string): string {
  return s.length > MAX_REASON ? `${s.slice(0, MAX_REASON - 1)}…` : s;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
