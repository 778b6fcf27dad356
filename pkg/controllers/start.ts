/** startControllerManager: the controller-manager the way `shoal-controller-manager` and `shoal dev` both run it. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { EtcdStore, type EtcdConnection } from '../store/etcd';
import type { Store } from '../store/types';
import { TokenAuthenticator } from '../client/tokens';
import { SchedulerApiServer } from '../master/mesos/server';
import { ControllerManager } from './manager';

export interface StartControllerManagerOptions {
  /** A store shared with the caller (who closes it); leader election uses it too. Give this or etcd. */
  store?: Store;
  /**
   * etcd client URLs: it opens two connections of its own, one for leader election (renewals
   * never queue behind watch traffic), and closes them at stop.
   */
  etcd?: EtcdConnection;
  /** etcd key prefix. @default '/shoal' */
  prefix?: string;
  /** Name in the leader key. */
  identity: string;
  logger: Logger;
  /** Where its metrics go. @default a new registry */
  registry?: Registry;
  /** Also export process metrics (CPU, memory, GC, event-loop lag) in the registry. @default false */
  processMetrics?: boolean;
  /** Serve the registry on http://<metricsHost>:<metricsPort>/metrics; undefined: no server, 0: a free port. */
  metricsPort?: number;
  /** @default '127.0.0.1' */
  metricsHost?: string;
  /** @default 5 */
  leaderLeaseSeconds?: number;
  /** Wait before marking a lost agent's tasks LOST. */
  lostTaskGraceSeconds?: number;
  /** Allocation round interval. @default 1000 */
  allocationIntervalMs?: number;
  /** How long a round asked for by a revive waits for other demands (MasterOptions.batchWindowMs). @default 250 */
  batchWindowMs?: number;
  /** Serve the Mesos v1 scheduler HTTP API (external frameworks); handled while this one leads. */
  schedulerApi?: {
    /** 0: a free port. */
    port: number;
    /** @default '127.0.0.1' */
    host?: string;
    /** Serve HTTPS with this certificate. */
    tls?: { cert: Buffer; key: Buffer };
    /** Users and tokens (with frameworkRoles); without one, calls are not authenticated. */
    tokenFile?: string;
    /** @default 15 */
    heartbeatIntervalSeconds?: number;
    /** Namespace of framework tasks. @default 'default' */
    namespace?: string;
  };
}

/** A started (campaigning) controller-manager. */
export interface ControllerManagerHandle {
  readonly cm: ControllerManager;
  readonly registry: Registry;
  /** The port /metrics is served on; undefined without a metrics server (or when its port was taken). */
  readonly metricsPort?: number;
  /** The port of the Mesos scheduler API, when served. */
  readonly schedulerApiPort?: number;
  /** Steps down, stops its metrics server and closes its own etcd connections. */
  stop(): Promise<void>;
}

/**
 * Starts campaigning for leadership (the controllers run while it leads). A metrics port that
 * cannot be bound is logged, not fatal: several controller-managers may share a machine.
 */
export async function startControllerManager(o: StartControllerManagerOptions): Promise<ControllerManagerHandle> {
  if (Boolean(o.store) === Boolean(o.etcd)) throw new Error('startControllerManager: give store or etcd, not both or neither');
  const registry = o.registry ?? new Registry();
  if (o.processMetrics) collectDefaultMetrics({ register: registry });
  const own = o.etcd ? [new EtcdStore(o.etcd), new EtcdStore(o.etcd)] : [];
  const [store, leaderStore] = o.store ? [o.store, undefined] : own;
  const api = o.schedulerApi && new SchedulerApiServer({
    identity: o.identity, logger: o.logger, store: store!, prefix: o.prefix,
    authenticator: o.schedulerApi.tokenFile ? TokenAuthenticator.fromFile(o.schedulerApi.tokenFile) : undefined,
    heartbeatIntervalSeconds: o.schedulerApi.heartbeatIntervalSeconds, namespace: o.schedulerApi.namespace,
  });
  let schedulerApiPort: number | undefined;
  try {
    schedulerApiPort = api ? await api.listen(o.schedulerApi!.port, o.schedulerApi!.host, o.schedulerApi!.tls) : undefined;
  } catch (err) {
    await Promise.all(own.map((s) => s.close()));
    throw err;
  }
  const cm = new ControllerManager({
    schedulerApi: api,
    store: store!, leaderStore, prefix: o.prefix, identity: o.identity, logger: o.logger, registry,
    leaderLeaseSeconds: o.leaderLeaseSeconds, lostTaskGraceSeconds: o.lostTaskGraceSeconds,
    allocationIntervalMs: o.allocationIntervalMs, batchWindowMs: o.batchWindowMs,
  });
  const metrics = o.metricsPort === undefined ? undefined : await serveMetrics(registry, o.metricsPort, o.metricsHost ?? '127.0.0.1', o.logger);
  cm.start();
  o.logger.info({ identity: o.identity, metricsPort: metrics?.port }, 'controller-manager started; campaigning');
  let stopping: Promise<void> | undefined;
  return {
    cm,
    registry,
    metricsPort: metrics?.port,
    schedulerApiPort,
    stop: () => (stopping ??= (async () => {
      await cm.stop();
      await api?.close();
      if (metrics) {
        await new Promise<void>((resolve) => {
          metrics.server.close(() => resolve());
          metrics.server.closeAllConnections();
        });
      }
      await Promise.all(own.map((s) => s.close()));
    })()),
  };
}

async function serveMetrics(registry: Registry, port: number, host: string, log: Logger): Promise<{ server: Server; port: number } | undefined> {
  const server = createServer((_req, res) => {
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(`${err.message}\n`),
    );
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    log.error({ err: (err as Error).message, port }, 'metrics server failed; running without /metrics');
    return undefined;
  }
  return { server, port: (server.address() as AddressInfo).port };
}
