/**
 * A small certificate authority on Debian's `openssl` (3.x): `shoal dev`, `shoal node add` and
 * the test harness make a CA and the certificates of etcd, the apiserver and the agents with it.
 * Keys are ECDSA P-256 (fast to make, understood by Go's TLS, Node's and gRPC's); files are
 * written 0600 (keys) and 0644 (certificates). Everything is idempotent: a certificate that
 * exists, is signed by the CA, names the same hosts and is valid for 30 more days is kept.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

/** A certificate and its private key, as file paths. */
export interface CertFiles {
  cert: string;
  key: string;
}

/** A CA: its certificate (what clients trust) and key (what signs). */
export interface CaFiles extends CertFiles {}

export interface IssueOptions {
  /** The subject's common name (an etcd user name, an agent's node name...). */
  commonName: string;
  /** DNS names and IP addresses the certificate is valid for (servers). */
  hosts?: string[];
  /** Organisation (a group, for client certificates). */
  organization?: string;
  /** What it is for. @default 'server' (servers also get clientAuth: etcd peers and agents dial out too) */
  usage?: 'server' | 'client';
}

const CA_DAYS = 3650;
const LEAF_DAYS = 825;
/** A certificate expiring within this many seconds is made again. */
const RENEW_BEFORE_SECONDS = 30 * 24 * 3600;
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Runs openssl; a failure names the command and carries its stderr. */
function openssl(args: string[], cwd?: string): string {
  try {
    return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('openssl not found: install it with hack/install-deps.sh (Debian package openssl)');
    throw new Error(`openssl ${args[0]} failed: ${String(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' ')}`);
  }
}

/** Whether `cert` exists, is signed by `ca` and stays valid for RENEW_BEFORE_SECONDS. */
function usable(cert: string, key: string, ca?: string): boolean {
  if (!existsSync(cert) || !existsSync(key)) return false;
  try {
    openssl(['x509', '-in', cert, '-noout', '-checkend', String(RENEW_BEFORE_SECONDS)]);
    if (ca) openssl(['verify', '-CAfile', ca, cert]);
    return true;
  } catch {
    return false;
  }
}

/** Makes (or keeps) a self-signed CA in `dir`: `ca.crt`, `ca.key`. */
export function ensureCa(dir: string, commonName = 'shoal-ca'): CaFiles {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  if (usable(ca.cert, ca.key)) return ca;
  openssl(['req', '-x509', ...EC_KEY, '-keyout', ca.key, '-out', ca.cert, '-days', String(CA_DAYS), '-subj', `/CN=${commonName}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  chmodSync(ca.key, 0o600);
  return ca;
}

/** The subjectAltName line for `hosts` (IP addresses as IP:, the rest as DNS:). */
export function subjectAltName(hosts: string[]): string {
  return hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
}

/** The names a certificate is valid for, as its subjectAltName lists them (`DNS:x`, `IP Address:y`). */
function hostsOf(cert: string): string[] {
  const text = openssl(['x509', '-in', cert, '-noout', '-ext', 'subjectAltName']);
  return text.split('\n').slice(1).join(',').split(',').map((s) => s.trim()).filter(Boolean)
    .map((s) => s.replace(/^DNS:/, '').replace(/^IP Address:/, '')).sort();
}

/** Makes (or keeps) `<dir>/<name>.crt` and `.key`, signed by `ca`. */
export function issueCertificate(ca: CaFiles, dir: string, name: string, o: IssueOptions): CertFiles {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`certificate name "${name}": letters, digits, '.', '_' and '-' only`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const out = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const hosts = [...new Set(o.hosts ?? [])].sort();
  if (usable(out.cert, out.key, ca.cert) && (hosts.length === 0 || JSON.stringify(hostsOf(out.cert)) === JSON.stringify(hosts))) return out;
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  const usage = o.usage === 'client' ? 'clientAuth' : 'serverAuth,clientAuth';
  writeFileSync(ext, [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${usage}`,
    ...(hosts.length ? [`subjectAltName=${subjectAltName(hosts)}`] : []),
  ].join('\n') + '\n');
  const subject = `/CN=${o.commonName}${o.organization ? `/O=${o.organization}` : ''}`;
  try {
    openssl(['req', '-new', ...EC_KEY, '-keyout', out.key, '-out', csr, '-subj', subject]);
    openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', String(LEAF_DAYS), '-extfile', ext, '-out', out.cert]);
    chmodSync(out.key, 0o600);
  } finally {
    rmSync(csr, { force: true });
    rmSync(ext, { force: true });
  }
  return out;
}

/** Reads a PEM file for a TLS option, naming the flag that gave it when it cannot. */
export function readPem(file: string, flag: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new Error(`${flag} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN ')) throw new Error(`${flag} ${file}: not a PEM file`);
  return pem;
}
