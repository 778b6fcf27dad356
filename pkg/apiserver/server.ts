/**
 * The Shoal API server: REST over express with authentication, authorization, admission,
 * watch streams, overload protection, /healthz, /readyz and /metrics. Stateless: etcd holds
 * everything, so any number of these can run behind a load balancer.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { API_VERSION, KINDS, kindByPlural, type KindInfo, type Verb } from '../api/kinds';
import { parseSelector, SelectorError } from '../api/labels';
import { compileValidators, type ShoalObject } from '../api/validation';
import { DEFAULT_PREFIX, kindPrefix } from '../store/objects';
import type { Store } from '../store/types';
import type { Task } from '../api/types.generated';
import { createLogger, type Logger } from '../util/log';
import { AuthenticationError, authorize, type TokenAuthenticator, type User } from './auth';
import { allocationsByNode, emptyAllocation, type NodeAllocation } from '../api/allocation';
import { ApiError, unavailable } from './errors';
import { UnavailableError } from '../store/errors';
import { decideBodyRead, decideInflight, decideWatch, defaultHeadroom, UserCounts, type Decision } from './fairness';
import { ApiMetrics } from './metrics';
import { MAX_IDEMPOTENCY_KEY, Registry, type Now, type ObjectRef } from './registry';
import { serveWatch } from './watch';

/** Options of the API server. */
export interface ApiServerOptions {
  store: Store;
  authenticator: TokenAuthenticator;
  /** etcd key prefix. @default "/shoal" */
  prefix?: string;
  logger?: Logger;
  metrics?: ApiMetrics;
  /**
   * Non-watch requests served at once before answering 429. One Node process serves ~600
   * writes/s on one core; admitting more than it can finish in well under a second only turns
   * 429s into timeouts (measured: 400 in flight at 2,000/s → 3,268 timeouts; 100 → none).
   * @default 100
   */
  maxInflight?: number;
  /** Open watch streams of the whole server before answering 429. @default 2000 */
  maxWatches?: number;
  /** Open watch streams of one user before answering that user 429. @default 100 */
  maxWatchesPerUser?: number;
  /**
   * Time a client has to send its whole request body once its headers arrived; then 408 and the
   * connection is closed. The body is read before an in-flight slot is taken. @default 10000
   */
  requestBodyTimeoutMs?: number;
  /** Time a client has to send its request headers (Node's headersTimeout). @default 20000 */
  headersTimeoutMs?: number;
  /** Output a watch client may leave unread (after the initial list) before it is disconnected. @default 1 MiB */
  maxWatchBufferBytes?: number;
  /** Largest request body. @default 1 MiB */
  bodyLimitBytes?: number;
  /** Quiet time before a watch stream gets a BOOKMARK line. @default 15000 */
  bookmarkMs?: number;
  now?: Now;
  /** Cluster-internal token sent to agents (their --log-token-file) when proxying task logs. */
  agentToken?: string;
  /**
   * CA of the agents' serving certificates: logs are then read from agents over HTTPS only, and
   * an agent's certificate must be signed by it and name the node (CN) the task ran on.
   */
  agentCa?: Buffer;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const JSON_TYPES = ['application/json', 'application/merge-patch+json'];

interface Target {
  kind: KindInfo;
  /** undefined: cluster-scoped, or across all namespaces */
  namespace: string | undefined;
  name?: string;
}

/** Per-request facts for metrics and logs. */
interface Locals {
  verb?: Verb;
  resource?: string;
  user?: User;
}

/** The apiserver's serving certificate and key (PEM), and the CA of client certificates when they are required. */
export interface ApiServerTls {
  cert: Buffer;
  key: Buffer;
  clientCa?: Buffer;
}

export class ApiServer {
  readonly app: express.Express;
  readonly metrics: ApiMetrics;
  private readonly registry: Registry;
  private readonly log: Logger;
  private readonly o: Required<Omit<ApiServerOptions, 'logger' | 'metrics' | 'now' | 'agentToken' | 'agentCa'>> & Pick<ApiServerOptions, 'agentToken' | 'agentCa'>;
  /** Non-long-running requests being served (their bodies read), per user. */
  private readonly inflight = new UserCounts();
  /** Requests whose bodies are being received, per user. */
  private readonly bodyReads = new UserCounts();
  private readonly watches = new UserCounts();
  private readonly json: express.RequestHandler;
  private server?: Server;

