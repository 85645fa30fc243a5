// The data-dir lock. LMDB itself happily lets several processes share an environment, but two
// Conclave processes on one store would be two raft members with the same node id: we refuse that
// with our own lock file, created atomically with O_EXCL ('wx').
import { randomUUID } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log/logger.ts';
import { StoreError } from './errors.ts';

export const LOCK_FILE = 'conclave.lock';
const TAKEOVER_FILE = 'conclave.lock.takeover';
/** a takeover marker older than this was left by a process that died mid-takeover */
const TAKEOVER_STALE_MS = 10_000;

interface LockRecord {
  pid: number;
  host: string;
  token: string;
  startedAt: string;
}

export interface LockHandle {
  readonly path: string;
  release(): void;
}

function readLock(path: string): LockRecord | null {
  try {
    const rec = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockRecord>;
    if (typeof rec.pid === 'number' && Number.isInteger(rec.pid) && rec.pid > 0) {
      return {
        pid: rec.pid,
        host: String(rec.host ?? ''),
        token: String(rec.token ?? ''),
        startedAt: String(rec.startedAt ?? ''),
      };
    }
    return null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
    return null; // unreadable / half-written: the writer died between create and write
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockedError(dataDir: string, holder: LockRecord | null): StoreError {
  const who = holder
    ? `process ${holder.pid}${holder.host && holder.host !== hostname() ? ` on host ${holder.host}` : ''}`
    : 'another process';
  return new StoreError(
    'LOCKED',
    `data dir ${dataDir} is in use by ${who} (lock file ${join(dataDir, LOCK_FILE)}): stop that process or choose another --data-dir`,
    { dataDir },
  );
}

/** Is the lock held by a live process? (read-only: used before we decide to touch the directory) */
export function checkNotLocked(dataDir: string): void {
  const path = join(dataDir, LOCK_FILE);
  let holder: LockRecord | null;
  try {
    holder = readLock(path);
  } catch {
    return; // no lock file
  }
  if (holder && !isStale(holder)) throw lockedError(dataDir, holder);
}

function isStale(holder: LockRecord): boolean {
  // On another host (shared filesystem) we cannot probe the pid: assume it is alive.
  if (holder.host && holder.host !== hostname()) return false;
  return !pidAlive(holder.pid);
}

function createExclusive(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export function acquireLock(dataDir: string, logger?: Logger): LockHandle {
  const path = join(dataDir, LOCK_FILE);
  const takeoverPath = join(dataDir, TAKEOVER_FILE);
  const mine: LockRecord = { pid: process.pid, host: hostname(), token: randomUUID(), startedAt: new Date().toISOString() };
  const content = `${JSON.stringify(mine)}\n`;

  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(path, content)) return makeHandle(path, mine.token);

    let holder: LockRecord | null;
    try {
      holder = readLock(path);
    } catch {
      continue; // vanished between our create and read: try again
    }
    if (holder && !isStale(holder)) throw lockedError(dataDir, holder);
    if (!holder) {
      // Unparsable: either a writer between create and write (give it a moment) or a crash there.
      const age = ageMs(path);
      if (age !== null && age < 2_000) throw lockedError(dataDir, null);
    }

    // Stale. Only one process may take over (else two could each delete the other's new lock):
    // the takeover marker is itself created with O_EXCL, and the lock is re-checked under it.
    if (!createExclusive(takeoverPath, content)) {
      const age = ageMs(takeoverPath);
      if (age !== null && age > TAKEOVER_STALE_MS) unlinkQuiet(takeoverPath);
      else throw lockedError(dataDir, null);
      continue;
    }
    try {
      let again: LockRecord | null = null;
      try {
        again = readLock(path);
      } catch {
        /* gone: fine */
      }
      if (again && !isStale(again)) throw lockedError(dataDir, again);
      logger?.warn(
        { dataDir, stalePid: again?.pid ?? holder?.pid ?? null },
        'taking over a stale store lock (its process is gone, e.g. killed with SIGKILL)',
      );
      unlinkQuiet(path);
      if (createExclusive(path, content)) return makeHandle(path, mine.token);
    } finally {
      unlinkQuiet(takeoverPath);
    }
  }
  throw lockedError(dataDir, null);
}

function ageMs(path: string): number | null {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

function makeHandle(path: string, token: string): LockHandle {
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      // Only remove the file if it is still ours (never delete a lock someone else took over).
      try {
        const rec = readLock(path);
        if (rec && rec.token === token) unlinkSync(path);
      } catch {
        /* already gone */
      }
    },
  };
}
