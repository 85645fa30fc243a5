// Inbound peer traffic: every message on `<prefix>.node.<name>.peer` is decoded and checked (wire
// schema, the join rule, cluster id, identity generation, member identity — including senders the
// configuration does not know, unknownSenders.ts —, membership, addressing) before it reaches the
// raft core. What fails is dropped, counted by reason and logged rate-limited — never a crash.
import { checkJoin, validNodeName } from '../machines/identity/index.ts';
import { checkGeneration } from '../machines/identity/generation.ts';
import type { RaftMessage } from '../machines/raft/messages.ts';
import type { Member, Membership, Role } from '../machines/raft/types.ts';
import { conclaveError } from '../runtime/errors.ts';
import type { Refusal } from '../runtime/events.ts';
import type { Logger } from '../runtime/log/logger.ts';
import type { RateLimitedLog } from '../runtime/log/rateLimit.ts';
import type { BusMessage } from '../runtime/transport/types.ts';
import { decode, type Envelope, encode, type Sender } from '../runtime/wire/codec.ts';
import type { PairwiseKeys } from '../runtime/wire/pairwiseKeys.ts';
import { checkPeerAuth, memberPublicKey, type PeerCounter, UNSAFE_NO_PEER_AUTH } from '../runtime/wire/peerSignature.ts';
import { ReplayWindow } from '../runtime/wire/replayWindow.ts';
import type { Liveness } from './liveness.ts';
import { type PeerChunk, peerBodies, TAILED_PEER_TYPES } from './peerWire.ts';
import type { Clock, MemberBus } from './ports.ts';
import type { ChunkAck } from './snapshotStream.ts';
import { type GenerationClaim, unconfirmedClaim, unprovenClaim } from './staleGeneration.ts';
import { Freshness } from './freshness.ts';
import type { PingBody } from './clusterVersion.ts';
import { type MemberAnswer, UnknownSenders } from './unknownSenders.ts';

/**
 * Deliberate faults for the simulator's planted-bug tests. Only the test code constructs a member
 * with these (MemberRuntimeOptions.testFaults): no configuration file or bus message reaches them.
 */
export interface InboundFaults {
  /** skip the join rule on peer messages: raft traffic of another cluster reaches the core */
  skipJoinRule?: boolean;
}

export interface InboundHands {
  readonly name: string;
  readonly prefix: string;
  readonly bus: MemberBus;
  readonly clock: Clock;
  readonly log: Logger;
  readonly dropLog: RateLimitedLog;
  readonly liveness: Liveness;
  readonly nodeId: string;
  /** the cluster id this node acts under (null: none yet) */
  clusterId(): string | null;
  /** the identity generation it states (undefined until its cluster id is durable) */
  generation(): number | undefined;
  sender(): Sender;
  role(): Role;
  membership(): Membership;
  /** this member's pairwise keys, to check what members send it with a MAC (null: it has no member key) */
  readonly pairwise?: PairwiseKeys | null;
  stopped(): boolean;
  halt(err: unknown): void;
  /** raft messages for the core */
  toCore(messages: RaftMessage[]): void;
  /** a chunk of a snapshot transfer, and its size on the bus (`bytes`) */
  onSnapshotChunk(chunk: PeerChunk, from: string | null, generation: number | undefined, bytes: number, decodeMs: number): void;
  onSnapshotAck(from: string, ack: ChunkAck): void;
  onRefused?(refusal: Refusal): void;
  onNonMember?(name: string, nodeId: string): void;
  /** a member's ping: the versions it speaks, and its key while that is not committed (clusterVersion.ts) */
  onPing?(nodeId: string, name: string, body: PingBody): void;
  /** this node's window for a member has just started (freshness.ts) */
  synced?(nodeId: string): void;
}

export class Inbound {
  /** peer input refused, counted by reason */
  readonly dropped = new Map<string, number>();
  /** names of peers heard from: a learner that is not yet in its own configuration answers its leader by this */
  readonly peerNames = new Map<string, string>();
  /** node ids outside the configuration: which were asked about, which a member vouched for (unknownSenders.ts) */
  readonly unknownSenders = new UnknownSenders();
  /** per member, the highest (boot, seq) of a MACed message taken from it: what is not after it is a replay */
  readonly replay = new ReplayWindow();
  /** the questions that start those windows after this node started (freshness.ts) */
  private readonly freshness: Freshness;
  /** the (boot, seq) of the message being handled, once its MAC checked, and its sender (configured or vouched for) */
  private counter: PeerCounter | null = null;
  private member: Member | null = null;
  /** stale-generation peers: when each was last reported and told (rate limit) */
  private readonly staleTold = new Map<string, number>();
  /** a claim that this node is stale is being checked with the member that made it */
  private confirmingGeneration = false;
  /** the subject peer messages arrive on: a signature covers it (it names the receiver) */
  private readonly subject: string;