  constructor(opts: ApiServerOptions) {
    this.o = {
      prefix: DEFAULT_PREFIX, maxInflight: 100, maxWatches: 2000, maxWatchesPerUser: 100, bodyLimitBytes: 1 << 20, bookmarkMs: 15000,
      requestBodyTimeoutMs: 10_000, headersTimeoutMs: 20_000, maxWatchBufferBytes: 1 << 20, ...opts,
    };
    this.json = express.json({ limit: this.o.bodyLimitBytes, type: JSON_TYPES, strict: true });
    this.log = opts.logger ?? createLogger('apiserver');
    this.metrics = opts.metrics ?? new ApiMetrics();
    this.registry = new Registry(opts.store, this.o.prefix, opts.now);
    this.app = this.build();
    compileValidators(); // not in the first request's time
  }

  /**
   * Listens on host:port (port 0 picks a free one) and returns the port: HTTPS with `tls`, plain
   * HTTP without. With `tls.clientCa` every client must present a certificate that CA signed
   * (mutual TLS; tokens still say who the user is).
   */
  async listen(port: number, host = '127.0.0.1', tls?: ApiServerTls): Promise<number> {
    // A deep accept queue (the kernel caps it at net.core.somaxconn): under a burst of new
    // connections Node's default of 511 overflows, the kernel drops SYNs, and clients retry only
    // after 1, 3, 7 s — timing out instead of reading the 429 the server would have answered.
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.shed(req, res) || this.app(req, res);
    const server = (tls
      ? https.createServer({ ...this.timeouts(), cert: tls.cert, key: tls.key, ...(tls.clientCa && { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }) }, handler)
      : http.createServer(this.timeouts(), handler)).listen({ port, host, backlog: 4096 });
    server.on('clientError', clientErrorStatus);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    return (server.address() as AddressInfo).port;
  }

  /**
   * Node's own limits on receiving a request. requestTimeout covers receiving the request only
   * (not the response), so watches and followed logs, whose requests are complete at once, are not
   * cut by it; it backs up the body deadline of readBody (which runs only once express has the
   * request). Node checks them every connectionsCheckingInterval.
   */
  private timeouts(): http.ServerOptions {
    const headersTimeout = this.o.headersTimeoutMs;
    return {
      headersTimeout,
      requestTimeout: headersTimeout + this.o.requestBodyTimeoutMs + 1000,
      connectionsCheckingInterval: Math.min(5000, Math.max(50, Math.floor(headersTimeout / 4))),
    };
  }

  /** Stops accepting connections and ends open ones (watch streams included). */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private build(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    app.set('query parser', 'simple');
    app.use((req, res, next) => this.observe(req, res, next));
    app.get('/healthz', (_req, res) => void res.type('text/plain').send('ok'));
    app.get('/readyz', (req, res, next) => this.readyz(res).catch(next));
    app.get('/metrics', (_req, res, next) => {
      this.metrics.registry.metrics().then((text) => res.type(this.metrics.registry.contentType).send(text), next);
    });
    // Order matters: authenticate on the headers, read the body under a deadline, and only then
    // take an in-flight slot, so a client that never finishes its body holds no slot.
    app.use('/api', (req, res, next) => this.admitRequest(req, res, next));
    app.use('/api', (req, res, next) => this.readBody(req, res, next));
    app.use('/api', (req, res, next) => this.takeSlot(req, res, next));
    const h = (fn: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, next: NextFunction) => fn(req, res).catch(next);
    app.all('/api/v1/nodeallocations', h((req, res) => this.nodeAllocations(req, res, undefined)));
    app.all('/api/v1/nodeallocations/:name', h((req, res) => this.nodeAllocations(req, res, (req.params as { name: string }).name)));
    app.get('/api/v1/namespaces/:ns/tasks/:name/log', h((req, res) => this.taskLog(req, res, this.target(req, true, 'tasks'))));
    app.all('/api/v1/namespaces/:ns/apps/:name/revisions', h((req, res) => this.appRevisions(req, res, this.target(req, true, 'apps'))));
    app.all('/api/v1/namespaces/:ns/jobs/:name/run', h((req, res) => this.runJob(req, res, this.target(req, true, 'jobs'))));
    app.all('/api/v1/namespaces/:ns/:plural', h((req, res) => this.collection(req, res, this.target(req, true))));
    app.all('/api/v1/namespaces/:ns/:plural/:name', h((req, res) => this.item(req, res, this.target(req, true))));
    app.all('/api/v1/:plural', h((req, res) => this.collection(req, res, this.target(req, false))));
    app.all('/api/v1/:plural/:name', h((req, res) => this.item(req, res, this.target(req, false))));
    app.use((req, _res, next) => next(new ApiError('NotFound', `the server has no path ${req.path}`)));
    app.use((err: unknown, req: Request, res: Response, next: NextFunction) => this.fail(err, req, res, next));
    return app;
  }

