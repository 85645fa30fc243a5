// `conclave snapshot save FILE --via M`: a consistent snapshot of the replicated state, taken by the
// leader at a linearizable read point and fetched in pages, written atomically (tmp + fsync +
// rename) in the `conclave-snapshot` format that `--init-from` reads.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { conclaveError } from '../errors.ts';
import { buildSnapshotFile } from '../state/initSource.ts';
import type { Bus } from '../transport/types.ts';
import type { AdminSigner } from '../wire/adminAuth.ts';
import { adminRequest } from './client.ts';

export interface SavedSnapshot {
  file: string;
  clusterId: string | null;
  /** the node that took it (the leader) */
  node: string;
  index: number;
  term: number;
  keys: number;
  bytes: number;
  sha256: string;
}

/** Fetch a consistent snapshot through member `via` (forwarded to the leader) and write it to `file`; `operator` signs the requests. */
export async function saveSnapshot(bus: Bus, prefix: string, via: string, file: string, timeoutMs: number, operator?: AdminSigner): Promise<SavedSnapshot> {
  const info = await adminRequest(bus, prefix, via, 'snapshot.begin', {}, timeoutMs, operator);
  const pairs: Array<[string, unknown]> = [];
  for (let seq = 0; seq < info.pages; seq++) {
    const page = await adminRequest(bus, prefix, info.node, 'snapshot.page', { session: info.session, seq }, timeoutMs, operator);
    if (page.seq !== seq) throw conclaveError('BAD_REPLY', `${info.node} answered page ${page.seq} when page ${seq} was asked for`);
    for (const p of page.pairs) pairs.push(p);
  }
  if (pairs.length !== info.keys) {
    throw conclaveError('BAD_REPLY', `snapshot from ${info.node} announced ${info.keys} keys but ${pairs.length} arrived; nothing was written — retry`);
  }
  const snapshot = buildSnapshotFile({ clusterId: info.clusterId, index: info.index, term: info.term, pairs });
  const text = `${JSON.stringify(snapshot)}\n`;
  const target = resolve(file);
  writeFileAtomic(target, text);
  return { file: target, clusterId: info.clusterId, node: info.node, index: info.index, term: info.term, keys: pairs.length, bytes: Buffer.byteLength(text), sha256: snapshot.sha256 };
}

/** write to a temporary file next to `target`, fsync it, rename it over `target`, fsync the directory */
function writeFileAtomic(target: string, text: string): void {
  const dir = dirname(target);
  const tmp = join(dir, `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'wx', 0o644);
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, target);
  } catch (err) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    throw conclaveError('IO', `cannot write the snapshot to ${target}: ${code ?? (err as Error).message}; nothing was written there`);
  }
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* some filesystems cannot fsync a directory; the rename itself is atomic */
  }
}

export function formatSaved(s: SavedSnapshot): string {
  const note = s.keys === 0 ? '\nnote: the state is empty; `--init-from` refuses a snapshot without data' : '';
  return `wrote a snapshot of cluster ${s.clusterId} at index ${s.index} (term ${s.term}, taken by ${s.node}): ${s.keys} keys, ${s.bytes} bytes, to ${s.file}${note}`;
}
