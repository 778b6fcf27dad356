/**
 * The kinds Shoal serves: names, scope, and what clients may do with each.
 * The CLI resolves `app`, `apps`, `app/web` through here; the apiserver routes by plural.
 */
export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface KindInfo {
  /** `App` */
  kind: string;
  /** `apps`: the URL path segment and the etcd key segment. */
  plural: string;
  /** `app` */
  singular: string;
  /** Further accepted names (`no` for nodes, `ev` for events). */
  shortNames: string[];
  /** false for cluster-scoped kinds (nodes). */
  namespaced: boolean;
  /** Schema file in schemas/ that validates this kind. */
  schema: string;
  /** Verbs the API allows clients for this kind. */
  verbs: readonly Verb[];
}

const ALL: readonly Verb[] = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
const READ: readonly Verb[] = ['get', 'list', 'watch'];

export const KINDS: readonly KindInfo[] = [
  { kind: 'App', plural: 'apps', singular: 'app', shortNames: [], namespaced: true, schema: 'app.json', verbs: ALL },
  { kind: 'Job', plural: 'jobs', singular: 'job', shortNames: [], namespaced: true, schema: 'job.json', verbs: ALL },
  // Runs are created by the Job controller (a schedule, parents) or by `POST .../jobs/{name}/run`; deleting one kills it.
  { kind: 'JobRun', plural: 'jobruns', singular: 'jobrun', shortNames: ['jr'], namespaced: true, schema: 'jobrun.json', verbs: [...READ, 'delete'] },
  // External frameworks register over the Mesos scheduler API (the controller-manager writes them); deleting one tears it down.
  { kind: 'Framework', plural: 'frameworks', singular: 'framework', shortNames: ['fw'], namespaced: false, schema: 'framework.json', verbs: [...READ, 'delete'] },
  // Tasks are created bound, by the scheduler, at offer accept time; deleting one kills it.
  { kind: 'Task', plural: 'tasks', singular: 'task', shortNames: [], namespaced: true, schema: 'task.json', verbs: [...READ, 'delete'] },
  // Nodes are written by their agents; operators only cordon (patch spec.unschedulable) or remove them.
  { kind: 'Node', plural: 'nodes', singular: 'node', shortNames: ['no'], namespaced: false, schema: 'node.json', verbs: [...READ, 'update', 'patch', 'delete'] },
  { kind: 'Event', plural: 'events', singular: 'event', shortNames: ['ev'], namespaced: true, schema: 'event.json', verbs: READ },
];

const byName = new Map<string, KindInfo>();
for (const k of KINDS) {
  for (const n of [k.kind.toLowerCase(), k.plural, k.singular, ...k.shortNames]) byName.set(n, k);
}

/** Finds a kind by any of its names, case-insensitively (`App`, `app`, `apps`, `no`); undefined if unknown. */
export function lookupKind(name: string): KindInfo | undefined {
  return byName.get(name.toLowerCase());
}

/** Finds a kind by its plural (the URL segment). */
export function kindByPlural(plural: string): KindInfo | undefined {
  return KINDS.find((k) => k.plural === plural);
}

/** The one apiVersion of this API. */
export const API_VERSION = 'shoal/v1';

/** Namespace used when none is given. */
export const DEFAULT_NAMESPACE = 'default';
