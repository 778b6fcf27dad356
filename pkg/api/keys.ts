/**
 * The one `namespace/name` key of a namespaced object (an App, a Task, an allocation): what
 * work queues, caches, the allocator and log lines name objects by. A missing namespace is the
 * default one, as the apiserver defaults it, so an object read before and after defaulting
 * has one key.
 */
import { DEFAULT_NAMESPACE } from './kinds';

/** `<namespace>/<name>`; an undefined or empty namespace is {@link DEFAULT_NAMESPACE}. */
export function nameKey(namespace: string | undefined, name: string): string {
  return `${namespace || DEFAULT_NAMESPACE}/${name}`;
}

/** {@link nameKey} of an object's metadata. */
export function objectNameKey(obj: { metadata: { namespace?: string; name: string } }): string {
  return nameKey(obj.metadata.namespace, obj.metadata.name);
}

/** The parts of a {@link nameKey} key; a key without '/' is a name in the default namespace. */
export function splitNameKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: DEFAULT_NAMESPACE, name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
