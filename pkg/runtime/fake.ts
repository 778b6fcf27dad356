/**
 * A scriptable runtime for unit tests: records every call, can refuse to start a task, and lets
 * a test end a task as if its process exited.
 */
import type { Runtime, RuntimeTask, RuntimeTaskRef, StartedTask } from './types';

export class FakeRuntime implements Runtime {
  readonly name: string;
  /** Every call, in order: `start ns/name`, `stop ns/name`. */
  readonly calls: string[] = [];
  /** Task keys (`ns/name`) whose start rejects with this message. */
  readonly failStart = new Map<string, string>();
  /** Error code to attach to a start failure (as DockerRuntimeError has: ImageNotPresent, Policy). */
  readonly failCode = new Map<string, string>();
  private readonly running = new Map<string, { uid: string; onExit: (code: number) => void }>();
  private nextPid = 1000;

  constructor(name = 'fake') {
    this.name = name;
  }

  /** @inheritdoc Reports a fake pid. */
  async start(task: RuntimeTask, onExit: (code: number) => void): Promise<StartedTask> {
    const key = `${task.namespace}/${task.name}`;
    this.calls.push(`start ${key}`);
    const failure = this.failStart.get(key);
    if (failure !== undefined) throw Object.assign(new Error(failure), this.failCode.has(key) ? { code: this.failCode.get(key) } : {});
    this.running.set(key, { uid: task.uid, onExit });
    return { pid: this.nextPid++ };
  }

  /** @inheritdoc */
  async stop(namespace: string, name: string, _graceSeconds: number): Promise<void> {
    this.calls.push(`stop ${namespace}/${name}`);
    this.running.delete(`${namespace}/${name}`);
  }

  /** @inheritdoc Records `remove ns/name`. */
  async remove(namespace: string, name: string): Promise<void> {
    if (this.running.has(`${namespace}/${name}`)) throw new Error(`fake runtime: ${namespace}/${name} still runs`);
    this.calls.push(`remove ${namespace}/${name}`);
  }

  /** @inheritdoc */
  async list(): Promise<RuntimeTaskRef[]> {
    return [...this.running].map(([key, { uid }]) => {
      const [namespace, name] = key.split('/');
      return { namespace, name, uid };
    });
  }

  /** Ends a running task as if its process exited with `code`. */
  exit(namespace: string, name: string, code: number): void {
    const key = `${namespace}/${name}`;
    const task = this.running.get(key);
    if (!task) throw new Error(`fake runtime: ${key} is not running`);
    this.running.delete(key);
    task.onExit(code);
  }

  /** Pretends a task already runs (started before the agent restarted). */
  seedRunning(ref: RuntimeTaskRef): void {
    this.running.set(`${ref.namespace}/${ref.name}`, { uid: ref.uid, onExit: () => undefined });
  }

  /** Attaches exit detection to a task it runs (an agent restart). */
  async adopt(ref: RuntimeTaskRef, onExit: (code: number) => void): Promise<boolean> {
    const task = this.running.get(`${ref.namespace}/${ref.name}`);
    if (!task || task.uid !== ref.uid) return false;
    task.onExit = onExit;
    return true;
  }

  /** Keys of the tasks running now. */
  runningKeys(): string[] {
    return [...this.running.keys()].sort();
  }
}
