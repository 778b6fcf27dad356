/**
 * Users and their tokens (a token file): authentication shared by the apiserver and the
 * controller-manager's Mesos scheduler API. See docs/api.md for the file format.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseManifests } from '../api/manifest';

/** Missing or wrong credentials (HTTP 401). */
export class AuthenticationError extends Error {
  override name = 'AuthenticationError';
}

export type Role = 'view' | 'edit' | 'admin';
export const RANK: Record<Role, number> = { view: 1, edit: 2, admin: 3 };

/** `*` grants the role in every namespace and on cluster-scoped kinds. */
export interface RoleBinding {
  namespace: string;
  role: Role;
}

export interface User {
  name: string;
  roles: RoleBinding[];
  /** Roles the user may register external frameworks with (`*`: any). */
  frameworkRoles?: string[];
}

interface TokenEntry extends User {
  digest: Buffer;
}

/** Minimum token length; shorter tokens are guessable. */
export const MIN_TOKEN_LENGTH = 16;

const digest = (token: string) => createHash('sha256').update(token).digest();

/** Maps bearer tokens to users. Tokens are held as SHA-256 digests and compared in constant time. */
export class TokenAuthenticator {
  private readonly entries: TokenEntry[];

  constructor(users: Array<User & { token: string }>) {
    this.entries = users.map(({ token, ...u }) => ({ ...u, digest: digest(token) }));
  }

  /** Reads and checks a token file; errors name the file and the entry. */
  static fromFile(path: string): TokenAuthenticator {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read token file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const [doc] = parseManifests(text, path);
    return new TokenAuthenticator(parseTokenFile(doc?.object, path));
  }

  /**
   * The user for an `Authorization` header value; throws AuthenticationError when missing or
   * unknown. With `basic`, HTTP Basic is accepted too: principal = the user's name, secret = its
   * token (what Mesos framework clients send).
   */
  authenticate(header: string | undefined, o: { basic?: boolean } = {}): User {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    const basic = o.basic ? /^Basic\s+(\S+)\s*$/i.exec(header ?? '') : null;
    if (!bearer && !basic) throw new AuthenticationError(o.basic ? 'missing credentials (Authorization: Bearer <token>, or Basic with principal and secret)' : 'missing bearer token (Authorization: Bearer <token>)');
    let token: string;
    let principal: string | undefined;
    if (bearer) token = bearer[1];
    else {
      const decoded = Buffer.from(basic![1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new AuthenticationError('malformed Basic credentials (expected principal:secret)');
      principal = decoded.slice(0, colon);
      token = decoded.slice(colon + 1);
    }
    const d = digest(token);
    // Compare with every entry so the time taken does not reveal which one matched.
    let found: TokenEntry | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, d) && !found) found = e;
    if (!found || (principal !== undefined && principal !== found.name)) throw new AuthenticationError(bearer ? 'invalid bearer token' : 'invalid principal or secret');
    return { name: found.name, roles: found.roles, frameworkRoles: found.frameworkRoles };
  }
}

/** Validates the parsed token file. */
export function parseTokenFile(doc: unknown, path: string): Array<User & { token: string }> {
  const fail = (msg: string): never => {
    throw new Error(`token file ${path}: ${msg}`);
  };
  const users = (doc as { users?: unknown } | undefined)?.users;
  if (!Array.isArray(users)) fail('expected a top-level "users" list');
  const names = new Set<string>();
  return (users as unknown[]).map((u, i) => {
    const { name, token, roles, frameworkRoles } = (u ?? {}) as Record<string, unknown>;
    if (typeof name !== 'string' || !name) fail(`users[${i}].name: required`);
    if (names.has(name as string)) fail(`users[${i}].name: duplicate "${String(name)}"`);
    names.add(name as string);
    if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH) fail(`users[${i}].token: must be a string of at least ${MIN_TOKEN_LENGTH} characters`);
    if (!Array.isArray(roles)) fail(`users[${i}].roles: expected a list of {namespace, role}`);
    const bindings = (roles as unknown[]).map((r, j) => {
      const { namespace, role } = (r ?? {}) as Record<string, unknown>;
      if (typeof namespace !== 'string' || !namespace) fail(`users[${i}].roles[${j}].namespace: required ("*" for all)`);
      if (typeof role !== 'string' || !(role in RANK)) fail(`users[${i}].roles[${j}].role: must be view, edit or admin`);
      return { namespace: namespace as string, role: role as Role };
    });
    if (frameworkRoles !== undefined && (!Array.isArray(frameworkRoles) || frameworkRoles.some((r) => typeof r !== 'string' || !r))) fail(`users[${i}].frameworkRoles: expected a list of role names ("*" for any)`);
    return { name: name as string, token: token as string, roles: bindings, ...(frameworkRoles ? { frameworkRoles: frameworkRoles as string[] } : {}) };
  });
}

