#!/usr/bin/env node
/** shoal-apiserver: flags, one start call and signals; the server lives in pkg/apiserver. */
import { Command, Option } from 'commander';
import { TokenAuthenticator } from '../../pkg/apiserver/auth';
import { startApiServer } from '../../pkg/apiserver/start';
import { integer } from '../../pkg/util/flags';
import { runDaemon, type Daemon } from '../../pkg/util/daemon';
import { createLogger } from '../../pkg/util/log';
import { readTokenFile } from '../../pkg/util/token';

const opts = new Command('shoal-apiserver')
  .description('The Shoal API server (stateless; run several behind a load balancer)')
  .requiredOption('--token-file <file>', 'YAML token file (see docs/api.md)')
  .option('--agent-token-file <file>', 'cluster-internal token sent to agents for task logs (the agents\' --log-token-file)')
  .option('--etcd-endpoints <urls>', 'comma-separated etcd client URLs', 'http://127.0.0.1:2379')
  .option('--etcd-prefix <prefix>', 'etcd key prefix', '/shoal')
  .option('--listen <host>', 'address to listen on', '127.0.0.1')
  .addOption(new Option('--port <port>', 'port to listen on').default(7070).argParser(integer(0, 65535)))
  .addOption(new Option('--max-inflight <n>', 'non-watch requests served at once before 429 (each user gets a fair share when busy)').default(100).argParser(integer(1)))
  .addOption(new Option('--max-watches <n>', 'open watches of this apiserver before 429').default(2000).argParser(integer(1)))
  .addOption(new Option('--max-watches-per-user <n>', 'open watches of one user before 429').default(100).argParser(integer(1)))
  .addOption(new Option('--request-body-timeout <seconds>', 'time to send a request body before 408').default(10).argParser(integer(1, 3600)))
  .parse()
  .opts();

async function main(): Promise<Daemon> {
  const log = createLogger('apiserver');
  const server = await startApiServer({
    etcdEndpoints: String(opts.etcdEndpoints).split(','),
    prefix: opts.etcdPrefix,
    authenticator: TokenAuthenticator.fromFile(opts.tokenFile),
    agentToken: opts.agentTokenFile ? readTokenFile(opts.agentTokenFile, '--agent-token-file') : undefined,
    logger: log,
    port: opts.port,
    host: opts.listen,
    maxInflight: opts.maxInflight,
    maxWatches: opts.maxWatches,
    maxWatchesPerUser: opts.maxWatchesPerUser,
    requestBodyTimeoutMs: opts.requestBodyTimeout * 1000,
    processMetrics: true,
  });
  log.info({ etcd: opts.etcdEndpoints }, 'apiserver started');
  return {
    stop: async () => {
      log.info('shutting down');
      await server.stop();
    },
  };
}

runDaemon(main);