  /** Metrics and one log line per request. */
  private observe(req: Request, res: Response, next: NextFunction): void {
    const start = process.hrtime.bigint();
    res.locals.shoal = {} as Locals;
    res.once('finish', () => {
      const l = res.locals.shoal as Locals;
      if (l.verb === 'watch') return;
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const labels = { verb: l.verb ?? req.method.toLowerCase(), resource: l.resource ?? 'other', code: String(res.statusCode) };
      this.metrics.requestDuration.observe(labels, seconds);
      this.metrics.requests.inc(labels);
      const mutating = l.verb && !['get', 'list'].includes(l.verb);
      this.log[mutating || res.statusCode >= 500 ? 'info' : 'debug']({ ...labels, path: req.path, user: l.user?.name, ms: Math.round(seconds * 1000) }, 'request');
    });
    next();
  }

  /**
   * Overload protection ahead of express: while every one of --max-inflight slots is taken, any
   * other API request (watches and followed logs excepted) gets its 429 here, for a few
   * microseconds of CPU instead of express's routing, error handling and logging. Under a flood
   * that difference decides whether excess requests are rejected or time out unread. (Who gets a
   * slot when some are free is decided per user, in takeSlot.)
   */
  private shed(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (this.inflight.total < this.o.maxInflight || !req.url?.startsWith('/api/') || isLongRunning(req.method, req.url)) return false;
    this.metrics.rejected.inc();
    this.metrics.limited.inc({ limit: 'max-inflight' });
    this.metrics.requests.inc({ verb: req.method?.toLowerCase() ?? 'other', resource: 'other', code: '429' });
    const body = JSON.stringify(new ApiError('TooManyRequests', `too many requests in flight (${this.inflight.total}, --max-inflight=${this.o.maxInflight}); retry after 1 second`, { retryAfterSeconds: 1 }).toStatus());
    res.writeHead(429, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Retry-After': '1' });
    res.end(body);
    return true;
  }

  /** Authentication and header checks; before any body is read. */
  private admitRequest(req: Request, res: Response, next: NextFunction): void {
    try {
      (res.locals.shoal as Locals).user = this.o.authenticator.authenticate(req.get('authorization'));
    } catch (err) {
      if (err instanceof AuthenticationError) throw new ApiError('Unauthorized', err.message);
      throw err;
    }
    const len = Number(req.get('content-length') ?? 0);
    if (len > this.o.bodyLimitBytes) throw new ApiError('RequestEntityTooLarge', `request body of ${len} bytes is over the limit of ${this.o.bodyLimitBytes} bytes`);
    // A POST without a body (`.../jobs/{name}/run` takes an optional one) has no type to check.
    if (['POST', 'PUT', 'PATCH'].includes(req.method) && !req.is(JSON_TYPES) && (req.method !== 'POST' || hasBody(req))) {
      throw new ApiError('UnsupportedMediaType', `Content-Type must be ${JSON_TYPES.join(' or ')}, not ${req.get('content-type') ?? 'none'}`);
    }
    next();
  }

  /**
   * Reads a JSON body under the --request-body-timeout deadline, without holding an in-flight
   * slot. A client still sending when it passes gets 408 and its connection is closed (Node reads
   * and drops the rest). A user may have at most --max-inflight bodies arriving at once, so one
   * user's stalled uploads (up to the body limit each) cannot grow the process without bound.
   */
  private readBody(req: Request, res: Response, next: NextFunction): void {
    if (!hasBody(req)) {
      void this.json(req, res, next);
      return;
    }
    const user = (res.locals.shoal as Locals).user!.name;
    const decision = decideBodyRead(user, this.bodyReads.usage(user), this.o.maxInflight);
    if (!decision.admit) this.refuse(1, decision);
    const release = this.bodyReads.take(user);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      release();
      this.metrics.limited.inc({ limit: 'request-body-timeout' });
      const seconds = this.o.requestBodyTimeoutMs / 1000;
      res.set('Connection', 'close');
      res.status(408).json({
        kind: 'Status', apiVersion: API_VERSION, status: 'Failure', code: 408, reason: 'RequestTimeout',
        message: `the request body did not arrive within ${seconds} seconds (--request-body-timeout); the connection is closed`,
      });
    }, this.o.requestBodyTimeoutMs);
    res.once('close', () => {
      clearTimeout(timer);
      release();
    });
    void this.json(req, res, (err?: unknown) => {
      clearTimeout(timer);
      release();
      if (!timedOut) next(err);
    });
  }

