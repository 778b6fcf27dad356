/**
 * `shoal dev`: a whole cluster on one machine — a real etcd child process, and the apiserver,
 * the controller-manager and N agents in this process, each started by the same function its
 * binary calls — plus the files a CLI needs (config.yaml with server and token).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { dump } from 'js-yaml';
import { checkNodeName } from '../agent/config';
import { startAgent, type AgentHandle } from '../agent/start';
import { TokenAuthenticator } from '../apiserver/auth';
import { startApiServer, type ApiServerHandle } from '../apiserver/start';
import { startControllerManager, type ControllerManagerHandle } from '../controllers/start';
import type { EtcdConnection } from '../store/etcd';
import { DEFAULT_PREFIX } from '../store/objects';
import type { Logger } from '../util/log';
import { ensureCa, issueCertificate, type CaFiles, type CertFiles } from '../util/pki';
import { startEtcd, type EtcdProcess } from './etcd';
import { ensureAgentUser, ensureEtcdAuth, type ComponentUser } from './etcd-auth';

/** Options of a dev cluster. */
export interface DevClusterOptions {
  /** Holds etcd's data, tokens.yaml and config.yaml; reused across restarts. */
  dataDir: string;
  /** @default 7070 */
  apiPort?: number;
  /** @default 23790 */
  etcdPort?: number;
  /**
   * Port of the Mesos v1 scheduler HTTP API (external frameworks, authenticated with the dev
   * tokens), on 127.0.0.1; 0: a free port; null: not served. @default 5050
   */
  schedulerApiPort?: number | null;
  /** Also write this config file (the user's ~/.shoal/config.yaml). */
  userConfigPath?: string;
  /** Agents to run in this process. @default 0 */
  agents?: number;
  /** Their runtime, or a list the agents take in turn; auto = docker when its daemon answers, else process. @default "auto" */
  runtime?: DevRuntime | DevRuntime[];
  /**
   * CPUs each agent advertises. @default os.availableParallelism(): every agent offers all the
   * machine's cores (as Nomad's dev agent does), so N agents overcommit the CPUs N times over and
   * an App at the default `cpus: 1` fits on each of them.
   */
  agentCpus?: number;
  /**
   * On stop(), leave the agents' tasks running (a restarted dev cluster on the same data dir
   * adopts them). @default false: stop() stops every task its agents run.
   */
  keepTasks?: boolean;
  logger: Logger;
}

export type DevRuntime = 'process' | 'docker' | 'auto';

