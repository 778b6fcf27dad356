/**
 * startAgent: one agent with its HTTP endpoint (logs), the way `shoal-agent` and `shoal dev` both
 * run it. The HTTP server is bound first (its port is part of the address the Node advertises) and
 * gets the agent as it is built, so it never serves without one.
 */
import * as fs from 'node:fs';
import type { Logger } from 'pino';
import type { PortRange } from '../api/resources';
import { resolveRuntime } from '../runtime';
import type { Runtime } from '../runtime/types';
import { EtcdStore, type EtcdConnection } from '../store/etcd';
import type { Store } from '../store/types';
import { Agent } from './agent';
import { machineCapacity } from './config';
import { AgentHttpServer } from './http';
import { DEFAULT_HEARTBEAT_INTERVAL_SECONDS } from './leases';

export interface StartAgentOptions {
  /** A store shared with the caller (who closes it). Give this or etcd. */
  store?: Store;
  /** etcd client URLs: the agent opens a connection of its own and closes it at stop. */
  etcd?: EtcdConnection;
  /** etcd key prefix. @default '/shoal' */
  prefix?: string;
  nodeName: string;
  /** Agent state directory (the process runtime keeps its tasks' work directories here); created if missing. */
  dataDir: string;
  /** Task runtime by name (`auto`: docker when its daemon answers, else process), or an instance. */
  runtime: string | Runtime;
  /** Runtimes advertised in Node.status.runtimes. @default [runtime.name] */
  runtimes?: string[];
  /** Docker: pull images that are not present. */
  pull?: boolean;
  /** Docker: let containers run as root when the image or task asks; process: allow `taskUser` root. */
  allowRoot?: boolean;
  /** Process runtime: run every task as this user (name, uid or uid:gid). @default a uid of its own per task (agent as root) */
  taskUser?: string;
  /** Process runtime: the range per-task uids come from. @default DEFAULT_TASK_UIDS */
  taskUids?: [number, number];
  /** Process runtime: where task cgroups go; false: none. @default '/shoal' */
  cgroupParent?: string | false;
  /** What is offered; cpus, mem and disk left out are the machine's (all CPUs, all memory, free disk of dataDir). */
  capacity: { cpus?: number; mem?: number; disk?: number; ports: PortRange[] };
  attributes?: Record<string, string>;
  /** Node.status.hostname (what `hostname` constraints match). */
  hostname: string;
  /** The host tasks are told they run on (HOST). @default hostname */
  taskHost?: string;
  /** The HTTP endpoint: port (0: a free one) and interface. @default all interfaces */
  /** The HTTP endpoint (logs); HTTPS with `tls`. */
  listen: { port: number; host?: string; tls?: { cert: Buffer; key: Buffer } };
  /** host:port the apiserver reaches the agent at. @default `<listen.host>:<bound port>` when listening on one interface, else `<hostname>:<bound port>` */
  advertiseAddress?: string;
  /** The cluster-internal agent token for logs; without one, logs are refused (503). */
  token?: string;
  /** @default 10 */
  leaseTtlSeconds?: number;
  /** How often Node.status.lastHeartbeatTime is refreshed while the lease lives; 0: only at registration. @default 30 */
  heartbeatIntervalSeconds?: number;
  logger: Logger;
}

/** A started agent. */
export interface AgentHandle {
  readonly agent: Agent;
  /** The port the HTTP endpoint listens on. */
  readonly port: number;
  /** The address advertised in Node.status.address. */
  readonly address: string;
  /**
   * Resolves once the agent adopted what its runtime runs, registered and follows its
   * assignments (retrying while etcd is unreachable), or once it is stopped.
   */
  readonly ready: Promise<void>;
  /**
   * Stops the agent, its HTTP endpoint and its own etcd connection; tasks keep running (a
   * restarted agent adopts them). Without `revoke` the lease is left to expire, so a restart
   * within its TTL loses nothing; `revoke: true` makes the node lost at once (decommissioning).
   */
  stop(o?: { revoke?: boolean }): Promise<void>;
}

/** Binds the HTTP endpoint, builds the agent on it and starts it; resolves once it listens (see AgentHandle.ready). */
export async function startAgent(o: StartAgentOptions): Promise<AgentHandle> {
  if (Boolean(o.store) === Boolean(o.etcd)) throw new Error('startAgent: give store or etcd, not both or neither');
  const log = o.logger;
  fs.mkdirSync(o.dataDir, { recursive: true });
  const runtime = typeof o.runtime === 'string'
    ? await resolveRuntime(o.runtime, { dataDir: o.dataDir, node: { hostname: o.taskHost ?? o.hostname, nodeName: o.nodeName }, logger: log, pull: o.pull, allowRoot: o.allowRoot, taskUser: o.taskUser, taskUids: o.taskUids, cgroupParent: o.cgroupParent })
    : o.runtime;
  const needMachine = o.capacity.cpus === undefined || o.capacity.mem === undefined || o.capacity.disk === undefined;
  const machine = needMachine ? machineCapacity(o.dataDir, o.capacity.ports) : undefined;
  const capacity = { cpus: o.capacity.cpus ?? machine!.cpus, mem: o.capacity.mem ?? machine!.mem, disk: o.capacity.disk ?? machine!.disk, ports: o.capacity.ports };
  if (!o.token) log.warn('no agent token (--log-token-file): the logs endpoint answers 503');
  const ownStore = o.etcd ? new EtcdStore(o.etcd) : undefined;
  const store = (o.store ?? ownStore)!;
  let agent!: Agent;
  let address!: string;
  let http: AgentHttpServer;
  try {
    http = await AgentHttpServer.listen({
      port: o.listen.port, host: o.listen.host, tls: o.listen.tls, token: o.token, logger: log,
      source: (port) => {
        const host = o.listen.host && !['0.0.0.0', '::'].includes(o.listen.host) ? o.listen.host : o.hostname;
        address = o.advertiseAddress ?? `${host.includes(':') ? `[${host}]` : host}:${port}`;
        agent = new Agent({
          store, prefix: o.prefix, nodeName: o.nodeName, capacity, attributes: o.attributes, runtime, runtimes: o.runtimes,
          hostname: o.hostname, address, leaseTtlSeconds: o.leaseTtlSeconds, logger: log,
          heartbeatIntervalSeconds: o.heartbeatIntervalSeconds ?? DEFAULT_HEARTBEAT_INTERVAL_SECONDS,
        });
        return agent;
      },
    });
  } catch (err) {
    runtime.close?.();
    await ownStore?.close();
    throw err;
  }
  log.info({ node: o.nodeName, port: http.port, address, tls: Boolean(o.listen.tls), runtime: runtime.name }, 'agent listening');
  const ready = agent.start();
  let stopping: Promise<void> | undefined;
  return {
    agent,
    port: http.port,
    address,
    ready,
    stop: ({ revoke = false } = {}) => (stopping ??= (async () => {
      await agent.stop({ revoke });
      await http.close();
      await ownStore?.close();
    })()),
  };
}
