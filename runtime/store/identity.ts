// The identity record (who this store belongs to) and the format-version migrations.
import { z } from 'zod';
import { frame } from './frame.ts';

export const STORE_FORMAT = 'conclave-store' as const;
export const STORE_FORMAT_VERSION = 3;
/** from this format on, every record carries a checksum (frame.ts) */
export const FRAMED_SINCE = 2;

export interface StoreIdentity {
  format: 'conclave-store';
  formatVersion: number;
  /** uuid v7, made on first open, never changed */
  nodeId: string;
  /** the node name the store was created with */
  name: string;
  /** null until initialized or joined */
  clusterId: string | null;
  /** identity generation (disaster recovery bumps it), starts at 1 */
  generation: number;
  createdAt: string;
  initializedAt?: string;
  importedFrom?: string;
  /** a cluster that tried to add this blank node (prevents forking a second cluster) */
  contactedBy?: { clusterId: string; by: string; at: string; generation?: number } | null;
  /** this node was removed from its cluster */
  removed?: boolean;
}

export type IdentityPatch = Partial<Omit<StoreIdentity, 'format' | 'formatVersion' | 'nodeId'>>;

export const identitySchema = z.object({
  format: z.literal(STORE_FORMAT),
  formatVersion: z.number().int().min(0),
  nodeId: z.uuid(),
  name: z.string().min(1).max(255),
  clusterId: z.string().min(1).max(255).nullable(),
  generation: z.number().int().min(1),
  createdAt: z.iso.datetime({ offset: true }),
  initializedAt: z.iso.datetime({ offset: true }).optional(),
  importedFrom: z.string().optional(),
  contactedBy: z
    .object({ clusterId: z.string().min(1), by: z.string(), at: z.string(), generation: z.number().int().min(1).optional() })
    .nullable()
    .optional(),
  removed: z.boolean().optional(),
});

/** What a stored record claims to be, read before full validation (an older/newer format may differ). */
export function peekFormat(raw: unknown): { format: unknown; formatVersion: unknown; name: unknown } | null {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  const r = raw as Record<string, unknown>;
  return { format: r.format, formatVersion: r.formatVersion, name: r.name };
}

export function validateIdentity(raw: unknown): { ok: true; identity: StoreIdentity } | { ok: false; reason: string } {
  const res = identitySchema.safeParse(raw);
  if (res.success) return { ok: true, identity: res.data as StoreIdentity };
  return { ok: false, reason: z.prettifyError(res.error).replace(/\n\s*/g, ' ') };
}

/** Named LMDB databases of one store, handed to migrations. */
export type DbName = 'identity' | 'hardstate' | 'log' | 'snapshot' | 'state';

export interface MigrationDb {
  get(key: string | number): unknown;
  putSync(key: string | number, value: unknown): void;
  removeSync(key: string | number): boolean;
  getKeys(opts?: { start?: string | number; end?: string | number }): Iterable<string | number>;
}

export interface MigrationContext {
  /** the databases, inside the migration's write transaction, in the encoding of format `from` ('state': the current state database) */
  db(name: DbName): MigrationDb;
  /** the same databases as raw bytes (getBinary / putSync of a Buffer) */
  raw(name: DbName): MigrationDb & { getBinary(key: string | number): Uint8Array | undefined };
  /** the raw identity record; mutate it (formatVersion is set for you afterwards) */
  identity: Record<string, unknown>;
  /** delete a named database this format no longer has (nothing if there is none) */
  dropDb(name: string): void;
}

/** One step `from` → `from + 1`, run inside the single write transaction of the upgrade. */
export interface Migration {
  from: number;
  description: string;
  up(ctx: MigrationContext): void;
}

/**
 * The upgrade path, in order; add `{ from: N, ... }` together with bumping STORE_FORMAT_VERSION to N + 1.
 *
 * Format 0 (Conclave before cluster ids): the identity had no `clusterId` and no `generation`. A
 * member of such a cluster keeps its raft state; its cluster gets an id from the leader, committed
 * through raft (entry type `clusterId`), which every member persists when it applies it.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    from: 0,
    description: 'identity gains clusterId (null until the cluster commits one) and generation 1',
    up({ identity }) {
      if (identity.clusterId === undefined) identity.clusterId = null;
      if (identity.generation === undefined) identity.generation = 1;
    },
  },
  {
    from: 1,
    description: 'every record gains a CRC-32 checksum (frame.ts); the identity is rewritten framed by the loader',
    up({ raw }) {
      for (const name of ['hardstate', 'log', 'snapshot', 'state'] as const) {
        const db = raw(name);
        for (const key of [...db.getKeys()]) db.putSync(key, frame(db.getBinary(key)!));
      }
    },
  },
  {
    from: 2,
    description:
      'a snapshot being received is written into a second state database (state2) and installed by switching to it; ' +
      "the staging database, whose pairs were copied, goes (what it held is a transfer a crash interrupted)",
    up({ dropDb }) {
      dropDb('staging');
    },
  },
];
