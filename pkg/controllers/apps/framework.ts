/**
 * The App framework: the second level of the offer loop for Apps, one per Mesos role. It is the
 * generic {@link PendingWorkFramework}: the App controller sets each App's work (desired
 * instances minus non-terminal and in-flight tasks) and the framework places it on offers with
 * Marathon's constraints, spread across agents, and explains what it cannot place.
 */
import type { Logger } from 'pino';
import { PendingWorkFramework, type PendingWorkOwner } from '../../master/pending-framework';

export { MAX_PLACEMENTS_PER_ROUND, windowSize } from '../../master/pending-framework';

export function frameworkIdFor(role: string): string {
  return role === '*' ? 'apps' : `apps-${role}`;
}

export function appFramework(role: string, owner: PendingWorkOwner, logger: Logger): PendingWorkFramework {
  return new PendingWorkFramework({ id: frameworkIdFor(role), role, owner, logger });
}
