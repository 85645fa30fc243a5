// The admin protocol, in one map: for every operation on `<prefix>.node.<name>.admin`, the schema
// that validates its request (on the server, before any handler runs) and the type of its reply.
// The server (runtime/admin.ts), the CLI client, forwarding to the leader and the library all take
// their types from here: a new operation is one entry, and a wrong body is a compile error.
import { z } from 'zod';
import type { Phase } from '../../machines/bootstrap/machine.ts';
import type { Role } from '../../machines/raft/types.ts';
import type { BusState } from '../transport/types.ts';
import { nodeNameSchema, type Sender } from './codec.ts';
import type { OpenSessionReply } from './operatorSession.ts';
import { KEY_TEXT_PATTERN } from './peerSignature.ts';

/** `snapshot save`: one capture of the replicated state, served in pages (runtime/state/snapshotExport.ts) */
export interface SnapshotExportInfo {
  session: string;
  /** the node that holds the session: ask it for the pages */
  node: string;
  clusterId: string | null;
  index: number;
  term: number;
  keys: number;
  pages: number;
  bytes: number;
}

/** one member as `status` and `cluster list` show it */
export interface MemberView {
  name: string;
  nodeId: string;
  voter: boolean;
  leader: boolean;
  reachable: boolean;
  matchIndex: number;
  /** the protocol versions it said it speaks (since 0.2; absent: not heard from yet) */
  speaks?: { min: number; max: number };
  /** its member key is committed (since 0.2) */
  keyCommitted?: boolean;
}

/** the cluster version as one node sees it (since 0.2: actors/clusterVersion.ts) */
export interface ClusterVersionReply {
  /** the committed cluster version */
  version: number;
  /** what this node speaks */
  speaks: { min: number; max: number };
  /** 'on': every member's key is committed and peer messages are authenticated */
  authentication: 'on' | 'off';
  /** what it means now, or what holds a higher version back */
  note: string;
}

/** `status`: one node's view (CONTRACT.md) */
export interface StatusReply {
  name: string;
  nodeId: string;
  clusterId: string | null;
  phase: Phase;
  role: Role | 'none';
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
  members: MemberView[];
  /** absent before this node is a member (and from a node of release 0.1) */
  clusterVersion?: ClusterVersionReply;
  /** this node's bus connection: transport, connected now, server, reconnects so far */
  bus: BusState;
}

/** `cluster list`: the leader's view of the configuration */
export interface ClusterList {
  clusterId: string | null;
  leader: string | null;
  term: number;
  members: MemberView[];
  clusterVersion?: ClusterVersionReply;
}

export interface AddResult {
  name: string;
  nodeId: string;
  outcome: 'added' | 'already-member';
}

/**
 * `cluster add` asked with `progressMs`: the add is still under way on the leader (it keeps
 * running); asking again with the same name follows it and answers with its result once it is done.
 */
export interface AddProgress {
  name: string;
  outcome: 'in-progress';
  /** the step of the leader's membership chart, e.g. "offering", "catchingUp", "promoting" */
  step: string;
  /** the learner's match index (0 before it has any) and the leader's commit index */
  matchIndex: number;
  commitIndex: number;
  /** bytes of the snapshot the learner has acknowledged in the transfer under way */
  snapshotBytes: number;
  /** since the leader started this add */
  elapsedMs: number;
}

export interface RemoveResult {
  name: string;
  nodeId: string;
  outcome: 'removed';
}

export interface TransferResult {
  leader: string;
  transferred: boolean;
}

/** what a blank node with initFrom says while it decides whether to initialize */
export type AutoInitState = 'probing' | 'initializing' | 'waiting';

/**
 * `whois`: who answers for a name (and, for a blank node deciding on initFrom, where it stands); a
 * member recovered by `conclave recover` shows its key rotations (runtime/store/memberKey.ts), which
 * prove its generation to the stale survivors that hold its old key (actors/staleGeneration.ts)
 */
export type WhoisReply = Sender & { autoInit?: AutoInitState; keyRotations?: Array<{ generation: number; key: string; signature: string }> };

/** the node's half of the join handshake answers with itself */
export interface JoinParty {
  name: string;
  nodeId: string;
  clusterId: string | null;
  /** its member key (runtime/store/memberKey.ts), committed in the configuration when it is added; absent from an older node */
  key?: string;
  /** the answer to a proven offer, proven with the node's join secret (runtime/join/offerProof.ts); a refusal carries it in its details */
  proof?: string;
}

export interface SnapshotPage {
  seq: number;
  last: boolean;
  pairs: Array<[string, unknown]>;
}

/** one operation: what validates its request, what it answers (a type only), how errors name it */
interface AdminOperation<Request extends z.ZodType, Reply> {
  /** how a refused request names the operation, e.g. "cluster add" */
  what: string;
  request: Request;
  /** never set: carries the reply type */
  reply?: Reply;
}

