// Leaving a refused data directory exactly as it was found: opening LMDB, even read-only, touches it.
import { existsSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';

/** times in seconds (fractional): utimes keeps microseconds this way, a Date only milliseconds */
interface Times {
  atime: number;
  mtime: number;
}
export interface DirSnapshot {
  dir: Times;
  entries: Map<string, Times>;
}

export function snapshotDir(dataDir: string): DirSnapshot {
  const entries = new Map<string, Times>();
  for (const n of readdirSync(dataDir)) entries.set(n, timesOf(join(dataDir, n)));
  return { dir: timesOf(dataDir), entries };
}

function timesOf(p: string): Times {
  const s = statSync(p);
  return { atime: s.atimeMs / 1000, mtime: s.mtimeMs / 1000 };
}

/**
 * Opening LMDB read-only still rewrites its lock file (lock.mdb, the reader table) and creates it
 * when absent. Undo that for a refused store: remove what we created, and put back the timestamps
 * of what changed (only those: utimes is precise to about a microsecond, not a nanosecond).
 */
export function restoreDir(dataDir: string, snap: DirSnapshot): void {
  const restore = (p: string, t: Times) => {
    const now = timesOf(p);
    if (now.mtime !== t.mtime || now.atime !== t.atime) utimesSync(p, t.atime, t.mtime);
  };
  try {
    for (const n of readdirSync(dataDir)) {
      if (!snap.entries.has(n)) rmSync(join(dataDir, n), { force: true });
    }
    for (const [n, t] of snap.entries) {
      const p = join(dataDir, n);
      if (existsSync(p)) restore(p, t);
    }
    restore(dataDir, snap.dir);
  } catch {
    /* best effort: the refusal itself is what matters */
  }
}
