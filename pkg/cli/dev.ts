/**
 * `shoal dev`: the whole cluster on one machine, in the foreground. It spawns the real etcd
 * binary and runs the API server in this process; Ctrl-C (SIGINT) or SIGTERM stops everything.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { startDevCluster } from '../devcluster/cluster';
import { createLogger } from '../util/log';
import { CliError } from './errors';

/** Options of `shoal dev`, as commander parses them. */
export interface DevOptions {
  dataDir?: string;
  apiPort?: string;
  etcdPort?: string;
  agents?: string;
  runtime?: string;
}

function port(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new CliError(`${flag} must be a port number (1-65535), not "${value}"`);
  return n;
}

/** Registers `shoal dev` with all its flags. */
export function registerDevCommand(program: Command): void {
  program
    .command('dev')
    .description('Run etcd, apiserver, controller-manager and agents in the foreground (Ctrl-C stops all)')
    .option('--data-dir <dir>', 'where etcd data, tokens and config.yaml go (default ~/.shoal/dev)')
    .option('--api-port <port>', 'apiserver port (default 7070)')
    .option('--etcd-port <port>', 'etcd client port (default 23790)')
    .option('--agents <n>', 'number of agents (default 1)')
    .option('--runtime <runtimes>', 'docker or process, or a comma-separated list taken in turn by the agents, e.g. docker,process (default: docker when a daemon answers, else process)')
    .action(async (o: DevOptions) => {
      const agents = o.agents === undefined ? 1 : Number(o.agents);
      if (!Number.isInteger(agents) || agents < 0 || agents > 1000) throw new CliError(`--agents must be a whole number from 0 to 1000, not "${o.agents}"`);
      const runtimes = (o.runtime ?? 'auto').split(',').map((r) => r.trim());
      for (const r of runtimes) if (r !== 'docker' && r !== 'process' && (r !== 'auto' || o.runtime !== undefined)) throw new CliError(`--runtime: "${r}" is not a runtime (docker or process, or a comma-separated list of them)`);
      const log = createLogger('dev', { pretty: true });
      const cluster = await startDevCluster({
        dataDir: resolve(o.dataDir ?? join(homedir(), '.shoal', 'dev')),
        apiPort: port(o.apiPort, '--api-port', 7070),
        etcdPort: port(o.etcdPort, '--etcd-port', 23790),
        // Without flags, also point the user's default config at this cluster.
        userConfigPath: o.dataDir === undefined ? join(homedir(), '.shoal', 'config.yaml') : undefined,
        agents,
        runtime: runtimes as Array<'docker' | 'process' | 'auto'>,
        logger: log,
      });
      log.info({ server: cluster.server, etcd: cluster.etcdEndpoint, config: cluster.configPath }, 'dev cluster ready');
      await new Promise<void>((done) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'stopping dev cluster');
          cluster.stop().then(done, (err: Error) => {
            log.error({ err: err.message }, 'error while stopping');
            done();
          });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
