/**
 * A small HTTP client for the Shoal API on the global fetch: bearer token, JSON bodies, Status
 * errors as ApiError, network failures as one-line CliErrors, and a resumable watch.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import type { AppRevision } from '../api/apps';
import type { KindInfo } from '../api/kinds';
import type { FieldCause, ShoalObject } from '../api/validation';
import type { ServerTrust } from './config';
import { ApiError, CliError, messageOf } from './errors';
import { ndjsonLines, WatchTracker, type WatchEvent } from './watch';

export type { WatchEvent } from './watch';

/** A list response: `{kind: "AppList", apiVersion, metadata: {resourceVersion}, items}`. */
export interface ObjectList {
  kind: string;
  apiVersion: string;
  metadata: { resourceVersion?: string };
  items: ShoalObject[];
}

export interface ListOptions {
  /** Kubernetes label selector syntax, evaluated by the server. */
  labelSelector?: string;
}

export interface WatchOptions extends ListOptions {
  /** Changes after this revision; absent: an ADDED event per existing object first. */
  resourceVersion?: string;
  /** Objects the caller already has (from its list), so a relist after 410 reports only differences. */
  known?: ShoalObject[];
}

export interface LogOptions {
  /** Only the last N lines. */
  tail?: number;
  /** Keep streaming what the task prints until `signal` aborts or the task ends. */
  follow?: boolean;
  signal?: AbortSignal;
}

export interface WriteOptions {
  /** `?dryRun=All`: validate and admit on the server, write nothing. */
  dryRun?: boolean;
}

/**
 * What commands need from the apiserver. `namespace` is undefined for cluster-scoped kinds, and
 * for list/watch across all namespaces. Implemented by {@link HttpClient}; tests pass fakes.
 */
export interface ResourceClient {
  get(kind: KindInfo, namespace: string | undefined, name: string): Promise<ShoalObject>;
  list(kind: KindInfo, namespace: string | undefined, opts?: ListOptions): Promise<ObjectList>;
  create(kind: KindInfo, namespace: string | undefined, obj: ShoalObject, opts?: WriteOptions): Promise<ShoalObject>;
  replace(kind: KindInfo, namespace: string | undefined, name: string, obj: ShoalObject, opts?: WriteOptions): Promise<ShoalObject>;
  /** JSON merge patch (RFC 7386). */
  patch(kind: KindInfo, namespace: string | undefined, name: string, patch: object): Promise<ShoalObject>;
  delete(kind: KindInfo, namespace: string | undefined, name: string): Promise<ShoalObject>;
  /** A task's output (`.../tasks/{name}/log`), as it arrives; ends at the end of the log, or at `signal`. */
  logs?(namespace: string, name: string, opts?: LogOptions): Promise<AsyncIterable<Uint8Array>>;
  /** An App's stored spec versions, newest first (`.../apps/{name}/revisions`). */
  revisions?(namespace: string, name: string): Promise<AppRevision[]>;
  /**
   * A manual run of a Job (`POST .../jobs/{name}/run`); `created` is false when a run of the same
   * idempotency key existed already.
   */
  runJob?(namespace: string, name: string, idempotencyKey?: string): Promise<{ run: ShoalObject; created: boolean }>;
  /** Changes until the stream is interrupted (SIGINT) or the consumer stops iterating. */
  watch(kind: KindInfo, namespace: string | undefined, opts?: WatchOptions): AsyncIterable<WatchEvent>;
}

