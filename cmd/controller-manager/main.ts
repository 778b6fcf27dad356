#!/usr/bin/env node
/** shoal-controller-manager: flags, one start call and signals; run two or more, one leads. */
import { hostname } from 'node:os';
import { Command, Option } from 'commander';
import { addEtcdFlags, etcdConnectionOf } from '../../pkg/store/flags';
import { startControllerManager } from '../../pkg/controllers/start';
import { flag, integer } from '../../pkg/util/flags';
import { runDaemon, type Daemon } from '../../pkg/util/daemon';
import { createLogger } from '../../pkg/util/log';
import { readPem } from '../../pkg/util/pki';

/** `host:port` (`[::1]:5050` for IPv6; port 0: a free one). */
const hostPort = flag((v: string): { host: string; port: number } => {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(v.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error('expected host:port, e.g. 127.0.0.1:5050 or 0.0.0.0:5050');
  return { host: m[1] ?? m[2], port };
});

const opts = addEtcdFlags(new Command('shoal-controller-manager'))
  .description('The Shoal controller-manager: allocator, offer loop, frameworks, node lifecycle (leader-elected)')
  .option('--identity <id>', 'name in the leader key', `${hostname()}-${process.pid}`)
  .addOption(new Option('--metrics-port <port>', 'serve /metrics on 127.0.0.1 at this port (0: off)').default(10252).argParser(integer(0, 65535)))
  .addOption(new Option('--leader-lease <seconds>', 'leader lease TTL').default(5).argParser(integer(1)))
  .addOption(new Option('--lost-task-grace <seconds>', 'wait before marking a lost agent\'s tasks LOST').default(0).argParser(integer(0)))
  .addOption(new Option('--allocation-interval <ms>', 'allocation round interval (a round also runs soon after each change)').default(1000).argParser(integer(10, 60_000)))
  .addOption(new Option('--allocation-batch-window <ms>', 'a round asked for by a framework\'s revive waits this long, so demands arriving together are shared by DRF (0: no wait)').default(250).argParser(integer(0, 10_000)))
  .addOption(new Option('--scheduler-api-listen <host:port>', 'serve the Mesos v1 scheduler HTTP API for external frameworks here, e.g. 0.0.0.0:5050 (off when absent)').argParser(hostPort))
  .option('--scheduler-api-tls-cert-file <file>', 'serve the scheduler API over HTTPS with this certificate (PEM)')
  .option('--scheduler-api-tls-private-key-file <file>', 'private key of --scheduler-api-tls-cert-file (PEM)')
  .option('--scheduler-api-token-file <file>', 'users and tokens that authenticate scheduler API calls (bearer, or HTTP Basic with principal = user name); frameworkRoles lists the roles a user may register frameworks with (without a file, calls are not authenticated)')
  .addOption(new Option('--scheduler-api-heartbeat <seconds>', 'interval of HEARTBEAT events on subscription streams').default(15).argParser(integer(1, 3600)))
  .option('--scheduler-api-namespace <ns>', 'namespace of external frameworks\' tasks', 'default')
  .parse()
  .opts();

function schedulerApiTls(): { cert: Buffer; key: Buffer } | undefined {
  if (Boolean(opts.schedulerApiTlsCertFile) !== Boolean(opts.schedulerApiTlsPrivateKeyFile)) throw new Error('--scheduler-api-tls-cert-file and --scheduler-api-tls-private-key-file go together');
  if (!opts.schedulerApiTlsCertFile) return undefined;
  if (!opts.schedulerApiListen) throw new Error('--scheduler-api-tls-cert-file needs --scheduler-api-listen');
  return { cert: readPem(opts.schedulerApiTlsCertFile, '--scheduler-api-tls-cert-file'), key: readPem(opts.schedulerApiTlsPrivateKeyFile, '--scheduler-api-tls-private-key-file') };
}

async function main(): Promise<Daemon> {
  if (opts.schedulerApiTokenFile && !opts.schedulerApiListen) throw new Error('--scheduler-api-token-file needs --scheduler-api-listen');
  const log = createLogger('controller-manager');
  const cm = await startControllerManager({
    etcd: etcdConnectionOf(opts),
    prefix: opts.etcdPrefix,
    identity: opts.identity,
    logger: log,
    processMetrics: true,
    metricsPort: opts.metricsPort || undefined,
    leaderLeaseSeconds: opts.leaderLease,
    lostTaskGraceSeconds: opts.lostTaskGrace,
    allocationIntervalMs: opts.allocationInterval,
    batchWindowMs: opts.allocationBatchWindow,
    schedulerApi: opts.schedulerApiListen && {
      port: opts.schedulerApiListen.port,
      host: opts.schedulerApiListen.host,
      tokenFile: opts.schedulerApiTokenFile,
      tls: schedulerApiTls(),
      heartbeatIntervalSeconds: opts.schedulerApiHeartbeat,
      namespace: opts.schedulerApiNamespace,
    },
  }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE') throw new Error(`--scheduler-api-listen: ${opts.schedulerApiListen.host}:${opts.schedulerApiListen.port} is in use`);
    throw err;
  });
  log.info({ etcd: opts.etcdEndpoints, schedulerApiPort: cm.schedulerApiPort }, 'controller-manager running');
  return { stop: () => cm.stop() };
}

runDaemon(main);
