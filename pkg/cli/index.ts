/**
 * The `shoal` program: global flags, every command, and the one place where failures become
 * `error: <reason>` lines and an exit code.
 */
import { Command, CommanderError } from 'commander';
import { registerApply } from './commands/apply';
import { registerDelete } from './commands/delete';
import { registerDescribe } from './commands/describe';
import { registerGet } from './commands/get';
import { registerJob } from './commands/job';
import { registerLogs } from './commands/logs';
import { registerRollout } from './commands/rollout';
import { registerScale } from './commands/scale';
import { CliError, messageOf, ReportedFailure } from './errors';
import { eprintln, type CliIO } from './io';

export type { CliIO } from './io';
export { nodeIO } from './io';

/**
 * Builds the command tree. `extra` registers further commands (main passes `shoal dev`); it runs
 * after the root is configured so added commands inherit its output and exit handling.
 */
export function buildProgram(io: CliIO, extra?: (program: Command) => void): Command {
  const program = new Command('shoal')
    .description('Shoal: a declarative control plane for long-running apps and jobs (kubectl conventions)')
    .option('--server <url>', 'apiserver URL (env SHOAL_SERVER)')
    .option('--token <token>', 'bearer token (env SHOAL_TOKEN)')
    .option('--config <file>', 'config file (env SHOAL_CONFIG; default ~/.shoal/config.yaml)')
    .option('--certificate-authority <file>', 'CA certificate that verifies the apiserver (default: the config file\'s certificate-authority)')
    .option('--insecure-skip-tls-verify', 'do not verify the apiserver\'s certificate (your token can then be read by anyone on the network path)')
    .option('-n, --namespace <namespace>', 'namespace (default: the config file\'s, else "default")')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout(text),
      writeErr: (text) => io.stderr(text),
      outputError: () => undefined, // runCli prints the error itself, once, in the common format
    });
  registerApply(program, io);
  registerGet(program, io);
  registerDescribe(program, io);
  registerDelete(program, io);
  registerScale(program, io);
  registerRollout(program, io);
  registerLogs(program, io);
  registerJob(program, io);
  extra?.(program);
  return program;
}

/** Runs the CLI on user arguments (without `node main.js`); returns the exit code and never throws. */
export async function runCli(args: string[], io: CliIO, extra?: (program: Command) => void): Promise<number> {
  try {
    await buildProgram(io, extra).parseAsync(args, { from: 'user' });
    return 0;
  } catch (err) {
    return reportError(io, err);
  }
}

/** Prints a failure as `error: ...` line(s) on stderr and returns the exit code for it. */
export function reportError(io: CliIO, err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version were printed already; commander's own errors read "error: ...".
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return err.exitCode;
    eprintln(io, `error: ${messageOf(err).replace(/^error: /, '')}`);
    return err.exitCode || 1;
  }
  if (err instanceof ReportedFailure) return 1;
  const lines = err instanceof CliError ? err.lines : [messageOf(err)];
  for (const line of lines) eprintln(io, `error: ${line}`);
  return 1;
}
