// Temporary directories for tests, under os.tmpdir(), and a fingerprint to prove a test left a
// directory untouched.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Make a fresh temp dir; remove it with `removeTmpDir` (or use `tmpDirs()` for many). */
export function makeTmpDir(prefix = 'conclave-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeTmpDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A set of temp dirs cleaned up together, e.g. `const tmp = tmpDirs(); after(() => tmp.cleanup());` */
export function tmpDirs(prefix = 'conclave-test-'): { make(): string; cleanup(): void } {
  const made: string[] = [];
  return {
    make() {
      const d = makeTmpDir(prefix);
      made.push(d);
      return d;
    },
    cleanup() {
      for (const d of made.splice(0)) removeTmpDir(d);
    },
  };
}

/** Run `fn` with a temp dir that is removed afterwards, whatever happens. */
export async function withTmpDir<T>(fn: (dir: string) => Promise<T> | T, prefix?: string): Promise<T> {
  const dir = makeTmpDir(prefix);
  try {
    return await fn(dir);
  } finally {
    removeTmpDir(dir);
  }
}

export interface FilePrint {
  size: number;
  mtimeMs: number;
  sha256: string;
}

/** The directory's own mtime plus, per entry (non-recursive), its size, mtime and content hash. */
export function fingerprintDir(dir: string): { dirMtimeMs: number; files: Record<string, FilePrint> } {
  const files: Record<string, FilePrint> = {};
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p);
    const sha256 = st.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex') : 'dir';
    files[name] = { size: st.size, mtimeMs: st.mtimeMs, sha256 };
  }
  return { dirMtimeMs: statSync(dir).mtimeMs, files };
}
