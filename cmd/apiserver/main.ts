#!/usr/bin/env node
/** shoal-apiserver: flags, wiring and signals only; the server lives in pkg/apiserver. */
import * as fs from 'node:fs';
import { Command, Option } from 'commander';
import { TokenAuthenticator } from '../../pkg/apiserver/auth';
import { collectDefaultMetrics } from 'prom-client';
import { ApiMetrics } from '../../pkg/apiserver/metrics';
import { ApiServer } from '../../pkg/apiserver/server';
import { EtcdStore } from '../../pkg/store/etcd';
import { integer } from '../../pkg/util/flags';
import { createLogger } from '../../pkg/util/log';

const opts = new Command('shoal-apiserver')
  .description('The Shoal API server (stateless; run several behind a load balancer)')
  .requiredOption('--token-file <file>', 'YAML token file (see docs/api.md)')
  .option('--agent-token-file <file>', 'cluster-internal token sent to agents for task logs (the agents\' --log-token-file)')
  .option('--etcd-endpoints <urls>', 'comma-separated etcd client URLs', 'http://127.0.0.1:2379')
  .option('--etcd-prefix <prefix>', 'etcd key prefix', '/shoal')
  .option('--listen <host>', 'address to listen on', '127.0.0.1')
  .addOption(new Option('--port <port>', 'port to listen on').default(7070).argParser(integer(0, 65535)))
  .addOption(new Option('--max-inflight <n>', 'non-watch requests served at once before 429').default(100).argParser(integer(1)))
  .parse()
  .opts();

async function main(): Promise<void> {
  const log = createLogger('apiserver');
  const metrics = new ApiMetrics();
  collectDefaultMetrics({ register: metrics.registry }); // process CPU, memory, GC and event-loop lag
  const store = new EtcdStore({ endpoints: String(opts.etcdEndpoints).split(','), metrics: metrics.storeObserver() });
  const api = new ApiServer({
    store,
    prefix: opts.etcdPrefix,
    authenticator: TokenAuthenticator.fromFile(opts.tokenFile),
    logger: log,
    metrics,
    maxInflight: opts.maxInflight,
    agentToken: opts.agentTokenFile ? fs.readFileSync(opts.agentTokenFile, 'utf8').trim() || undefined : undefined,
  });
  const port = await api.listen(opts.port, opts.listen);
  log.info({ port, etcd: opts.etcdEndpoints }, 'apiserver listening');
  const stop = async () => {
    log.info('shutting down');
    await api.close();
    await store.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
});
