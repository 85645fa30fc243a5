// Snapshot chunks for the raft messages view. A snapshot does not reach the raft chart chunk by
// chunk: the member assembles the stream and hands the chart one `snapshot` message at the end. What
// a node joining a cluster does see as it arrives is its bootstrap chart's JOIN_PROGRESS event (the
// chunks and bytes received so far, reported at most every 250 ms by the snapshot receiver), sent to
// it by the node that offered the join. Each report becomes one `msg` event, `snapshot-chunk`, from
// that node (by name: the offer names it) with the chunks (`n`) and bytes received since the last.
// A member that falls behind and gets a snapshot without joining reports no progress: only its
// final `snapshot` message is seen.
import type { InspectionEvent } from 'xstate';
import type { InspectEvent } from './protocol.ts';
import { actorIdOf } from './summarize.ts';

type MsgEvent = Extract<InspectEvent, { k: 'msg' }>;

/** bootstrap actors whose progress is remembered (one per node in practice) */
const MAX_TRANSFERS = 16;
const MAX_NAME = 120;

/** per bootstrap actor: what its last progress report said, and who sends it the state */
export type ChunkProgress = Map<string, { chunks: number; bytes: number; from: string | null }>;

const count = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);
const name = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v.slice(0, MAX_NAME) : null);

/** the chunks a JOIN_PROGRESS event reports beyond the last one, as a `snapshot-chunk` msg event; null for any other event */
export function snapshotChunkEvent(event: InspectionEvent, now: number, seen: ChunkProgress): MsgEvent | null {
  if (event.type !== '@xstate.event' || event.event?.type !== 'JOIN_PROGRESS') return null;
  const progress = event.event as { chunks?: unknown; bytes?: unknown };
  const chunks = count(progress.chunks);
  const bytes = count(progress.bytes);
  if (chunks === null || bytes === null) return null;
  const a = actorIdOf(event.actorRef);
  const last = seen.get(a);
  // a new transfer (another join attempt) counts from zero again
  const before = last && last.chunks <= chunks && last.bytes <= bytes ? last : { chunks: 0, bytes: 0 };
  if (chunks === before.chunks) return null;
  const ctx = (event.actorRef.getSnapshot?.() as { context?: { name?: unknown; contactedBy?: { by?: unknown } | null } } | undefined)?.context;
  // the contact is forgotten once the node has adopted the cluster's state; a later report comes from the same sender
  const from = name(ctx?.contactedBy?.by) ?? last?.from ?? null;
  if (!seen.has(a) && seen.size >= MAX_TRANSFERS) seen.clear();
  seen.set(a, { chunks, bytes, from });
  return { k: 'msg', t: now, a, type: 'snapshot-chunk', from: from ?? '?', to: name(ctx?.name) ?? '?', term: null, n: chunks - before.chunks, bytes: bytes - before.bytes };
}
