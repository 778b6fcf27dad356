#!/usr/bin/env node
/** shoal-controller-manager: flags, wiring and signals only; run two or more, one leads. */
import { hostname } from 'node:os';
import { createServer } from 'node:http';
import { Command, Option } from 'commander';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ControllerManager } from '../../pkg/controllers/manager';
import { EtcdStore } from '../../pkg/store/etcd';
import { integer } from '../../pkg/util/flags';
import { createLogger } from '../../pkg/util/log';

const opts = new Command('shoal-controller-manager')
  .description('The Shoal controller-manager: allocator, offer loop, frameworks, node lifecycle (leader-elected)')
  .option('--etcd-endpoints <urls>', 'comma-separated etcd client URLs', 'http://127.0.0.1:2379')
  .option('--etcd-prefix <prefix>', 'etcd key prefix', '/shoal')
  .option('--identity <id>', 'name in the leader key', `${hostname()}-${process.pid}`)
  .addOption(new Option('--metrics-port <port>', 'serve /metrics on this port (0: off)').default(10252).argParser(integer(0, 65535)))
  .addOption(new Option('--leader-lease <seconds>', 'leader lease TTL').default(5).argParser(integer(1)))
  .addOption(new Option('--lost-task-grace <seconds>', 'wait before marking a lost agent\'s tasks LOST').default(0).argParser(integer(0)))
  .parse()
  .opts();

const log = createLogger('controller-manager');
const registry = new Registry();
collectDefaultMetrics({ register: registry }); // process CPU, memory, GC and event-loop lag
const endpoints = String(opts.etcdEndpoints).split(',');
const store = new EtcdStore({ endpoints });
const leaderStore = new EtcdStore({ endpoints }); // a connection of its own: renewals never queue behind watch traffic
const cm = new ControllerManager({ store, leaderStore, prefix: opts.etcdPrefix, identity: opts.identity, logger: log, registry, leaderLeaseSeconds: opts.leaderLease, lostTaskGraceSeconds: opts.lostTaskGrace });
cm.start();
if (opts.metricsPort) {
  createServer((_req, res) => void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text)))
    .listen(opts.metricsPort, '127.0.0.1').on('error', (err) => log.error({ err: err.message }, 'metrics server failed'));
}
log.info({ identity: opts.identity, etcd: opts.etcdEndpoints }, 'controller-manager started; campaigning');
const stop = async () => {
  await cm.stop();
  await Promise.all([store.close(), leaderStore.close()]);
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