/** The URL path of a collection (no name) or of one object. */
export function resourcePath(kind: KindInfo, namespace: string | undefined, name?: string): string {
  const base = kind.namespaced && namespace !== undefined
    ? `/api/v1/namespaces/${encodeURIComponent(namespace)}/${kind.plural}`
    : `/api/v1/${kind.plural}`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

export interface HttpClientOptions {
  /** `http://127.0.0.1:6443`, without a trailing slash. */
  server: string;
  token?: string;
  fetch?: typeof fetch;
  /** Subscribes to SIGINT; watches end cleanly when it fires. */
  onInterrupt?: (handler: () => void) => () => void;
  /** How to trust an https server (else the system's CAs). */
  tls?: ServerTrust;
  /** Per-request timeout (not for watches); default 30 s. */
  timeoutMs?: number;
  /** Waits between retries (429) and watch reconnects; injectable so tests do not sleep. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

interface SendOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

/** 429 answers are retried this many times, honouring Retry-After (capped). */
const MAX_RETRIES_429 = 3;
const MAX_RETRY_AFTER_MS = 5000;

/**
 * undici's fetch (the one Node ships, as a package): the dispatcher that carries the CA comes
 * from the same package, so the two always agree on its interface and on their error codes.
 */
export const undiciHttpFetch: typeof fetch = (input, init) => undiciFetch(input as string, init as never) as unknown as Promise<Response>;

/** {@link ResourceClient} over HTTP. */
export class HttpClient implements ResourceClient {
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(private readonly opts: HttpClientOptions) {
    const base = opts.fetch ?? undiciHttpFetch;
    // Node's fetch takes its TLS settings from an undici dispatcher (no `ca` option of its own).
    const dispatcher = opts.tls && new Agent({ connect: { ...(opts.tls.ca && { ca: opts.tls.ca }), rejectUnauthorized: !opts.tls.insecureSkipVerify } });
    this.fetch = dispatcher ? (input, init) => base(input, { ...init, dispatcher } as RequestInit) : base;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.sleep = opts.sleep ?? sleep;
  }

  get(kind: KindInfo, namespace: string | undefined, name: string): Promise<ShoalObject> {
    return this.json('GET', resourcePath(kind, namespace, name)) as Promise<ShoalObject>;
  }

  list(kind: KindInfo, namespace: string | undefined, opts: ListOptions = {}): Promise<ObjectList> {
    const query = { labelSelector: opts.labelSelector || undefined };
    return this.json('GET', resourcePath(kind, namespace), { query }) as Promise<ObjectList>;
  }

  create(kind: KindInfo, namespace: string | undefined, obj: ShoalObject, opts: WriteOptions = {}): Promise<ShoalObject> {
    return this.json('POST', resourcePath(kind, namespace), { body: obj, query: dryRun(opts) }) as Promise<ShoalObject>;
  }

  replace(kind: KindInfo, namespace: string | undefined, name: string, obj: ShoalObject, opts: WriteOptions = {}): Promise<ShoalObject> {
    return this.json('PUT', resourcePath(kind, namespace, name), { body: obj, query: dryRun(opts) }) as Promise<ShoalObject>;
  }

  patch(kind: KindInfo, namespace: string | undefined, name: string, patch: object): Promise<ShoalObject> {
    const init = { body: patch, contentType: 'application/merge-patch+json' };
    return this.json('PATCH', resourcePath(kind, namespace, name), init) as Promise<ShoalObject>;
  }

  delete(kind: KindInfo, namespace: string | undefined, name: string): Promise<ShoalObject> {
    return this.json('DELETE', resourcePath(kind, namespace, name)) as Promise<ShoalObject>;
  }

  /** See {@link ResourceClient.logs}. No timeout: a followed log is open for as long as the user wants. */
  async logs(namespace: string, name: string, opts: LogOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    const query = { tail: opts.tail === undefined ? undefined : String(opts.tail), follow: opts.follow ? 'true' : undefined };
    const path = `${resourcePath({ plural: 'tasks', namespaced: true } as KindInfo, namespace, name)}/log`;
    const res = await this.send('GET', path, { query, signal: opts.signal });
    if (!res.ok) await readJson(res); // throws the Status as ApiError
    return (res.body ?? []) as unknown as AsyncIterable<Uint8Array>;
  }

  /** See {@link ResourceClient.revisions}. */
  async revisions(namespace: string, name: string): Promise<AppRevision[]> {
    const path = `${resourcePath({ plural: 'apps', namespaced: true } as KindInfo, namespace, name)}/revisions`;
    const list = (await this.json('GET', path)) as { items?: AppRevision[] };
    return list.items ?? [];
  }

  /** See {@link ResourceClient.runJob}: 201 is a new run, 200 the run of an idempotency key used before. */
  async runJob(namespace: string, name: string, idempotencyKey?: string): Promise<{ run: ShoalObject; created: boolean }> {
    const path = `${resourcePath({ plural: 'jobs', namespaced: true } as KindInfo, namespace, name)}/run`;
    const { status, body } = await this.jsonWithStatus('POST', path, { body: idempotencyKey === undefined ? {} : { idempotencyKey } });
    return { run: body as ShoalObject, created: status === 201 };
  }

  /** Sends a request and returns the parsed JSON body; throws ApiError or CliError. */
  async json(method: string, path: string, init: SendOptions = {}): Promise<unknown> {
    return (await this.jsonWithStatus(method, path, init)).body;
  }

  /** {@link json} with the response's status code. */
  private async jsonWithStatus(method: string, path: string, init: SendOptions): Promise<{ status: number; body: unknown }> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.send(method, path, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
      if (res.status === 429 && attempt < MAX_RETRIES_429) {
        await res.body?.cancel();
        await this.sleep(retryAfterMs(res));
        continue;
      }
      return { status: res.status, body: await readJson(res) };
    }
  }

  /** Follows a collection: see {@link ResourceClient.watch}. Resumes after 410 by relisting. */
  async *watch(kind: KindInfo, namespace: string | undefined, opts: WatchOptions = {}): AsyncGenerator<WatchEvent> {
    const abort = new AbortController();
    const unsubscribe = this.opts.onInterrupt?.(() => abort.abort());
    const tracker = new WatchTracker(opts.known);
    const state = { resourceVersion: opts.resourceVersion };
    try {
      while (!abort.signal.aborted) {
        const expired = yield* this.streamOnce(kind, namespace, opts, state, tracker, abort.signal);
        if (expired) yield* this.relist(kind, namespace, opts, state, tracker);
        else await this.sleep(1000, abort.signal); // the server ended the stream (timeout, restart): resume
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    } finally {
      unsubscribe?.();
      abort.abort(); // releases the connection when the consumer stops early
    }
  }

  /** Reads one watch stream to its end; true when the server said the revision expired (410). */
  private async *streamOnce(
    kind: KindInfo, namespace: string | undefined, opts: WatchOptions,
    state: { resourceVersion?: string }, tracker: WatchTracker, signal: AbortSignal,
  ): AsyncGenerator<WatchEvent, boolean> {
    const query = { watch: 'true', resourceVersion: state.resourceVersion, labelSelector: opts.labelSelector || undefined };
    const res = await this.send('GET', resourcePath(kind, namespace), { query, signal });
    if (res.status === 410) return true;
    if (!res.ok) await readJson(res); // throws the Status as ApiError
    if (!res.body) return false;
    try {
      for await (const line of ndjsonLines(res.body as unknown as AsyncIterable<Uint8Array>)) {
        const ev = parseWatchLine(line);
        if (ev.type === 'ERROR') {
          if (ev.status.code === 410) return true;
          throw statusToError(ev.status, 500, 'watch error');
        }
        const rv = ev.object.metadata?.resourceVersion;
        if (rv) state.resourceVersion = rv;
        if (ev.type === 'BOOKMARK') continue;
        const change: WatchEvent = { type: ev.type, object: ev.object };
        if (tracker.observe(change)) yield change;
      }
    } catch (err) {
      if (signal.aborted || err instanceof CliError) throw err;
      throw new CliError(`lost watch connection to ${this.opts.server}: ${networkReason(err)}`);
    }
    return false;
  }

  private async *relist(
    kind: KindInfo, namespace: string | undefined, opts: WatchOptions,
    state: { resourceVersion?: string }, tracker: WatchTracker,
  ): AsyncGenerator<WatchEvent> {
    const list = await this.list(kind, namespace, opts);
    state.resourceVersion = list.metadata.resourceVersion;
    yield* tracker.resync(list.items);
  }

  private async send(method: string, path: string, init: SendOptions): Promise<Response> {
    const url = this.opts.server + path + queryString(init.query);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.opts.token) headers.Authorization = `Bearer ${this.opts.token}`;
    if (init.body !== undefined) headers['Content-Type'] = init.contentType ?? 'application/json';
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    try {
      return await this.fetch(url, { method, headers, body, signal: init.signal });
    } catch (err) {
      if (init.signal?.aborted && (err as Error).name === 'TimeoutError') {
        throw new CliError(`request to ${this.opts.server} timed out after ${Math.round(this.timeoutMs / 1000)}s`);
      }
      if (init.signal?.aborted) throw err;
      const hint = this.opts.server.startsWith('http://') && /connection (reset|closed)/.test(networkReason(err)) ? ' (does it serve HTTPS? try https://)' : '';
      throw new CliError(`cannot reach server ${this.opts.server}: ${networkReason(err)}${hint}`);
    }
  }
}

type WatchLine =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK'; object: ShoalObject }
  | { type: 'ERROR'; status: Record<string, unknown> };

function parseWatchLine(line: string): WatchLine {
  let ev: { type?: unknown; object?: unknown };
  try {
    ev = JSON.parse(line) as typeof ev;
  } catch {
    throw new CliError('invalid watch event from server: not JSON');
  }
  const obj = ev.object as ShoalObject | undefined;
  if (ev.type === 'ERROR') return { type: 'ERROR', status: (ev.object ?? {}) as Record<string, unknown> };
  if (!['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK'].includes(String(ev.type)) || !obj || typeof obj !== 'object') {
    throw new CliError(`invalid watch event from server: type ${JSON.stringify(ev.type)}`);
  }
  return { type: ev.type as 'ADDED', object: obj };
}

async function readJson(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!res.ok) throw statusError(res, text);
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`invalid response from server: ${res.status} with a body that is not JSON`);
  }
}

