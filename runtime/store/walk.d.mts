// Types of walk.mjs (plain JavaScript, run by the store-check child without a compiler).
import type { compareKeys, open } from 'lmdb';
import type { DamagedRecord } from './files.ts';

export interface WalkResult {
  framed: boolean;
  identity: unknown;
  hasIdentity: boolean;
  dbs: Record<string, { records: number; bytes: number }>;
  damaged: DamagedRecord[];
  damagedCount: number;
}

export function walkStore(lmdb: { open: typeof open; compareKeys: typeof compareKeys }, dataDir: string): WalkResult;
