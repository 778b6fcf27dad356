/**
 * Bench-only entry point: an AgentHost of N hollow agents (kubemark-style: they run nothing and
 * report RUNNING) in this one process, on one etcd client (and one more for lease keep-alives). Started as a child process by the
 * scheduling scenario:
 *
 *   node dist-bench/test/bench/hollow-agents.js --etcd-endpoints URL --agents N [--cpus C] [--mem MiB] [--lease-mode shared|per-agent]
 *
 * Prints `ready <N>` once every agent registered; SIGTERM/SIGINT stop them (revoking their leases).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Command, Option } from 'commander';
import { AgentHost } from '../../pkg/agent/host';
import { EtcdStore } from '../../pkg/store/etcd';
import { createLogger } from '../../pkg/util/log';

const opts = new Command('hollow-agents')
  .option('--etcd-endpoints <urls>', 'comma-separated etcd client URLs', 'http://127.0.0.1:2379')
  .option('--etcd-prefix <prefix>', 'etcd key prefix', '/shoal')
  .addOption(new Option('--agents <n>', 'how many agents').default(100).argParser(Number))
  .option('--name-prefix <p>', 'agents are <p>-<i>', 'hollow')
  .addOption(new Option('--cpus <n>', 'CPUs of each agent').default(8).argParser(Number))
  .addOption(new Option('--mem <MiB>', 'memory of each agent').default(16384).argParser(Number))
  .addOption(new Option('--lease-ttl <seconds>', 'lease TTL').default(10).argParser(Number))
  .addOption(new Option('--lease-mode <mode>', 'one lease per agent, or one shared by the host').choices(['shared', 'per-agent']).default('per-agent'))
  .addOption(new Option('--batch <n>', 'agents started at once').default(50).argParser(Number))
  .addOption(new Option('--max-writes-in-flight <n>', 'etcd writes of all the agents in flight at once').default(64).argParser(Number))
  .parse()
  .opts();

async function main(): Promise<void> {
  const logger = createLogger('hollow-agents');
  const endpoints = String(opts.etcdEndpoints).split(',');
  // Thousands of agents share this client: a bound on its writes in flight keeps etcd's apply
  // queue short (one real agent per machine has at most one status write in flight anyway).
  const store = new EtcdStore({ endpoints, maxWritesInFlight: opts.maxWritesInFlight });
  // Keep-alives on a connection of their own; the slowest renewal answer of each 5 s is logged.
  let renewalMaxMs = 0;
  let renewals = 0;
  const observe = (op: string, seconds: number) => {
    if (op !== 'keepAlive') return;
    renewals++;
    renewalMaxMs = Math.max(renewalMaxMs, seconds * 1000);
  };
  const leaseStore = new EtcdStore({ endpoints, metrics: { observe } });
  const host = new AgentHost({
    store, leaseStore, prefix: opts.etcdPrefix, count: opts.agents, namePrefix: opts.namePrefix, logger,
    capacity: { cpus: opts.cpus, mem: opts.mem, disk: 10240, ports: [[31000, 32000]] },
    leaseTtlSeconds: opts.leaseTtl, leaseMode: opts.leaseMode, batchSize: opts.batch,
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await host.stop().catch(() => undefined);
    await Promise.all([store.close(), leaseStore.close()]);
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A line for every 5 s in which this process ran its callbacks 0.5 s late or more, or etcd took
  // 1 s or more to answer a lease renewal: either makes leases expire.
  const lag = monitorEventLoopDelay({ resolution: 20 });
  lag.enable();
  setInterval(() => {
    const lagMaxMs = Math.round(lag.max / 1e6);
    if (lagMaxMs >= 500 || renewalMaxMs >= 1000) logger.warn({ lagMaxMs, lagP99Ms: Math.round(lag.percentile(99) / 1e6), renewalMaxMs: Math.round(renewalMaxMs), renewalsAnswered: renewals }, 'slow');
    lag.reset();
    renewalMaxMs = 0;
    renewals = 0;
  }, 5000).unref();
  const start = Date.now();
  await host.start();
  process.stdout.write(`ready ${opts.agents} in ${Date.now() - start} ms\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
});
