// Typed errors a user can meet, with codes shared by the library API, the admin protocol and the CLI.

/** CLI exit codes (CONTRACT.md): 0 done · 1 refused · 2 usage/configuration · 3 unreachable. */
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

const EXIT_BY_CODE: Record<string, number> = {
  ALREADY_INITIALIZED: EXIT.refused,
  CONTACTED: EXIT.refused,
  BUSY: EXIT.refused,
  JOIN_REFUSED: EXIT.refused,
  NOT_A_MEMBER: EXIT.refused,
  NO_LEADER: EXIT.refused,
  NO_QUORUM: EXIT.refused,
  NOT_LEADER: EXIT.refused,
  NAME_CONFLICT: EXIT.refused,
  LOCKED: EXIT.refused,
  FULL: EXIT.refused,
  IO: EXIT.refused,
  REMOVED: EXIT.refused,
  NOT_FOUND: EXIT.refused,
  OUTCOME_UNKNOWN: EXIT.refused,
  NOT_A_VOTER: EXIT.refused,
  TRANSFER_INCOMPLETE: EXIT.refused,
  CONFIG_CHANGE_PENDING: EXIT.refused,
  CATCH_UP: EXIT.refused,
  STOPPING: EXIT.refused,
  STALE_GENERATION: EXIT.refused,
  CONFIG: EXIT.usage,
  USAGE: EXIT.usage,
  BAD_REQUEST: EXIT.usage,
  BAD_INIT_SOURCE: EXIT.usage,
  NOT_A_STORE: EXIT.usage,
  CORRUPT: EXIT.usage,
  NEWER_FORMAT: EXIT.usage,
  NAME_MISMATCH: EXIT.usage,
  NO_RESPONDERS: EXIT.unreachable,
  CONNECT: EXIT.unreachable,
  TIMEOUT: EXIT.unreachable,
  UNREACHABLE: EXIT.unreachable,
  CLOSED: EXIT.unreachable,
};

export function exitCodeFor(code: string | undefined): number {
  return (code && EXIT_BY_CODE[code]) || EXIT.refused;
}

/** An error with a stable code; its message says what happened, why, and what to do next. */
export class ConclaveError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ConclaveError';
  }
  get exitCode(): number {
    return exitCodeFor(this.code);
  }
}

/** The code of any error we know (ConclaveError, StoreError, bus errors, ConfigError), else undefined. */
export function codeOf(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}
