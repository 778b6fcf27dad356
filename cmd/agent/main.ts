#!/usr/bin/env node
/** shoal-agent: flags, one start call and signals; the agent lives in pkg/agent. */
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { addEtcdFlags, etcdConnectionOf } from '../../pkg/store/flags';
import { checkNodeName, defaultNodeName, parseAmount, parseAttributes, parsePort, parsePortRanges, parseSeconds, parseUidRange, startAgent } from '../../pkg/agent';
import { flag } from '../../pkg/util/flags';
import { runDaemon, type Daemon } from '../../pkg/util/daemon';
import { createLogger } from '../../pkg/util/log';
import { readPem } from '../../pkg/util/pki';
import { readTokenFile } from '../../pkg/util/token';

const amount = (name: string) => flag((v) => parseAmount(name, v));

const opts = addEtcdFlags(new Command('shoal-agent'))
  .description('The Shoal agent: registers this machine as a Node and runs the tasks assigned to it')
  .option('--node-name <name>', 'Node name (default: this host name)', flag(checkNodeName))
  .option('--cpus <n>', 'CPUs offered (default: all)', amount('--cpus'))
  .option('--mem <MiB>', 'memory offered (default: all)', amount('--mem'))
  .option('--disk <MiB>', 'disk offered (default: free space of --data-dir)', amount('--disk'))
  .option('--ports <ranges>', 'host port ranges, e.g. 31000-32000,33000-33100', flag(parsePortRanges), parsePortRanges('31000-32000'))
  .option('--attributes <k=v,...>', 'attributes for placement constraints, e.g. rack=r1,zone=a', flag(parseAttributes), {})
  .addOption(new Option('--runtime <name>', 'task runtime').choices(['docker', 'process', 'hollow', 'auto']).default('auto'))
  .option('--data-dir <dir>', 'agent state directory', path.join(os.homedir(), '.shoal', 'agent'))
  .addOption(new Option('--listen <port>', 'HTTP port (logs endpoint)').default(5051).argParser(flag(parsePort)))
  .option('--tls-cert-file <file>', 'serve the HTTP endpoint (logs) over HTTPS with this certificate (PEM; CN = the node name, signed by the CA of the apiserver\'s --agent-ca-file; see `shoal node add`)')
  .option('--tls-private-key-file <file>', 'private key of --tls-cert-file (PEM)')
  .option('--log-token-file <file>', 'file holding the cluster-internal agent token the apiserver sends for logs (the apiserver\'s --agent-token-file); without one, logs are not served')
  .option('--hostname <name>', 'hostname advertised in Node.status.hostname (what `hostname` constraints match) and given to tasks as HOST', os.hostname())
  .option('--advertise-address <host:port>', 'address the apiserver reaches this agent at (default: <hostname>:<listen>)')
  .addOption(new Option('--lease-ttl <seconds>', 'lease TTL: how soon a dead agent is noticed').default(10).argParser(flag(parseSeconds)))
  .option('--pull', 'docker: pull images that are not present locally (needs a registry)')
  .option('--allow-root', 'docker: let containers run as root when the image or task asks; process: allow --task-user root')
  .option('--task-user <user>', 'process runtime: run every task as this user (name, uid or uid:gid); by default an agent running as root gives each task a uid of its own from --task-uids')
  .option('--task-uids <from-to>', 'process runtime: the uids tasks get one each of (default 1879048192-1879113727)', flag(parseUidRange))
  .option('--cgroup-parent <path>', 'process runtime: the cgroup task cgroups go under (cpu, memory and pids limits)', '/shoal')
  .option('--revoke-lease-on-exit', 'on SIGINT/SIGTERM revoke the lease, so the node is lost at once (decommissioning); by default a restart within the TTL loses nothing')
  .parse()
  .opts();

function agentTls(): { cert: Buffer; key: Buffer } | undefined {
  if (Boolean(opts.tlsCertFile) !== Boolean(opts.tlsPrivateKeyFile)) throw new Error('--tls-cert-file and --tls-private-key-file go together');
  return opts.tlsCertFile ? { cert: readPem(opts.tlsCertFile, '--tls-cert-file'), key: readPem(opts.tlsPrivateKeyFile, '--tls-private-key-file') } : undefined;
}

async function main(): Promise<Daemon> {
  const log = createLogger('agent');
  const agent = await startAgent({
    etcd: etcdConnectionOf(opts),
    prefix: opts.etcdPrefix,
    nodeName: opts.nodeName ?? checkNodeName(defaultNodeName()),
    dataDir: opts.dataDir,
    runtime: opts.runtime,
    pull: Boolean(opts.pull),
    allowRoot: Boolean(opts.allowRoot),
    taskUser: opts.taskUser,
    taskUids: opts.taskUids,
    cgroupParent: opts.cgroupParent,
    capacity: { cpus: opts.cpus, mem: opts.mem, disk: opts.disk, ports: opts.ports },
    attributes: opts.attributes,
    hostname: opts.hostname,
    listen: { port: opts.listen, tls: agentTls() },
    advertiseAddress: opts.advertiseAddress,
    token: opts.logTokenFile ? readTokenFile(opts.logTokenFile, '--log-token-file') : undefined,
    leaseTtlSeconds: opts.leaseTtl,
    logger: log,
  });
  // Not revoking by default: an agent restarted within the lease TTL re-puts its lease key on a
  // new lease and its tasks never look lost.
  return { stop: () => agent.stop({ revoke: Boolean(opts.revokeLeaseOnExit) }), ready: agent.ready };
}

runDaemon(main);
