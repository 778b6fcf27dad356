/**
 * `shoal dev`: a whole cluster on one machine — a real etcd child process and the API
 * server in this process — plus the files a CLI needs (config.yaml with server and token).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { TokenAuthenticator } from '../apiserver/auth';
import { ApiServer } from '../apiserver/server';
import { ApiMetrics } from '../apiserver/metrics';
import { cpus, totalmem } from 'node:os';
import { Agent } from '../agent/agent';
import { AgentHttpServer } from '../agent/http';
import { ControllerManager } from '../controllers/manager';
import { resolveRuntime } from '../runtime';
import { EtcdStore } from '../store/etcd';
import { DEFAULT_PREFIX } from '../store/objects';
import type { Logger } from '../util/log';
import { startEtcd, type EtcdProcess } from './etcd';

/** Options of a dev cluster. */
export interface DevClusterOptions {
  /** Holds etcd's data, tokens.yaml and config.yaml; reused across restarts. */
  dataDir: string;
  /** @default 7070 */
  apiPort?: number;
  /** @default 23790 */
  etcdPort?: number;
  /** Also write this config file (the user's ~/.shoal/config.yaml). */
  userConfigPath?: string;
  /** Agents to run in this process. @default 0 */
  agents?: number;
  /** Their runtime, or a list the agents take in turn; auto = docker when its daemon answers, else process. @default "auto" */
  runtime?: DevRuntime | DevRuntime[];
  logger: Logger;
}

export type DevRuntime = 'process' | 'docker' | 'auto';

export interface DevCluster {
  server: string;
  token: string;
  configPath: string;
  etcdEndpoint: string;
  stop(): Promise<void>;
}

/** Reads the admin token kept in dataDir, or makes one (0600) on first start. */
export function ensureAdminToken(dataDir: string): { token: string; tokenFile: string } {
  const tokenFile = join(dataDir, 'tokens.yaml');
  if (existsSync(tokenFile)) {
    const match = /token:\s*(\S+)/.exec(readFileSync(tokenFile, 'utf8'));
    if (match) return { token: match[1], tokenFile };
  }
  const token = randomBytes(24).toString('hex');
  writeFileSync(tokenFile, dump({ users: [{ name: 'admin', token, roles: [{ namespace: '*', role: 'admin' }] }]}), { mode: 0o600 });
  return { token, tokenFile };
}

/** Reads the cluster-internal agent token (apiserver → agents, for task logs) kept in dataDir, or makes one (0600). */
export function ensureAgentToken(dataDir: string): { token: string; tokenFile: string } {
  const tokenFile = join(dataDir, 'agent-token');
  if (existsSync(tokenFile)) {
    const token = readFileSync(tokenFile, 'utf8').trim();
    if (token) return { token, tokenFile };
  }
  const token = randomBytes(24).toString('hex');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  return { token, tokenFile };
}

interface RunningAgent {
  agent: Agent;
  http: AgentHttpServer;
}

/**
 * Agents sharing this machine: each gets an equal slice of its cpus and memory and its own
 * host port range (31000-31999, 32000-32999, ...), so their tasks never collide.
 */
async function startAgents(store: EtcdStore, o: DevClusterOptions, agentToken: string): Promise<RunningAgent[]> {
  const n = o.agents ?? 0;
  const agents: RunningAgent[] = [];
  for (let i = 0; i < n; i++) {
    const nodeName = `dev-agent-${i + 1}`;
    const logger = o.logger.child({ component: 'agent', node: nodeName });
    const runtimes = Array.isArray(o.runtime) ? o.runtime : [o.runtime ?? 'auto'];
    const runtime = await resolveRuntime(runtimes[i % runtimes.length] ?? 'auto', { dataDir: join(o.dataDir, 'agents', nodeName), node: { hostname: '127.0.0.1', nodeName }, logger });
    const capacity = {
      cpus: Math.max(0.1, Math.floor((cpus().length / n) * 10) / 10),
      mem: Math.floor(totalmem() / 2 ** 20 / n),
      disk: 10240,
      ports: [[31000 + i * 1000, 31999 + i * 1000]] as Array<[number, number]>,
    };
    // Each agent's logs endpoint on a free port of the loopback interface.
    const http = new AgentHttpServer({ token: agentToken, logger });
    const port = await http.listen(0, '127.0.0.1');
    const agent = new Agent({ store, prefix: DEFAULT_PREFIX, nodeName, runtime, runtimes: [runtime.name], capacity, attributes: { dev: 'true' },
      // Each dev agent stands for a machine of its own: `hostname` constraints (UNIQUE) spread over them.
      hostname: nodeName, address: `127.0.0.1:${port}`, logger });
    http.source = agent;
    agents.push({ agent, http });
    await agent.start();
  }
  return agents;
}

/** Starts etcd and the API server; resolves once both answer. */
export async function startDevCluster(o: DevClusterOptions): Promise<DevCluster> {
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const { token, tokenFile } = ensureAdminToken(o.dataDir);
  const agentToken = ensureAgentToken(o.dataDir).token;
  const etcdLog = o.logger.child({ component: 'etcd' });
  const etcd: EtcdProcess = await startEtcd({
    dataDir: join(o.dataDir, 'etcd'),
    clientPort: o.etcdPort ?? 23790,
    log: (line) => etcdLog.debug(line),
  });
  const metrics = new ApiMetrics();
  const store = new EtcdStore({ endpoints: [etcd.endpoint], metrics: metrics.storeObserver() });
  const api = new ApiServer({
    store,
    prefix: DEFAULT_PREFIX,
    authenticator: TokenAuthenticator.fromFile(tokenFile),
    logger: o.logger.child({ component: 'apiserver' }),
    metrics,
    agentToken,
  });
  // In dev the controller-manager's metrics join the apiserver's /metrics.
  const cm = new ControllerManager({ store, prefix: DEFAULT_PREFIX, identity: 'dev', logger: o.logger.child({ component: 'controller-manager' }), registry: metrics.registry });
  let port: number;
  try {
    port = await api.listen(o.apiPort ?? 7070);
    cm.start();
  } catch (err) {
    await store.close();
    await etcd.stop();
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'EADDRINUSE' ? `API port ${o.apiPort ?? 7070} is in use; pick another with --api-port` : String(err));
  }
  const agents = await startAgents(store, o, agentToken);
  const server = `http://127.0.0.1:${port}`;
  const config = dump({ server, token });
  const configPath = join(o.dataDir, 'config.yaml');
  writeFileSync(configPath, config, { mode: 0o600 });
  if (o.userConfigPath) {
    mkdirSync(join(o.userConfigPath, '..'), { recursive: true, mode: 0o700 });
    writeFileSync(o.userConfigPath, config, { mode: 0o600 });
  }
  return {
    server,
    token,
    configPath,
    etcdEndpoint: etcd.endpoint,
    stop: async () => {
      // Agents stop without revoking: their tasks keep running and a restarted dev cluster adopts them.
      await Promise.all(agents.map(async (a) => {
        await a.agent.stop({ revoke: false });
        await a.http.close();
      }));
      await cm.stop();
      await api.close();
      await store.close();
      await etcd.stop();
    },
  };
}
