/**
 * Reaching the etcd of a `shoal dev` cluster from a test, as its administrator would: over TLS
 * with the dev CA, as etcd's root user (auth is on; the password is in the data dir).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EtcdConnection } from '../../pkg/store/etcd';

function endpointOf(dataDir: string): string {
  return readFileSync(join(dataDir, 'etcd-endpoint'), 'utf8').trim();
}

function rootPassword(dataDir: string): string {
  return readFileSync(join(dataDir, 'pki', 'etcd-users', 'root.password'), 'utf8').trim();
}

/** An EtcdStore connection to the dev cluster's etcd as root. */
export function devEtcdConnection(dataDir: string): EtcdConnection {
  return { endpoints: [endpointOf(dataDir)], tls: { ca: readFileSync(join(dataDir, 'pki', 'ca.crt')) }, auth: { username: 'root', password: rootPassword(dataDir) } };
}

/** etcdctl's flags for the dev cluster's etcd as root. */
export function devEtcdctlFlags(dataDir: string): string[] {
  return ['--endpoints', endpointOf(dataDir), '--cacert', join(dataDir, 'pki', 'ca.crt'), '--user', `root:${rootPassword(dataDir)}`];
}
