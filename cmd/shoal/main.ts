#!/usr/bin/env node
/**
 * `shoal`, the command-line client. Thin: builds the program from pkg/cli, runs it, exits with
 * its code. Nothing that reaches a user may be a stack trace, so every failure path ends here
 * as one `error:` line.
 */
import { nodeIO, runCli } from '../../pkg/cli';
import { registerDevCommand } from '../../pkg/cli/dev';
import { messageOf } from '../../pkg/cli/errors';

/** Exits once stdout and stderr have been flushed (they may be pipes). */
function exit(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

function fatal(err: unknown): void {
  process.stderr.write(`error: ${messageOf(err)}\n`);
  exit(1);
}

process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
// `shoal get apps | head` closes the pipe early; that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? process.exit(0) : fatal(err)));

runCli(process.argv.slice(2), nodeIO(), registerDevCommand).then(exit, fatal);
