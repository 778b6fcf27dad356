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
