/**
 * What an agent needs from a runtime (docker, process, hollow): start a task, stop it, and list
 * what it already runs (so a restarted agent adopts tasks instead of restarting them).
 */
import type { TaskSpec } from '../api/types.generated';

/** A task as the agent hands it to a runtime. */
export interface RuntimeTask {
  namespace: string;
  name: string;
  uid: string;
  spec: TaskSpec;
  /** The App or Job it belongs to (SHOAL_APP_ID). */
  owner?: string;
}

/** What a runtime knows of a task it started: the ids reported in the Task's status. */
export interface StartedTask {
  containerId?: string;
  pid?: number;
}

/** A task the runtime runs now. */
export interface RuntimeTaskRef {
  namespace: string;
  name: string;
  uid: string;
}

/** Why a task ended, when the runtime knows more than its exit code (Docker's OOMKilled). */
export interface ExitDetail {
  /** A constant for TaskStatus.reason: `OOMKilled`. */
  reason: string;
  /** One sentence for TaskStatus.message. */
  message: string;
}

/** Called once when a task ends by itself: its exit code, and why when the runtime knows. */
export type ExitHandler = (code: number, detail?: ExitDetail) => void;

/** Runs tasks on this machine. Implementations must not throw from onExit or from timers. */
export interface Runtime {
  /** `hollow`, `docker`, `process`. */
  readonly name: string;
  /**
   * Starts a task; resolves once it runs (or rejects when it cannot start). `onExit` is called
   * once if the task ends by itself, never after stop().
   */
  start(task: RuntimeTask, onExit: ExitHandler): Promise<StartedTask>;
  /** Stops a task: a graceful signal, then a kill after `graceSeconds`. Stopping an unknown task does nothing. */
  stop(namespace: string, name: string, graceSeconds: number): Promise<void>;
  /** Every task this runtime runs now, including ones started before the agent restarted. */
  list(): Promise<RuntimeTaskRef[]>;
  /** Tasks that have ended but whose trace (record, exited container) is still on the node. */
  listEnded?(): Promise<RuntimeTaskRef[]>;
  /**
   * Attaches exit detection to a task started by an earlier agent process: true when the runtime
   * knows the task (running, or ended while no agent watched: its exit comes through onExit).
   */
  adopt?(ref: RuntimeTaskRef, onExit: ExitHandler): Promise<boolean>;
  /** The task's output: the last `tail` lines, and with `follow` what comes after. */
  logs?(namespace: string, name: string, o: LogOptions): NodeJS.ReadableStream | Promise<NodeJS.ReadableStream>;
  /** Runs a command in the task's context (COMMAND health checks). */
  exec?(namespace: string, name: string, command: string, timeoutSeconds: number): Promise<ExecResult>;
  /** Removes what an ended task left (its container, its work dir); rejects while it runs. */
  remove?(namespace: string, name: string): Promise<void>;
  /** Forgets tasks and timers without touching what runs (the agent is stopping). */
  close?(): void;
}

export interface LogOptions {
  tail?: number;
  follow?: boolean;
  stream?: 'stdout' | 'stderr' | 'both';
}

export interface ExecResult {
  exitCode: number;
  output: string;
  timedOut?: boolean;
}

/** onExit code of a task that ended while no exit code could be recorded (killed with its watcher). */
export const UNKNOWN_EXIT_CODE = -1;

/** Runtime names the agent knows; only `hollow` is implemented so far. */
export const RUNTIME_NAMES = ['docker', 'process', 'hollow'] as const;
