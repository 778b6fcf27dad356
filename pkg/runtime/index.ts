/** Runtimes by name. */
import type { Logger } from 'pino';
import type { NodeContext } from './env';
import { HollowRuntime } from './hollow';
import { DockerRuntime } from './docker';
import { ProcessRuntime } from './process';
import type { Runtime } from './types';

export * from './types';
export { HollowRuntime } from './hollow';

/** A runtime name the agent accepts but cannot run yet, or does not know. */
export class UnsupportedRuntimeError extends Error {
  constructor(readonly runtime: string, why?: string) {
    super(
      why ?? `unknown runtime "${runtime}" (one of docker, process, hollow, auto)`,
    );
    this.name = 'UnsupportedRuntimeError';
  }
}

/** What runtimes that touch the machine need. */
export interface RuntimeContext {
  /** Agent data dir: the process runtime keeps a work directory per task under it. */
  dataDir: string;
  node: NodeContext;
  logger: Logger;
  /** Docker: pull images that are not present (needs a registry). @default false */
  pull?: boolean;
  /** Docker: let containers run as root; process: allow a `taskUser` that is root. @default false */
  allowRoot?: boolean;
  /** Process: every task's user (name, uid or uid:gid). @default a uid of its own per task (agent as root) */
  taskUser?: string;
  /** Process: the range per-task uids come from. */
  taskUids?: [number, number];
  /** Process: where task cgroups go; false: none. @default '/shoal' */
  cgroupParent?: string | false;
}

/** `auto`: docker when its daemon answers, else process. Other names as createRuntime. */
export async function resolveRuntime(name: string, ctx: RuntimeContext): Promise<Runtime> {
  if (name !== 'auto') return createRuntime(name, ctx);
  const docker = new DockerRuntime({ node: ctx.node, logger: ctx.logger, pull: ctx.pull, allowRoot: ctx.allowRoot });
  try {
    await docker.ping();
    return docker;
  } catch (err) {
    ctx.logger.info({ why: (err as Error).message }, 'no Docker daemon answers: using the process runtime');
    return createRuntime('process', ctx);
  }
}

/** Makes the runtime called `name`. Throws UnsupportedRuntimeError for names it cannot run. */
export function createRuntime(name: string, ctx?: RuntimeContext): Runtime {
  if (name === 'hollow') return new HollowRuntime();
  if (name === 'process' && ctx) {
    return new ProcessRuntime({ dataDir: ctx.dataDir, node: ctx.node, logger: ctx.logger, allowRoot: ctx.allowRoot, taskUser: ctx.taskUser, taskUids: ctx.taskUids, cgroupParent: ctx.cgroupParent });
  }
  if (name === 'docker' && ctx) return new DockerRuntime({ node: ctx.node, logger: ctx.logger, pull: ctx.pull, allowRoot: ctx.allowRoot });
  if (name === 'process' || name === 'docker') throw new UnsupportedRuntimeError(name, `runtime ${name} needs the agent's context: pass a RuntimeContext`);
  throw new UnsupportedRuntimeError(name);
}
