// The store's files, checked before LMDB touches them, and the verdict of a walk of every record
// in a child process (verify-child.mjs). What each check prevents:
//   - a FIFO, directory or device in place of data.mdb or lock.mdb: LMDB blocks or crashes (SIGSEGV);
//   - a data dir below a regular file: ENOTDIR, a usage error, not an I/O failure;
//   - the marker (conclave.store, written with the store): a dir that held a store and lost or
//     emptied data.mdb is refused, never re-created as a blank node with a new node id;
//   - a damaged page or record: LMDB reads it in the child, where a crash is a verdict.
import { spawn } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, type Stats, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreError } from './errors.ts';
import { LOCK_FILE } from './lock.ts';
import { walkStore } from './walk.mjs';

export const DATA_FILE = 'data.mdb';
export const LMDB_LOCK_FILE = 'lock.mdb';
export const MARKER_FILE = 'conclave.store';
/** present in a directory without making it "not empty" (lost+found: the dir is a mount point) */
const IGNORABLE = new Set([LOCK_FILE, LMDB_LOCK_FILE, 'lost+found']);
/** files of a store that must be regular files when present */
const REGULAR = [DATA_FILE, LMDB_LOCK_FILE, LOCK_FILE, MARKER_FILE];
const CHILD = fileURLToPath(new URL('./verify-child.mjs', import.meta.url));
const CHILD_TIMEOUT_MS = 300_000;

export const WHAT_TO_DO =
  'Nothing was changed; restore the data dir from a backup, or move it aside and add this node to its cluster ' +
  "again as a new node (wipe and re-add), or, if no healthy member is left, run `conclave recover --data-dir` on another member's store";

export function corrupt(dataDir: string, reason: string, cause?: unknown): StoreError {
  return new StoreError('CORRUPT', `the store in ${dataDir} is corrupt: ${reason}. ${WHAT_TO_DO}`, { dataDir, cause });
}

/** written next to data.mdb when the store is created: this dir holds (held) that node's store */
export interface StoreMarker {
  format: 'conclave-store';
  nodeId: string;
  name: string;
  createdAt: string;
}

export type DirKind = 'missing' | 'blank' | 'store';

/**
 * What the data dir holds, by stat and readdir only. Refuses (NOT_A_STORE, exit 2) a path below a
 * regular file, a non-directory, a non-empty dir that is not a store; (CORRUPT) a store file that
 * is not a regular file, and a dir whose marker says it held a store that is gone.
 */
export function classifyDir(dataDir: string, create: boolean): { kind: DirKind; marker: StoreMarker | null } {
  let names: string[];
  try {
    if (!statSync(dataDir).isDirectory()) {
      throw new StoreError('NOT_A_STORE', `data dir ${dataDir} is not a directory: choose another --data-dir`, { dataDir });
    }
    names = readdirSync(dataDir);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw belowAFile(dataDir);
    if (code === 'ENOENT') {
      if (create) return { kind: 'missing', marker: null };
      throw new StoreError('NOT_A_STORE', `there is no store in ${dataDir} (the directory does not exist)`, { dataDir });
    }
    throw new StoreError('IO', `cannot read data dir ${dataDir}: ${(err as Error).message}`, { dataDir, cause: err });
  }
  for (const n of REGULAR) {
    if (!names.includes(n)) continue;
    const st = statOrNull(join(dataDir, n));
    if (!st?.isFile()) throw corrupt(dataDir, `${join(dataDir, n)} is ${st ? `a ${kindOf(st)}` : 'a dangling link'}, not a regular file`);
  }
  const marker = names.includes(MARKER_FILE) ? readMarker(dataDir) : null;
  if (names.includes(DATA_FILE)) return { kind: 'store', marker };
  if (marker) throw corrupt(dataDir, `${join(dataDir, DATA_FILE)} is missing, but this directory held the store of node ${marker.name} (node id ${marker.nodeId})`);
  const others = names.filter((n) => !IGNORABLE.has(n));
  if (others.length > 0) {
    const shown = others.slice(0, 3).join(', ') + (others.length > 3 ? `, … (${others.length} entries)` : '');
    throw new StoreError(
      'NOT_A_STORE',
      `data dir ${dataDir} is not empty and is not a Conclave store (it contains ${shown}): ` +
        'choose an empty or new --data-dir, or the directory of an existing Conclave store',
      { dataDir },
    );
  }
  if (!create) throw new StoreError('NOT_A_STORE', `there is no store in ${dataDir} (the directory is empty)`, { dataDir });
  return { kind: 'blank', marker: null };
}

/** NOT_A_STORE for a data dir that cannot exist because an ancestor is a regular file */
export function belowAFile(dataDir: string): StoreError {
  let p = dirname(dataDir);
  while (dirname(p) !== p && !statOrNull(p)) p = dirname(p);
  const st = statOrNull(p);
  const culprit = st && !st.isDirectory() ? `${p} is not a directory` : `a parent of it is not a directory`;
  return new StoreError('NOT_A_STORE', `data dir ${dataDir} cannot be used: ${culprit}; choose another --data-dir`, { dataDir });
}

