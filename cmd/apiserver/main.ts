#!/usr/bin/env node
/** shoal-apiserver: flags, one start call and signals; the server lives in pkg/apiserver. */
import { Command, Option } from 'commander';
import { addEtcdFlags, etcdConnectionOf } from '../../pkg/store/flags';
import { TokenAuthenticator } from '../../pkg/apiserver/auth';
import type { ApiServerTls } from '../../pkg/apiserver/server';
import { startApiServer } from '../../pkg/apiserver/start';
import { integer } from '../../pkg/util/flags';
import { runDaemon, type Daemon } from '../../pkg/util/daemon';
import { createLogger } from '../../pkg/util/log';
import { readPem } from '../../pkg/util/pki';
import { readTokenFile } from '../../pkg/util/token';

const opts = addEtcdFlags(new Command('shoal-apiserver'))
  .description('The Shoal API server (stateless; run several behind a load balancer)')
  .requiredOption('--token-file <file>', 'YAML token file (see docs/api.md)')
  .option('--agent-token-file <file>', 'cluster-internal token sent to agents for task logs (the agents\' --log-token-file)')
  .option('--listen <host>', 'address to listen on', '127.0.0.1')
  .option('--tls-cert-file <file>', 'serving certificate (PEM): the API is served over HTTPS')
  .option('--tls-private-key-file <file>', 'private key of --tls-cert-file (PEM)')
  .option('--client-ca-file <file>', 'require client certificates signed by this CA (mutual TLS; tokens still name the user)')
  .option('--agent-ca-file <file>', 'CA of the agents\' certificates: task logs are read from agents over verified HTTPS only')
  .option('--insecure-http', 'serve plain HTTP (tokens cross the network in clear): only for a loopback-only test setup')
  .addOption(new Option('--port <port>', 'port to listen on').default(7070).argParser(integer(0, 65535)))
  .addOption(new Option('--max-inflight <n>', 'non-watch requests served at once before 429 (each user gets a fair share when busy)').default(100).argParser(integer(1)))
  .addOption(new Option('--max-watches <n>', 'open watches of this apiserver before 429').default(2000).argParser(integer(1)))
  .addOption(new Option('--max-watches-per-user <n>', 'open watches of one user before 429').default(100).argParser(integer(1)))
  .addOption(new Option('--request-body-timeout <seconds>', 'time to send a request body before 408').default(10).argParser(integer(1, 3600)))
  .parse()
  .opts();

/** The serving certificate, or nothing when plain HTTP was asked for explicitly. */
function servingTls(): ApiServerTls | undefined {
  if (Boolean(opts.tlsCertFile) !== Boolean(opts.tlsPrivateKeyFile)) throw new Error('--tls-cert-file and --tls-private-key-file go together');
  if (opts.tlsCertFile && opts.insecureHttp) throw new Error('--insecure-http and --tls-cert-file contradict each other');
  if (!opts.tlsCertFile) {
    if (!opts.insecureHttp) throw new Error('give --tls-cert-file and --tls-private-key-file (HTTPS), or --insecure-http to serve plain HTTP on purpose');
    if (opts.clientCaFile) throw new Error('--client-ca-file needs --tls-cert-file');
    return undefined;
  }
  return {
    cert: readPem(opts.tlsCertFile, '--tls-cert-file'),
    key: readPem(opts.tlsPrivateKeyFile, '--tls-private-key-file'),
    ...(opts.clientCaFile && { clientCa: readPem(opts.clientCaFile, '--client-ca-file') }),
  };
}

async function main(): Promise<Daemon> {
  const log = createLogger('apiserver');
  const tls = servingTls();
  if (!tls) log.warn('serving plain HTTP (--insecure-http): bearer tokens cross the network in clear');
  const server = await startApiServer({
    tls,
    agentCa: opts.agentCaFile ? readPem(opts.agentCaFile, '--agent-ca-file') : undefined,
    etcd: etcdConnectionOf(opts),
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
