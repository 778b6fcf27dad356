/**
 * How objects map onto etcd keys, and back: `<prefix>/registry/<plural>/<namespace>/<name>`
 * (cluster-scoped: `<prefix>/registry/<plural>/<name>`). The stored JSON never carries
 * metadata.resourceVersion; it is the key's mod revision, filled in on every read.
 */
import type { KindInfo } from '../api/kinds';
import type { ShoalObject } from '../api/validation';
import type { KeyValue } from './types';

/** Default etcd key prefix of a Shoal cluster. */
export const DEFAULT_PREFIX = '/shoal';

/** Key of one object. */
export function objectKey(prefix: string, kind: KindInfo, namespace: string | undefined, name: string): string {
  return kind.namespaced ? `${prefix}/registry/${kind.plural}/${namespace}/${name}` : `${prefix}/registry/${kind.plural}/${name}`;
}

/** Prefix of every object of a kind, in one namespace or (namespace undefined) in all. Ends with '/'. */
export function kindPrefix(prefix: string, kind: KindInfo, namespace?: string): string {
  return kind.namespaced && namespace !== undefined
    ? `${prefix}/registry/${kind.plural}/${namespace}/`
    : `${prefix}/registry/${kind.plural}/`;
}

/** Serialises an object for storage, without its resourceVersion. */
export function encodeObject(obj: ShoalObject): string {
  const { resourceVersion: _rv, ...metadata } = obj.metadata;
  return JSON.stringify({ ...obj, metadata });
}

/** Parses a stored object and sets metadata.resourceVersion to the given revision. */
export function decodeObject<T extends ShoalObject = ShoalObject>(value: string, revision: number): T {
  const obj = JSON.parse(value) as T;
  obj.metadata.resourceVersion = String(revision);
  return obj;
}

/** Decodes a stored key/value. */
export function decodeKeyValue<T extends ShoalObject = ShoalObject>(kv: KeyValue): T {
  return decodeObject<T>(kv.value, kv.modRevision);
}

/**
 * Key attached to an agent's etcd lease; it exists exactly while the agent is alive. Its mod
 * revision identifies one registration: the binder guards launches on it.
 */
export function agentLeaseKey(prefix: string, node: string): string {
  return `${prefix}/leases/nodes/${node}`;
}

/** Prefix of every agent lease key. */
export function agentLeasePrefix(prefix: string): string {
  return `${prefix}/leases/nodes/`;
}

/** What one agent must run: `<prefix>/assignments/<node>/<namespace>/<task>`. Written by the binder. */
export function assignmentKey(prefix: string, node: string, namespace: string, task: string): string {
  return `${prefix}/assignments/${node}/${namespace}/${task}`;
}

/** Prefix of one agent's assignments (it watches only this). Ends with '/'. */
export function assignmentPrefix(prefix: string, node: string): string {
  return `${prefix}/assignments/${node}/`;
}

/**
 * An agent's status report for one of its tasks: `<prefix>/taskstatus/<node>/<namespace>/<task>`.
 * Written only by that node's agent (its etcd role reaches only its own range), relayed into the
 * Task by the controller-manager (pkg/controllers/taskstatus), which deletes it once the Task is gone.
 */
export function taskStatusKey(prefix: string, node: string, namespace: string, task: string): string {
  return `${prefix}/taskstatus/${node}/${namespace}/${task}`;
}

/** Prefix of every agent's status reports, or of one agent's (`node`). Ends with '/'. */
export function taskStatusPrefix(prefix: string, node?: string): string {
  return node === undefined ? `${prefix}/taskstatus/` : `${prefix}/taskstatus/${node}/`;
}

/** The controller-manager's leader key; every controller-manager write is fenced on it. */
export function leaderKey(prefix: string): string {
  return `${prefix}/leader/controller-manager`;
}

/**
 * The first key after every key under `prefix` (its last character incremented), so that
 * [prefix, prefixEnd(prefix)) is the prefix's range, e.g. for a deleteRange txn op.
 */
export function prefixEnd(prefix: string): string {
  if (prefix === '') throw new TypeError('the empty prefix has no end');
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