function statOrNull(p: string): Stats | null {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'device';
  return 'special file';
}

function readMarker(dataDir: string): StoreMarker {
  const path = join(dataDir, MARKER_FILE);
  let m: Partial<StoreMarker>;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as Partial<StoreMarker>;
  } catch (err) {
    throw corrupt(dataDir, `its marker file ${path} is unreadable (${(err as Error).message})`, err);
  }
  if (m?.format !== 'conclave-store' || typeof m.nodeId !== 'string' || typeof m.name !== 'string') {
    throw corrupt(dataDir, `its marker file ${path} is not a Conclave store marker`);
  }
  return { format: m.format, nodeId: m.nodeId, name: m.name, createdAt: String(m.createdAt ?? '') };
}

/** durably: a temporary file, fsync, rename, fsync of the dir */
export function writeMarker(dataDir: string, marker: StoreMarker): void {
  writeJsonDurably(dataDir, MARKER_FILE, marker);
}

/** `value` as the JSON file `name` in `dataDir`, durably: a temporary file, fsync, rename, fsync of the dir */
export function writeJsonDurably(dataDir: string, name: string, value: unknown): void {
  const path = join(dataDir, name);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(value)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dataDir, 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

export interface DamagedRecord {
  db: string;
  /** null: the database as a whole (its record count does not match what could be read) */
  key: string | number | null;
  reason: string;
}

export function describeDamage(d: DamagedRecord): string {
  return d.key === null ? `${d.db}: ${d.reason}` : `${d.db} ${JSON.stringify(d.key)} (${d.reason})`;
}

/** what the child's walk found (verify-child.mjs) */
export interface StoreWalk {
  /** records carry checksums (format ≥ 2) */
  framed: boolean;
  /** the identity record as decoded, or null (missing or unreadable) */
  identity: unknown;
  /** whether the identity record is there at all (the identity database also holds the member key) */
  hasIdentity?: boolean;
  dbs: Record<string, { records: number; bytes: number }>;
  damaged: DamagedRecord[];
  damagedCount: number;
  /** how long the walk took, in ms */
  ms: number;
  /** where it ran: a child process, or this one (the store unchanged since its clean close: cleanClose.ts) */
  where: 'child' | 'in-process';
}

/**
 * Read every record of the store in `dataDir` in a child process. LMDB failing or crashing there
 * is a CORRUPT verdict about data.mdb; damaged records are listed, not thrown.
 */
export function walkInChild(dataDir: string): Promise<StoreWalk> {
  const file = join(dataDir, DATA_FILE);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dataDir], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new StoreError('IO', `cannot check ${file}: ${err.message}`, { dataDir, cause: err }));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      const line = stdout.trim().split('\n').pop() ?? '';
      type ChildOutput = (Omit<StoreWalk, 'ms' | 'where'> & { error?: undefined }) | { error: string };
      let out: ChildOutput | null;
      try {
        out = JSON.parse(line) as ChildOutput;
      } catch {
        out = null;
      }
      if (signal === 'SIGKILL' && ms >= CHILD_TIMEOUT_MS) {
        reject(new StoreError('IO', `checking ${file} did not finish within ${CHILD_TIMEOUT_MS / 1000} s`, { dataDir }));
      } else if (signal || !out) {
        const why = signal ? `LMDB crashed reading it (${signal})` : `the check exited with code ${code} (${firstLine(stderr)})`;
        reject(corrupt(dataDir, `${file} is damaged: ${why}`));
      } else if (out.error !== undefined) {
        reject(corrupt(dataDir, `${file} is damaged: LMDB cannot read it (${out.error})`));
      } else {
        resolve({ ...out, ms, where: 'child' });
      }
    });
  });
}

/**
 * The same walk in this process, for a store unchanged since it was closed cleanly (cleanClose.ts):
 * LMDB reads pages it wrote itself. What it refuses to read is a CORRUPT verdict, as in the child.
 */
export async function walkInProcess(dataDir: string): Promise<StoreWalk> {
  const started = performance.now();
  const lmdb = await import('lmdb');
  try {
    return { ...walkStore(lmdb, dataDir), ms: performance.now() - started, where: 'in-process' };
  } catch (err) {
    throw corrupt(dataDir, `${join(dataDir, DATA_FILE)} is damaged: LMDB cannot read it (${(err as Error).message})`, err);
  }
}

/**
 * The check reads one file and talks to no server, so it starts without NODE_EXTRA_CA_CERTS: node 20
 * reads that bundle at every start (≈35 ms of the child's ≈100 ms of CPU here, with Debian's), and
 * every `conclave run` and `store verify` starts this child. The rest of the environment is passed on.
 */
function childEnv(): NodeJS.ProcessEnv {
  const { NODE_EXTRA_CA_CERTS: _notUsed, ...env } = process.env;
  return env;
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.slice(0, 200) || 'no output';
}
