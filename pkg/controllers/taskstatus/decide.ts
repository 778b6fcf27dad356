/**
 * What the task status relay does with one agent report: pure, over the Task as last seen.
 *
 * An agent may write only under its own `<prefix>/taskstatus/<node>/` (its etcd role), so a
 * report's key names the node that wrote it; the relay trusts a report only for a Task bound to
 * that node, with the uid the report names. Rules, in order:
 * - the report is larger than MAX_REPORT_BYTES, or not one (unparseable): drop it;
 * - the Task is gone, or is another task of the same name (another uid): drop the report, the
 *   task's status has no reader any more (its assignment went with the Task, so the agent stops it);
 * - the Task is bound to another node: drop it, a forged report (warned, with an event);
 * - the Task already reflects this report or a newer word (its status-revision annotation, which
 *   node lifecycle also sets when it marks the task UNREACHABLE or LOST): nothing;
 * - the Task is terminal: the registry's word is final, nothing is written over it; when the
 *   agent still says the task runs, its assignment is deleted so the agent stops it (the relay's
 *   answer to an agent that comes back with a task the cluster gave up on);
 * - otherwise the Task's status becomes `{...defaults, ...status, ...report}`, validated against
 *   the Task status schema (an agent cannot write what the API would refuse), unless that
 *   changes nothing.
 */
import { isTerminal, isTerminalState, parseTaskStatusReport, stampStatusRevision, statusRevisionOf, type TaskStatusReport } from '../../api/tasks';
import type { Task, TaskStatus } from '../../api/types.generated';
import { formatCauses, taskStatusCauses } from '../../api/validation';
import { jsonEqual } from '../../util/json';

/**
 * Largest report relayed: a Task's status has no size limit of its own (its object size excludes
 * status), so an agent could otherwise grow any of its Tasks to etcd's request limit.
 */
export const MAX_REPORT_BYTES = 64 * 1024;

export type RelayStep =
  /** Write this Task (its status merged, the report's revision stamped). */
  | { kind: 'apply'; task: Task; from?: string; to?: string }
  /** The Task is terminal and the agent says it runs: delete its assignment (the Task is not written). */
  | { kind: 'stop' }
  /** Delete the report. */
  | { kind: 'drop'; why: 'malformed' | 'gone' | 'forged' | 'invalid'; message?: string }
  | { kind: 'none' };

export interface RelayInput {
  /** The Task the report names, as last seen; undefined: absent. */
  task: Task | undefined;
  /** The node whose range holds the report. */
  node: string;
  /** The report's stored value. */
  value: string;
  /** The report's mod revision. */
  revision: number;
}

export function relayStep({ task, node, value, revision }: RelayInput): RelayStep {
  if (value.length > MAX_REPORT_BYTES) return { kind: 'drop', why: 'invalid', message: `the report takes ${value.length} bytes: at most ${MAX_REPORT_BYTES}` };
  const report = parseTaskStatusReport(value);
  if (!report) return { kind: 'drop', why: 'malformed' };
  if (!task || task.metadata.uid !== report.uid) return { kind: 'drop', why: 'gone' };
  if (task.spec.nodeName !== node) return { kind: 'drop', why: 'forged', message: `agent ${node} reported the status of a task bound to ${task.spec.nodeName ? `node ${task.spec.nodeName}` : 'no node'}` };
  if (revision <= statusRevisionOf(task)) return { kind: 'none' };
  if (isTerminal(task)) {
    return isTerminalState(stateOf(report)) ? { kind: 'none' } : { kind: 'stop' };
  }
  const status = { ...report.defaults, ...task.status, ...report.status } as TaskStatus;
  if (jsonEqual(status, task.status ?? {})) return { kind: 'none' };
  const causes = taskStatusCauses(status);
  if (causes.length) return { kind: 'drop', why: 'invalid', message: formatCauses(causes) };
  return { kind: 'apply', task: stampStatusRevision({ ...task, status }, revision), from: task.status?.state, to: status.state };
}

function stateOf(report: TaskStatusReport): string | undefined {
  return typeof report.status.state === 'string' ? report.status.state : undefined;
}
