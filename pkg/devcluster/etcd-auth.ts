/**
 * etcd's own authentication for a cluster: one etcd user per component (shoal-apiserver,
 * shoal-controller-manager, shoal-agent), each with a role of its own that grants only Shoal's key
 * prefix, and a root user kept for administration. Passwords are random, kept in files (0600)
 * next to the certificates, and what `shoal dev`, the tests and `shoal node add` hand to each
 * component (`--etcd-user`, `--etcd-password-file`).
 *
 * Idempotent: on a fresh etcd it creates users and roles and then enables auth; on an etcd with
 * auth on it logs in as root and adds what is missing (a new component user, a new grant).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3, Range, type IOptions } from 'etcd3';

/** The etcd users of Shoal's components. */
export const COMPONENT_USERS = ['shoal-apiserver', 'shoal-controller-manager', 'shoal-agent'] as const;
export type ComponentUser = (typeof COMPONENT_USERS)[number];

export interface EtcdCredentials {
  username: string;
  password: string;
  /** The file holding the password (for a binary's --etcd-password-file). */
  passwordFile: string;
}

export interface EnsureEtcdAuthOptions {
  endpoint: string;
  /** The CA etcd's serving certificate chains to. */
  ca: Buffer;
  /** Where the password files live. */
  dir: string;
  /** Shoal's key prefix (e.g. '/shoal'): the range each component's role grants. */
  prefix: string;
}

/** Reads `<dir>/<user>.password`, or makes one (0600). */
export function passwordOf(dir: string, user: string): EtcdCredentials {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const passwordFile = join(dir, `${user}.password`);
  if (existsSync(passwordFile)) {
    const password = readFileSync(passwordFile, 'utf8').split('\n')[0]!.trim();
    if (password) return { username: user, password, passwordFile };
  }
  const password = randomBytes(18).toString('base64url');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  return { username: user, password, passwordFile };
}

/** Whether an etcd error says auth is on and the caller is not allowed (or not logged in). */
function isAuthRefusal(err: unknown): boolean {
  return /user name is empty|permission denied|authentication failed|invalid auth token|auth.*not.*enabled/i.test(String((err as Error)?.message ?? err));
}

/** Ensures users, roles and grants, then auth enabled; returns each component's credentials. */
export async function ensureEtcdAuth(o: EnsureEtcdAuthOptions): Promise<Record<ComponentUser, EtcdCredentials>> {
  const root = passwordOf(o.dir, 'root');
  const users = Object.fromEntries(COMPONENT_USERS.map((u) => [u, passwordOf(o.dir, u)])) as Record<ComponentUser, EtcdCredentials>;
  const base: IOptions = { hosts: [o.endpoint], credentials: { rootCertificate: o.ca }, dialTimeout: 5000 };
  let client = new Etcd3(base);
  let enabled = false;
  try {
    try {
      await client.getRoles();
    } catch (err) {
      if (!isAuthRefusal(err)) throw err;
      enabled = true;
      client.close();
      client = new Etcd3({ ...base, auth: { username: 'root', password: root.password } });
    }
    const existingUsers = new Set((await client.getUsers().catch(rootLoginAdvice)).map((u) => u.name));
    const existingRoles = new Set((await client.getRoles()).map((r) => r.name));
    if (!existingUsers.has('root')) await client.user('root').create(root.password);
    await client.user('root').addRole('root');
    const range = Range.prefix(`${o.prefix.replace(/\/+$/, '')}/`);
    for (const user of COMPONENT_USERS) {
      if (!existingRoles.has(user)) await client.role(user).create();
      await client.role(user).grant({ permission: 'Readwrite', range });
      if (!existingUsers.has(user)) await client.user(user).create(users[user].password);
      else await client.user(user).setPassword(users[user].password);
      await client.user(user).addRole(user);
    }
    if (!enabled) await client.auth.authEnable();
  } finally {
    client.close();
  }
  return users;
}

function rootLoginAdvice(err: unknown): never {
  if (isAuthRefusal(err)) {
    throw new Error(`etcd has auth enabled and refuses the root password kept by Shoal (${String((err as Error).message)}): the data directory's etcd/ and pki/ no longer belong together; remove the data directory to start afresh`);
  }
  throw err;
}
