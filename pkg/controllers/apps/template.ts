/**
 * What an App's tasks look like (the task template) and which tasks are of the App's current
 * configuration. Pure functions, used by the App controller and its framework.
 *
 * A spec change that only scales or tunes the controller (instances, upgradeStrategy, backoff,
 * killSelection, progressDeadlineSeconds, revisionHistoryLimit) makes a new generation but not a
 * new configuration: running tasks are kept, as Marathon keeps them on a scale. Every task carries
 * the hash of the template it was launched from; a task whose hash differs is of an old version.
 */
import { createHash } from 'node:crypto';
import { APP_LABEL } from '../../api/apps';
import { nameKey, objectNameKey } from '../../api/keys';
import type { App, Task } from '../../api/types.generated';
import type { LaunchTemplate } from '../../scheduler/types';

/** Annotation on each task: the hash of the task template it was launched from. */
export const CONFIG_HASH_ANNOTATION = 'shoal.dev/config-hash';

/** `<namespace>/<name>` of an App or Task ({@link objectNameKey}). */
export function keyOf(obj: { metadata: { namespace?: string; name: string } }): string {
  return objectNameKey(obj);
}

/** The App (`<namespace>/<name>`) a task belongs to, from its label; undefined for other tasks. */
export function ownerKey(task: Task): string | undefined {
  const app = task.metadata.labels?.[APP_LABEL];
  return app ? nameKey(task.metadata.namespace, app) : undefined;
}

/** The part of the App spec every task copies: a change here replaces every task. */
function configOf(app: App): Record<string, unknown> {
  const s = app.spec;
  return {
    role: s.role,
    cmd: s.cmd,
    container: s.container,
    env: s.env,
    resources: s.resources,
    ports: s.ports,
    constraints: s.constraints,
    healthChecks: s.healthChecks,
    readinessChecks: s.readinessChecks,
    taskKillGracePeriodSeconds: s.taskKillGracePeriodSeconds,
    restartedAt: s.restartedAt,
  };
}

/** A short stable hash of the App's task configuration (key order independent). */
export function configHash(app: App): string {
  return createHash('sha256').update(canonicalJson(configOf(app))).digest('hex').slice(0, 16);
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/**
 * Whether the task runs the App's current configuration. Without a hash (made by something else)
 * the task's generation decides.
 */
export function isCurrentConfig(task: Task, app: App, hash: string): boolean {
  const h = task.metadata.annotations?.[CONFIG_HASH_ANNOTATION];
  if (h !== undefined) return h === hash;
  return (task.metadata.ownerReferences?.[0]?.version ?? app.metadata.generation ?? 1) >= (app.metadata.generation ?? 1);
}

/** Whether the task was launched for this App object (same uid), not for an earlier App of the same name. */
export function ownedBy(task: Task, app: App): boolean {
  const ref = task.metadata.ownerReferences?.[0];
  return ref?.kind === 'App' && ref.uid === app.metadata.uid;
}

/** What the binder needs to write one task of the App (host ports of 0 are filled from the offer). */
export function taskTemplate(app: App, hash = configHash(app)): LaunchTemplate {
  const s = app.spec;
  return {
    metadata: {
      labels: { ...app.metadata.labels, [APP_LABEL]: app.metadata.name },
      annotations: { [CONFIG_HASH_ANNOTATION]: hash },
      ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'App', name: app.metadata.name, uid: app.metadata.uid ?? '', controller: true, version: app.metadata.generation ?? 1 }],
    },
    spec: {
      role: s.role,
      ...(s.container ? { runtime: 'docker' as const, container: s.container } : {}),
      ...(s.cmd !== undefined ? { cmd: s.cmd } : {}),
      ...(s.env ? { env: s.env } : {}),
      ports: s.ports.map((p) => ({
        hostPort: p.hostPort ?? 0,
        protocol: p.protocol ?? 'tcp',
        ...(p.name ? { name: p.name } : {}),
        ...(p.containerPort ? { containerPort: p.containerPort } : {}),
      })),
      healthChecks: s.healthChecks,
      readinessChecks: s.readinessChecks,
      taskKillGracePeriodSeconds: s.taskKillGracePeriodSeconds,
      ...(s.unreachableStrategy ? { unreachableStrategy: s.unreachableStrategy } : {}),
    },
  };
}

/** A new task name: `<app>-<8 random base36 chars>`, within the 63 characters of a DNS label. */
export function newTaskName(app: string, random: () => number = Math.random): string {
  let suffix = '';
  while (suffix.length < 8) suffix += Math.floor(random() * 36).toString(36);
  return `${app.slice(0, 54).replace(/-+$/, '')}-${suffix}`;
}
