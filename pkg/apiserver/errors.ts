/**
 * API errors and their wire form, the Kubernetes `Status` object. Every error a client sees
 * goes through here; store errors are converted at one place (fromStoreError).
 */
import { API_VERSION } from '../api/kinds';
import type { FieldCause } from '../api/validation';
import { formatCauses } from '../api/validation';
import { AlreadyExistsError, asRequestTooLarge, CompactedError, ConflictError, NotFoundError, UnavailableError } from '../store/errors';

export type StatusReason =
  | 'BadRequest' | 'Unauthorized' | 'Forbidden' | 'NotFound' | 'MethodNotAllowed' | 'AlreadyExists'
  | 'Conflict' | 'Expired' | 'RequestEntityTooLarge' | 'UnsupportedMediaType' | 'Invalid'
  | 'TooManyRequests' | 'InternalError' | 'Unsupported' | 'ServiceUnavailable';

const CODES: Record<StatusReason, number> = {
  BadRequest: 400, Unauthorized: 401, Forbidden: 403, NotFound: 404, MethodNotAllowed: 405,
  AlreadyExists: 409, Conflict: 409, Expired: 410, RequestEntityTooLarge: 413, UnsupportedMediaType: 415,
  Invalid: 422, TooManyRequests: 429, InternalError: 500, Unsupported: 501, ServiceUnavailable: 503,
};

export interface StatusDetails {
  kind?: string;
  name?: string;
  causes?: FieldCause[];
  retryAfterSeconds?: number;
}

/** The JSON body of every error response. */
export interface Status {
  kind: 'Status';
  apiVersion: string;
  status: 'Failure';
  code: number;
  reason: StatusReason;
  message: string;
  details?: StatusDetails;
}

/** An error that becomes a Status response. */
export class ApiError extends Error {
  readonly code: number;
  constructor(readonly reason: StatusReason, message: string, readonly details?: StatusDetails) {
    super(message);
    this.name = 'ApiError';
    this.code = CODES[reason];
  }

  toStatus(): Status {
    return { kind: 'Status', apiVersion: API_VERSION, status: 'Failure', code: this.code, reason: this.reason, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** 422 naming each bad field; 400 when the problem is the body's structure (depth, forbidden keys). */
export function invalid(kind: string | undefined, name: string | undefined, causes: FieldCause[], structural = false): ApiError {
  const what = kind ? `${kind}${name ? ` "${name}"` : ''}` : 'object';
  return new ApiError(structural ? 'BadRequest' : 'Invalid', `${what} is invalid: ${formatCauses(causes)}`, { kind, name, causes });
}

/** 413 naming the object (and the limit, in the causes): it is over its encoded size limit. */
export function tooLarge(kind: string | undefined, name: string | undefined, causes: FieldCause[]): ApiError {
  const what = kind ? `${kind}${name ? ` "${name}"` : ''}` : 'object';
  return new ApiError('RequestEntityTooLarge', `${what} is too large: ${formatCauses(causes)}`, { kind, name, causes });
}

/**
 * Converts a typed store error into an ApiError; anything else is rethrown as is. etcd refusing
 * a request for its size is checked first (the store reports gRPC's RESOURCE_EXHAUSTED as
 * unavailable): admission keeps objects well under etcd's limit, so this is the backstop.
 */
export function fromStoreError(err: unknown, kind: string, name: string): never {
  const big = asRequestTooLarge(err);
  if (big) {
    throw new ApiError('RequestEntityTooLarge', `${kind.toLowerCase()}${name ? ` "${name}"` : ''} is too large for etcd (${big.message}); make it smaller`, { kind, name });
  }
  if (err instanceof NotFoundError) throw new ApiError('NotFound', `${kind.toLowerCase()} "${name}" not found`, { kind, name });
  if (err instanceof AlreadyExistsError) throw new ApiError('AlreadyExists', `${kind.toLowerCase()} "${name}" already exists`, { kind, name });
  if (err instanceof ConflictError) {
    throw new ApiError('Conflict', `${kind.toLowerCase()} "${name}" was modified (now at resourceVersion ${err.actual ?? 'none'}); read it again and retry`, { kind, name });
  }
  if (err instanceof CompactedError) throw new ApiError('Expired', `resourceVersion ${err.requested} is too old (compacted); list again`);
  if (err instanceof UnavailableError) throw unavailable(err);
  throw err;
}

/** Seconds a client is told to wait (Retry-After) when etcd is unavailable. */
export const ETCD_UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

/**
 * 503 for etcd being unreachable or without a quorum (its members cannot agree, so it refuses or
 * times out every request), naming the cause. A write answered so may still be applied when etcd
 * recovers, as any timed-out write: read before retrying it.
 */
export function unavailable(err: UnavailableError): ApiError {
  return new ApiError('ServiceUnavailable', `etcd is unavailable (no quorum?): ${err.message}; retry in a few seconds`, { retryAfterSeconds: ETCD_UNAVAILABLE_RETRY_AFTER_SECONDS });
}
