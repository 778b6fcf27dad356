/** startApiServer: the API server the way `shoal-apiserver` and `shoal dev` both run it. */
import type { Logger } from 'pino';
import { collectDefaultMetrics } from 'prom-client';
import { EtcdStore, type EtcdConnection } from '../store/etcd';
import type { Store } from '../store/types';
import type { TokenAuthenticator } from './auth';
import { ApiMetrics } from './metrics';
import { ApiServer, type ApiServerTls } from './server';

export interface StartApiServerOptions {
  /** A store shared with the caller (who closes it). Give this or etcd. */
  store?: Store;
  /** etcd to connect to: the server opens a connection of its own (observed by its metrics) and closes it at stop. */
  etcd?: EtcdConnection;
  /** etcd key prefix. @default '/shoal' */
  prefix?: string;
  authenticator: TokenAuthenticator;
  /** Cluster-internal token sent to agents for task logs; without one, logs answer 503. */
  agentToken?: string;
  logger: Logger;
  /** Port to listen on (0: a free one). */
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Serve HTTPS with this certificate (plain HTTP without). */
  tls?: ApiServerTls;
  /**
   * The CA that signed the agents' serving certificates: task logs are then fetched from agents
   * over HTTPS only, each agent's certificate verified, so the agent token never goes to an
   * address that cannot prove it is an agent of this cluster.
   */
  agentCa?: Buffer;
  /** Non-watch requests served at once before 429. @default 100 */
  maxInflight?: number;
  /** Open watches of the whole server before 429. @default 2000 */
  maxWatches?: number;
  /** Open watches of one user before 429. @default 100 */
  maxWatchesPerUser?: number;
  /** Time to send a request body before 408. @default 10000 */
  requestBodyTimeoutMs?: number;
  /** Also export process metrics (CPU, memory, GC, event-loop lag) on /metrics. @default false */
  processMetrics?: boolean;
}

/** A listening API server. */
export interface ApiServerHandle {
  readonly api: ApiServer;
  readonly port: number;
  /** `https://<host>:<port>` (`http://` without TLS) */
  readonly url: string;
  /** Its metrics; other components of the same process may register theirs in metrics.registry. */
  readonly metrics: ApiMetrics;
  /** The store it serves from (its own connection when started with etcd). */
  readonly store: Store;
  /** Stops listening (ending open watches) and closes its own etcd connection. */
  stop(): Promise<void>;
}

/** Connects, listens and resolves once the server accepts requests. A failed listen (EADDRINUSE) rejects with the port closed. */
export async function startApiServer(o: StartApiServerOptions): Promise<ApiServerHandle> {
  if (Boolean(o.store) === Boolean(o.etcd)) throw new Error('startApiServer: give store or etcd, not both or neither');
  const metrics = new ApiMetrics();
  if (o.processMetrics) collectDefaultMetrics({ register: metrics.registry });
  const ownStore = o.etcd ? new EtcdStore({ ...o.etcd, metrics: metrics.storeObserver() }) : undefined;
  const store = (o.store ?? ownStore)!;
  // Options left out stay out: ApiServer spreads its options over its defaults.
  const api = new ApiServer({
    store, authenticator: o.authenticator, logger: o.logger, metrics,
    ...(o.prefix !== undefined && { prefix: o.prefix }),
    ...(o.maxInflight !== undefined && { maxInflight: o.maxInflight }),
    ...(o.maxWatches !== undefined && { maxWatches: o.maxWatches }),
    ...(o.maxWatchesPerUser !== undefined && { maxWatchesPerUser: o.maxWatchesPerUser }),
    ...(o.requestBodyTimeoutMs !== undefined && { requestBodyTimeoutMs: o.requestBodyTimeoutMs }),
    ...(o.agentToken !== undefined && { agentToken: o.agentToken }),
    ...(o.agentCa !== undefined && { agentCa: o.agentCa }),
  });
  const host = o.host ?? '127.0.0.1';
  let port: number;
  try {
    port = await api.listen(o.port, host, o.tls);
  } catch (err) {
    await api.close();
    await ownStore?.close();
    throw err;
  }
  o.logger.info({ port, host, tls: Boolean(o.tls), clientCertificates: Boolean(o.tls?.clientCa) }, 'apiserver listening');
  let stopping: Promise<void> | undefined;
  return {
    api,
    port,
    url: `${o.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    metrics,
    store,
    stop: () => (stopping ??= (async () => {
      await api.close();
      await ownStore?.close();
    })()),
  };
}
