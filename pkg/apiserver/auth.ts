/**
 * Authentication (bearer tokens from a token file) and authorization (roles per namespace).
 * See docs/api.md for the file format and what each role may do.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseManifests } from '../api/manifest';
import type { KindInfo, Verb } from '../api/kinds';
import { ApiError } from './errors';

export type Role = 'view' | 'edit' | 'admin';
const RANK: Record<Role, number> = { view: 1, edit: 2, admin: 3 };

/** `*` grants the role in every namespace and on cluster-scoped kinds. */
export interface RoleBinding {
  namespace: string;
  role: Role;
}

export interface User {
  name: string;
  roles: RoleBinding[];
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

  /** The user for an `Authorization` header value; throws 401 when missing or unknown. */
  authenticate(header: string | undefined): User {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m) throw new ApiError('Unauthorized', 'missing bearer token (Authorization: Bearer <token>)');
    const d = digest(m[1]);
    // Compare with every entry so the time taken does not reveal which one matched.
    let found: TokenEntry | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, d) && !found) found = e;
    if (!found) throw new ApiError('Unauthorized', 'invalid bearer token');
    return { name: found.name, roles: found.roles };
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
    const { name, token, roles } = (u ?? {}) as Record<string, unknown>;
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
    return { name: name as string, token: token as string, roles: bindings };
  });
}

/** The role a verb needs on a kind. */
function requiredRole(verb: Verb, kind: KindInfo): Role {
  if (verb === 'get' || verb === 'list' || verb === 'watch') return 'view';
  if (!kind.namespaced) return 'admin';
  return 'edit';
}

function roleIn(user: User, namespace: string): number {
  let best = 0;
  for (const b of user.roles) if (b.namespace === '*' || b.namespace === namespace) best = Math.max(best, RANK[b.role]);
  return best;
}

/**
 * Throws 403 unless the user may do `verb` on `kind` in `namespace`
 * (undefined namespace: across all namespaces, or a cluster-scoped kind).
 */
export function authorize(user: User, verb: Verb, kind: KindInfo, namespace: string | undefined): void {
  const need = requiredRole(verb, kind);
  // Reading cluster-scoped kinds (nodes) needs only an identity.
  if (!kind.namespaced && need === 'view' && user.roles.length > 0) return;
  const have = roleIn(user, kind.namespaced && namespace !== undefined ? namespace : '*');
  if (have >= RANK[need]) return;
  const where = !kind.namespaced ? 'at cluster scope' : namespace === undefined ? 'across all namespaces' : `in namespace "${namespace}"`;
  throw new ApiError('Forbidden', `user "${user.name}" cannot ${verb} ${kind.plural} ${where} (needs role ${need})`);
}
