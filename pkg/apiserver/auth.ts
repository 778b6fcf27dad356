/**
 * Authentication (bearer tokens from a token file) and authorization (roles per namespace).
 * See docs/api.md for the file format and what each role may do.
 */
import type { KindInfo, Verb } from '../api/kinds';
import { RANK, type Role, type User } from '../client/tokens';
import { ApiError } from './errors';

export { AuthenticationError, MIN_TOKEN_LENGTH, parseTokenFile, TokenAuthenticator, type Role, type RoleBinding, type User } from '../client/tokens';

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
