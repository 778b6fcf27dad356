#!/usr/bin/env node
/** shoal-controller-manager: flags, one start call and signals; run two or more, one leads. */
import { hostname } from 'node:os';
import { Command, Option } from 'commander';
import { startControllerManager } from '../../pkg/controllers/start';
import { integer } from '../../pkg/util/flags';
import { runDaemon, type Daemon } from '../../pkg/util/daemon';
import { createLogger } from '../../pkg/util/log';

const opts = new Command('shoal-controller-manager')
  .description('The Shoal controller-manager: allocator, offer loop, frameworks, node lifecycle (leader-elected)')
  .option('--etcd-endpoints <urls>', 'comma-separated etcd client URLs', 'http://127.0.0.1:2379')
  .option('--etcd-prefix <prefix>', 'etcd key prefix', '/shoal')
  .option('--identity <id>', 'name in the leader key', `${hostname()}-${process.pid}`)
  .addOption(new Option('--metrics-port <port>', 'serve /metrics on 127.0.0.1 at this port (0: off)').default(10252).argParser(integer(0, 65535)))
  .addOption(new Option('--leader-lease <seconds>', 'leader lease TTL').default(5).argParser(integer(1)))
  .addOption(new Option('--lost-task-grace <seconds>', 'wait before marking a lost agent\'s tasks LOST').default(0).argParser(integer(0)))
  .addOption(new Option('--allocation-interval <ms>', 'allocation round interval (a round also runs soon after each change)').default(1000).argParser(integer(10, 60_000)))
  .addOption(new Option('--allocation-batch-window <ms>', 'a round asked for by a framework\'s revive waits this long, so demands arriving together are shared by DRF (0: no wait)').default(250).argParser(integer(0, 10_000)))
  .parse()
  .opts();

async function main(): Promise<Daemon> {
  const log = createLogger('controller-manager');
  const cm = await startControllerManager({
    etcdEndpoints: String(opts.etcdEndpoints).split(','),
    prefix: opts.etcdPrefix,
    identity: opts.identity,
    logger: log,
    processMetrics: true,
    metricsPort: opts.metricsPort || undefined,
    leaderLeaseSeconds: opts.leaderLease,
    lostTaskGraceSeconds: opts.lostTaskGrace,
    allocationIntervalMs: opts.allocationInterval,
    batchWindowMs: opts.allocationBatchWindow,
  });
  log.info({ etcd: opts.etcdEndpoints }, 'controller-manager running');
  return { stop: () => cm.stop() };
}

runDaemon(main);
