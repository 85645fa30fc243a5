// Sources for automatic initialization (`initFrom`): a JSON seed document, a snapshot file
// written by `conclave snapshot save`, or the LMDB environment of a standalone (single-process,
// unreplicated) deployment of the built-in KV. A source is validated completely before anything
// is written.
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { open as openLmdb, type RootDatabase } from 'lmdb';
import { z } from 'zod';
import { checkLmdbDataFile } from '../store/lmdb-file.ts';
import { readStoredIdentity, restoreDir, snapshotDir } from '../store/store.ts';
import { valueRefusal } from '../wire/limits.ts';

export const SNAPSHOT_FILE_FORMAT = 'conclave-snapshot';
export const SNAPSHOT_FILE_VERSION = 1;
/** Refuse absurd sources before reading them into memory. */
export const MAX_SOURCE_BYTES = 512 * 1024 * 1024;

export class InitSourceError extends Error {
  readonly code = 'BAD_INIT_SOURCE';
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`cannot initialize from ${path}: ${problem}`);
    this.name = 'InitSourceError';
  }
}

const keySchema = z.string().min(1).max(1024);

/** `{"kv": {"key": <any JSON value>, ...}}` — the plain way to seed a cluster. */
const seedSchema = z.strictObject({
  kv: z.record(keySchema, z.unknown()),
});

/** What `snapshot save` writes: the replicated state plus where it came from, with a checksum. */
const snapshotFileSchema = z.strictObject({
  format: z.literal(SNAPSHOT_FILE_FORMAT),
  version: z.number().int(),
  clusterId: z.string().nullable(),
  index: z.number().int().min(0),
  term: z.number().int().min(0),
  createdAt: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  kv: z.array(z.tuple([keySchema, z.unknown()])),
});
export type SnapshotFile = z.infer<typeof snapshotFileSchema>;

export interface InitSource {
  kind: 'seed' | 'snapshot' | 'lmdb';
  path: string;
  pairs: Array<[string, unknown]>;
  /** for a snapshot file: the cluster it was taken from (the new cluster gets a fresh id) */
  origin?: { clusterId: string | null; index: number; term: number };
}

export function checksumPairs(pairs: ReadonlyArray<readonly [string, unknown]>): string {
  const hash = createHash('sha256');
  for (const [k, v] of pairs) {
    hash.update(JSON.stringify(k));
    hash.update('\n');
    hash.update(JSON.stringify(v) ?? 'null');
    hash.update('\n');
  }
  return hash.digest('hex');
}

export function buildSnapshotFile(args: { clusterId: string | null; index: number; term: number; pairs: Array<[string, unknown]> }): SnapshotFile {
  return {
    format: SNAPSHOT_FILE_FORMAT,
    version: SNAPSHOT_FILE_VERSION,
    clusterId: args.clusterId,
    index: args.index,
    term: args.term,
    createdAt: new Date().toISOString(),
    sha256: checksumPairs(args.pairs),
    kv: args.pairs,
  };
}

/** Read, parse and validate an init source. Throws InitSourceError naming the file and the problem. */
export async function readInitSource(path: string): Promise<InitSource> {
  let size: number;
  try {
    const st = await stat(path);
    // a standalone deployment's LMDB environment: its directory, or its data.mdb file
    if (st.isDirectory()) return await readStandaloneLmdb(path, path);
    if (basename(path) === LMDB_DATA_FILE) return await readStandaloneLmdb(path, dirname(path));
    if (!st.isFile()) throw new InitSourceError(path, 'it is not a regular file');
    size = st.size;
  } catch (err) {
    if (err instanceof InitSourceError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InitSourceError(path, code === 'ENOENT' ? 'the file does not exist' : `cannot read it (${code ?? (err as Error).message})`);
  }
  if (size === 0) throw new InitSourceError(path, 'the file is empty');
  if (size > MAX_SOURCE_BYTES) throw new InitSourceError(path, `the file is ${size} bytes, over the ${MAX_SOURCE_BYTES}-byte limit`);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InitSourceError(path, `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InitSourceError(path, `it is not valid JSON (${(err as Error).message}); expected a seed {"kv": {...}} or a snapshot written by \`conclave snapshot save\``);
  }
  if (raw !== null && typeof raw === 'object' && (raw as { format?: unknown }).format === SNAPSHOT_FILE_FORMAT) {
    const parsed = snapshotFileSchema.safeParse(raw);
    if (!parsed.success) throw new InitSourceError(path, `malformed snapshot file (${firstIssue(parsed.error)})`);
    const snap = parsed.data;
    if (snap.version > SNAPSHOT_FILE_VERSION) {
      throw new InitSourceError(path, `snapshot format version ${snap.version} is newer than this Conclave reads (${SNAPSHOT_FILE_VERSION}); upgrade Conclave`);
    }
    const pairs = snap.kv as Array<[string, unknown]>;
    for (const [key, value] of pairs) refuseDeepValue(path, key, value);
    if (checksumPairs(pairs) !== snap.sha256) throw new InitSourceError(path, 'snapshot checksum mismatch: the file is corrupt or was edited');
    if (pairs.length === 0) throw new InitSourceError(path, 'the snapshot contains no data');
    return { kind: 'snapshot', path, pairs, origin: { clusterId: snap.clusterId, index: snap.index, term: snap.term } };
  }
  const parsed = seedSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InitSourceError(path, `not a recognised format (${firstIssue(parsed.error)}); expected a seed {"kv": {...}} or a snapshot written by \`conclave snapshot save\``);
  }
  const pairs = Object.entries(parsed.data.kv).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [key, value] of pairs) refuseDeepValue(path, key, value);
  if (pairs.length === 0) throw new InitSourceError(path, 'the seed contains no data ("kv" is empty)');
  return { kind: 'seed', path, pairs };
}

