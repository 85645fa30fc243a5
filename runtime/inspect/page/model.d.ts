// Types of model.js for the Node tests (the page itself is plain JavaScript, no build step).
export const MAX_EVENTS: number;
export interface ModelNode {
  name: string;
  actors: Map<string, { a: string; m: string | null; states: string[]; status: string; ctx?: Record<string, unknown> }>;
  status: (Record<string, unknown> & { name: string; reachable: boolean }) | null;
  reachable: boolean | null;
  dropped: number;
}
export interface Model {
  nodes: Map<string, ModelNode>;
  events: Array<Record<string, unknown> & { node: string; k: string; t: number }>;
  leaders: Array<{ t: number; node: string; term: number | null }>;
  handshakes: Array<Record<string, unknown> & { node: string; t: number }>;
  refusals: Array<Record<string, unknown> & { node: string; t: number }>;
  /** raft messages received (k 'msg'), for the sequence view */
  messages: Array<Record<string, unknown> & { node: string; t: number; from: string; to: string; type: string; n: number }>;
  t: number;
  elections: Elections;
  /** node id → node name, as status answers told it */
  ids: Map<string, string>;
}
export interface Segment {
  role: string;
  term: number | null;
  from: number;
  to: number | null;
  cause: string | null;
  /** the leader this node knew during the segment (by name), when it knew one */
  leader: string | null;
}
export interface Election {
  start: number;
  end: number | null;
  startedBy: string;
  cause: string;
  term: number | null;
  previousLeader: string | null;
  leader: string | null;
  durationMs: number | null;
}
export interface Elections {
  lanes: Map<string, Segment[]>;
  elections: Election[];
  /** cluster id (null: not known yet) → its election under way */
  open: Map<string | null, Election>;
}
export interface Speaks {
  min: number;
  max: number;
}
/** the cluster version as the overview shows it */
export interface ClusterVersionShown {
  version: number;
  /** false: no member reports it (members of release 0.1.0), version 1 */
  reported: boolean;
  /** null: the reporting node said something else */
  authentication: 'on' | 'off' | null;
  /** the reporting node's own words */
  note: string | null;
  /** the node whose view it is (null: none reports it) */
  from: string | null;
  /** members that speak less than the reporting node: they hold a higher version back */
  heldBackBy: string[];
  mixed: boolean;
}
export interface ClusterGroup {
  clusterId: string | null;
  leader: string | null;
  term: number;
  commitIndex: number | null;
  size: number;
  /** null: no member of it answers (or not in a cluster yet) */
  clusterVersion: ClusterVersionShown | null;
  members: Array<{ name: string; role: string; voter: boolean | null; member: boolean; term: number | null; reachable: boolean; matchIndex: number | null; appliedIndex: number | null; commitIndex: number | null; generation: number | null; bus: string | null; elsewhere: string | null; paused: boolean; cutOff: boolean; speaks: Speaks | null; keyCommitted: boolean | null }>;
  refusals: Array<Record<string, unknown> & { node: string; message: string }>;
}
export function clusterGroups(model: Model): ClusterGroup[];
export function createModel(): Model;
export function applyInit(model: Model, init: unknown): void;
export function applyFrame(model: Model, frame: unknown): { changed: Set<string>; added: unknown[]; steps: Array<{ node: string; actor: string; edges: string[] }> };
export function leadersLit(model: Model): string[];
export function raftLeads(node: ModelNode): boolean;
export function clusterSummary(model: Model): { clusterIds: string[]; term: number; leader: string | null; commitIndex: number | null; appliedIndex: number | null; members: unknown[] };
export function modelAt(frames: unknown[], count: number): Model;
export const MAX_MESSAGES: number;
export function nameOfId(model: Model, id: string): string | null;
/** the elections, newest first, each previous leader by name as far as the page knows the names now */
export function namedElections(model: Model): Election[];
