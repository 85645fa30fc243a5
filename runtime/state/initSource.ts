// Sources for automatic initialization (`initFrom`): a JSON seed document or a snapshot file
// written by `conclave snapshot save`. A source is validated completely before anything is written.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';

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
  kind: 'seed' | 'snapshot';
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
    if (checksumPairs(pairs) !== snap.sha256) throw new InitSourceError(path, 'snapshot checksum mismatch: the file is corrupt or was edited');
    if (pairs.length === 0) throw new InitSourceError(path, 'the snapshot contains no data');
    return { kind: 'snapshot', path, pairs, origin: { clusterId: snap.clusterId, index: snap.index, term: snap.term } };
  }
  const parsed = seedSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InitSourceError(path, `not a recognised format (${firstIssue(parsed.error)}); expected a seed {"kv": {...}} or a snapshot written by \`conclave snapshot save\``);
  }
  const pairs = Object.entries(parsed.data.kv).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (pairs.length === 0) throw new InitSourceError(path, 'the seed contains no data ("kv" is empty)');
  return { kind: 'seed', path, pairs };
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') return `unknown key "${issue.keys[0]}"`;
  return `${issue.path.join('.') || '(root)'}: ${issue.message}`;
}
