/**
 * Pure parsing of what an operator gives an agent on its command line (port ranges,
 * attributes, sizes), plus the machine's defaults. Errors are one readable sentence each.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { parsePortRanges, type PortRange, type Resources } from '../api/resources';

export { parsePortRanges };
export { parseUidRange } from '../runtime/task-users';

const MIB = 1024 * 1024;
const ATTRIBUTE_KEY = /^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$/;
/** Keys a constraint or a JSON object would misread. `hostname` is the constraint field of the Node itself. */
const RESERVED_ATTRIBUTES = new Set(['hostname', 'constructor', 'prototype']);
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Parses `rack=r1,zone=a` into attributes. Keys are label-like and unique; values may be empty. */
export function parseAttributes(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (text.trim() === '') return out;
  for (const raw of text.split(',')) {
    const item = raw.trim();
    const eq = item.indexOf('=');
    if (eq < 0) throw new Error(`attribute "${item}" is not key=value`);
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (!ATTRIBUTE_KEY.test(key) || key.length > 63) {
      throw new Error(`attribute key "${key}" must be at most 63 of [A-Za-z0-9_./-], starting and ending with a letter or digit`);
    }
    if (RESERVED_ATTRIBUTES.has(key)) throw new Error(`attribute key "${key}" is reserved`);
    if (Object.prototype.hasOwnProperty.call(out, key)) throw new Error(`attribute "${key}" is given twice`);
    out[key] = value;
  }
  return out;
}

/** Parses a non-negative number (`--cpus 2.5`, `--mem 4096`); `what` names it in the error. */
export function parseAmount(what: string, text: string): number {
  const value = text.trim() === '' ? NaN : Number(text);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${what} must be a number >= 0, got "${text}"`);
  return value;
}

/** Whether `name` can name a Node (a DNS-1123 label); the reason when it cannot. */
export function nodeNameProblem(name: string): string | undefined {
  if (name.length <= 63 && DNS1123_LABEL.test(name)) return undefined;
  return `node name "${name}" must be a DNS-1123 label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit`;
}

/** A node name from a host name: lowercase, first DNS label (Kubernetes lowercases it too). */
export function defaultNodeName(hostname: string = os.hostname()): string {
  return hostname.toLowerCase().split('.')[0];
}

/** This machine's capacity: every CPU, all memory (MiB), and the free disk (MiB) of `dataDir`. */
export function machineCapacity(dataDir: string, ports: PortRange[]): Resources {
  const fsStats = fs.statfsSync(dataDir);
  return {
    cpus: os.cpus().length,
    mem: Math.floor(os.totalmem() / MIB),
    disk: Math.floor((fsStats.bavail * fsStats.bsize) / MIB),
    ports,
  };
}

/** `name` when it can name a Node; throws the reason otherwise. */
export function checkNodeName(name: string): string {
  const problem = nodeNameProblem(name);
  if (problem) throw new Error(problem);
  return name;
}

/** A whole number of seconds >= 1 (`--lease-ttl`). */
export function parseSeconds(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new Error(`"${text}" is not a whole number of seconds >= 1`);
  return Number(text);
}

/** A TCP port 1-65535 (`--listen`). */
export function parsePort(text: string): number {
  const port = /^\d{1,5}$/.test(text.trim()) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new Error(`"${text}" is not a port number (1-65535)`);
  return port;
}