export interface DevCluster {
  /** `https://127.0.0.1:<port>` */
  server: string;
  token: string;
  /** The cluster CA (what verifies the apiserver's, etcd's and the agents' certificates). */
  caFile: string;
  configPath: string;
  etcdEndpoint: string;
  /** `https://127.0.0.1:P` of the Mesos scheduler API, when served. */
  schedulerApi?: string;
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

/** CPUs a dev agent advertises by default: all the machine's cores (each agent; overcommitted with more than one). */
export function defaultDevAgentCpus(): number {
  return availableParallelism();
}

/**
 * Agents sharing this machine: each offers all its cpus (or agentCpus; overcommitted with more
 * than one agent), an equal slice of its memory and its own host port range (31000-31999,
 * 32000-32999, ...), so their tasks never collide.
 */
async function startAgents(sec: DevSecurity, o: DevClusterOptions, agentToken: string): Promise<AgentHandle[]> {
  const n = o.agents ?? 0;
  const agents: AgentHandle[] = [];
  if (n > 0) mkdirSync(agentsRoot(o.dataDir), { recursive: true, mode: 0o711 });
  for (let i = 0; i < n; i++) {
    const nodeName = `dev-agent-${i + 1}`;
    const runtimes = Array.isArray(o.runtime) ? o.runtime : [o.runtime ?? 'auto'];
    const agent = await startAgent({
      etcd: await sec.agentEtcd(nodeName), prefix: DEFAULT_PREFIX, nodeName,
      dataDir: join(agentsRoot(o.dataDir), nodeName),
      runtime: runtimes[i % runtimes.length] ?? 'auto',
      capacity: {
        cpus: o.agentCpus ?? defaultDevAgentCpus(),
        mem: Math.floor(totalmem() / 2 ** 20 / n),
        disk: 10240,
        ports: [[31000 + i * 1000, 31999 + i * 1000]],
      },
      attributes: { dev: 'true' },
      // Each dev agent stands for a machine of its own: `hostname` constraints (UNIQUE) spread over
      // them; its tasks and its logs endpoint (a free port) are on the loopback interface.
      hostname: nodeName,
      taskHost: '127.0.0.1',
      listen: { port: 0, host: '127.0.0.1', tls: sec.agentTls(nodeName) },
      token: agentToken,
      logger: o.logger.child({ component: 'agent', node: nodeName }),
    });
    agents.push(agent);
    await agent.ready;
  }
  return agents;
}

/**
 * Where the dev agents keep their state and their tasks' work dirs: `<dataDir>/agents`, unless
 * this runs as root and a directory above dataDir does not let other users through (the default
 * ~/.shoal/dev under a 0700 /root): process tasks run as users of their own and could not reach
 * their work dirs, so the agents live in /var/lib/shoal/dev/<hash of dataDir>/ instead.
 */
export function agentsRoot(dataDir: string): string {
  const inside = join(dataDir, 'agents');
  if (process.getuid?.() !== 0) return inside;
  for (let dir = dirname(resolve(dataDir)); ; dir = dirname(dir)) {
    let mode: number;
    try {
      mode = statSync(dir).mode;
    } catch {
      mode = 0o755;
    }
    if ((mode & 0o001) === 0) return join('/var/lib/shoal/dev', createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 12), 'agents');
    if (dir === dirname(dir)) return inside;
  }
}

/** Kill grace of the tasks stopped with the dev cluster (TaskSpec's default; their specs are not at hand). */
const STOP_GRACE_SECONDS = 3;

/** Stops every task the agent's runtime runs (the agent is stopped: nothing restarts them); logs what it could not. */
async function stopAgentTasks(a: AgentHandle, logger: Logger): Promise<void> {
  const runtime = a.agent.runtime;
  const log = logger.child({ component: 'agent', node: a.agent.nodeName });
  let refs: Array<{ namespace: string; name: string }>;
  try {
    refs = await runtime.list();
  } catch (err) {
    log.warn({ err: String(err) }, 'could not list the tasks to stop; they may keep running');
    return;
  }
  await Promise.all(refs.map(async ({ namespace, name }) => {
    try {
      await runtime.stop(namespace, name, STOP_GRACE_SECONDS);
      log.info({ task: `${namespace}/${name}`, runtime: runtime.name }, 'task stopped with the dev cluster');
    } catch (err) {
      log.warn({ task: `${namespace}/${name}`, err: String(err) }, 'task could not be stopped; it may keep running');
    }
  }));
}

/** The certificates of a dev cluster, in `<dataDir>/pki` (made once, kept across restarts). */
interface DevPki {
  dir: string;
  ca: CaFiles;
  etcd: CertFiles;
  apiserver: CertFiles;
  schedulerApi: CertFiles;
}

/** Everything on the loopback interface: one CA; etcd's and the apiserver's certificates name 127.0.0.1 and localhost. */
function devPki(dataDir: string): DevPki {
  const dir = join(dataDir, 'pki');
  const ca = ensureCa(dir, 'shoal-dev-ca');
  const hosts = ['127.0.0.1', 'localhost'];
  return {
    dir, ca,
    etcd: issueCertificate(ca, dir, 'etcd', { commonName: 'etcd', hosts }),
    apiserver: issueCertificate(ca, dir, 'apiserver', { commonName: 'shoal-apiserver', hosts }),
    schedulerApi: issueCertificate(ca, dir, 'scheduler-api', { commonName: 'shoal-scheduler-api', hosts }),
  };
}

