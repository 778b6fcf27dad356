/** The agent's version, from package.json (found from both the sources and dist/). */
import * as fs from 'node:fs';
import * as path from 'node:path';

function readVersion(): string {
  for (const up of ['../..', '../../..']) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'shoal' && pkg.version) return pkg.version;
    } catch {
      // not there: try the next level up
    }
  }
  return 'unknown';
}

/** Shoal's version, reported in Node.status.agentVersion. */
export const AGENT_VERSION = readVersion();
