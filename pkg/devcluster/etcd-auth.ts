/**
 * etcd's own authentication for a cluster: one etcd user per component, each with a role of its
 * own, and a root user kept for administration.
 * - shoal-apiserver, shoal-controller-manager: read-write on Shoal's prefix, nothing else.
 * - each agent, `shoal-agent-<node>`: only what that agent needs (agentGrants): its lease key,
 *   its Node, reading its own assignments, task status and events. etcd itself then refuses an
 *   agent's write to another node's assignments or Node (its address), to any App or Job, and to
 *   the leader key.
 * Passwords are random, kept in files (0600) next to the certificates, and what `shoal dev`, the
 * tests and `shoal node add` hand to each component (`--etcd-user`, `--etcd-password-file`).
 *
 * Idempotent: on a fresh etcd it creates users and roles and then enables auth; on an etcd with
 * auth on it logs in as root and adds what is missing (a new component user, a new grant).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3, Range, type IOptions } from 'etcd3';
import { ignoreIpServernameWarning } from '../util/warnings';

/** The etcd users of Shoal's components. */
export const COMPONENT_USERS = ['shoal-apiserver', 'shoal-controller-manager'] as const;
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
  ignoreIpServernameWarning();
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
    const grants: Grant[] = [{ permission: 'Readwrite', prefix: `${trimmed(o.prefix)}/` }];
    for (const user of COMPONENT_USERS) await ensureUser(client, users[user], grants, existingUsers, existingRoles);
    if (!enabled) await client.auth.authEnable();
  } finally {
    client.close();
  }
  return users;
}

/** One permission of a role: on one key, or on every key under a prefix. */
export interface Grant {
  permission: 'Read' | 'Write' | 'Readwrite';
  key?: string;
  prefix?: string;
}

const trimmed = (prefix: string) => prefix.replace(/\/+$/, '');

/** The etcd user of the agent of `node`. */
export function agentUser(node: string): string {
  return `shoal-agent-${node}`;
}

/**
 * What the agent of `node` may touch, and nothing more: its lease key and its Node (one key each:
 * not another node's, so it cannot redirect the apiserver to itself), its own assignments (read
 * only: only the controller-manager assigns), its own task status reports (the controller-manager
 * relays them into Tasks bound to this node only), and events. Events are keyed by the object they
 * are about, not by node, so an agent can still write any event: see docs/operations.md.
 */
export function agentGrants(prefix: string, node: string): Grant[] {
  const p = trimmed(prefix);
  return [
    { permission: 'Readwrite', key: `${p}/leases/nodes/${node}` },
    { permission: 'Readwrite', key: `${p}/registry/nodes/${node}` },
    { permission: 'Read', prefix: `${p}/assignments/${node}/` },
    { permission: 'Readwrite', prefix: `${p}/taskstatus/${node}/` },
    { permission: 'Readwrite', prefix: `${p}/registry/events/` },
  ];
}

/** Creates (or updates) a user with a role of the same name holding exactly `grants` (what it held before is revoked). */
async function ensureUser(client: Etcd3, cred: EtcdCredentials, grants: Grant[], users: Set<string>, roles: Set<string>): Promise<void> {
  const name = cred.username;
  if (!roles.has(name)) await client.role(name).create();
  else {
    const held = await client.role(name).permissions();
    if (held.length) await client.role(name).revoke(held);
  }
  for (const g of grants) {
    await client.role(name).grant(g.prefix !== undefined ? { permission: g.permission, range: Range.prefix(g.prefix) } : { permission: g.permission, key: g.key! });
  }
  if (!users.has(name)) await client.user(name).create(cred.password);
  else await client.user(name).setPassword(cred.password);
  await client.user(name).addRole(name);
}

/**
 * Makes (or keeps) the etcd user of the agent of `node` with its own role (agentGrants), as root.
 * Auth must be on (ensureEtcdAuth ran). Returns its credentials.
 */
export async function ensureAgentUser(o: EnsureEtcdAuthOptions, node: string): Promise<EtcdCredentials> {
  const cred = passwordOf(o.dir, agentUser(node));
  const root = passwordOf(o.dir, 'root');
  ignoreIpServernameWarning();
  const client = new Etcd3({ hosts: [o.endpoint], credentials: { rootCertificate: o.ca }, dialTimeout: 5000, auth: { username: 'root', password: root.password } });
  try {
    const users = new Set((await client.getUsers().catch(rootLoginAdvice)).map((u) => u.name));
    const roles = new Set((await client.getRoles()).map((r) => r.name));
    await ensureUser(client, cred, agentGrants(o.prefix, node), users, roles);
  } finally {
    client.close();
  }
  return cred;
}

function rootLoginAdvice(err: unknown): never {
  if (isAuthRefusal(err)) {
    throw new Error(`etcd has auth enabled and refuses the root password kept by Shoal (${String((err as Error).message)}): the data directory's etcd/ and pki/ no longer belong together; remove the data directory to start afresh`);
  }
  throw err;
}
