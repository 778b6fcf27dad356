/**
 * The agent's HTTP endpoint on `--listen`:
 *
 *   GET /healthz                                            unauthenticated, `ok`
 *   GET /v1/tasks/{ns}/{name}/log?tail=N&follow=true&stream=stdout|stderr|both
 *
 * Logs need `Authorization: Bearer <token>`, the cluster-internal agent token (the agent's
 * `--log-token-file`, the apiserver's `--agent-token-file`), compared in constant time. An agent
 * without a token refuses to serve logs (503) rather than serving them to anyone.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { LogOptions, Runtime } from '../runtime/types';
import { errorMessage } from '../util/backoff';

/** What the server needs from the agent (an Agent satisfies it). */
export interface LogSource {
  readonly runtime: Runtime;
  knowsTask(namespace: string, name: string): boolean;
}

export interface AgentHttpServerOptions {
  /** Port to listen on (0: a free one). */
  port: number;
  /** @default all interfaces */
  host?: string;
  /** Serve HTTPS with this certificate (its CN the node name, signed by the CA the apiserver's --agent-ca-file names). */
  tls?: { cert: Buffer; key: Buffer };
  /** The shared agent token; undefined or empty: logs are refused with 503. */
  token?: string;
  logger: Logger;
  /**
   * The agent, or what builds it from the bound port (an agent advertises its address at
   * construction, and with port 0 the port is known only once bound). Built before listen()
   * resolves and before any request is served; if it throws, the port is released.
   */
  source: LogSource | ((port: number) => LogSource);
}

const LOG_PATH = /^\/v1\/tasks\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/log$/;
/** Headers go out after this long without output, so a quiet followed task still answers. */
const FLUSH_HEADERS_MS = 200;

/** The agent's HTTP server: always serves one agent. Make one with AgentHttpServer.listen(). */
export class AgentHttpServer {
  private readonly tokenDigest?: Buffer;

  private constructor(
    private readonly server: http.Server | https.Server,
    /** The port it listens on. */
    readonly port: number,
    readonly source: LogSource,
    token: string | undefined,
    private readonly log: Logger,
  ) {
    const t = token?.trim();
    if (t) this.tokenDigest = digest(t);
    server.on('request', (req, res) => this.handle(req, res));
  }

  /**
   * Binds host:port, builds the agent (o.source) and serves it. Nothing is served before the
   * agent is attached: the request handler is installed in the same tick as the bind resolves.
   */
  static async listen(o: AgentHttpServerOptions): Promise<AgentHttpServer> {
    const server = o.tls ? https.createServer({ cert: o.tls.cert, key: o.tls.key }) : http.createServer();
    server.requestTimeout = 0; // followed logs are long-lived
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    let source: LogSource;
    try {
      source = typeof o.source === 'function' ? o.source(port) : o.source;
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw err;
    }
    return new AgentHttpServer(server, port, source, o.token, o.logger);
  }

  /** Stops listening and ends open responses (followed logs included). */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://agent');
    if (url.pathname === '/healthz') return text(res, 200, 'ok\n');
    const m = LOG_PATH.exec(url.pathname);
    if (!m) return text(res, 404, `no such path ${url.pathname}\n`);
    if (req.method !== 'GET') return text(res, 405, `${req.method} is not allowed\n`);
    if (!this.tokenDigest) return text(res, 503, 'logs are disabled on this agent: it has no token (--log-token-file)\n');
    if (!this.authorized(req.headers.authorization)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      return text(res, 401, 'missing or invalid bearer token\n');
    }
    const [namespace, name] = [m[1], m[3]];
    let opts: LogOptions;
    try {
      opts = logOptions(url.searchParams);
    } catch (err) {
      return text(res, 400, `${errorMessage(err)}\n`);
    }
    const source = this.source;
    if (!source.knowsTask(namespace, name)) return text(res, 404, `task ${namespace}/${name} is not known on this agent\n`);
    if (!source.runtime.logs) return text(res, 501, `the ${source.runtime.name} runtime keeps no logs\n`);
    void this.stream(req, res, source.runtime, namespace, name, opts);
  }

  private authorized(header: string | undefined): boolean {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    // Digests have equal lengths, so the comparison takes the same time whatever the token.
    return Boolean(m) && timingSafeEqual(digest(m![1]), this.tokenDigest!);
  }

  private async stream(req: http.IncomingMessage, res: http.ServerResponse, runtime: Runtime, namespace: string, name: string, o: LogOptions): Promise<void> {
    let source: NodeJS.ReadableStream;
    try {
      source = await runtime.logs!(namespace, name, o);
    } catch (err) {
      return text(res, notFound(err) ? 404 : 500, `logs of task ${namespace}/${name}: ${errorMessage(err)}\n`);
    }
    const destroy = () => (source as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    const start = () => {
      if (res.headersSent) return;
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' });
      res.flushHeaders();
    };
    const timer = o.follow ? setTimeout(start, FLUSH_HEADERS_MS) : undefined;
    // The client went away: stop reading (a followed log would otherwise be read forever).
    res.once('close', () => {
      clearTimeout(timer);
      destroy();
    });
    source.on('data', (chunk: Buffer | string) => {
      start();
      if (!res.write(chunk)) {
        source.pause();
        res.once('drain', () => source.resume());
      }
    });
    source.once('end', () => {
      clearTimeout(timer);
      start();
      res.end();
    });
    source.once('error', (err: Error) => {
      clearTimeout(timer);
      if (!res.headersSent) return text(res, notFound(err) ? 404 : 500, `logs of task ${namespace}/${name}: ${errorMessage(err)}\n`);
      this.log.warn({ task: `${namespace}/${name}`, err: errorMessage(err) }, 'log stream failed');
      res.destroy(); // a chunked response cut short: the client sees an incomplete body
    });
    req.once('aborted', destroy);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function text(res: http.ServerResponse, code: number, body: string): void {
  res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(body);
}

function notFound(err: unknown): boolean {
  const e = err as { name?: string; statusCode?: number; message?: string };
  return e?.name === 'TaskNotFoundError' || e?.statusCode === 404 || /not found|no such/i.test(e?.message ?? '');
}

/** Parses tail, follow and stream; throws a message for the client. */
export function logOptions(q: URLSearchParams): LogOptions {
  const o: LogOptions = {};
  const tail = q.get('tail');
  if (tail !== null && tail !== '') {
    if (!/^\d+$/.test(tail)) throw new Error(`tail must be a non-negative integer, not "${tail}"`);
    o.tail = Number(tail);
  }
  const follow = q.get('follow');
  if (follow !== null) {
    if (!['true', '1', 'false', '0', ''].includes(follow)) throw new Error(`follow must be true or false, not "${follow}"`);
    o.follow = follow === 'true' || follow === '1';
  }
  const stream = q.get('stream');
  if (stream !== null && stream !== '') {
    if (!['stdout', 'stderr', 'both'].includes(stream)) throw new Error(`stream must be stdout, stderr or both, not "${stream}"`);
    o.stream = stream as LogOptions['stream'];
  }
  return o;
}
