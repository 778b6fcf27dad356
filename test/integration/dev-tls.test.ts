/**
 * `shoal dev` is secure by default: its own CA, etcd serving TLS with auth on and one etcd user
 * per component, the apiserver on HTTPS (plain HTTP refused), the agents' endpoints on HTTPS with
 * certificates naming their node, and a CLI config that trusts the CA. A dev cluster restarted on
 * the same data directory (auth already on) comes back with the same credentials.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect } from 'node:tls';
import { Etcd3 } from 'etcd3';
import { agentIdentity } from '../../pkg/apiserver/server';
import { HttpClient } from '../../pkg/cli/client';
import { requireServer, resolveConfig } from '../../pkg/cli/config';
import { CliError } from '../../pkg/cli/errors';
import { kindByPlural } from '../../pkg/api/kinds';
import { startDevCluster, type DevCluster } from '../../pkg/devcluster/cluster';
import { ensureAgentUser } from '../../pkg/devcluster/etcd-auth';
import { EtcdStore } from '../../pkg/store/etcd';
import { ensureCa, issueCertificate } from '../../pkg/util/pki';
import { createLogger } from '../../pkg/util/log';
import { freePorts } from '../../pkg/util/net';
import { until } from '../harness/wait';

const NODES = kindByPlural('nodes')!;
let dir: string;
let cluster: DevCluster | undefined;
let apiPort: number;
let etcdPort: number;

/** The cluster's log lines (warnings and up), for a failure's message. */
const logLines: string[] = [];
const logger = createLogger('dev-tls', { level: 'warn', destination: new Writable({ write: (chunk: Buffer, _enc, done) => (logLines.push(...chunk.toString().split('\n').filter(Boolean)), done()) }) });

