/**
 * Everything the CLI touches outside itself, behind one interface, so commands can be run in
 * tests with captured output, a fake fetch and a fixed clock.
 */
import { homedir } from 'node:os';
import { undiciHttpFetch } from './client';

/** The CLI's window on the process: output streams, stdin, environment, network and clock. */
export interface CliIO {
  /** Writes raw text to standard output. */
  stdout(text: string): void;
  /** Writes raw text to standard error. */
  stderr(text: string): void;
  /** Reads all of standard input (`apply -f -`). */
  readStdin(): Promise<string>;
  /** Environment variables (SHOAL_SERVER, SHOAL_TOKEN, SHOAL_CONFIG). */
  env: Record<string, string | undefined>;
  /** Home directory, for `~/.shoal/config.yaml`. */
  homeDir: string;
  /** HTTP; the global fetch in production. */
  fetch: typeof fetch;
  /** Milliseconds since the epoch; AGE columns are relative to it. */
  now(): number;
  /** Calls `handler` on SIGINT until the returned function is called (watches end cleanly on Ctrl-C). */
  onInterrupt(handler: () => void): () => void;
}

/** Writes one line to stdout. */
export function println(io: CliIO, line = ''): void {
  io.stdout(`${line}\n`);
}

/** Writes one line to stderr. */
export function eprintln(io: CliIO, line: string): void {
  io.stderr(`${line}\n`);
}

/** The real process: stdio, env, home directory, fetch (undici's), wall clock, SIGINT. */
export function nodeIO(): CliIO {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    readStdin,
    env: process.env,
    homeDir: homedir(),
    fetch: undiciHttpFetch,
    now: () => Date.now(),
    onInterrupt(handler) {
      process.on('SIGINT', handler);
      return () => void process.off('SIGINT', handler);
    },
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}
