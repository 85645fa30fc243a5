// Shared raft vocabulary: the pure core, the store and the wire all speak these types.

/** A raft peer is identified by its node id (UUID v7), never by its name: names can be reused. */
export type PeerId = string;

export interface Member {
  nodeId: PeerId;
  name: string;
  voter: boolean;
  /**
   * its member key (Ed25519, raw 32 bytes, base64url: runtime/store/memberKey.ts): peer messages under
   * this node id must be signed with it. Absent for a member of a release before member keys.
   */
  key?: string;
}

/** The cluster configuration as replicated through the log (one change at a time). */
export interface Membership {
  members: Member[];
  /** node ids removed from the cluster (the most recent 100): any leader can tell one that comes back */
  removed?: string[];
  /** names still to be added as soon as they answer (the bootstrapping node's initialMembers): any leader carries on */
  pending?: string[];
  /**
   * the cluster version (absent: 1, a cluster of release 0.1): the protocol version every member
   * speaks, raised by the leader once every member says it speaks a higher one, never lowered
   * (actors/clusterVersion.ts, runtime/wire/envelope.ts PROTOCOL_VERSION)
   */
  version?: number;
}

export type EntryType =
  /** appended by every new leader so it can commit entries of earlier terms (raft §5.4.2) */
  | 'noop'
  /** a command for the replicated state (the built-in KV or the host's) */
  | 'command'
  /** a new membership configuration */
  | 'config'
  /** sets the cluster id of a cluster created without one (upgrade path) */
  | 'clusterId';

export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  /** JSON-serializable payload: the command, the Membership, or the cluster id. */
  data: unknown;
}

export interface HardState {
  term: number;
  vote: PeerId | null;
  commit: number;
}

export interface SnapshotMeta {
  /** last log index included in the snapshot */
  index: number;
  term: number;
  membership: Membership;
}

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: null, commit: 0 }) as HardState;

// ---- added by the consensus core (existing definitions above are unchanged) ----

/** The role a raft peer plays; 'learner' receives the log but never votes nor campaigns. */
export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader' | 'learner';

/** A linearizable read that the leader confirmed: serve it once the state machine has applied `index`. */
export interface ReadState {
  requestId: string;
  index: number;
}
