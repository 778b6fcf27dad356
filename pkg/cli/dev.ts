/**
 * `shoal dev`: the whole cluster on one machine, in the foreground. It spawns the real etcd
 * binary and runs the API server in this process; Ctrl-C (SIGINT) or SIGTERM stops everything.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { defaultDevAgentCpus, devAgentFlags, startDevCluster } from '../devcluster/cluster';
import { createLogger } from '../util/log';
import { CliError } from './errors';

/** Options of `shoal dev`, as commander parses them. */
export interface DevOptions {
  dataDir?: string;
  apiPort?: string;
  etcdPort?: string;
  schedulerApiPort?: string;
  /** false with --no-scheduler-api. */
  schedulerApi?: boolean;
  agents?: string;
  runtime?: string;
  agentCpus?: string;
  keepTasks?: boolean;
}

/** CPUs each dev agent advertises: --agent-cpus, else undefined (the cluster's default: all the machine's cores). */
export function agentCpus(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 100_000) throw new CliError(`--agent-cpus must be a number of CPUs above 0 (e.g. 0.5 or 4), not "${value}"`);
  return n;
}

function port(value: string | undefined, flag: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > 65535) throw new CliError(`${flag} must be a port number (${min}-65535), not "${value}"`);
  return n;
}

/** The scheduler API port `shoal dev` serves on: 5050 (as Mesos), 0 for a free one, null with --no-scheduler-api. */
export function schedulerApiPort(o: Pick<DevOptions, 'schedulerApiPort' | 'schedulerApi'>): number | null {
  if (o.schedulerApi === false) {
    if (o.schedulerApiPort !== undefined) throw new CliError('--scheduler-api-port and --no-scheduler-api cannot be combined');
    return null;
  }
  return port(o.schedulerApiPort, '--scheduler-api-port', 5050, 0);
}

/** Registers `shoal dev` with all its flags. */
export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description('Run etcd, apiserver, controller-manager and agents in the foreground (Ctrl-C stops all, tasks too)')
    .addHelpText('after', `
Each dev agent advertises all of this machine's cores (os.availableParallelism(), ${defaultDevAgentCpus()} here),
as Nomad's dev agent does: with several agents the CPUs are overcommitted that many times over
(3 agents on a 2-core machine offer 6 cpus), so an App at the default cpus: 1 fits on every
agent; --agent-cpus sets another figure. Memory is split evenly between the agents.

Ctrl-C or SIGTERM stops every task the agents run (containers and processes) before exiting; with
--keep-tasks they keep running and the next shoal dev on the same --data-dir adopts them.
See docs/operations.md.`)
    .option('--data-dir <dir>', 'where etcd data, tokens and config.yaml go (default ~/.shoal/dev)')
    .option('--api-port <port>', 'apiserver port (default 7070)')
    .option('--etcd-port <port>', 'etcd client port (default 23790)')
    .option('--scheduler-api-port <port>', 'Mesos v1 scheduler HTTP API port for external frameworks, on 127.0.0.1 (default 5050; 0: a free port)')
    .option('--no-scheduler-api', 'do not serve the Mesos scheduler API')
    .option('--agents <n>', 'number of agents (default 1)')
    .option('--agent-cpus <n>', 'CPUs each agent advertises (default: all the machine\'s cores, each agent: overcommitted)')
    .option('--keep-tasks', 'on Ctrl-C/SIGTERM leave the tasks running (the next shoal dev on this data dir adopts them)')
    .option('--runtime <runtimes>', 'docker or process, or a comma-separated list taken in turn by the agents, e.g. docker,process (default: docker when a daemon answers, else process)')
    .action(async (o: DevOptions) => {
      const agents = o.agents === undefined ? 1 : Number(o.agents);
      if (!Number.isInteger(agents) || agents < 0 || agents > 1000) throw new CliError(`--agents must be a whole number from 0 to 1000, not "${o.agents}"`);
      const runtimes = (o.runtime ?? 'auto').split(',').map((r) => r.trim());
      for (const r of runtimes) if (r !== 'docker' && r !== 'process' && (r !== 'auto' || o.runtime !== undefined)) throw new CliError(`--runtime: "${r}" is not a runtime (docker or process, or a comma-separated list of them)`);
      const cpusEach = agentCpus(o.agentCpus);
      const log = createLogger('dev', { pretty: true });
      const cluster = await startDevCluster({
        dataDir: resolve(o.dataDir ?? join(homedir(), '.shoal', 'dev')),
        apiPort: port(o.apiPort, '--api-port', 7070),
        etcdPort: port(o.etcdPort, '--etcd-port', 23790),
        schedulerApiPort: schedulerApiPort(o),
        // Without flags, also point the user's default config at this cluster.
        userConfigPath: o.dataDir === undefined ? join(homedir(), '.shoal', 'config.yaml') : undefined,
        agents,
        runtime: runtimes as Array<'docker' | 'process' | 'auto'>,
        agentCpus: cpusEach,
        keepTasks: o.keepTasks === true,
        logger: log,
      });
      log.info({ server: cluster.server, etcd: cluster.etcdEndpoint, schedulerApi: cluster.schedulerApi, config: cluster.configPath, agents, agentCpus: cpusEach ?? defaultDevAgentCpus(), keepTasks: o.keepTasks === true }, 'dev cluster ready');
      await new Promise<void>((done) => {
        const stop = (signal: string) => {
          log.info({ signal, keepTasks: o.keepTasks === true }, o.keepTasks ? 'stopping dev cluster (tasks keep running)' : 'stopping dev cluster and its tasks');
          cluster.stop().then(done, (err: Error) => {
            log.error({ err: err.message }, 'error while stopping');
            done();
          });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
  registerNodeAdd(program);
}

/** Quotes an argument for a POSIX shell when it needs it. */
function shellWord(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * `shoal node add NAME`: the certificate and etcd credentials for a new standalone agent of the
 * dev cluster in --data-dir, printed as the shoal-agent command line that joins it.
 */
function registerNodeAdd(program: Command): void {
  const node = program.commands.find((c) => c.name() === 'node') ?? program.command('node').description('Add a node (agent) to a cluster');
  node.command('add')
    .description('Make the certificate (CN = NAME) and the etcd user (a role reaching only this node\'s keys) a new shoal-agent needs to join the running dev cluster, and print its command line')
    .argument('<name>', 'the node name (the agent\'s --node-name)')
    .option('--data-dir <dir>', 'the dev cluster\'s data dir (default ~/.shoal/dev)')
    .option('--host <host>', 'a name or IP address the apiserver reaches the agent at (repeatable; default 127.0.0.1)', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (name: string, o: { dataDir?: string; host?: string[] }) => {
      const dataDir = resolve(o.dataDir ?? join(homedir(), '.shoal', 'dev'));
      let flags: string[];
      try {
        flags = await devAgentFlags(dataDir, name, o.host ?? ['127.0.0.1']);
      } catch (err) {
        throw new CliError((err as Error).message);
      }
      process.stdout.write(`shoal-agent ${flags.map(shellWord).join(' ')}\n`);
    });
}