/** How each component of a dev cluster proves who it is: its etcd user, its certificate. */
interface DevSecurity {
  caPem: Buffer;
  apiserverTls: { cert: Buffer; key: Buffer };
  schedulerApiTls: { cert: Buffer; key: Buffer };
  etcd(user: ComponentUser): EtcdConnection;
  /** The agent of `node`'s connection, as its own etcd user (made now when new). */
  agentEtcd(node: string): Promise<EtcdConnection>;
  /** An agent's serving certificate: CN its node name, valid for 127.0.0.1 (where dev agents listen). */
  agentTls(node: string): { cert: Buffer; key: Buffer };
}

/** etcd users and roles (auth on), and the connection and certificates of each component. */
async function devSecurity(pki: DevPki, endpoint: string): Promise<DevSecurity> {
  const caPem = readFileSync(pki.ca.cert);
  const auth = { endpoint, ca: caPem, dir: join(pki.dir, 'etcd-users'), prefix: DEFAULT_PREFIX };
  const users = await ensureEtcdAuth(auth);
  const pem = (c: CertFiles) => ({ cert: readFileSync(c.cert), key: readFileSync(c.key) });
  const connection = (c: { username: string; password: string }): EtcdConnection => ({ endpoints: [endpoint], tls: { ca: caPem }, auth: { username: c.username, password: c.password } });
  return {
    caPem,
    apiserverTls: pem(pki.apiserver),
    schedulerApiTls: pem(pki.schedulerApi),
    etcd: (user) => connection(users[user]),
    agentEtcd: async (node) => connection(await ensureAgentUser(auth, node)),
    agentTls: (node) => pem(issueCertificate(pki.ca, join(pki.dir, 'agents'), node, { commonName: node, hosts: ['127.0.0.1'] })),
  };
}

/**
 * The flags a standalone `shoal-agent` needs to join the running dev cluster in dataDir as `node`
 * (what `shoal node add` prints): etcd's endpoint and CA, the node's own etcd user (made now, with
 * a role that reaches only that node's keys), a serving certificate naming the node (made now, for
 * `hosts`), the log token. Throws when dataDir holds no dev cluster or its etcd does not answer.
 */
export async function devAgentFlags(dataDir: string, node: string, hosts: string[] = ['127.0.0.1']): Promise<string[]> {
  checkNodeName(node);
  const pkiDir = join(dataDir, 'pki');
  const endpointFile = join(dataDir, 'etcd-endpoint');
  if (!existsSync(join(pkiDir, 'ca.key')) || !existsSync(endpointFile)) throw new Error(`no dev cluster in ${dataDir}: start one with \`shoal dev --data-dir ${dataDir}\` first`);
  const ca = ensureCa(pkiDir, 'shoal-dev-ca');
  const cert = issueCertificate(ca, join(pkiDir, 'agents'), node, { commonName: node, hosts });
  const endpoint = readFileSync(endpointFile, 'utf8').trim();
  const auth = { endpoint, ca: readFileSync(ca.cert), dir: join(pkiDir, 'etcd-users'), prefix: DEFAULT_PREFIX };
  const password = await ensureAgentUser(auth, node).catch((err: Error) => {
    throw new Error(`cannot make the etcd user of node "${node}" (${err.message}): is \`shoal dev --data-dir ${dataDir}\` running?`);
  });
  return [
    '--node-name', node,
    '--etcd-endpoints', endpoint, '--etcd-cacert', ca.cert,
    '--etcd-user', password.username, '--etcd-password-file', password.passwordFile,
    '--tls-cert-file', cert.cert, '--tls-private-key-file', cert.key,
    '--log-token-file', ensureAgentToken(dataDir).tokenFile,
  ];
}

