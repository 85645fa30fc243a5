// The peer wire: the bodies of the envelopes on `<prefix>.node.<name>.peer` (checked with zod on
// arrival: the bus is untrusted), the admin bodies the member answers, and how a peer's raft messages
// are packed into bus messages that fit the max payload.
import { z } from 'zod';
import type { RaftMessage } from '../machines/raft/messages.ts';
import { entryBytes } from '../machines/raft/size.ts';
import type { KeyObject } from 'node:crypto';
import type { PairKeys } from '../runtime/wire/pairwiseKeys.ts';
import { KEY_PROOF_PATTERN, MEMBER_KEY_PATTERN, macPeerMessage, nextPeerSeq, signPeerMessage } from '../runtime/wire/peerSignature.ts';
import { ADMIN_PROTOCOL } from '../runtime/wire/adminProtocol.ts';
import { nodeNameSchema, uuidSchema } from '../runtime/wire/codec.ts';
import { MAX_RECORD_BYTES } from '../runtime/wire/records.ts';
import type { MemberBus } from './ports.ts';

const entrySchema = z.object({
  index: z.number().int().min(1),
  term: z.number().int().min(0),
  type: z.enum(['noop', 'command', 'config', 'clusterId']),
  data: z.unknown(),
})
  // the core reads a config entry's data as the configuration in force
  .refine((e) => e.type !== 'config' || membershipSchema.safeParse(e.data).success, { message: 'a config entry must carry a configuration', path: ['data'] });
const memberSchema = z.object({ nodeId: z.string(), name: z.string(), voter: z.boolean(), key: z.string().regex(MEMBER_KEY_PATTERN).optional() });
const membershipSchema = z.object({
  members: z.array(memberSchema),
  removed: z.array(z.string()).max(1000).optional(),
  pending: z.array(z.string()).max(1000).optional(),
  // since 0.2 (0.1 drops it, and is refused by a cluster that has one above 1)
  version: z.number().int().min(1).max(1_000_000).optional(),
});
const snapshotMetaSchema = z.object({
  index: z.number().int().min(0),
  term: z.number().int().min(0),
  membership: membershipSchema,
});
const base = { from: z.string(), to: z.string(), term: z.number().int().min(0) };
const raftMessageSchema = z.discriminatedUnion('type', [
  z.object({ ...base, type: z.enum(['vote', 'pre-vote']), lastIndex: z.number().int(), lastTerm: z.number().int(), transfer: z.boolean() }),
  z.object({ ...base, type: z.enum(['vote-response', 'pre-vote-response']), granted: z.boolean() }),
  z.object({ ...base, type: z.literal('append'), prevIndex: z.number().int(), prevTerm: z.number().int(), entries: z.array(entrySchema), commit: z.number().int() }),
  z.object({ ...base, type: z.literal('append-response'), index: z.number().int(), reject: z.boolean(), rejectHint: z.number().int(), hintTerm: z.number().int() }),
  z.object({ ...base, type: z.literal('heartbeat'), commit: z.number().int(), context: z.string().nullable() }),
  z.object({ ...base, type: z.literal('heartbeat-response'), context: z.string().nullable() }),
  z.object({ ...base, type: z.literal('snapshot'), snapshot: snapshotMetaSchema }),
  z.object({ ...base, type: z.literal('timeout-now') }),
]);
const chunkHeader = { message: raftMessageSchema, id: z.string(), seq: z.number().int().min(0), last: z.boolean() };
/**
 * The formats of a snapshot chunk's state. `json` (every version): the pairs in the body, as JSON.
 * `records` (since 0.2): the stored records in the message's binary tail (runtime/wire/records.ts),
 * the body saying how many; a sender uses it only with a receiver whose ack listed it in `accepts`.
 */
