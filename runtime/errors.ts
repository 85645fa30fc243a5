// Typed errors a user can meet, with codes shared by the library API, the admin protocol and the CLI.
// Every error is a ConclaveError (stable `.code`, CLI `.exitCode`); its class says the exit class
// (RefusedError, UsageError, UnreachableError) and, for the codes callers handle, the case itself
// (NoLeaderError, JoinRefusedError, …). `conclaveError(code, …)` picks the class from the code, so
// an error decoded from an admin reply is rebuilt as the same class the node threw.

/** CLI exit codes (CONTRACT.md): 0 done · 1 refused · 2 usage/configuration · 3 unreachable. */
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

const EXIT_BY_CODE = {
  ALREADY_INITIALIZED: EXIT.refused,
  CONTACTED: EXIT.refused,
  BUSY: EXIT.refused,
  JOIN_REFUSED: EXIT.refused,
  JOIN_AUTH: EXIT.refused,
  PROTOCOL_VERSION: EXIT.refused,
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
  APPLY_FAILED: EXIT.refused,
  QUERY_FAILED: EXIT.refused,
  STALE_GENERATION: EXIT.refused,
  CONFIG: EXIT.usage,
  USAGE: EXIT.usage,
  BAD_REQUEST: EXIT.usage,
  COMMAND_TOO_LARGE: EXIT.usage,
  BAD_INIT_SOURCE: EXIT.usage,
  NOT_A_STORE: EXIT.usage,
  CORRUPT: EXIT.usage,
  NEWER_FORMAT: EXIT.usage,
  NAME_MISMATCH: EXIT.usage,
  STATE_MISMATCH: EXIT.usage,
  NO_RESPONDERS: EXIT.unreachable,
  CONNECT: EXIT.unreachable,
  TIMEOUT: EXIT.unreachable,
  UNREACHABLE: EXIT.unreachable,
  CLOSED: EXIT.unreachable,
  PERMISSION: EXIT.refused,
  /** an internal request that only a member may send, not signed by a member of this node's configuration (runtime/wire/adminAuth.ts) */
  UNAUTHENTICATED: EXIT.refused,
  /** a client request that changes the cluster, refused by a member configured with operator keys: not signed with one (runtime/wire/operatorAuth.ts) */
  UNAUTHORIZED: EXIT.refused,
  // refused too, named here so that they are codes of the union
  INTERNAL: EXIT.refused,
  FATAL: EXIT.refused,
  ERROR: EXIT.refused,
  BAD_REPLY: EXIT.refused,
  SNAPSHOT: EXIT.refused,
  MAX_PAYLOAD: EXIT.refused,
  BAD_SUBJECT: EXIT.refused,
} as const satisfies Record<string, number>;

/** Every error code a user can meet: the library API, the admin protocol and the CLI share them. */
export type ErrorCode = keyof typeof EXIT_BY_CODE;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(EXIT_BY_CODE, code);
}

/** a code read from the wire or from a machine's context: itself when known, INTERNAL otherwise */
export function asErrorCode(code: string | undefined, fallback: ErrorCode = 'INTERNAL'): ErrorCode {
  return isErrorCode(code) ? code : fallback;
}

export function exitCodeFor(code: string | undefined): number {
  return isErrorCode(code) ? EXIT_BY_CODE[code] : EXIT.refused;
}

/** An error with a stable code; its message says what happened, why, and what to do next. */
export class ConclaveError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
  get exitCode(): number {
    return exitCodeFor(this.code);
  }
}

// ---- by exit class ----

/** Exit 1: the cluster refused (join rule, already initialized, not a member, no leader, …). */
export class RefusedError extends ConclaveError {}
/** Exit 2: a usage or configuration error (bad option, bad request, a store that cannot be used). */
export class UsageError extends ConclaveError {}
/** Exit 3: nobody answered (no responders, timeout, cannot connect, connection closed). */
export class UnreachableError extends ConclaveError {}

// ---- the cases callers handle; each has one code ----

