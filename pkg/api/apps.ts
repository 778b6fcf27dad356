/**
 * Names shared by the apiserver, the App controller and the CLI for Apps and the Tasks they own.
 */

/** Label on every Task an App launched: the App's name (same namespace). `shoal get tasks -l shoal.dev/app=web`. */
export const APP_LABEL = 'shoal.dev/app';

/**
 * Finalizer the apiserver puts on every App at create: the App controller removes it (and the App)
 * once the App's tasks are stopped and deleted, so deleting an App never leaves tasks running unowned.
 */
export const APP_FINALIZER = 'shoal.dev/app-tasks';

/** Past versions of an App's spec kept for `shoal rollout undo`: `<prefix>/history/apps/<ns>/<name>/<generation, 10 digits>`. */
export function appHistoryPrefix(prefix: string, namespace: string, name: string): string {
  return `${prefix}/history/apps/${namespace}/${name}/`;
}

export function appHistoryKey(prefix: string, namespace: string, name: string, generation: number): string {
  return appHistoryPrefix(prefix, namespace, name) + String(generation).padStart(10, '0');
}

/** One stored version of an App's spec (what `GET .../apps/{name}/revisions` lists). */
export interface AppRevision {
  generation: number;
  createdAt: string;
  spec: unknown;
}