  /**
   * Takes an in-flight slot for the user once its body is read, as the fairness rules allow
   * (fairness.ts: decideInflight), and gives it back when the response ends.
   */
  private takeSlot(req: Request, res: Response, next: NextFunction): void {
    if (isLongRunning(req.method, req.originalUrl)) return next();
    const user = (res.locals.shoal as Locals).user!.name;
    const decision = decideInflight(user, this.inflight.usage(user), { capacity: this.o.maxInflight, headroom: defaultHeadroom(this.o.maxInflight) });
    if (!decision.admit) {
      this.metrics.rejected.inc();
      this.refuse(1, decision);
    }
    const release = this.inflight.take(user);
    this.metrics.inflight.set(this.inflight.total);
    res.once('close', () => {
      release();
      this.metrics.inflight.set(this.inflight.total);
    });
    next();
  }

  /** Answers 429 for a limit (counted by limit in shoal_apiserver_limited_requests_total). */
  private refuse(retryAfterSeconds: number, d: Decision & { admit: false }): never {
    this.metrics.limited.inc({ limit: d.limit });
    throw new ApiError('TooManyRequests', d.message, { retryAfterSeconds });
  }

  private target(req: Request, namespacedPath: boolean, fixedPlural?: string): Target {
    const { ns, name } = req.params as { ns?: string; plural: string; name?: string };
    const plural = fixedPlural ?? (req.params as { plural: string }).plural;
    const kind = kindByPlural(plural);
    if (!kind) throw new ApiError('NotFound', `unknown resource "${plural}" (known: ${KINDS.map((k) => k.plural).join(', ')})`);
    if (namespacedPath && !kind.namespaced) throw new ApiError('NotFound', `${plural} are cluster-scoped: use /api/v1/${plural}`);
    if (!namespacedPath && kind.namespaced && name !== undefined) {
      throw new ApiError('NotFound', `${plural} are namespaced: use /api/v1/namespaces/{namespace}/${plural}/${name}`);
    }
    for (const [what, v] of [['namespace', ns], ['name', name]] as const) {
      if (v !== undefined && (v.length > 63 || !NAME.test(v))) throw new ApiError('BadRequest', `invalid ${what} "${v}" in the path: must be a DNS-1123 label`);
    }
    return { kind, namespace: namespacedPath ? ns : undefined, name };
  }

  /** Records the verb, checks the kind allows it and the user may do it. */
  private allow(res: Response, verb: Verb, t: Target): void {
    const l = res.locals.shoal as Locals;
    l.verb = verb;
    l.resource = t.kind.plural;
    if (!t.kind.verbs.includes(verb)) {
      throw new ApiError('MethodNotAllowed', `${t.kind.plural} do not support ${verb}${t.kind.kind === 'Task' && verb === 'create' ? ': tasks are created by the scheduler from apps and jobs' : ''}`);
    }
    authorize(l.user!, verb, t.kind, t.namespace);
  }

