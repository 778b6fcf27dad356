/** Runtimes by name. */
import type { Logger } from 'pino';
import type { NodeContext } from './env';
import { HollowRuntime } from './hollow';
import { ProcessRuntime } from './process';
import type { Runtime } from './types';

export * from './types';
export { HollowRuntime } from './hollow';

/** A runtime name the agent accepts but cannot run yet, or does not know. */
export class UnsupportedRuntimeError extends Error {
  constructor(readonly runtime: string, why?: string) {
    super(
      why ?? (runtime === 'docker'
        ? 'runtime docker is not available yet; use --runtime process or hollow'
        : `unknown runtime "${runtime}" (one of docker, process, hollow, auto)`),
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
}

/** Makes the runtime called `name`. Throws UnsupportedRuntimeError for names it cannot run. */
export function createRuntime(name: string, ctx?: RuntimeContext): Runtime {
  if (name === 'hollow') return new HollowRuntime();
  // auto: docker when its daemon answers (once the docker runtime is wired), else process.
  if ((name === 'process' || name === 'auto') && ctx) return new ProcessRuntime({ dataDir: ctx.dataDir, node: ctx.node, logger: ctx.logger });
  if (name === 'process' || name === 'auto') throw new UnsupportedRuntimeError(name, `runtime ${name} needs the agent's data dir: pass a RuntimeContext`);
  throw new UnsupportedRuntimeError(name);
}
