/** How the daemons (apiserver, controller-manager, agent) run: start, stop on a signal, one-line errors. */

/** A started daemon: how to stop it, and (optionally) what it still has to finish starting. */
export interface Daemon {
  stop(): Promise<void>;
  /** Settles once fully up (an agent registered with etcd); a signal meanwhile still stops it cleanly. */
  ready?: Promise<unknown>;
}

/**
 * Runs `start`; on SIGINT or SIGTERM calls the daemon's stop and exits 0. A start (or a ready)
 * that fails prints `error: <message>` and exits 1 (never a stack trace).
 */
export function runDaemon(start: () => Promise<Daemon>): void {
  start()
    .then((daemon) => {
      const onSignal = () => void daemon.stop().then(() => process.exit(0), fail);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      return daemon.ready;
    })
    .catch(fail);
}

function fail(err: Error): void {
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
}