/** Starts etcd, the apiserver, the controller-manager and the agents; resolves once the apiserver answers and every agent registered. */
export async function startDevCluster(o: DevClusterOptions): Promise<DevCluster> {
  // 0711: task users (uids of their own) must get through to their work dirs under agents/; what
  // is secret in here is 0600 (tokens, config) or in 0700 directories (pki/, etcd/).
  mkdirSync(o.dataDir, { recursive: true, mode: 0o711 });
  if ((statSync(o.dataDir).mode & 0o711) !== 0o711 && statSync(o.dataDir).uid === process.getuid?.()) chmodSync(o.dataDir, 0o711);
  const { token, tokenFile } = ensureAdminToken(o.dataDir);
  const agentToken = ensureAgentToken(o.dataDir).token;
  const etcdLog = o.logger.child({ component: 'etcd' });
  const pki = devPki(o.dataDir);
  const etcd: EtcdProcess = await startEtcd({
    dataDir: join(o.dataDir, 'etcd'),
    clientPort: o.etcdPort ?? 23790,
    log: (line) => etcdLog.debug(line),
    tls: { cert: pki.etcd.cert, key: pki.etcd.key, ca: pki.ca.cert },
  });
  writeFileSync(join(o.dataDir, 'etcd-endpoint'), `${etcd.endpoint}\n`, { mode: 0o644 });
  let sec: DevSecurity;
  try {
    sec = await devSecurity(pki, etcd.endpoint);
  } catch (err) {
    await etcd.stop();
    throw err;
  }
  const apiPort = o.apiPort ?? 7070;
  let api: ApiServerHandle;
  try {
    api = await startApiServer({
      etcd: sec.etcd('shoal-apiserver'),
      tls: sec.apiserverTls,
      agentCa: sec.caPem,
      prefix: DEFAULT_PREFIX,
      authenticator: TokenAuthenticator.fromFile(tokenFile),
      agentToken,
      logger: o.logger.child({ component: 'apiserver' }),
      port: apiPort,
    });
  } catch (err) {
    await etcd.stop();
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'EADDRINUSE' ? `API port ${apiPort} is in use; pick another with --api-port` : String(err));
  }
  // Each component connects to etcd as its own etcd user; in dev the controller-manager's metrics
  // join the apiserver's /metrics.
  // The scheduler API authenticates frameworks with the same token file: the dev admin (namespace
  // "*") may register frameworks with any role.
  const schedulerApiPort = o.schedulerApiPort === undefined ? 5050 : o.schedulerApiPort;
  let cm: ControllerManagerHandle;
  try {
    cm = await startControllerManager({
      etcd: sec.etcd('shoal-controller-manager'), prefix: DEFAULT_PREFIX, identity: 'dev', logger: o.logger.child({ component: 'controller-manager' }), registry: api.metrics.registry,
      schedulerApi: schedulerApiPort === null ? undefined : { port: schedulerApiPort, host: '127.0.0.1', tokenFile, tls: sec.schedulerApiTls },
    });
  } catch (err) {
    await api.stop();
    await etcd.stop();
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'EADDRINUSE' ? `scheduler API port ${schedulerApiPort} is in use; pick another with --scheduler-api-port` : String(err));
  }
  const agents = await startAgents(sec, o, agentToken);
  const server = `https://127.0.0.1:${api.port}`;
  const schedulerApi = cm.schedulerApiPort === undefined ? undefined : `https://127.0.0.1:${cm.schedulerApiPort}`;
  const config = dump({ server, token, 'certificate-authority': pki.ca.cert, ...(schedulerApi ? { schedulerApi } : {}) });
  const configPath = join(o.dataDir, 'config.yaml');
  writeFileSync(configPath, config, { mode: 0o600 });
  if (o.userConfigPath) {
    mkdirSync(join(o.userConfigPath, '..'), { recursive: true, mode: 0o700 });
    writeFileSync(o.userConfigPath, config, { mode: 0o600 });
  }
  return {
    server,
    token,
    caFile: pki.ca.cert,
    configPath,
    etcdEndpoint: etcd.endpoint,
    schedulerApi,
    stop: async () => {
      // Agents stop without revoking; their tasks keep running only with keepTasks (a restarted
      // dev cluster adopts them). Otherwise the cluster takes its tasks with it: each agent's
      // runtime stops what it runs once the agent no longer watches it (no restart, no report;
      // a restarted cluster sees them gone and reports them LOST, and their Apps replace them).
      await Promise.all(agents.map((a) => a.stop({ revoke: false })));
      if (!o.keepTasks) await Promise.all(agents.map((a) => stopAgentTasks(a, o.logger)));
      await cm.stop();
      await api.stop();
      await etcd.stop();
    },
  };
}