async function start(): Promise<DevCluster> {
  cluster = await startDevCluster({ dataDir: dir, apiPort, etcdPort, schedulerApiPort: null, agents: 1, runtime: 'process', logger });
  return cluster;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-dev-tls-'));
  [apiPort, etcdPort] = (await freePorts(2)) as [number, number];
  await start();
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

function cliClient(flags: { certificateAuthority?: string; insecureSkipTlsVerify?: boolean; server?: string } = {}): HttpClient {
  return new HttpClient(requireServer(resolveConfig({ config: cluster!.configPath, ...flags }, {}, dir)));
}

it('servesTheApiOverHttpsThatTheWrittenConfigTrusts', async () => {
  expect(cluster!.server).toBe(`https://127.0.0.1:${apiPort}`);
  const config = resolveConfig({ config: cluster!.configPath }, {}, dir);
  expect(config).toMatchObject({ server: cluster!.server, certificateAuthority: join(dir, 'pki', 'ca.crt') });
  const nodes = await cliClient().list(NODES, undefined);
  expect(nodes.items.map((n) => n.metadata.name)).toEqual(['dev-agent-1']);
});

it('refusesPlainHttpAndClientsThatDoNotTrustTheCa', async () => {
  await expect(fetch(`http://127.0.0.1:${apiPort}/readyz`)).rejects.toThrow();
  await expect(fetch(`https://127.0.0.1:${apiPort}/readyz`)).rejects.toThrow();
  const untrusting = new HttpClient({ server: cluster!.server, token: cluster!.token });
  await expect(untrusting.list(NODES, undefined)).rejects.toThrow(new CliError(`cannot reach server ${cluster!.server}: the server's certificate is not signed by a CA this client trusts (set certificate-authority in the config file, or pass --certificate-authority)`));
  const plain = cliClient({ server: `http://127.0.0.1:${apiPort}` });
  await expect(plain.list(NODES, undefined)).rejects.toThrow(/does it serve HTTPS\? try https:\/\//);
});

it('runsEtcdWithTlsAndAuthAndAUserPerComponentConfinedToShoalsPrefix', async () => {
  const ca = readFileSync(join(dir, 'pki', 'ca.crt'));
  const endpoint = `https://127.0.0.1:${etcdPort}`;
  const anonymous = new Etcd3({ hosts: [endpoint], credentials: { rootCertificate: ca } });
  await expect(anonymous.get('/shoal/registry/nodes/dev-agent-1').string()).rejects.toThrow(/user name is empty|permission denied/);
  anonymous.close();
  const password = (u: string) => readFileSync(join(dir, 'pki', 'etcd-users', `${u}.password`), 'utf8').trim();
  for (const user of ['shoal-apiserver', 'shoal-controller-manager', 'shoal-agent-dev-agent-1']) {
    const client = new Etcd3({ hosts: [endpoint], credentials: { rootCertificate: ca }, auth: { username: user, password: password(user) } });
    try {
      expect(await client.get('/shoal/registry/nodes/dev-agent-1').string()).toContain('"dev-agent-1"');
      await expect(client.put('/elsewhere').value('x')).rejects.toThrow(/permission denied/);
    } finally {
      client.close();
    }
  }
  const wrong = new Etcd3({ hosts: [endpoint], credentials: { rootCertificate: ca }, auth: { username: 'shoal-agent-dev-agent-1', password: 'guess' } });
  await expect(wrong.get('/shoal/x').string()).rejects.toThrow(/authentication failed/);
  wrong.close();
  await expect(fetch(`http://127.0.0.1:${etcdPort}/health`)).rejects.toThrow();
});

it('confinesAnAgentsEtcdUserToItsOwnNodesKeys', async () => {
  const ca = readFileSync(join(dir, 'pki', 'ca.crt'));
  const password = readFileSync(join(dir, 'pki', 'etcd-users', 'shoal-agent-dev-agent-1.password'), 'utf8').trim();
  const agent = new Etcd3({ hosts: [`https://127.0.0.1:${etcdPort}`], credentials: { rootCertificate: ca }, auth: { username: 'shoal-agent-dev-agent-1', password } });
  const denied = /permission denied/;
  try {
    // What it needs: its Node, its lease key, its assignments, its own task status reports.
    expect(await agent.get('/shoal/registry/nodes/dev-agent-1').string()).toContain('"dev-agent-1"');
    expect(await agent.get('/shoal/leases/nodes/dev-agent-1').string()).not.toBeNull();
    await agent.getAll().prefix('/shoal/assignments/dev-agent-1/').keys();
    await agent.getAll().prefix('/shoal/taskstatus/dev-agent-1/').keys();
    // Any Task (another node's status, or its spec and env), another node's reports: refused.
    await expect(agent.put('/shoal/registry/tasks/default/victim').value('{}')).rejects.toThrow(denied);
    await expect(agent.getAll().prefix('/shoal/registry/tasks/').keys()).rejects.toThrow(denied);
    await expect(agent.put('/shoal/taskstatus/other-node/default/victim').value('{}')).rejects.toThrow(denied);
    // Another node's assignments (forging work for it, or reading it), another Node (its address:
    // where the apiserver would send the agent token), any App, the leader key: refused by etcd.
    await expect(agent.put('/shoal/assignments/other-node/default/forged').value('{}')).rejects.toThrow(denied);
    await expect(agent.put('/shoal/assignments/dev-agent-1/default/forged').value('{}')).rejects.toThrow(denied);
    await expect(agent.getAll().prefix('/shoal/assignments/other-node/').keys()).rejects.toThrow(denied);
    await expect(agent.put('/shoal/registry/nodes/other-node').value('{}')).rejects.toThrow(denied);
    await expect(agent.put('/shoal/registry/nodes/dev-agent-10').value('{}')).rejects.toThrow(denied);
    await expect(agent.put('/shoal/registry/apps/default/evil').value('{}')).rejects.toThrow(denied);
    await expect(agent.get('/shoal/registry/apps/default/evil').string()).rejects.toThrow(denied);
    await expect(agent.put('/shoal/leader/controller-manager').value('me')).rejects.toThrow(denied);
    await expect(agent.put('/shoal/leases/nodes/other-node').value('x')).rejects.toThrow(denied);
  } finally {
    agent.close();
  }
});

it('refusesAReportAboutAnotherNodesTaskWrittenInTheAgentsOwnRange', async () => {
  const ca = readFileSync(join(dir, 'pki', 'ca.crt'));
  const as = (user: string) => new Etcd3({ hosts: [`https://127.0.0.1:${etcdPort}`], credentials: { rootCertificate: ca }, auth: { username: user, password: readFileSync(join(dir, 'pki', 'etcd-users', `${user}.password`), 'utf8').trim() } });
  const cm = as('shoal-controller-manager');
  const agent = as('shoal-agent-dev-agent-1');
  try {
    // A task bound to another node, as the binder would write it.
    const victim = { apiVersion: 'shoal/v1', kind: 'Task', metadata: { name: 'victim', namespace: 'default', uid: 'uid-victim' }, spec: { nodeName: 'other-node', cmd: 'sleep 1' }, status: { state: 'RUNNING' } };
    await cm.put('/shoal/registry/tasks/default/victim').value(JSON.stringify(victim));
    const before = JSON.parse((await cm.get('/shoal/registry/tasks/default/victim').string())!) as typeof victim;
    // Only the leading controller-manager relays; a dev cluster returns before its controller-manager leads.
    const cluster = async () => `leader ${await cm.get('/shoal/leader/controller-manager').string()}; log: ${logLines.slice(-20).join('\n')}`;
    await until('a controller-manager leads', async () => (await cm.get('/shoal/leader/controller-manager').string()) !== null, 60_000, { explain: cluster });
    // The agent forges its status where etcd lets it write: its own range.
    await agent.put('/shoal/taskstatus/dev-agent-1/default/victim').value(JSON.stringify({ uid: 'uid-victim', status: { state: 'FAILED', message: 'forged' } }));
    // What a slow run must show: whether a controller-manager leads (only the leader relays), and what is stored.
    const explain = async () => `leader ${await cm.get('/shoal/leader/controller-manager').string()}; report ${await cm.get('/shoal/taskstatus/dev-agent-1/default/victim').string()}; task ${await cm.get('/shoal/registry/tasks/default/victim').string()}; log: ${logLines.slice(-20).join('\n')}`;
    await until('the relay drops the forged report', async () => (await cm.get('/shoal/taskstatus/dev-agent-1/default/victim').string()) === null, 30_000, { explain });
    expect(JSON.parse((await cm.get('/shoal/registry/tasks/default/victim').string())!)).toEqual(before);
    const events = async () => Object.values(await cm.getAll().prefix('/shoal/registry/events/').strings()).map((v) => JSON.parse(v) as { reason: string; involvedObject: { name: string } });
    await until('a ForgedTaskStatus event', async () => (await events()).some((e) => e.reason === 'ForgedTaskStatus'), 30_000);
    expect(await events()).toContainEqual(expect.objectContaining({ reason: 'ForgedTaskStatus', involvedObject: expect.objectContaining({ name: 'dev-agent-1' }) }));
    await cm.delete().key('/shoal/registry/tasks/default/victim');
  } finally {
    cm.close();
    agent.close();
  }
}, 150_000);

it('keepsWritingWhileUsersOrRolesChange', async () => {
  // etcd refuses a request when users or roles changed between its arrival and its apply
  // ("revision of auth store is old"); etcd's Go client retries it, etcd3 does not, so a
  // transaction racing `shoal node add` (or a dev cluster making its agents' users) failed: a dev
  // controller-manager's campaigns failed so (each costing 2 s; in CI twice no leader for 30 s).
  const password = readFileSync(join(dir, 'pki', 'etcd-users', 'shoal-controller-manager.password'), 'utf8').trim();
  const ca = readFileSync(join(dir, 'pki', 'ca.crt'));
  const store = new EtcdStore({ endpoints: [`https://127.0.0.1:${etcdPort}`], tls: { ca }, auth: { username: 'shoal-controller-manager', password } });
  try {
    const auth = { endpoint: `https://127.0.0.1:${etcdPort}`, ca, dir: join(dir, 'pki', 'etcd-users'), prefix: '/shoal' };
    let changing = true;
    const changes = (async () => {
      for (let i = 0; i < 4; i++) await ensureAgentUser(auth, `auth-change-${i}`);
      changing = false;
    })();
    const failures: string[] = [];
    let writes = 0;
    while (changing) {
      await Promise.all([...Array(20).keys()].map(async (i) => {
        writes++;
        await store.txn([], [{ op: 'put', key: `/shoal/test/auth-change-${i}`, value: String(writes) }]).catch((err: Error) => failures.push(err.message));
      }));
    }
    await changes;
    expect({ writes: writes > 0, failures }).toEqual({ writes: true, failures: [] });
    await store.txn([], [{ op: 'deleteRange', key: '/shoal/test/', end: '/shoal/test0' }]);
  } finally {
    await store.close();
  }
});

it('servesEachAgentsEndpointOnHttpsWithACertificateNamingItsNode', async () => {
  const node = (await cliClient().get(NODES, undefined, 'dev-agent-1')) as { status?: { address?: string } };
  const [host, port] = node.status!.address!.split(':');
  const cn = await new Promise<string>((resolve, reject) => {
    const s = connect({ host, port: Number(port), ca: readFileSync(join(dir, 'pki', 'ca.crt')), checkServerIdentity: agentIdentity('dev-agent-1') }, () => {
      resolve(String(s.getPeerCertificate().subject.CN));
      s.end();
    });
    s.once('error', reject);
  });
  expect(cn).toBe('dev-agent-1');
});

it('comesBackOnTheSameDataDirWithAuthAlreadyOn', async () => {
  await cluster!.stop();
  cluster = undefined;
  await start();
  expect((await cliClient().list(NODES, undefined)).items).toHaveLength(1);
}, 60_000);

describe('agentIdentity', () => {
  it('acceptsOnlyACertificateForTheHostThatNamesTheNode', async () => {
    const pki = join(dir, 'other-pki');
    const ca = ensureCa(pki);
    const c = issueCertificate(ca, pki, 'n1', { commonName: 'n1', hosts: ['127.0.0.1'] });
    const cert = new (await import('node:crypto')).X509Certificate(readFileSync(c.cert));
    const peer = { subject: { CN: 'n1' }, subjectaltname: cert.subjectAltName, valid_to: cert.validTo } as never;
    expect(agentIdentity('n1')('127.0.0.1', peer)).toBeUndefined();
    expect(agentIdentity('n2')('127.0.0.1', peer)?.message).toBe('the certificate names agent "n1", not node "n2"');
    expect(agentIdentity('n1')('10.0.0.9', peer)?.message).toMatch(/IP: 10\.0\.0\.9 is not in the cert's list/);
  });
});