const operation =
  <Reply>() =>
  <Request extends z.ZodType>(what: string, request: Request): AdminOperation<Request, Reply> => ({ what, request });

const timeoutMs = z.number().int().positive().optional();
/** set by the member that forwards a request to the leader: the leader never forwards it again */
const forwarded = z.boolean().optional();
const nothing = z.object({});
/** a raw 32-byte public key, base64url (an operator's Ed25519 key, an X25519 key) */
const operatorKeyText = z.string().regex(KEY_TEXT_PATTERN);

/** the most commands one `propose.batch` request carries */
export const MAX_PROPOSE_BATCH = 256;

/** one command's outcome in a `propose.batch` reply: what `propose` would have answered, or its error */
export type ProposeOutcome = { ok: true; body: unknown } | { ok: false; error: { code: string; message: string; details?: unknown } };

export const ADMIN_PROTOCOL = {
  whois: operation<WhoisReply>()('whois', nothing),
  status: operation<StatusReply>()('status', nothing),
  init: operation<{ clusterId: string }>()('init', nothing),
  propose: operation<unknown>()('propose', z.object({ command: z.unknown(), forwarded })),
  /**
   * Several commands in one request (runtime/adminClient.ts packs the proposals a client has in
   * flight to one node): one envelope, one authentication, one reply — each command proposed as its
   * own log entry, in order, and answered on its own. A node of an older release refuses it as an
   * unknown type, and the client sends the commands one by one.
   */
  'propose.batch': operation<{ results: ProposeOutcome[] }>()('propose', z.object({ commands: z.array(z.unknown()).min(1).max(MAX_PROPOSE_BATCH), forwarded })),
  read: operation<unknown>()('read', z.object({ query: z.unknown(), stale: z.boolean().optional(), forwarded })),
  /** nonce, ts and proof: present when the offering leader has a join secret (runtime/join/offerProof.ts); older nodes ignore them */
  'join.offer': operation<JoinParty>()(
    'join offer',
    z.object({
      protocolVersion: z.number().int(),
      nonce: z.string().regex(/^[0-9a-f]{32}$/).optional(),
      ts: z.number().int().min(0).optional(),
      proof: z.string().regex(/^[0-9a-f]{64}$/).optional(),
    }),
  ),
  'member.removed': operation<{ removed: boolean }>()('removal notice', nothing),
  /** with `progressMs`: answer within that time, with AddProgress while the add is still under way (ask again to follow it) */
  'cluster.add': operation<AddResult | AddProgress>()(
    'cluster add',
    z.object({ name: nodeNameSchema, timeoutMs, forwarded, progressMs: z.number().int().positive().max(60_000).optional() }),
  ),
  'cluster.remove': operation<RemoveResult>()('cluster remove', z.object({ name: nodeNameSchema, timeoutMs, forwarded })),
  'cluster.list': operation<ClusterList>()('cluster list', z.object({ forwarded })),
  'cluster.transfer': operation<TransferResult>()('cluster transfer-leadership', z.object({ name: nodeNameSchema.optional(), timeoutMs, forwarded })),
  'snapshot.begin': operation<SnapshotExportInfo>()('snapshot save', z.object({ forwarded })),
  /** opens an operator session (runtime/wire/operatorSession.ts): signed with the operator key it names; `pub`: the client's fresh X25519 key */
  'operator.session': operation<OpenSessionReply>()('operator session', z.object({ key: operatorKeyText, pub: operatorKeyText })),
  'snapshot.page': operation<SnapshotPage>()('snapshot page', z.object({ session: z.string().min(1).max(64), seq: z.number().int().min(0) })),
};

export type AdminOp = keyof typeof ADMIN_PROTOCOL;
/** what a caller sends */
export type AdminRequest<O extends AdminOp> = z.input<(typeof ADMIN_PROTOCOL)[O]['request']>;
/** what a handler receives, validated */
export type AdminBody<O extends AdminOp> = z.output<(typeof ADMIN_PROTOCOL)[O]['request']>;
export type AdminReply<O extends AdminOp> = (typeof ADMIN_PROTOCOL)[O] extends AdminOperation<z.ZodType, infer Reply> ? Reply : never;

/** the operations a request may be forwarded to the leader with (they carry `forwarded`) */
export type ForwardedOp = 'propose' | 'propose.batch' | 'read' | 'cluster.add' | 'cluster.remove' | 'cluster.list' | 'cluster.transfer' | 'snapshot.begin';

export function isAdminOp(type: string): type is AdminOp {
  return Object.hasOwn(ADMIN_PROTOCOL, type);
}

/** the request schema as the server applies it: an absent body is an empty one */
export function requestSchema<O extends AdminOp>(op: O): z.ZodType<AdminBody<O>> {
  return z.preprocess((body) => body ?? {}, ADMIN_PROTOCOL[op].request) as unknown as z.ZodType<AdminBody<O>>;
}