  constructor(
    private readonly hands: InboundHands,
    private readonly faults: InboundFaults = {},
  ) {
    this.subject = `${hands.prefix}.node.${hands.name}.peer`;
    this.freshness = new Freshness(hands, this.replay);
  }

  /**
   * At start, and when the configuration changes (a member added, this node's first configuration):
   * ask every member whose key is committed and whose window has not started for a fresh answer
   * (freshness.ts), so that its first messages — a vote request, say — are not dropped as unsynced.
   */
  greet(): void {
    const membership = this.hands.membership();
    this.greeted = membership;
    if (this.hands.pairwise == null || UNSAFE_NO_PEER_AUTH) return;
    for (const m of membership.members) if (m.key !== undefined && m.nodeId !== this.hands.nodeId && !this.replay.knows(m.nodeId)) this.freshness.ask(m);
  }

  /** what `member` sends is taken now: no window to wait for (no key committed, or no MACs at all), or its window started */
  syncedWith(member: Member): boolean {
    return member.key === undefined || this.hands.pairwise == null || UNSAFE_NO_PEER_AUTH || this.replay.knows(member.nodeId);
  }

  /** the configuration greet() last asked the members of */
  private greeted: Membership | null = null;

  /** `log`: false for a drop expected in normal running (unsynced, once per member after a start): counted only */
  drop(reason: string, detail: string, from?: string, log = true): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
    if (!log) return;
    // keyed by reason: a sender that changes its name gets no more lines than a few per interval
    this.hands.dropLog.warn(`peer:${reason}`, { reason, detail, from, dropped: this.dropped.get(reason) }, 'dropped peer message', from);
  }

  onPeerMessage(msg: BusMessage): void {
    const h = this.hands;
    if (h.stopped()) return;
    const decodeStart = performance.now();
    const decoded = decode(msg.data, peerBodies, TAILED_PEER_TYPES);
    const decodeMs = performance.now() - decodeStart;
    if (!decoded.ok) {
      this.drop(decoded.failure, decoded.detail);
      return;
    }
    const { envelope } = decoded;
    const clusterId = h.clusterId();
    // The join rule on every peer message: a peer whose cluster id diverges is dropped and reported.
    const verdict = checkJoin({ name: h.name, clusterId }, { name: envelope.from, clusterId: envelope.clusterId });
    if (!verdict.allowed && this.faults.skipJoinRule !== true) {
      this.drop('foreign-cluster', verdict.message, envelope.from);
      h.onRefused?.({ reason: 'foreign-cluster', from: envelope.from, localClusterId: clusterId, remoteClusterId: envelope.clusterId, message: verdict.message });
      return;
    }
    if (h.membership() !== this.greeted) this.greet();
    else this.freshness.askAgain();
    const members = h.membership().members;
    // without a cluster id only a member of an older cluster that has not applied its new id yet
    if (envelope.clusterId === null && !(envelope.nodeId !== null && members.some((m) => m.nodeId === envelope.nodeId))) {
      this.drop('no-cluster-id', `${envelope.from} sent raft traffic without a cluster id`, envelope.from);
      return;
    }
    // Same cluster id, other identity generation (disaster recovery): the older side is stale.
    const gen = h.generation();
    if (envelope.gen !== undefined && gen !== undefined && envelope.gen !== gen && envelope.clusterId !== null) {
      this.onGenerationConflict({ name: envelope.from, nodeId: envelope.nodeId, clusterId: envelope.clusterId, generation: envelope.gen });
      return;
    }
    // after the generation check: a member recovered under a new generation signs with its new key,
    // which a stale survivor's configuration does not hold (a claim of staleness is checked with the
    // member that makes it, staleGeneration.ts); before anything is heard or acted on
    this.counter = null;
    this.member = null;
    const impostor = this.checkSender(envelope, decoded.body, msg.data);
    if (impostor !== null) {
      this.drop(impostor.reason, impostor.detail, envelope.from, impostor.reason !== 'unsynced');
      return;
    }
    if (envelope.nodeId) {
      h.liveness.heard(envelope.nodeId);
      if (this.peerNames.get(envelope.nodeId) !== envelope.from && this.peerNames.size < 1024) this.peerNames.set(envelope.nodeId, envelope.from);
    }
    if (envelope.nodeId && h.role() === 'leader' && !members.some((m) => m.nodeId === envelope.nodeId)) {
      // a member removed while it was away does not get the config that removed it: tell it
      this.drop('not-a-member', `${envelope.from} (${envelope.nodeId}) is not in the configuration`, envelope.from);
      h.onNonMember?.(envelope.from, envelope.nodeId);
      return;
    }
    const body = decoded.body as Record<string, unknown>;
    switch (envelope.type) {
      case 'ping':
        if (envelope.nodeId !== null && members.some((m) => m.nodeId === envelope.nodeId)) h.onPing?.(envelope.nodeId, envelope.from, body as PingBody);
        return;
      case 'raft': {
        const messages = (body as { messages: RaftMessage[] }).messages;
        const addressed = messages.filter((m) => m.from === envelope.nodeId && m.to === h.nodeId && m.type !== 'snapshot');
        if (messages.some((m) => m.type === 'snapshot')) {
          // a snapshot's state comes in snapshot-chunk messages: a bare one would install nothing
          this.drop('snapshot-outside-transfer', 'a snapshot message outside a snapshot transfer', envelope.from);
        } else if (addressed.length !== messages.length) {
          this.drop('misaddressed', `${messages.length - addressed.length} message(s) not from ${envelope.nodeId} to ${h.nodeId}`, envelope.from);
        }
        if (addressed.length > 0) h.toCore(addressed);
        return;
      }
      case 'snapshot-chunk':
        h.onSnapshotChunk({ ...(body as unknown as PeerChunk), tail: decoded.tail }, envelope.nodeId, envelope.gen, msg.data.byteLength, decodeMs);
        return;
      case 'snapshot-ack':
        if (envelope.nodeId) h.onSnapshotAck(envelope.nodeId, body as unknown as ChunkAck);
        return;
      case 'member-query':
        this.answerQuery(envelope, (body as { nodeId: string }).nodeId);
        return;
      case 'member-answer':
        this.takeAnswer(envelope, body as unknown as MemberAnswer);
        return;
      case 'fresh-ask':
        if (this.member !== null) this.freshness.answer(this.member, (body as { nonce: string }).nonce);
        return;
      case 'fresh-answer':
        if (this.member !== null && this.counter !== null) this.freshness.take(this.member, (body as { nonce: string }).nonce, this.counter);
    }
  }

  /**
   * Member identity: a message under the node id of a member whose key is committed in the
   * configuration must be signed with that key, or MACed with the key it shares with this member
   * (runtime/wire/peerSignature.ts, pairwiseKeys.ts); one of a member
   * without a committed key (a node of an older release, a cluster from before member keys) is taken
   * as before. A MACed message must come after every one taken from its sender (replayWindow.ts).
   * A TimeoutNow must come from a member the configuration lets lead (a voter); the other leader's
   * messages need not, since this node may not hold yet the entry that made the sender a voter.
   * A node id outside the configuration: see unknownSender. Null when the sender may speak; else why not.
   */
  private checkSender(envelope: Envelope, body: unknown, data: Uint8Array): { reason: string; detail: string } | null {
    if (envelope.nodeId === null) return null;
    const membership = this.hands.membership();
    let member: Member | undefined = membership.members.find((m) => m.nodeId === envelope.nodeId);
    if (member === undefined) {
      const unknown = this.unknownSender(envelope, envelope.nodeId, body, membership);
      if (unknown === null || 'reason' in unknown) return unknown;
      member = unknown;
    }
    const who = `${envelope.type} from ${envelope.from} (${envelope.nodeId})`;
    if (member.key !== undefined && !UNSAFE_NO_PEER_AUTH) {
      const key = memberPublicKey(member.key);
      const { check, counter } = key === null ? { check: 'bad-signature', counter: null } : checkPeerAuth(key, this.hands.pairwise?.with(member.key) ?? null, this.subject, data);
      if (check === 'unsigned') return { reason: 'unsigned', detail: `${who} is not authenticated, and its member key is committed` };
      if (check === 'bad-signature') return { reason: 'bad-signature', detail: `${who} is not authenticated by its committed member key` };
      this.counter = counter;
      this.member = member;
      const latest = counter === null ? null : this.replay.check(member.nodeId, counter);
      if (latest === 'unsynced') {
        // a question and its answer carry no state: their handlers judge them
        if (envelope.type === 'fresh-ask' || envelope.type === 'fresh-answer') return null;
        this.freshness.ask(member);
        return { reason: 'unsynced', detail: `${who}: nothing taken from ${member.name} since this node started; it is asked for a fresh answer` };
      }
      if (latest !== null) {
        return { reason: 'replayed', detail: `${who} was sent at boot ${counter!.boot}, seq ${counter!.seq}: not after boot ${latest.boot}, seq ${latest.seq}, already taken from it` };
      }
    }
    if (!member.voter && sentToTransferee(envelope.type, body)) return { reason: 'not-a-voter', detail: `${who} is a TimeoutNow, and ${member.name} is not a voter` };
    return null;
  }

  /**
   * A sender under a node id outside this node's configuration (unknownSenders.ts): null when it is
   * judged as before member keys (a configuration with a member without a key, or this node leads and
   * drops it below, telling a node it removed so); the member a member of the configuration vouched
   * for, to be checked like one; else why it is dropped — and, unless the sender claims to be the
   * leader handing over (TimeoutNow) or speaks of members, the members are asked about it.
   */
  private unknownSender(envelope: Envelope, nodeId: string, body: unknown, membership: Membership): Member | { reason: string; detail: string } | null {
    const h = this.hands;
    if (h.pairwise == null || UNSAFE_NO_PEER_AUTH || !UnknownSenders.guards(membership) || h.role() === 'leader') return null;
    const who = `${envelope.type} from ${envelope.from} (${nodeId})`;
    // only the leader sends it, to a member up to date with its log, which therefore holds the leader in its configuration
    if (envelope.type === 'raft' && (body as { messages: RaftMessage[] }).messages.some((m) => m.type === 'timeout-now')) {
      return { reason: 'unknown-sender', detail: `${who}: a TimeoutNow from a node outside this node's configuration` };
    }
    if (envelope.type === 'member-query' || envelope.type === 'member-answer') {
      return { reason: 'unknown-sender', detail: `${who}: only a member of this node's configuration asks or answers about members` };
    }
    const now = h.clock.now();
    const vouched = this.unknownSenders.vouched(nodeId, membership, now);
    if (vouched !== null) {
      if (this.unknownSenders.renewable(nodeId, now) && this.unknownSenders.shouldAsk(nodeId, now)) this.askMembers(nodeId, membership);
      return vouched;
    }
    if (this.unknownSenders.shouldAsk(nodeId, now)) this.askMembers(nodeId, membership);
    return { reason: 'unknown-sender', detail: `${who}: not in this node's configuration, and no member of it has vouched for it (its members are asked)` };
  }

  /** ask every other member whether `nodeId` is in its configuration (over the authenticated peer channel) */
  private askMembers(nodeId: string, membership: Membership): void {
    const h = this.hands;
    const query = encode(h.sender(), 'member-query', { nodeId });
    for (const m of membership.members) {
      if (m.nodeId === h.nodeId) continue;
      try {
        h.bus.publish(`${h.prefix}.node.${m.name}.peer`, query);
      } catch (err) {
        h.dropLog.warn('member-query', { err, to: m.name, nodeId }, 'could not ask a member about a sender outside the configuration', m.name);
      }
    }
  }

  /**
   * The sender of the message being handled when checkSender authenticated it by its committed key
   * (unknownSender refuses member-query/answer from outside the configuration); else it is dropped.
   */
  private authenticatedMember(envelope: Envelope): Member | null {
    if (this.member !== null) return this.member;
    this.drop('unknown-sender', `${envelope.type} from ${envelope.from} (${envelope.nodeId}): only a member whose key is committed may ask or answer about members`, envelope.from);
    return null;
  }

  /** a member asks about `nodeId`: answer from this node's own configuration, only when it holds the id */
  private answerQuery(envelope: Envelope, nodeId: string): void {
    const h = this.hands;
    const asker = this.authenticatedMember(envelope);
    if (asker === null) return;
    const asked = h.membership().members.find((m) => m.nodeId === nodeId);
    if (asked === undefined) return;
    const answer: MemberAnswer = { nodeId: asked.nodeId, name: asked.name, voter: asked.voter };
    if (asked.key !== undefined) answer.key = asked.key;
    try {
      h.bus.publish(`${h.prefix}.node.${asker.name}.peer`, encode(h.sender(), 'member-answer', answer));
    } catch (err) {
      h.dropLog.warn('member-answer', { err, to: asker.name, nodeId }, 'could not answer a member about a node id', asker.name);
    }
  }

  /** a member says who `answer.nodeId` is in its configuration: vouched for, if this node asked */
  private takeAnswer(envelope: Envelope, answer: MemberAnswer): void {
    const h = this.hands;
    const by = this.authenticatedMember(envelope);
    if (by === null) return;
    if (this.unknownSenders.answered(answer, by.nodeId, h.membership(), h.clock.now())) {
      h.log.info({ nodeId: answer.nodeId, name: answer.name, voter: answer.voter, by: by.name }, 'a member vouched for a node this configuration does not hold yet: its messages are taken, checked by its key');
    }
  }

  /**
   * A peer of this cluster at another generation. It is older: drop, report (rate-limited) and
   * tell it (a ping carries our generation). We are older: this store is a stale survivor of the
   * cluster before a `conclave recover` — stop taking part (phase failed, with the reason), once the
   * member that says so confirms it (actors/staleGeneration.ts).
   */
  private onGenerationConflict(claim: GenerationClaim): void {
    const h = this.hands;
    const { name: from, clusterId } = claim;
    const verdict = checkGeneration({ name: h.name, clusterId: h.clusterId(), generation: h.generation() }, claim);
    if (!verdict.conflict) return;
    if (verdict.stale === 'local') {
      this.checkStaleClaim(claim, verdict.message, verdict.localGeneration);
      return;
    }
    this.dropped.set('stale-generation', (this.dropped.get('stale-generation') ?? 0) + 1);
    const now = h.clock.now();
    // told on its own subject, which a name that is not a node name cannot have
    if (!validNodeName(from) || now - (this.staleTold.get(from) ?? 0) < 2000) return;
    if (this.staleTold.size > 1024) this.staleTold.clear();
    this.staleTold.set(from, now);
    h.onRefused?.({ reason: 'stale-generation', from, localClusterId: h.clusterId(), remoteClusterId: clusterId, message: verdict.message });
    try {
      h.bus.publish(`${h.prefix}.node.${from}.peer`, encode(h.sender(), 'ping', {}));
    } catch (err) {
      h.dropLog.warn('stale-tell', { err, to: from }, 'could not tell a stale peer', from);
    }
  }

  private checkStaleClaim(claim: GenerationClaim, message: string, localGeneration: number): void {
    const h = this.hands;
    const membership = h.membership();
    const unproven = unprovenClaim(membership, claim);
    if (unproven !== null) {
      this.drop('unproven-generation', unproven, claim.name);
      return;
    }
    if (this.confirmingGeneration) return;
    this.confirmingGeneration = true;
    unconfirmedClaim(h.bus, h.prefix, h.sender(), claim, membership, localGeneration)
      .then((why) => {
        if (h.stopped()) return;
        if (why !== null) {
          this.drop('unconfirmed-generation', why, claim.name);
          return;
        }
        const { clusterId, generation } = claim;
        h.log.error({ clusterId, generation: localGeneration, clusterGeneration: generation, from: claim.name }, message);
        h.halt(conclaveError('STALE_GENERATION', message, { clusterId, generation: localGeneration, clusterGeneration: generation }));
      })
      .finally(() => {
        this.confirmingGeneration = false;
      });
  }
}

/**
 * A TimeoutNow: the leader sends it only to a member whose log matches its own, which therefore holds
 * the configuration that lets the leader lead. Its appends, heartbeats and snapshots are taken from a
 * learner too: a leader may be a voter by an entry this node does not hold yet (its promotion, appended
 * by a leader that lost leadership before it committed), and only a leader can bring that entry here.
 */
function sentToTransferee(type: string, body: unknown): boolean {
  return type === 'raft' && (body as { messages: RaftMessage[] }).messages.some((m) => m.type === 'timeout-now');
}
