/**
 * The hollow runtime (Kubernetes' kubemark): runs nothing. A task "runs" from the moment it is
 * started until it is stopped, so thousands of hollow agents exercise the control plane
 * without machines. One small Map per agent is its whole cost.
 */
import { nameKey, splitNameKey } from '../api/keys';
import type { Runtime, RuntimeTask, RuntimeTaskRef, StartedTask } from './types';

export class HollowRuntime implements Runtime {
  readonly name = 'hollow';
  /** `<namespace>/<name>` → uid. */
  private readonly tasks = new Map<string, string>();

  /** Resolves at once: nothing to run. onExit is never called (hollow tasks never end by themselves). */
  async start(task: RuntimeTask, _onExit: (code: number) => void): Promise<StartedTask> {
    this.tasks.set(nameKey(task.namespace, task.name), task.uid);
    return {};
  }

  /** @inheritdoc */
  async stop(namespace: string, name: string, _graceSeconds: number): Promise<void> {
    this.tasks.delete(nameKey(namespace, name));
  }

  /** @inheritdoc Survives an Agent being stopped or crashed, like containers survive their agent. */
  async list(): Promise<RuntimeTaskRef[]> {
    return [...this.tasks].map(([key, uid]) => ({ ...splitNameKey(key), uid }));
  }
}
