// `conclave snapshot save`: the leader captures the replicated state at a linearizable read point
// once, and serves it in pages (the state can exceed one bus message) from that one capture, so
// every page belongs to the same consistent snapshot. Sessions expire when left idle.
import { randomUUID } from 'node:crypto';
import { conclaveError } from '../errors.ts';
import type { SnapshotExportInfo } from '../wire/adminProtocol.ts';

export type { SnapshotExportInfo };

/** bytes of JSON per page: well under the 1 MiB NATS payload limit, with room for the envelope */
export const SNAPSHOT_PAGE_BYTES = 256 * 1024;
const SESSION_IDLE_MS = 60_000;
const MAX_SESSIONS = 4;

interface Session {
  info: SnapshotExportInfo;
  pages: Array<Array<[string, unknown]>>;
  touched: number;
}

export class SnapshotExports {
  private readonly sessions = new Map<string, Session>();

  /** `pageBytes`: at most this many bytes of pairs per page (a smaller bus max payload asks for smaller pages) */
  begin(node: string, snap: { clusterId: string | null; index: number; term: number; pairs: Array<[string, unknown]> }, pageBytes = SNAPSHOT_PAGE_BYTES): SnapshotExportInfo {
    this.sweep();
    if (this.sessions.size >= MAX_SESSIONS) {
      throw conclaveError('BUSY', `${node} is already serving ${MAX_SESSIONS} snapshot exports; retry in a minute`);
    }
    const pages: Array<Array<[string, unknown]>> = [];
    let page: Array<[string, unknown]> = [];
    let inPage = 0;
    let bytes = 0;
    for (const pair of snap.pairs) {
      const size = Buffer.byteLength(JSON.stringify(pair));
      if (inPage + size > pageBytes && page.length > 0) {
        pages.push(page);
        page = [];
        inPage = 0;
      }
      page.push(pair);
      inPage += size;
      bytes += size;
    }
    pages.push(page);
    const info: SnapshotExportInfo = { session: randomUUID(), node, clusterId: snap.clusterId, index: snap.index, term: snap.term, keys: snap.pairs.length, pages: pages.length, bytes };
    this.sessions.set(info.session, { info, pages, touched: Date.now() });
    return info;
  }

  page(session: string, seq: number): { seq: number; last: boolean; pairs: Array<[string, unknown]> } {
    this.sweep();
    const s = this.sessions.get(session);
    if (!s) throw conclaveError('NOT_FOUND', `snapshot export ${session} is unknown or expired (idle for over ${SESSION_IDLE_MS / 1000} s); run snapshot save again`);
    const pairs = s.pages[seq];
    if (pairs === undefined) throw conclaveError('BAD_REQUEST', `snapshot export ${session} has pages 0..${s.pages.length - 1}, not ${seq}`);
    s.touched = Date.now();
    const last = seq === s.pages.length - 1;
    if (last) this.sessions.delete(session);
    return { seq, last, pairs };
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, s] of this.sessions) if (now - s.touched > SESSION_IDLE_MS) this.sessions.delete(id);
  }
}
