// Read-only checks of an existing store before LMDB maps it for writing: its files, every record
// (walked in a child process), the identity and its format version. A store refused here is left
// exactly as found (dirSnapshot.ts).
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isStoreError, StoreError } from './errors.ts';
import type { Logger } from '../log/logger.ts';
import { dropCleanClose, putBackCleanClose, takeCleanClose } from './cleanClose.ts';
import { classifyDir, corrupt, DATA_FILE, describeDamage, type DirKind, type StoreMarker, type StoreWalk, walkInChild, walkInProcess } from './files.ts';
import { restoreDir, snapshotDir } from './dirSnapshot.ts';
import { peekFormat, STORE_FORMAT, STORE_FORMAT_VERSION, validateIdentity } from './identity.ts';
import { checkLmdbDataFile } from './lmdb-file.ts';
import { checkNotLocked } from './lock.ts';

export function neverWritten(dataDir: string): StoreError {
  return new StoreError('NOT_A_STORE', `the store in ${dataDir} was never written (its creation was interrupted): there is nothing in it`, { dataDir });
}

/**
 * The node name an existing store was created for, read without changing anything (for offline
 * tools such as `conclave recover`). Refuses NOT_A_STORE / LOCKED / CORRUPT / NEWER_FORMAT.
 */
export async function readStoreName(dataDir: string): Promise<string> {
  const exam = await examineOffline(dataDir);
  refuseDamage(exam.dataDir, exam.walk);
  return exam.name;
}

/**
 * examineStore for offline tools: a store that exists and was written, not in use by a live
 * process (LOCKED), left as found. Damaged records are listed, not thrown.
 */
export async function examineOffline(dataDirIn: string): Promise<Examination & { dataDir: string; name: string; walk: StoreWalk }> {
  const dataDir = resolve(dataDirIn);
  const { marker } = classifyDir(dataDir, false);
  checkNotLocked(dataDir);
  const before = snapshotDir(dataDir);
  try {
    const exam = await examineStore(dataDir, null, STORE_FORMAT_VERSION, marker);
    if (exam.name === null || !exam.walk) throw neverWritten(dataDir);
    return { ...exam, dataDir, name: exam.name, walk: exam.walk };
  } finally {
    restoreDir(dataDir, before);
  }
}

/** What the read-only checks before an open found: the dir (resolved), what it holds, for which node and format. */
export interface CheckedDir {
  dataDir: string;
  kind: DirKind;
  marker: StoreMarker | null;
  name: string | null;
  target: number;
  create: boolean;
  /** where the records were walked (null: no store there yet, or one never written) */
  walked: StoreWalk['where'] | null;
}

/**
 * The read-only part of opening a store (openStore), which may start before the open: the dir
 * classified and, when it holds a store, not in use by a live process, examined (every record walked
 * in a child process) and refused when damaged — left exactly as found when refused. `conclave run`
 * starts it as soon as its configuration is read, so the child's walk runs while the modules that
 * serve the store load (runtime/cli/run.ts).
 */
export async function checkBeforeOpen(opts: { dataDir: string; name: string | null; create: boolean; target?: number; logger?: Logger }): Promise<CheckedDir> {
  const dataDir = resolve(opts.dataDir);
  const target = opts.target ?? STORE_FORMAT_VERSION;
  const { kind, marker } = classifyDir(dataDir, opts.create);
  let walked: StoreWalk['where'] | null = null;
  if (kind === 'store') {
    checkNotLocked(dataDir);
    const before = snapshotDir(dataDir);
    // unchanged since it was closed cleanly: walked in this process, without a child's start (cleanClose.ts)
    let cleanClose = false;
    try {
      cleanClose = takeCleanClose(dataDir);
      const exam = await examineStore(dataDir, opts.name, target, marker, cleanClose ? 'in-process' : 'child');
      refuseDamage(dataDir, exam.walk);
      if (exam.name === null && opts.name === null) throw neverWritten(dataDir);
      opts.logger?.debug({ dataDir, checkMs: Math.round(exam.walk?.ms ?? 0), walked: exam.walk?.where }, 'store checked');
      walked = exam.walk?.where ?? null;
    } catch (err) {
      // refused unopened, the store is as it was closed: its record goes back, unless it was found damaged
      if (cleanClose) (isStoreError(err, 'CORRUPT') ? dropCleanClose : putBackCleanClose)(dataDir);
      restoreDir(dataDir, before);
      throw err;
    }
    if (cleanClose) dropCleanClose(dataDir);
  }
  return { dataDir, kind, marker, name: opts.name, target, create: opts.create, walked };
}

/** What examineStore found: the node name (null: never written) and the walk of every record. */
export interface Examination {
  name: string | null;
  identity: unknown;
  walk: StoreWalk | null;
  pageSize: number | null;
}