/** Turns an error response into an ApiError, from its Status body when there is one. */
export function statusError(res: Response, text: string): ApiError {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const fallback = `server returned ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  if (body && typeof body === 'object' && (body as { kind?: unknown }).kind === 'Status') {
    return statusToError(body as Record<string, unknown>, res.status, fallback);
  }
  return new ApiError(res.status, res.statusText || 'Unknown', fallback);
}

function statusToError(status: Record<string, unknown>, code: number, fallback: string): ApiError {
  const details = (status.details ?? {}) as { causes?: unknown };
  const causes: FieldCause[] = Array.isArray(details.causes)
    ? details.causes.map((c: { field?: unknown; message?: unknown }) => ({ field: String(c?.field ?? ''), message: String(c?.message ?? '') }))
    : [];
  const message = typeof status.message === 'string' && status.message ? status.message : fallback;
  return new ApiError(typeof status.code === 'number' ? status.code : code, String(status.reason ?? 'Unknown'), message, causes);
}

const UNTRUSTED = 'the server\'s certificate is not signed by a CA this client trusts (set certificate-authority in the config file, or pass --certificate-authority)';

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'name resolution failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'connection closed by server',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: UNTRUSTED,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: UNTRUSTED,
  SELF_SIGNED_CERT_IN_CHAIN: UNTRUSTED,
  DEPTH_ZERO_SELF_SIGNED_CERT: UNTRUSTED,
  ERR_TLS_CERT_ALTNAME_INVALID: 'the server\'s certificate is not valid for this host name',
  CERT_HAS_EXPIRED: 'the server\'s certificate has expired',
};

/** Explains a fetch failure in a few words; Node puts the errno in `cause` (or in an AggregateError). */
export function networkReason(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause ?? err;
  const first = cause instanceof AggregateError ? cause.errors[0] : undefined;
  // The errno may sit deeper (a dispatcher's error wrapping the socket's): the first known code wins.
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const inner = e instanceof AggregateError ? e.errors[0] : e;
    const code = (inner as { code?: string })?.code;
    if (code && NETWORK_REASONS[code]) return NETWORK_REASONS[code];
  }
  return messageOf(first ?? cause);
}

function retryAfterMs(res: Response): number {
  const seconds = Number(res.headers.get('retry-after'));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, MAX_RETRY_AFTER_MS) : 1000;
}

function dryRun(opts: WriteOptions): Record<string, string | undefined> {
  return { dryRun: opts.dryRun ? 'All' : undefined };
}

function queryString(query: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v);
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
