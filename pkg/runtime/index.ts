/** Runtimes by name. Only `hollow` exists so far; docker and process arrive with issue 4. */
import { HollowRuntime } from './hollow';
import type { Runtime } from './types';

export * from './types';
export { HollowRuntime } from './hollow';

/** A runtime name the agent accepts but cannot run yet, or does not know. */
export class UnsupportedRuntimeError extends Error {
  constructor(readonly runtime: string) {
    super(
      ['docker', 'process', 'auto'].includes(runtime)
        ? `runtime ${runtime} arrives with issue 4; use --runtime hollow`
        : `unknown runtime "${runtime}" (one of docker, process, hollow, auto)`,
    );
    this.name = 'UnsupportedRuntimeError';
  }
}

/** Makes the runtime called `name`. Throws UnsupportedRuntimeError for anything but hollow. */
export function createRuntime(name: string): Runtime {
  if (name === 'hollow') return new HollowRuntime();
  throw new UnsupportedRuntimeError(name);
}