/** JOIN_REFUSED: the join rule refused (the two parties belong to different clusters). */
export class JoinRefusedError extends RefusedError {
  constructor(message: string, details?: unknown) {
    super('JOIN_REFUSED', message, details);
  }
}
/** ALREADY_INITIALIZED: init on a node that already belongs to a cluster. */
export class AlreadyInitializedError extends RefusedError {
  constructor(message: string, details?: unknown) {
    super('ALREADY_INITIALIZED', message, details);
  }
}
/** NOT_A_MEMBER: the node is not (yet, or any more) a member of a cluster. */
export class NotAMemberError extends RefusedError {
  constructor(message: string, details?: unknown) {
    super('NOT_A_MEMBER', message, details);
  }
}
/** NO_LEADER: no leader right now (election under way, or no quorum); retry shortly. */
export class NoLeaderError extends RefusedError {
  constructor(message: string, details?: unknown) {
    super('NO_LEADER', message, details);
  }
}
/** NOT_LEADER: this node is not the leader; `details.leader` names the leader when known. */
export class NotLeaderError extends RefusedError {
  constructor(message: string, details?: unknown) {
    super('NOT_LEADER', message, details);
  }
  /** the leader's name, when this node knows it */
  get leader(): string | null {
    const d = this.details as { leader?: unknown } | undefined;
    return typeof d?.leader === 'string' ? d.leader : null;
  }
}
/** OUTCOME_UNKNOWN: leadership was lost while a proposal was in flight; it may or may not be applied. */
export class OutcomeUnknownError extends RefusedError {
  constructor(message: string, details?: unknown) {
    super('OUTCOME_UNKNOWN', message, details);
  }
}
/** STOPPING: the node is shutting down (or halted); retry against another member. */
export class StoppingError extends RefusedError {
  constructor(message: string, details?: unknown) {
    super('STOPPING', message, details);
  }
}
/** REMOVED: the node was removed from its cluster, for good. */
export class RemovedError extends RefusedError {
  constructor(message: string, details?: unknown) {
    super('REMOVED', message, details);
  }
}
/** NAME_CONFLICT: the node name is already answered by another node. */
export class NameConflictError extends RefusedError {
  constructor(message: string, details?: unknown) {
    super('NAME_CONFLICT', message, details);
  }
}
/** APPLY_FAILED: the host state's apply threw for this command (on every node alike). */
export class ApplyFailedError extends RefusedError {
  constructor(message: string, details?: unknown) {
    super('APPLY_FAILED', message, details);
  }
}
/** CONFIG: an option or configuration value is wrong; the message names it (and `key`, the option, when known). */
export class ConfigError extends UsageError {
  constructor(message: string, details?: unknown) {
    super('CONFIG', message, details);
  }
  /** the configuration key at fault, when known */
  get key(): string | undefined {
    const d = this.details as { key?: unknown } | undefined;
    return typeof d?.key === 'string' ? d.key : undefined;
  }
}
/** BAD_REQUEST: a malformed request, command or query. */
export class BadRequestError extends UsageError {
  constructor(message: string, details?: unknown) {
    super('BAD_REQUEST', message, details);
  }
}
/** STATE_MISMATCH: the data dir holds another kind of replicated state than this controller uses. */
export class StateMismatchError extends UsageError {
  constructor(message: string, details?: unknown) {
    super('STATE_MISMATCH', message, details);
  }
}

const BY_CODE: Partial<Record<ErrorCode, new (message: string, details?: unknown) => ConclaveError>> = {
  JOIN_REFUSED: JoinRefusedError,
  ALREADY_INITIALIZED: AlreadyInitializedError,
  NOT_A_MEMBER: NotAMemberError,
  NO_LEADER: NoLeaderError,
  NOT_LEADER: NotLeaderError,
  OUTCOME_UNKNOWN: OutcomeUnknownError,
  STOPPING: StoppingError,
  REMOVED: RemovedError,
  NAME_CONFLICT: NameConflictError,
  APPLY_FAILED: ApplyFailedError,
  CONFIG: ConfigError,
  BAD_REQUEST: BadRequestError,
  STATE_MISMATCH: StateMismatchError,
};

/** The one factory: the error of the class `code` calls for (a specific class, else its exit class). */
export function conclaveError(code: ErrorCode, message: string, details?: unknown): ConclaveError {
  const Specific = BY_CODE[code];
  if (Specific) return new Specific(message, details);
  switch (exitCodeFor(code)) {
    case EXIT.usage:
      return new UsageError(code, message, details);
    case EXIT.unreachable:
      return new UnreachableError(code, message, details);
    default:
      return new RefusedError(code, message, details);
  }
}

/** The code of any error we know (ConclaveError, StoreError, bus errors, ConfigError), else undefined. */
export function codeOf(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}

/** an error as an admin reply carries it: its code (INTERNAL when it has none), message and a ConclaveError's details */
export function wireError(err: unknown): { code: string; message: string; details?: unknown } {
  const details = err instanceof ConclaveError ? err.details : undefined;
  return { code: codeOf(err) ?? 'INTERNAL', message: (err as Error | null)?.message ?? String(err), ...(details === undefined ? {} : { details }) };
}
