/** The compiled `shoal` CLI for end-to-end tests (needs `npm run build`; make test does it). */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const SHOAL_MAIN = join(__dirname, '../../dist/cmd/shoal/main.js');
const run = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `shoal ...args` with `env` (20 s limit); a non-zero exit is a result, not a throw. */
export async function runShoal(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run('node', [SHOAL_MAIN, ...args], { env, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout, stderr: e.stderr };
  }
}
