/**
 * Errors of the Docker runtime. Every call into dockerode goes through dockerCall(), the one
 * place where dockerode's errors (HTTP status + daemon JSON, or a socket error) become typed
 * errors whose message says what Shoal was doing and what the daemon answered; the agent puts
 * that message into the task's status as it is.
 */

/** What went wrong, for callers that branch (`err.code`). */
export type DockerErrorCode = 'DaemonUnavailable' | 'NotFound' | 'Conflict' | 'ImageNotPresent' | 'Policy' | 'DockerError';

/** Base class of everything the Docker runtime throws. */
export class DockerRuntimeError extends Error {
  /** The daemon's HTTP status, when it answered. */
  readonly status?: number;

  constructor(readonly code: DockerErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options);
    this.name = 'DockerRuntimeError';
    if (options?.status !== undefined) this.status = options.status;
  }
}

/** No daemon answers on the socket (not running, wrong DOCKER_HOST, no permission). */
export class DockerUnavailableError extends DockerRuntimeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DaemonUnavailable', message, options);
    this.name = 'DockerUnavailableError';
  }
}

/** The image is not on this node and pulling is off (no registry is reachable by default). */
export class ImageNotPresentError extends DockerRuntimeError {
  constructor(readonly image: string, readonly node: string, detail = 'pulling is off: build it locally (hack/build-images.sh) or start the agent with --pull') {
    super('ImageNotPresent', `image ${image} not present on node ${node} (${detail})`);
    this.name = 'ImageNotPresentError';
  }
}

/** The task asks for something this node's security policy refuses (root). */
export class PolicyError extends DockerRuntimeError {
  constructor(message: string) {
    super('Policy', message);
    this.name = 'PolicyError';
  }
}

/** HTTP status of a dockerode error, if the daemon answered. */
export function statusCodeOf(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** Socket errors that mean "no daemon here", as opposed to a daemon that said no. */
const UNAVAILABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);

/** The daemon's own words: dockerode puts its JSON body in `json`, a summary in `reason`. */
function daemonMessage(err: unknown): string {
  const e = err as { json?: { message?: unknown } | null; reason?: unknown; message?: unknown };
  if (e?.json && typeof e.json.message === 'string') return e.json.message.trim();
  if (typeof e?.reason === 'string') return e.reason;
  return typeof e?.message === 'string' ? e.message : String(err);
}

/** Converts anything dockerode threw while doing `what` into a DockerRuntimeError. */
export function toDockerError(what: string, err: unknown): DockerRuntimeError {
  if (err instanceof DockerRuntimeError) return err;
  const sysCode = (err as { code?: unknown } | undefined)?.code;
  if (typeof sysCode === 'string' && UNAVAILABLE.has(sysCode)) {
    return new DockerUnavailableError(`docker daemon unavailable (${what}): ${daemonMessage(err)}; is dockerd running? (hack/start-dockerd.sh)`, { cause: err });
  }
  const status = statusCodeOf(err);
  const text = `docker ${what}: ${daemonMessage(err)}`;
  const code = status === 404 ? 'NotFound' : status === 409 ? 'Conflict' : 'DockerError';
  return new DockerRuntimeError(code, text, { cause: err, status });
}

/** Runs one dockerode call; its failure comes out as a DockerRuntimeError naming `what`. */
export async function dockerCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toDockerError(what, err);
  }
}

/** Whether `err` is a DockerRuntimeError with `code`. */
export function isDockerError(err: unknown, code: DockerErrorCode): err is DockerRuntimeError {
  return err instanceof DockerRuntimeError && err.code === code;
}
