/** Shared secrets kept in files (the agent token of the apiserver and its agents). */
import * as fs from 'node:fs';

/** The token in `file`, trimmed; throws naming `flag` when the file is empty. */
export function readTokenFile(file: string, flag: string): string {
  const token = fs.readFileSync(file, 'utf8').trim();
  if (!token) throw new Error(`${flag} ${file} is empty`);
  return token;
}
