/**
 * Structured logging: pino JSON lines, one per decision. `shoal dev` asks for pretty output.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  /** debug | info | warn | error | silent; default from SHOAL_LOG_LEVEL, else info. */
  level?: string;
  /** Human-readable lines instead of JSON (pino-pretty, synchronous). */
  pretty?: boolean;
  /** Where to write; default stdout. */
  destination?: NodeJS.WritableStream;
}

/** A logger for one component; every line carries `component`. */
export function createLogger(component: string, opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.SHOAL_LOG_LEVEL ?? 'info';
  if (opts.pretty) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pretty = require('pino-pretty') as (o: object) => NodeJS.WritableStream;
    const stream = pretty({ colorize: false, sync: true, singleLine: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', destination: opts.destination ?? 1 });
    return pino({ level, base: { component } }, stream);
  }
  return pino({ level, base: { component } }, (opts.destination as pino.DestinationStream | undefined) ?? pino.destination({ sync: false }));
}

/** A logger that drops everything (tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