/**
 * Read-only checks of an existing store, every record walked in a child process. Throws CORRUPT /
 * NOT_A_STORE / NEWER_FORMAT / NAME_MISMATCH for the store as a whole; damaged records are listed
 * in `walk.damaged` (the caller refuses, or reports them). `name` null: any node's store.
 */
export async function examineStore(
  dataDir: string,
  name: string | null,
  target: number,
  marker: StoreMarker | null,
  walkIn: StoreWalk['where'] = 'child',
): Promise<Examination> {
  const file = join(dataDir, DATA_FILE);
  const held = marker ? `, but this directory held the store of node ${marker.name} (node id ${marker.nodeId})` : '';
  let check: ReturnType<typeof checkLmdbDataFile>;
  try {
    // empty: LMDB died between creating the file and writing its meta pages; nothing was committed,
    // unless the marker says a store was written here
    if (statSync(file).size === 0) {
      if (marker) throw corrupt(dataDir, `${file} is empty (0 bytes)${held}`);
      return { name: null, identity: undefined, walk: null, pageSize: null };
    }
    check = checkLmdbDataFile(file);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError('IO', `cannot read ${file}: ${(err as Error).message}`, { dataDir, cause: err });
  }
  if (!check.ok) throw corrupt(dataDir, check.reason);

  const walk = walkIn === 'child' ? await walkInChild(dataDir) : await walkInProcess(dataDir);
  const names = Object.keys(walk.dbs);
  if (names.length === 0) {
    if (marker) throw corrupt(dataDir, `${file} holds no data${held}`);
    return { name: null, identity: undefined, walk, pageSize: check.info.pageSize }; // created but never written: a blank store
  }
  if (!names.includes('identity')) {
    throw new StoreError(
      'NOT_A_STORE',
      `data dir ${dataDir} holds an LMDB environment that is not a Conclave store (databases: ${names.slice(0, 5).join(', ')}): ` +
        'choose another --data-dir',
      { dataDir },
    );
  }
  const hasData = names.some((n) => n !== 'identity' && (walk.dbs[n]?.records ?? 0) > 0);
  // the identity database holds the member key too: whether the identity record itself is there
  const identityRecords = walk.hasIdentity === false ? 0 : (walk.dbs.identity?.records ?? 0);
  if (identityRecords === 0 && !hasData) {
    if (marker) throw corrupt(dataDir, `${file} holds no identity and no data${held}`);
    return { name: null, identity: undefined, walk, pageSize: check.info.pageSize }; // creation was interrupted before the identity was written
  }
  if (walk.identity === null && identityRecords > 0) throw corrupt(dataDir, `${file}: its identity record is damaged (it fails its checksum or cannot be decoded)`);
  checkIdentity(identityRecords === 0 ? undefined : walk.identity, dataDir, name, target);
  const nodeId = (walk.identity as { nodeId?: unknown }).nodeId;
  if (marker && nodeId !== marker.nodeId) {
    throw corrupt(dataDir, `${file} holds the store of node id ${String(nodeId)}, but this directory was created for node id ${marker.nodeId}`);
  }
  return { name: String(peekFormat(walk.identity)?.name), identity: walk.identity, walk, pageSize: check.info.pageSize };
}

/** CORRUPT when the walk found damaged records, naming the first ones; else null */
export function damageError(dataDir: string, walk: StoreWalk | null): StoreError | null {
  if (!walk || walk.damagedCount === 0) return null;
  const first = walk.damaged.slice(0, 3).map(describeDamage).join(', ');
  const more = walk.damagedCount > 3 ? ', …' : '';
  return corrupt(dataDir, `${join(dataDir, DATA_FILE)} is damaged: ${first}${more}`);
}

export function refuseDamage(dataDir: string, walk: StoreWalk | null): void {
  const err = damageError(dataDir, walk);
  if (err) throw err;
}

/** Throws unless `raw` is an identity this build can open (possibly after migration) for node `name`. */
export function checkIdentity(raw: unknown, dataDir: string, name: string | null, target: number): void {
  if (raw === undefined) throw corrupt(dataDir, 'its identity record is missing');
  const peek = peekFormat(raw);
  if (!peek || peek.format !== STORE_FORMAT) throw corrupt(dataDir, 'its identity record is not a Conclave identity');
  const v = peek.formatVersion;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw corrupt(dataDir, `its identity record has an invalid format version (${String(v)})`);
  }
  if (v > target) {
    throw new StoreError(
      'NEWER_FORMAT',
      `the store in ${dataDir} has format version ${v}, but this Conclave supports format version ${target} at most: ` +
        'upgrade Conclave to open it (the store was left unchanged)',
      { dataDir },
    );
  }
  if (v === target) {
    const res = validateIdentity(raw);
    if (!res.ok) throw corrupt(dataDir, `its identity record is invalid (${res.reason})`);
  }
  if (name !== null && peek.name !== name) {
    throw new StoreError('NAME_MISMATCH', `data dir ${dataDir} belongs to node ${String(peek.name)}, not ${name}`, { dataDir });
  }
}
