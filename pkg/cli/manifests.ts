/**
 * Reads the `-f` arguments of apply and delete: files, directories (every *.yaml, *.yml and
 * *.json in them, sorted, not recursive) and `-` for stdin; parses every document. Problems are
 * collected, not thrown, so the user sees all of them at once.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ManifestError, parseManifests, type ManifestDocument } from '../api/manifest';
import { CliError, messageOf } from './errors';
import type { CliIO } from './io';

/** Parsed documents and the one-line problems met reading or parsing them. */
export interface LoadedManifests {
  docs: ManifestDocument[];
  errors: string[];
}

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

/** Reads and parses every `-f` argument; throws only when none was given. */
export async function loadManifests(paths: string[], io: CliIO): Promise<LoadedManifests> {
  if (!paths.length) throw new CliError('must specify -f FILE, -f DIR or -f - (stdin)');
  const out: LoadedManifests = { docs: [], errors: [] };
  let stdinRead = false;
  for (const path of paths) {
    if (path === '-') {
      if (stdinRead) {
        out.errors.push('-f - (stdin) given more than once');
        continue;
      }
      stdinRead = true;
      parseInto(out, await io.readStdin(), '<stdin>');
      continue;
    }
    for (const file of expand(path, out.errors)) {
      const text = readText(file, out.errors);
      if (text !== undefined) parseInto(out, text, file);
    }
  }
  return out;
}

/** A file, or a directory's manifest files in name order. */
function expand(path: string, errors: string[]): string[] {
  try {
    if (!statSync(path).isDirectory()) return [path];
    const files = readdirSync(path, { withFileTypes: true })
      .filter((e) => !e.isDirectory() && MANIFEST_FILE.test(e.name))
      .map((e) => e.name)
      .sort();
    if (!files.length) errors.push(`${path}: no .yaml, .yml or .json files in directory`);
    return files.map((f) => join(path, f));
  } catch (err) {
    errors.push(fsError(path, err));
    return [];
  }
}

function readText(file: string, errors: string[]): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    errors.push(fsError(file, err));
    return undefined;
  }
}

function parseInto(out: LoadedManifests, text: string, source: string): void {
  try {
    out.docs.push(...parseManifests(text, source));
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    out.errors.push(err.message);
  }
}

function fsError(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return `${path}: no such file or directory`;
  if (code === 'EACCES') return `${path}: permission denied`;
  return `${path}: ${messageOf(err)}`;
}
