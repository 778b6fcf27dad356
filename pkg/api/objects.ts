/** The shapes admission and its semantic checks share. */
import type { App, Event, Framework, Job, JobRun, Node, Task } from './types.generated';

/** Any object Shoal stores. */
export type ShoalObject = App | Job | JobRun | Framework | Task | Node | Event;

/** One reason an object was refused, named by its field path (`spec.ports[0].hostPort`). */
export interface FieldCause {
  field: string;
  message: string;
}