  private async collection(req: Request, res: Response, t: Target): Promise<void> {
    const selector = parseSelector(str(req.query.labelSelector));
    if (req.method === 'GET') {
      const isWatch = req.query.watch === 'true' || req.query.watch === '1';
      this.allow(res, isWatch ? 'watch' : 'list', t);
      if (isWatch) return this.watch(req, res, t, selector);
      const list = await this.registry.list(t.kind, t.namespace, selector);
      res.json({ apiVersion: 'shoal/v1', kind: `${t.kind.kind}List`, metadata: { resourceVersion: list.resourceVersion }, items: list.items });
      return;
    }
    if (req.method === 'POST') {
      if (t.kind.namespaced && t.namespace === undefined) throw new ApiError('MethodNotAllowed', `create ${t.kind.plural} in a namespace: POST /api/v1/namespaces/{namespace}/${t.kind.plural}`);
      this.allow(res, 'create', t);
      const obj = await this.registry.create(t.kind, t.namespace, this.body(req), { dryRun: dryRun(req) });
      res.status(dryRun(req) ? 200 : 201).json(obj);
      return;
    }
    throw new ApiError('MethodNotAllowed', `${req.method} is not allowed on a collection`);
  }

  private async item(req: Request, res: Response, t: Target): Promise<void> {
    const ref: ObjectRef = { kind: t.kind, namespace: t.namespace, name: t.name! };
    const opts = { dryRun: dryRun(req) };
    switch (req.method) {
      case 'GET':
        if (req.query.watch === 'true' || req.query.watch === '1') {
          this.allow(res, 'watch', t);
          return this.watch(req, res, t, parseSelector(str(req.query.labelSelector)));
        }
        this.allow(res, 'get', t);
        res.json(await this.registry.get(ref));
        return;
      case 'PUT':
        this.allow(res, 'update', t);
        res.json(await this.registry.update(ref, this.body(req), opts));
        return;
      case 'PATCH':
        this.allow(res, 'patch', t);
        res.json(await this.registry.patch(ref, this.body(req), opts));
        return;
      case 'DELETE':
        this.allow(res, 'delete', t);
        res.json(await this.registry.delete(ref, str(req.query.resourceVersion), opts));
        return;
      default:
        throw new ApiError('MethodNotAllowed', `${req.method} is not allowed on ${t.kind.plural}`);
    }
  }

  /** GET .../apps/{name}/revisions: the App's stored spec versions, newest first (what `shoal rollout` reads). */
  private async appRevisions(req: Request, res: Response, t: Target): Promise<void> {
    if (req.method !== 'GET') throw new ApiError('MethodNotAllowed', `${req.method} is not allowed on app revisions: they are written with the App`);
    this.allow(res, 'get', t);
    (res.locals.shoal as Locals).resource = 'apps/revisions';
    const items = await this.registry.revisions({ kind: t.kind, namespace: t.namespace, name: t.name! });
    res.json({ apiVersion: 'shoal/v1', kind: 'AppRevisionList', items });
  }

  /**
   * POST .../jobs/{name}/run, body optional `{"idempotencyKey": "..."}`: a Manual JobRun of the
   * Job now. 201 with the new run; 200 with the run an earlier request with the same key made.
   * Authorized as an update of the Job (whoever may change a Job may run it).
   */
  private async runJob(req: Request, res: Response, t: Target): Promise<void> {
    if (req.method !== 'POST') throw new ApiError('MethodNotAllowed', `${req.method} is not allowed on jobs/{name}/run: POST to run the job`);
    this.allow(res, 'update', t);
    (res.locals.shoal as Locals).resource = 'jobs/run';
    const key = runKey(t.name!, req.body);
    const { run, created } = await this.registry.runJob({ kind: t.kind, namespace: t.namespace, name: t.name! }, key, { dryRun: dryRun(req) });
    res.status(created && !dryRun(req) ? 201 : 200).json(run);
  }

