/**
 * Errors the CLI shows to users. Every failure ends as `error: <one line>` on stderr; these
 * classes carry what that line says, so no command ever has to print a stack trace.
 */
import type { FieldCause } from '../api/validation';

/** A failure to report as `error: <line>`; several lines when the user must see each (apply). */
export class CliError extends Error {
  /** The lines to print, each prefixed with `error: ` by the top level. */
  readonly lines: string[];

  constructor(lines: string | string[]) {
    const all = (Array.isArray(lines) ? lines : [lines]).map(oneLine);
    super(all.join('; '));
    this.name = 'CliError';
    this.lines = all;
  }
}

/** An error answered by the apiserver: the fields of its `Status` body. */
export class ApiError extends CliError {
  constructor(
    /** HTTP status code (404, 409, 422, ...). */
    readonly code: number,
    /** Status reason (`NotFound`, `Conflict`, `Invalid`, ...). */
    readonly reason: string,
    message: string,
    /** Offending fields, when the server named them. */
    readonly causes: FieldCause[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The command already printed its errors (e.g. `delete -f` with some objects not found): exit 1 quietly. */
export class ReportedFailure extends Error {
  constructor() {
    super('failed (errors were reported above)');
    this.name = 'ReportedFailure';
  }
}

/** Flattens a message to one line, because a multi-line error would look like several errors. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}

/** The message of anything thrown, as one line. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return oneLine(err.message || err.name);
  return oneLine(String(err));
}

/** True for a 404 from the server. */
export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.code === 404;
}