export const CHUNK_FORMATS = ['json', 'records'] as const;
export type ChunkFormat = (typeof CHUNK_FORMATS)[number];
/** 16 random bytes, base64url (actors/freshness.ts) */
const NONCE_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export const peerBodies: Record<string, z.ZodType<unknown>> = {
  raft: z.object({ messages: z.array(raftMessageSchema).min(1).max(10_000) }),
  'snapshot-chunk': z.union([
    z.object({ ...chunkHeader, pairs: z.array(z.tuple([z.string(), z.unknown()])) }),
    // format `records`: the state is in the binary tail, `records` of them (a tail without this field is refused)
    // a piece of one record larger than a chunk: its value's bytes from `at`, of `of` in all (snapshotStream.ts)
    z.object({
      ...chunkHeader,
      records: z.number().int().min(0).max(1_000_000),
      part: z.object({ at: z.number().int().min(0), of: z.number().int().min(1).max(MAX_RECORD_BYTES) }).optional(),
    }),
  ]),
  'snapshot-ack': z.object({
    id: z.string().max(64),
    // -1 (since 0.2; refused by 0.1's schema, so an older sender waits for its stall timer): the
    // receiver missed a chunk and gave the transfer up
    seq: z.number().int().min(-1),
    // since 0.2 (unknown to 0.1, which ignores it): the chunk formats besides `json` this receiver reads
    accepts: z.array(z.string().max(32)).max(8).optional(),
  }),
  // `speaks` and `key` since 0.2 (a ping of 0.1 has neither: it speaks version 1 only): the protocol
  // versions the sender speaks, and — while its key is not committed (a cluster upgraded from 0.1) —
  // its member key with a proof that it holds it (actors/clusterVersion.ts)
  ping: z.object({
    speaks: z.object({ min: z.number().int().min(1).max(1_000_000), max: z.number().int().min(1).max(1_000_000) }).refine((s) => s.min <= s.max, 'min above max').optional(),
    key: z.object({ key: z.string().regex(MEMBER_KEY_PATTERN), proof: z.string().regex(KEY_PROOF_PATTERN) }).optional(),
  }),
  // since 0.2 (a node of an older build drops them as of an unknown type, counted `bad-body`): a member
  // asks the others about a node id its configuration does not hold, and one that holds it answers
  // (actors/unknownSenders.ts)
  'member-query': z.object({ nodeId: uuidSchema }),
  'member-answer': z.object({ nodeId: uuidSchema, name: nodeNameSchema, voter: z.boolean(), key: z.string().regex(MEMBER_KEY_PATTERN).optional() }),
  // a member that started asks another for a fresh answer, whose (boot, seq) starts its replay window (actors/freshness.ts)
  'fresh-ask': z.object({ nonce: z.string().regex(NONCE_PATTERN) }),
  'fresh-answer': z.object({ nonce: z.string().regex(NONCE_PATTERN) }),
};
/** the peer messages that may carry a binary tail (codec.ts decode) */
export const TAILED_PEER_TYPES: ReadonlySet<string> = new Set(['snapshot-chunk']);

export const proposeBody = z.object({ command: z.unknown(), forwarded: z.boolean().optional() });
export const proposeBatchBody = ADMIN_PROTOCOL['propose.batch'].request;
export const readBody = z.object({ query: z.unknown(), stale: z.boolean().optional(), forwarded: z.boolean().optional() });

export const PING_EVERY_MS = 1000;
/** the estimated share of one raft message (other than its entries) in a bus message */
export const RAFT_MESSAGE_BYTES = 512;
export const FORWARD_TIMEOUT_MS = 10_000;

/** a snapshot chunk as it arrives (the header is the raft snapshot message it completes) */
export interface PeerChunk {
  message: RaftMessage;
  id: string;
  seq: number;
  last: boolean;
  /** format `json` */
  pairs?: Array<[string, unknown]>;
  /** format `records`: how many are in `tail` */
  records?: number;
  /** format `records`: the tail is one piece of a record larger than a chunk (snapshotStream.ts RecordsChunkBody) */
  part?: { at: number; of: number };
  /** the message's binary tail (format `records`), not yet checked */
  tail?: Uint8Array;
}

/** group a peer's messages into bus messages of at most `maxBytes` (estimated from the entries' cached sizes) */
export function packByBytes(messages: RaftMessage[], maxBytes: number): RaftMessage[][] {
  const parts: RaftMessage[][] = [];
  let part: RaftMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    let size = RAFT_MESSAGE_BYTES;
    if (m.type === 'append') for (const e of m.entries) size += entryBytes(e) + 1;
    if (bytes + size > maxBytes && part.length > 0) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(m);
    bytes += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

/**
 * `bus`, with every message published on a peer subject authenticated (runtime/wire/peerSignature.ts):
 * with the key this member shares with the receiver (`pairFor`, by the receiver's name, which the
 * subject ends with) where there is one, else signed with the member key; sent as it is when `pairFor`
 * says nobody checks it ('unchecked': this member's own key is not committed). A MAC covers `boot`
 * (this start's boot counter) and the next seq of the process, taken here, just before the message
 * goes to the bus: every peer message of the member passes here (raft batches, pings, snapshot chunks
 * and acks, member queries and answers), so the seqs one receiver sees grow in the order the bus
 * delivers them (runtime/wire/replayWindow.ts).
 */
export function authenticatingBus(bus: MemberBus, key: KeyObject, pairFor: (name: string) => PairKeys | null | 'unchecked', boot: number): MemberBus {
  return {
    publish: (subject, data) => {
      if (!subject.endsWith(PEER_SUFFIX)) return bus.publish(subject, data);
      const pair = pairFor(subject.slice(subject.lastIndexOf('.', subject.length - PEER_SUFFIX.length - 1) + 1, subject.length - PEER_SUFFIX.length));
      if (pair === 'unchecked') return bus.publish(subject, data);
      return bus.publish(subject, pair === null ? signPeerMessage(key, subject, data) : macPeerMessage(pair.send, subject, data, { boot, seq: nextPeerSeq() }));
    },
    subscribe: (...args) => bus.subscribe(...args),
    request: (...args) => bus.request(...args),
    flush: () => bus.flush(),
    get maxPayload() {
      return bus.maxPayload;
    },
    get deferredWrites() {
      return bus.deferredWrites;
    },
  };
}

const PEER_SUFFIX = '.peer';