  /**
   * GET .../tasks/{name}/log: finds the Task's node and that Node's status.address, and streams
   * the agent's `/v1/tasks/{ns}/{name}/log` through, sent with the agent token.
   */
  private async taskLog(req: Request, res: Response, t: Target): Promise<void> {
    this.allow(res, 'get', t);
    const query = new URLSearchParams();
    for (const k of ['tail', 'follow', 'stream'] as const) {
      const v = str(req.query[k]);
      if (v === undefined || v === '') continue;
      if (k === 'tail' && !/^\d+$/.test(v)) throw new ApiError('BadRequest', `tail must be a non-negative integer, not "${v}"`);
      if (k === 'follow' && !['true', 'false', '1', '0'].includes(v)) throw new ApiError('BadRequest', `follow must be true or false, not "${v}"`);
      if (k === 'stream' && !['stdout', 'stderr', 'both'].includes(v)) throw new ApiError('BadRequest', `stream must be stdout, stderr or both, not "${v}"`);
      query.set(k, v);
    }
    const task = (await this.registry.get({ kind: t.kind, namespace: t.namespace, name: t.name! })) as ShoalObject & { spec?: { nodeName?: string } };
    const nodeName = task.spec?.nodeName;
    if (!nodeName) throw new ApiError('BadRequest', `task "${t.name}" has no logs yet: it is not placed on a node`);
    const nodes = kindByPlural('nodes')!;
    let node: ShoalObject & { status?: { address?: string } };
    try {
      node = await this.registry.get({ kind: nodes, namespace: undefined, name: nodeName });
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) throw new ApiError('NotFound', `task "${t.name}" ran on node "${nodeName}", which no longer exists: its logs are gone`);
      throw err;
    }
    const address = node.status?.address;
    if (!address) throw new ApiError('ServiceUnavailable', `node "${nodeName}" advertises no agent address: cannot read logs of task "${t.name}"`);
    if (!this.o.agentToken) throw new ApiError('ServiceUnavailable', 'this apiserver has no agent token (--agent-token-file): it cannot read task logs');
    const qs = query.toString();
    const path = `/v1/tasks/${encodeURIComponent(t.namespace!)}/${encodeURIComponent(t.name!)}/log${qs ? `?${qs}` : ''}`;
    await proxyLog(req, res, { address, path, token: this.o.agentToken, what: `agent of node "${nodeName}" at ${address}`, ...(this.o.agentCa && { tls: { ca: this.o.agentCa, node: nodeName } }) });
  }

  /**
   * GET /api/v1/nodeallocations[/{node}]: what live tasks hold on each node (allocation.ts says
   * why this is a server-side sum). Authorized as reading nodes: any authenticated user.
   */
  private async nodeAllocations(req: Request, res: Response, name: string | undefined): Promise<void> {
    if (req.method !== 'GET') throw new ApiError('MethodNotAllowed', `${req.method} is not allowed on nodeallocations: they are computed from tasks`);
    const nodes = kindByPlural('nodes')!;
    const l = res.locals.shoal as Locals;
    l.verb = name === undefined ? 'list' : 'get';
    l.resource = 'nodeallocations';
    authorize(l.user!, l.verb, nodes, undefined);
    if (name !== undefined) {
      if (name.length > 63 || !NAME.test(name)) throw new ApiError('BadRequest', `invalid name "${name}" in the path: must be a DNS-1123 label`);
      await this.registry.get({ kind: nodes, namespace: undefined, name }); // 404 for a node that does not exist
    }
    const { items, resourceVersion } = await this.readAllocations();
    if (name !== undefined) {
      res.json(items.find((a) => a.metadata.name === name) ?? emptyAllocation(name, resourceVersion));
      return;
    }
    res.json({ apiVersion: API_VERSION, kind: 'NodeAllocationList', metadata: { resourceVersion }, items });
  }

  private allocationsRead?: Promise<{ items: NodeAllocation[]; resourceVersion: string }>;

  /** All tasks read once and summed per node; requests arriving while a read runs share it. */
  private readAllocations(): Promise<{ items: NodeAllocation[]; resourceVersion: string }> {
    this.allocationsRead ??= this.registry.list(kindByPlural('tasks')!, undefined, parseSelector(undefined))
      .then((list) => ({ items: allocationsByNode(list.items as Task[], list.resourceVersion), resourceVersion: list.resourceVersion }))
      .finally(() => {
        this.allocationsRead = undefined;
      });
    return this.allocationsRead;
  }

  private body(req: Request): unknown {
    if (req.body === undefined) throw new ApiError('BadRequest', 'request body is empty');
    return req.body;
  }

  private async watch(req: Request, res: Response, t: Target, selector: ReturnType<typeof parseSelector>): Promise<void> {
    const rvText = str(req.query.resourceVersion);
    const rv = rvText === undefined || rvText === '' ? undefined : Number(rvText);
    if (rv !== undefined && (!Number.isSafeInteger(rv) || rv < 0)) throw new ApiError('BadRequest', `resourceVersion "${rvText}" is not a revision number`);
    const user = (res.locals.shoal as Locals).user!.name;
    const decision = decideWatch(user, this.watches.usage(user), { maxWatches: this.o.maxWatches, maxWatchesPerUser: this.o.maxWatchesPerUser });
    if (!decision.admit) this.refuse(5, decision);
    // Counted from now (not from the first byte), so a burst of opens cannot pass the check together.
    const taken = this.watches.take(user);
    const release = () => {
      taken();
      this.metrics.watches.set(this.watches.total);
    };
    this.metrics.watches.set(this.watches.total);
    res.once('close', release);
    const start = process.hrtime.bigint();
    await serveWatch(req, res, {
      store: this.o.store,
      prefix: kindPrefix(this.o.prefix, t.kind, t.namespace),
      selector,
      name: t.name,
      resourceVersion: rv,
      logger: this.log,
      bookmarkMs: this.o.bookmarkMs,
      maxBufferedBytes: this.o.maxWatchBufferBytes,
      onOpen: () => {
        const labels = { verb: 'watch', resource: t.kind.plural, code: '200' };
        this.metrics.requestDuration.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
        this.metrics.requests.inc(labels);
      },
      onClose: release,
    }).catch((err: unknown) => {
      release();
      throw err;
    });
  }

  private async readyz(res: Response): Promise<void> {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref());
    try {
      await Promise.race([this.o.store.revision(), timeout]);
      res.type('text/plain').send('ok');
    } catch (err) {
      res.status(503).type('text/plain').send(`etcd not reachable: ${(err as Error).message}`);
    }
  }

  /** Every error becomes a Status; only our own bugs are 500s, and they are logged. */
  private fail(err: unknown, req: Request, res: Response, next: NextFunction): void {
    if (res.headersSent) {
      next(err);
      return;
    }
    const apiErr = toApiError(err);
    if (apiErr.code >= 500 && apiErr.code !== 503 && apiErr.code !== 501) this.log.error({ err, path: req.path, method: req.method }, 'internal error');
    if (apiErr.details?.retryAfterSeconds) res.set('Retry-After', String(apiErr.details.retryAfterSeconds));
    if (apiErr.code === 413) res.set('Connection', 'close');
    res.status(apiErr.code).json(apiErr.toStatus());
  }
}