/** the same nesting check as a proposed command (runtime/wire/limits.ts): every value must encode and decode on every node */
function refuseDeepValue(path: string, key: string, value: unknown): void {
  const tooDeep = valueRefusal(value, `the value of key ${JSON.stringify(key)}`);
  if (tooDeep !== null) throw new InitSourceError(path, tooDeep);
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') return `unknown key "${issue.keys[0]}"`;
  return `${issue.path.join('.') || '(root)'}: ${issue.message}`;
}

// ---- a standalone deployment's LMDB environment -------------------------------------------

const LMDB_DATA_FILE = 'data.mdb';
/** the named database a standalone deployment of the built-in KV keeps its pairs in */
export const STANDALONE_KV_DB = 'kv';
/** the named databases of a Conclave node store: such a store is never an init source */
const NODE_STORE_DBS = ['identity', 'hardstate', 'log', 'snapshot', 'state'];

/**
 * The LMDB environment of a standalone (single-process, unreplicated) deployment of the built-in
 * KV: a directory holding `data.mdb`, with a named database `kv` of string key → value (lmdb-js's
 * default encoding, i.e. what `open({ path }).openDB({ name: 'kv' }).put(key, value)` writes),
 * values being JSON data. Opened read-only in one read transaction; the directory is left as found.
 */
async function readStandaloneLmdb(path: string, dir: string): Promise<InitSource> {
  const dataFile = join(dir, LMDB_DATA_FILE);
  if (!existsSync(dataFile)) {
    throw new InitSourceError(path, `it is a directory without ${LMDB_DATA_FILE}: expected the LMDB environment of a standalone deployment (a directory with ${LMDB_DATA_FILE} and a database named "${STANDALONE_KV_DB}"), a seed {"kv": {...}} or a snapshot file`);
  }
  let check: ReturnType<typeof checkLmdbDataFile>;
  try {
    if (statSync(dataFile).size === 0) throw new InitSourceError(path, `${dataFile} is empty: the environment was never written`);
    check = checkLmdbDataFile(dataFile);
  } catch (err) {
    if (err instanceof InitSourceError) throw err;
    throw new InitSourceError(path, `cannot read ${dataFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!check.ok) throw new InitSourceError(path, `not a readable LMDB environment: ${check.reason}`);
  if (check.info.fileSize > MAX_SOURCE_BYTES) throw new InitSourceError(path, `${dataFile} is ${check.info.fileSize} bytes, over the ${MAX_SOURCE_BYTES}-byte limit`);

  // opening LMDB, even read-only, rewrites (or creates) lock.mdb: put the directory back as found
  const before = snapshotDir(dir);
  let env: RootDatabase | undefined;
  try {
    try {
      env = openLmdb({ path: dir, noSubdir: false, maxDbs: 64, readOnly: true });
    } catch (err) {
      throw new InitSourceError(path, `LMDB cannot open it read-only (${(err as Error).message})`);
    }
    const names = [...env.getKeys({})].map(String);
    if (NODE_STORE_DBS.every((n) => names.includes(n)) || names.includes('identity')) {
      const identity = readStoredIdentity(env) as { name?: unknown; clusterId?: unknown } | undefined;
      throw new InitSourceError(
        path,
        `it is a Conclave node store (node ${String(identity?.name ?? '?')}, cluster ${String(identity?.clusterId ?? 'none')}), not a standalone deployment: ` +
          'a node store never seeds a new cluster. Take a snapshot of its cluster (`conclave snapshot save FILE --via <member>`) and use that file, ' +
          'or, if its cluster is lost, `conclave recover --data-dir` it',
      );
    }
    if (!names.includes(STANDALONE_KV_DB)) {
      const found = names.length === 0 ? 'no named databases' : `databases ${names.slice(0, 5).join(', ')}`;
      throw new InitSourceError(path, `the LMDB environment has no database named "${STANDALONE_KV_DB}" (it has ${found}): a standalone deployment keeps its pairs there`);
    }
    const db = env.openDB<unknown, string>({ name: STANDALONE_KV_DB });
    const pairs: Array<[string, unknown]> = [];
    // one range read is one read transaction (a consistent view even while the app writes)
    const problem = ((): string | null => {
      for (const { key, value } of db.getRange({ snapshot: true })) {
        if (typeof key !== 'string' || !keySchema.safeParse(key).success) return `key ${String(key)} is not a string of 1..1024 characters`;
        refuseDeepValue(path, key, value);
        let json: string | undefined;
        try {
          json = value === undefined ? undefined : JSON.stringify(value);
        } catch {
          json = undefined;
        }
        if (json === undefined) return `the value of key ${JSON.stringify(key)} is not JSON data`;
        pairs.push([key, JSON.parse(json)]);
      }
      return null;
    })();
    if (problem) throw new InitSourceError(path, `database "${STANDALONE_KV_DB}": ${problem}`);
    if (pairs.length === 0) throw new InitSourceError(path, `database "${STANDALONE_KV_DB}" contains no data`);
    return { kind: 'lmdb', path, pairs };
  } catch (err) {
    if (err instanceof InitSourceError) throw err;
    throw new InitSourceError(path, `reading the LMDB environment failed (${(err as Error).message})`);
  } finally {
    if (env) await env.close();
    restoreDir(dir, before);
  }
}
