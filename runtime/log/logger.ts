// Structured logging: pino, JSON by default, pretty when stderr is a terminal. Every line of a
// controller carries its name, node id, cluster id and phase (bound as child bindings).
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import type { LogLevel } from './levels.ts';

export type { Logger };
export { LOG_LEVELS, type LogLevel } from './levels.ts';

// pino-pretty (and what it pulls in) is loaded only for a terminal: a controller logging JSON to a
// pipe or file never holds it in memory
const require = createRequire(import.meta.url);

export interface LoggerOptions {
  level?: LogLevel;
  /** force pretty (true) or JSON (false); default: pretty when stderr is a TTY */
  pretty?: boolean;
  /** where to write; default stderr (fd 2) so that stdout stays for command output */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const usePretty = opts.pretty ?? Boolean(process.stderr.isTTY);
  if (usePretty) {
    // pino-pretty as a synchronous stream in this thread: no worker (workers lose tsx's loader).
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    const stream = pretty({
      colorize: true,
      destination: opts.destination ?? 2,
      sync: true,
      ignore: 'pid,hostname',
      translateTime: 'HH:MM:ss.l',
    });
    return pino({ level, base: undefined }, stream);
  }
  const destination = opts.destination ?? pino.destination({ fd: 2, sync: true });
  return pino({ level, base: undefined }, destination);
}

/** A logger that writes nothing: for tests and for library users who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