interface ProxyTarget {
  /** host:port */
  address: string;
  path: string;
  token: string;
  /** For messages: `agent of node "n1" at host:5051`. */
  what: string;
  /** HTTPS: the CA the agent's certificate must chain to, and the node it must name (CN). */
  tls?: { ca: Buffer; node: string };
}

/**
 * A request Node's HTTP parser refuses (malformed, headers over 16 KiB, too slow) gets a Status
 * body like every other answer, not Node's bare 400, then the connection is closed.
 */
function clientErrorStatus(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [code, reason, message] = err.code === 'HPE_HEADER_OVERFLOW'
    ? [431, 'RequestHeaderFieldsTooLarge', 'request headers (with the URL) are over the limit of 16 KiB']
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'RequestTimeout', 'the request was not received in time']
      : [400, 'BadRequest', `malformed HTTP request (${err.code ?? 'parse error'})`];
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  socket.end(`HTTP/1.1 ${code} ${http.STATUS_CODES[code]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

const AGENT_CONNECT_TIMEOUT_MS = 5000;

/**
 * An agent's certificate must be valid for the address dialled (as any TLS server's) and name,
 * as its CN, the node whose task is asked for: an agent that rewrote another Node's address to
 * its own still cannot answer for that node.
 */
export function agentIdentity(node: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (host, cert) => {
    const err = checkServerIdentity(host, cert);
    if (err) return err;
    if (cert.subject?.CN !== node) return new Error(`the certificate names agent "${cert.subject?.CN ?? ''}", not node "${node}"`);
    return undefined;
  };
}

/**
 * Streams an agent's log response to the client. Errors before the agent answered become
 * Statuses (unreachable: 503); once streaming, a failure ends the response. The client going
 * away aborts the upstream request.
 */
function proxyLog(req: Request, res: Response, t: ProxyTarget): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const headers = { Authorization: `Bearer ${t.token}`, Accept: 'text/plain' };
    const upstream = t.tls
      ? https.get(new URL(`https://${t.address}${t.path}`), { headers, ca: t.tls.ca, checkServerIdentity: agentIdentity(t.tls.node) })
      : http.get(new URL(`http://${t.address}${t.path}`), { headers });
    let answered = false;
    const connectTimer = setTimeout(() => upstream.destroy(Object.assign(new Error('connection timed out'), { code: 'ETIMEDOUT' })), AGENT_CONNECT_TIMEOUT_MS);
    res.once('close', () => {
      clearTimeout(connectTimer);
      upstream.destroy();
      resolve();
    });
    upstream.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      if (answered || res.writableEnded || res.destroyed) {
        res.destroy();
        return resolve();
      }
      reject(new ApiError('ServiceUnavailable', `cannot reach the ${t.what}: ${err.code ?? err.message}`, { retryAfterSeconds: 1 }));
    });
    upstream.once('response', (up) => {
      clearTimeout(connectTimer);
      answered = true;
      const code = up.statusCode ?? 502;
      if (code !== 200) {
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.once('error', () => resolve());
        up.once('end', () => {
          const msg = Buffer.concat(chunks).toString('utf8').trim().slice(0, 500) || `status ${code}`;
          const reason = code === 404 ? 'NotFound' : code === 400 ? 'BadRequest' : code === 501 ? 'Unsupported' : 'ServiceUnavailable';
          const extra = code === 401 ? ' (the apiserver\'s --agent-token-file must match the agent\'s --log-token-file)' : '';
          reject(new ApiError(reason, `${t.what}: ${msg}${extra}`));
        });
        return;
      }
      res.status(200);
      res.set({ 'Content-Type': up.headers['content-type'] ?? 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' });
      res.flushHeaders();
      up.pipe(res);
      up.once('error', () => res.destroy());
      up.once('aborted', () => res.destroy());
      up.once('end', () => resolve());
    });
  });
}

