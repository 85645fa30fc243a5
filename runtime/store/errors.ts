// Typed store failures: the CLI and the controller map `code` to exit codes and messages, so every
// message already says what is wrong and what the operator can do about it.

export type StoreErrorCode = 'LOCKED' | 'NOT_A_STORE' | 'CORRUPT' | 'NEWER_FORMAT' | 'FULL' | 'IO' | 'NAME_MISMATCH';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;
  readonly dataDir: string | undefined;

  constructor(code: StoreErrorCode, message: string, opts: { dataDir?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.dataDir = opts.dataDir;
  }
}

export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}

/** EIO: LMDB reports a short write ("filesystem full?") as EIO, so the caller checks free space. */
export function isIoError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return code === 5 || code === 'EIO' || /Input\/output error|\bEIO\b/.test(err.message);
}

/** LMDB's map-full or the OS's ENOSPC, as lmdb-js reports them (message text and/or numeric code). */
export function isFullError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (code === -30792 || code === 28 || code === 'ENOSPC' || code === 'MDB_MAP_FULL') return true;
  return /MDB_MAP_FULL|No space left on device|ENOSPC/i.test(err.message);
}
