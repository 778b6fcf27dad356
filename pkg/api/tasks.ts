/**
 * Task states (Mesos' names) and what they mean, in one place for the agent, the master, the
 * controllers and the CLI.
 */

/** Task states after which a task holds no resources and never runs again. */
export const TERMINAL_STATES: ReadonlySet<string> = new Set(['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST']);

export function isTerminalState(state: string | undefined): boolean {
  return TERMINAL_STATES.has(state ?? '');
}

export function isTerminal(task: { status?: { state?: string } }): boolean {
  return isTerminalState(task.status?.state);
}

/**
 * What an agent writes under `taskStatusKey(prefix, node, namespace, name)` (its own key range):
 * which task it speaks of and everything it has said of it. The controller-manager's task status
 * relay merges it into the Task (`{...defaults, ...task.status, ...status}`).
 */
export interface TaskStatusReport {
  uid: string;
  /** Every field the agent reported for this task, the newest value of each. */
  status: Record<string, unknown>;
  /** Fields set only where the Task's status has none yet (e.g. stagedAt). */
  defaults?: Record<string, unknown>;
}

/** A report as stored, or undefined for a value that is not one. */
export function parseTaskStatusReport(value: string): TaskStatusReport | undefined {
  try {
    const r = JSON.parse(value) as Partial<TaskStatusReport>;
    const isMap = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (!isMap(r) || typeof r.uid !== 'string' || !isMap(r.status) || (r.defaults !== undefined && !isMap(r.defaults))) return undefined;
    return { uid: r.uid, status: r.status!, ...(r.defaults ? { defaults: r.defaults } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * Task annotation: the mod revision of the latest agent report the Task's status reflects or
 * supersedes. The relay applies a report only when it is newer; node lifecycle sets it when it
 * marks a task UNREACHABLE or LOST, so a report the agent wrote before it was lost is never
 * applied over that mark.
 */
export const STATUS_REVISION_ANNOTATION = 'shoal.dev/status-revision';

/** The revision a Task's status reflects (0: no report applied or superseded yet). */
export function statusRevisionOf(task: { metadata?: { annotations?: Record<string, string> } }): number {
  return Number(task.metadata?.annotations?.[STATUS_REVISION_ANNOTATION]) || 0;
}

/** The task with its status-revision annotation raised to `revision` (unchanged when already there). */
export function stampStatusRevision<T extends { metadata: { annotations?: Record<string, string> } }>(task: T, revision: number): T {
  if (revision <= statusRevisionOf(task)) return task;
  return { ...task, metadata: { ...task.metadata, annotations: { ...task.metadata.annotations, [STATUS_REVISION_ANNOTATION]: String(revision) } } };
}
