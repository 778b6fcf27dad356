/**
 * The etcd flags every binary shares (--etcd-endpoints, --etcd-cacert, --etcd-cert, --etcd-key,
 * --etcd-user, --etcd-password-file), as etcdctl names them, and the connection they describe.
 * Every problem is an Error naming the flag, before anything connects.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { readPem } from '../util/pki';
import type { EtcdConnection } from './etcd';

/** The parsed flags (commander's camelCase). */
export interface EtcdFlags {
  etcdEndpoints?: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdUser?: string;
  etcdPasswordFile?: string;
}

/** Adds the etcd connection flags (and --etcd-prefix) to a binary's command. */
export function addEtcdFlags(cmd: Command): Command {
  return cmd
    .option('--etcd-endpoints <urls>', 'comma-separated etcd client URLs (https:// with --etcd-cacert)', 'http://127.0.0.1:2379')
    .option('--etcd-prefix <prefix>', 'etcd key prefix', '/shoal')
    .option('--etcd-cacert <file>', 'CA certificate that signed etcd\'s serving certificate (PEM); needs https:// endpoints')
    .option('--etcd-cert <file>', 'client certificate for etcd (PEM), when etcd runs with --client-cert-auth')
    .option('--etcd-key <file>', 'private key of --etcd-cert (PEM)')
    .option('--etcd-user <name>', 'etcd user (etcd auth enabled); its role says which keys this component may touch')
    .option('--etcd-password-file <file>', 'file holding the password of --etcd-user (first line)');
}

/** The connection the flags describe; throws naming the flag for a missing file or a wrong combination. */
export function etcdConnectionOf(f: EtcdFlags): EtcdConnection {
  const endpoints = String(f.etcdEndpoints ?? '').split(',').map((e) => e.trim()).filter(Boolean);
  if (!endpoints.length) throw new Error('--etcd-endpoints: give at least one URL');
  for (const e of endpoints) {
    if (!/^https?:\/\/[^/]+\/?$/.test(e)) throw new Error(`--etcd-endpoints: "${e}" is not an http:// or https:// URL of a host and port`);
  }
  const secure = endpoints.filter((e) => e.startsWith('https://'));
  if (secure.length && secure.length !== endpoints.length) throw new Error('--etcd-endpoints: mix of http:// and https:// URLs; use https:// for every member');
  if (Boolean(f.etcdCert) !== Boolean(f.etcdKey)) throw new Error('--etcd-cert and --etcd-key go together');
  if (secure.length && !f.etcdCacert) throw new Error('--etcd-endpoints are https://: give --etcd-cacert (the CA that signed etcd\'s certificate)');
  if (!secure.length && (f.etcdCacert || f.etcdCert)) throw new Error('--etcd-cacert/--etcd-cert need https:// --etcd-endpoints');
  if (Boolean(f.etcdUser) !== Boolean(f.etcdPasswordFile)) throw new Error('--etcd-user and --etcd-password-file go together');
  const conn: EtcdConnection = { endpoints };
  if (f.etcdCacert) {
    conn.tls = {
      ca: readPem(f.etcdCacert, '--etcd-cacert'),
      ...(f.etcdCert && { cert: readPem(f.etcdCert, '--etcd-cert'), key: readPem(f.etcdKey!, '--etcd-key') }),
    };
  }
  if (f.etcdUser) conn.auth = { username: f.etcdUser, password: readPasswordFile(f.etcdPasswordFile!) };
  return conn;
}

function readPasswordFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`--etcd-password-file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const password = text.split('\n')[0]!.trim();
  if (!password) throw new Error(`--etcd-password-file ${file} is empty`);
  return password;
}