/** A watch or a followed log: long-running, so neither counted in flight nor shed. */
function isLongRunning(method: string | undefined, url: string): boolean {
  const q = url.indexOf('?');
  if (method !== 'GET' || q < 0) return false;
  const params = new URLSearchParams(url.slice(q + 1));
  const yes = (name: string) => ['true', '1'].includes(params.get(name) ?? '');
  return yes('watch') || (url.slice(0, q).endsWith('/log') && yes('follow'));
}

/** Maps body-parser, selector and unexpected errors onto ApiErrors. */
function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof SelectorError) return new ApiError('BadRequest', err.message);
  if (err instanceof UnavailableError) return unavailable(err); // a store call not through fromStoreError
  const e = err as { type?: string; status?: number; message?: string; limit?: number };
  switch (e?.type) {
    case 'entity.too.large':
      return new ApiError('RequestEntityTooLarge', `request body is over the limit of ${e.limit} bytes`);
    case 'entity.parse.failed':
      return new ApiError('BadRequest', `request body is not valid JSON: ${e.message}`);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new ApiError('UnsupportedMediaType', e.message ?? 'unsupported encoding');
  }
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) return new ApiError('BadRequest', e.message ?? 'bad request');
  return new ApiError('InternalError', 'internal error; see the apiserver log');
}

/** The idempotency key of a run request's body (absent, empty or `{}`: none); 400/422 for anything else. */
function runKey(job: string, body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body !== 'object' || Array.isArray(body)) throw new ApiError('BadRequest', 'the body of a run request must be a JSON object: {"idempotencyKey": "..."}');
  const causes = Object.keys(body).filter((k) => k !== 'idempotencyKey').map((k) => ({ field: k, message: 'unknown field (only idempotencyKey)' }));
  const key = (body as { idempotencyKey?: unknown }).idempotencyKey;
  if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY)) {
    causes.push({ field: 'idempotencyKey', message: `must be a string of 1 to ${MAX_IDEMPOTENCY_KEY} characters` });
  }
  if (causes.length) {
    throw new ApiError('Invalid', `run request for job "${job}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join('; ')}`, { kind: 'Job', name: job, causes });
  }
  return key as string | undefined;
}

/** True when a request carries a body (a length above 0, or chunked). */
function hasBody(req: Request): boolean {
  return req.get('transfer-encoding') !== undefined || Number(req.get('content-length') ?? 0) > 0;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function dryRun(req: Request): boolean {
  return req.query.dryRun === 'All';
}

