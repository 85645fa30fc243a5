// `conclave store verify --data-dir D`: check a stopped node's store offline and say what it holds
// and what is damaged. It never writes (a refused or checked store is left as found: LMDB's
// reader table lock.mdb gets its timestamps back) and never takes over a lock: a store in use by a
// live process is refused (LOCKED, exit 1) — stop the node first, or check a copy of its data dir.
import type { DamagedRecord } from './files.ts';
import { FRAMED_SINCE, type StoreIdentity } from './identity.ts';
import { damageError, examineOffline } from './store.ts';

export interface VerifyReport {
  dataDir: string;
  /** no damage found */
  ok: boolean;
  /** the one-line verdict when damaged (what, where, what to do), else null */
  problem: string | null;
  name: string;
  nodeId: string;
  clusterId: string | null;
  generation: number;
  formatVersion: number;
  /** records carry checksums (format ≥ 2); older stores are upgraded when a node opens them */
  checksummed: boolean;
  dbs: Record<string, { records: number; bytes: number }>;
  damaged: DamagedRecord[];
  damagedCount: number;
  checkMs: number;
}

/** Refuses (throws) what is not a store or is damaged as a whole; lists damaged records. */
export async function verifyStore(dataDir: string): Promise<VerifyReport> {
  const exam = await examineOffline(dataDir);
  const id = exam.identity as Partial<StoreIdentity>;
  const walk = exam.walk;
  return {
    dataDir: exam.dataDir,
    ok: walk.damagedCount === 0,
    problem: damageError(exam.dataDir, walk)?.message ?? null,
    name: exam.name,
    nodeId: String(id.nodeId),
    clusterId: id.clusterId ?? null,
    generation: id.generation ?? 1,
    formatVersion: Number(id.formatVersion),
    checksummed: Number(id.formatVersion) >= FRAMED_SINCE,
    dbs: walk.dbs,
    damaged: walk.damaged,
    damagedCount: walk.damagedCount,
    checkMs: Math.round(walk.ms),
  };
}
