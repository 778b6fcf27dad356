/**
 * Where the CLI finds its apiserver and token. Each setting is resolved on its own, with
 * kubectl-like precedence: flags, then environment, then the config file that `shoal dev` writes.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ManifestError, parseManifests } from '../api/manifest';
import { CliError, messageOf } from './errors';

/** The global flags that bear on configuration. */
export interface ConfigFlags {
  server?: string;
  token?: string;
  config?: string;
  /** --certificate-authority: a CA file that verifies the server's certificate. */
  certificateAuthority?: string;
  /** --insecure-skip-tls-verify: do not check the server's certificate at all. */
  insecureSkipTlsVerify?: boolean;
}

/**
 * The config file: YAML `{server, token, namespace?, certificate-authority?, insecure-skip-tls-verify?}`
 * (kubectl's names); unknown keys are ignored for forward compatibility.
 */
export interface ConfigFile {
  server?: string;
  token?: string;
  namespace?: string;
  /** `certificate-authority`: the CA file (a relative path is relative to the config file). */
  certificateAuthority?: string;
  /** `insecure-skip-tls-verify` */
  insecureSkipTlsVerify?: boolean;
}

/** The settings in effect; `server` may still be missing (checked by {@link requireServer}). */
export interface ResolvedConfig extends ConfigFile {
  /** The config file that was read, if any. */
  configFile?: string;
}

/** `~/.shoal/config.yaml`. */
export function defaultConfigPath(homeDir: string): string {
  return join(homeDir, '.shoal', 'config.yaml');
}

/** Resolves server, token and namespace from flags > env > config file. Throws CliError for a bad file. */
export function resolveConfig(flags: ConfigFlags, env: Record<string, string | undefined>, homeDir: string): ResolvedConfig {
  const explicitPath = nonEmpty(flags.config) ?? nonEmpty(env.SHOAL_CONFIG);
  const path = explicitPath ?? defaultConfigPath(homeDir);
  // The default file is optional (no `shoal dev` yet); a file the user named must exist.
  const file = readConfigFile(path, explicitPath !== undefined);
  const given = nonEmpty(flags.server) ?? nonEmpty(env.SHOAL_SERVER);
  const server = given ?? file?.server;
  return {
    server: server === undefined ? undefined : normalizeServer(server, given === undefined ? path : undefined),
    token: nonEmpty(flags.token) ?? nonEmpty(env.SHOAL_TOKEN) ?? file?.token,
    namespace: file?.namespace,
    // A CA or skip from a flag wins over the file's; a flag's CA path is relative to the working directory.
    certificateAuthority: nonEmpty(flags.certificateAuthority) ?? file?.certificateAuthority,
    insecureSkipTlsVerify: flags.insecureSkipTlsVerify || (!nonEmpty(flags.certificateAuthority) && file?.insecureSkipTlsVerify) || undefined,
    configFile: file ? path : undefined,
  };
}

/** How the CLI trusts an https server: a CA of its own, or (asked for) not at all. */
export interface ServerTrust {
  ca?: Buffer;
  insecureSkipVerify?: boolean;
}

/** The server URL, token and TLS trust, or the error that tells the user how to configure one. */
export function requireServer(config: ResolvedConfig): { server: string; token?: string; tls?: ServerTrust } {
  if (!config.server) {
    throw new CliError('no server configured: run `shoal dev` or pass --server / set SHOAL_SERVER');
  }
  const out: { server: string; token?: string; tls?: ServerTrust } = { server: config.server, token: config.token };
  if (config.insecureSkipTlsVerify) out.tls = { insecureSkipVerify: true };
  else if (config.certificateAuthority) out.tls = { ca: readCa(config.certificateAuthority) };
  return out;
}

function readCa(file: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new CliError(`certificate-authority ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : messageOf(err)}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new CliError(`certificate-authority ${file}: not a PEM certificate`);
  return pem;
}

/**
 * Reads and checks a config file. Returns undefined when it does not exist and is not `required`.
 * Every problem is a CliError naming the file.
 */
export function readConfigFile(path: string, required: boolean): ConfigFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return undefined;
    if (code === 'ENOENT') throw new CliError(`config file ${path}: no such file`);
    throw new CliError(`cannot read config file ${path}: ${messageOf(err)}`);
  }
  return checkConfig(parseConfig(text, path), path);
}

function parseConfig(text: string, path: string): unknown {
  try {
    const docs = parseManifests(text, path);
    if (docs.length > 1) throw new CliError(`invalid config file ${path}: expected one YAML document, found ${docs.length}`);
    return docs[0]?.object ?? {};
  } catch (err) {
    if (err instanceof ManifestError) throw new CliError(`invalid config file ${err.message}`);
    throw err;
  }
}

function checkConfig(value: unknown, path: string): ConfigFile {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CliError(`invalid config file ${path}: expected a mapping with server and token`);
  }
  const out: ConfigFile = {};
  for (const key of ['server', 'token', 'namespace'] as const) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined || v === null) continue;
    // A token of digits would parse as a number and lose precision, so it must be quoted.
    if (typeof v !== 'string') throw new CliError(`invalid config file ${path}: ${key} must be a string`);
    out[key] = v;
  }
  const ca = (value as Record<string, unknown>)['certificate-authority'];
  if (ca !== undefined && ca !== null) {
    if (typeof ca !== 'string' || !ca) throw new CliError(`invalid config file ${path}: certificate-authority must be a file path`);
    out.certificateAuthority = isAbsolute(ca) ? ca : resolve(dirname(path), ca);
  }
  const skip = (value as Record<string, unknown>)['insecure-skip-tls-verify'];
  if (skip !== undefined && skip !== null) {
    if (typeof skip !== 'boolean') throw new CliError(`invalid config file ${path}: insecure-skip-tls-verify must be true or false`);
    out.insecureSkipTlsVerify = skip;
  }
  return out;
}

function normalizeServer(server: string, fromFile: string | undefined): string {
  let url: URL | undefined;
  try {
    url = new URL(server);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    const where = fromFile ? ` in ${fromFile}` : '';
    throw new CliError(`invalid server URL "${server}"${where}: must start with http:// or https://`);
  }
  return server.replace(/\/+$/, '');
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}
