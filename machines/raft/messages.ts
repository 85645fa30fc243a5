// The raft wire vocabulary: plain JSON-serializable objects, one interface per message type.
import type { Entry, PeerId, SnapshotMeta } from './types.ts';

interface Envelope {
  from: PeerId;
  to: PeerId;
  /** the sender's current term (for a pre-vote request: the term it would campaign in) */
  term: number;
}

/** RequestVote (raft §5.2) and its pre-vote twin (dissertation §9.6), which changes no term. */
export interface VoteRequest extends Envelope {
  type: 'vote' | 'pre-vote';
  lastIndex: number;
  lastTerm: number;
  /** set when campaigning on a TimeoutNow: overrides the leader lease (dissertation §3.10) */
  transfer: boolean;
}

export interface VoteResponse extends Envelope {
  type: 'vote-response' | 'pre-vote-response';
  granted: boolean;
}

/** AppendEntries (raft §5.3); the entries are never mutated by anyone once created. */
export interface AppendRequest extends Envelope {
  type: 'append';
  prevIndex: number;
  prevTerm: number;
  entries: Entry[];
  commit: number;
}

export interface AppendResponse extends Envelope {
  type: 'append-response';
  /** accepted: the last index now known to match; rejected: the prevIndex that did not match */
  index: number;
  reject: boolean;
  /** rejected only: the follower's guess of the last index that could match (fast backoff) */
  rejectHint: number;
  /** rejected only: the follower's term at rejectHint */
  hintTerm: number;
}

/** Heartbeats carry the commit index (capped at the follower's match) and a read-index context. */
export interface Heartbeat extends Envelope {
  type: 'heartbeat';
  commit: number;
  context: string | null;
}

export interface HeartbeatResponse extends Envelope {
  type: 'heartbeat-response';
  context: string | null;
}

/** InstallSnapshot: only the metadata; the host attaches and streams the state itself. */
export interface SnapshotMessage extends Envelope {
  type: 'snapshot';
  snapshot: SnapshotMeta;
}

/** Leadership transfer: the target campaigns at once, skipping pre-vote (dissertation §3.10). */
export interface TimeoutNow extends Envelope {
  type: 'timeout-now';
}

export type RaftMessage =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | SnapshotMessage
  | TimeoutNow;

export type RaftMessageType = RaftMessage['type'];
