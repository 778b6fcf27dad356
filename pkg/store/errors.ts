/**
 * Typed store errors. Foreign errors (etcd3/gRPC) are converted to these at one boundary
 * (the etcd implementation), so callers never inspect gRPC codes.
 */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The key does not exist (or no longer exists). */
export class NotFoundError extends StoreError {
  constructor(readonly key: string) {
    super(`key ${key} not found`);
  }
}

/** create() found the key already present. */
export class AlreadyExistsError extends StoreError {
  constructor(readonly key: string) {
    super(`key ${key} already exists`);
  }
}

/** A compare-and-swap failed: the key's mod revision is not the one expected. */
export class ConflictError extends StoreError {
  constructor(readonly key: string, readonly expected: number, readonly actual: number | undefined) {
    super(`key ${key} was modified: expected revision ${expected}, found ${actual ?? 'none'}`);
  }
}

/**
 * A watch asked for history that the store has compacted; relist and watch again.
 * `requested` is the first revision the watch still needed (afterRevision + 1 for a new watch);
 * `compactRevision` is the oldest revision the store still has.
 */
export class CompactedError extends StoreError {
  constructor(readonly requested: number, readonly compactRevision: number) {
    super(`revision ${requested} has been compacted (compact revision ${compactRevision})`);
  }
}

/** The store cannot be reached or timed out. */
export class UnavailableError extends StoreError {
  constructor(message: string, cause?: unknown) {
    super(message);
    this.cause = cause;
  }
}

/** A lease kept alive by Store.lease ended without its holder revoking or releasing it. */
export class LeaseLostError extends StoreError {
  constructor(readonly leaseId: string, reason: string) {
    super(`lease ${leaseId} lost: ${reason}`);
  }
}

/**
 * etcd refused a request for its size: over --max-request-bytes (INVALID_ARGUMENT "etcdserver:
 * request is too large") or over its gRPC receive limit (RESOURCE_EXHAUSTED "received message
 * larger than max"). Sending it again fails the same way.
 */
export class RequestTooLargeError extends StoreError {
  constructor(message: string, cause?: unknown) {
    super(message);
    this.cause = cause;
  }
}

/**
 * By message, not by gRPC code: RESOURCE_EXHAUSTED also means "database space exceeded" and
 * "too many requests", which are not the request's fault.
 */
const TOO_LARGE = /request is too large|message larger than max/i;

/**
 * The error as a RequestTooLargeError when it (or its cause) is etcd's or gRPC's "too large";
 * otherwise undefined. The etcd store wraps foreign errors in StoreError or, for gRPC's
 * RESOURCE_EXHAUSTED (which etcd3 counts as recoverable), UnavailableError: both are recognised.
 */
export function asRequestTooLarge(err: unknown): RequestTooLargeError | undefined {
  if (err instanceof RequestTooLargeError) return err;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (TOO_LARGE.test(e.message)) return new RequestTooLargeError(e.message, err);
  }
  return undefined;
}
