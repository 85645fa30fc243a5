// The cluster version: the protocol version a whole cluster speaks, committed in its configuration
// (Membership.version; absent: 1, a cluster of release 0.1). Every member states in its pings the
// versions it speaks; the leader raises the cluster version to the highest that every voter and
// learner speaks once it has heard each of them say so, and never lowers it. What changes the wire
// is switched on by the committed version, not by the binary (runtime/wire/envelope.ts lists them):
// raising 1 → 2 commits every member's key, and from then on peer messages are authenticated and a
// node of release 0.1 is refused.
//
// Keys in a cluster upgraded from 0.1: a member whose key is not committed states it in its pings
// with a proof that it holds it (peerSignature.ts, proveMemberKey), and the leader commits the keys
// with the raise. Nothing on the bus of such a cluster is authenticated yet, so the key a member
// states is taken on first use; two different proven keys stated for one node id hold the raise back
// (and are logged) until the leader changes — an operator can then remove the node and add it again.
import type { Membership } from '../machines/raft/types.ts';
import { conclaveError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log/logger.ts';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../runtime/wire/envelope.ts';
import { checkMemberKeyProof } from '../runtime/wire/peerSignature.ts';
import type { Clock, TimerHandle } from './ports.ts';

export interface Speaks {
  min: number;
  max: number;
}

/** what this build speaks */
export const SPEAKS: Speaks = Object.freeze({ min: MIN_PROTOCOL_VERSION, max: PROTOCOL_VERSION });
/** what a member that states nothing speaks: release 0.1 */
const SPEAKS_V1: Speaks = Object.freeze({ min: 1, max: 1 });

/** the committed cluster version of `membership` */
export function clusterVersionOf(membership: Membership): number {
  return membership.version ?? 1;
}

/**
 * A store whose committed configuration has a cluster version this build does not speak (a newer
 * release raised it; starting this one is a downgrade below it) is not started: its messages would
 * be refused by every member, and its log may hold what it cannot read.
 */
export function refuseNewerClusterVersion(name: string, clusterId: string | null, applied: Membership): void {
  const version = clusterVersionOf(applied);
  if (version <= SPEAKS.max) return;
  throw conclaveError(
    'PROTOCOL_VERSION',
    `${name} cannot start: its cluster ${clusterId ?? '(no id)'} runs at cluster version ${version}, and this release speaks ${range(SPEAKS)}; a cluster version is never lowered — run a release that speaks ${version} on this data dir`,
  );
}

/** a ping's body (actors/peerWire.ts) */
export interface PingBody {
  speaks?: Speaks;
  key?: { key: string; proof: string };
}

interface Statement {
  speaks: Speaks;
  /** a proven key it stated, if any */
  key: string | null;
  /** two different proven keys were stated under this node id */
  conflict: boolean;
  at: number;
}

/** what the leader does about the cluster version now */
export type VersionPlan =
  | { kind: 'raise'; version: number; keys: Array<{ nodeId: string; key: string }> }
  /** nothing to raise to: every member speaks the committed version at most */
  | { kind: 'current' }
  /** a higher version is possible once these members answer or state a key */
  | { kind: 'waiting'; why: string };

/**
 * The pure decision: raise to the highest version every member speaks, when that is above the
 * committed one, every member was heard within `maxAgeMs`, and (for version 2 and above) every
 * member has a key — committed, or stated and proven without conflict.
 */
export function planClusterVersion(membership: Membership, self: { nodeId: string; key: string | null }, statements: ReadonlyMap<string, Statement>, now: number, maxAgeMs: number): VersionPlan {
  const current = clusterVersionOf(membership);
  let target = SPEAKS.max;
  const unheard: string[] = [];
  const behind: string[] = [];
  for (const m of membership.members) {
    if (m.nodeId === self.nodeId) continue;
    const s = statements.get(m.nodeId);
    if (s === undefined || now - s.at > maxAgeMs) {
      unheard.push(m.name);
      continue;
    }
    if (s.speaks.max <= current) behind.push(`${m.name} (speaks ${range(s.speaks)})`);
    target = Math.min(target, s.speaks.max);
  }
  if (behind.length > 0 || target <= current) return { kind: 'current' };
  if (unheard.length > 0) return { kind: 'waiting', why: `version ${target} waits to hear from ${unheard.join(', ')}` };
  const keys: Array<{ nodeId: string; key: string }> = [];
  const keyless: string[] = [];
  for (const m of membership.members) {
    if (m.key !== undefined) continue;
    const stated = m.nodeId === self.nodeId ? { key: self.key, conflict: false } : statements.get(m.nodeId)!;
    if (stated.key === null || stated.conflict) keyless.push(stated.conflict ? `${m.name} (two different keys stated for it)` : m.name);
    else keys.push({ nodeId: m.nodeId, key: stated.key });
  }
  if (keyless.length > 0) return { kind: 'waiting', why: `version ${target} needs the member keys of ${keyless.join(', ')}` };
  return { kind: 'raise', version: target, keys };
}

/** what a member says about the cluster version (status, inspector) */
export interface ClusterVersionView {
  /** the committed cluster version */
  version: number;
  /** what this node speaks */
  speaks: Speaks;
  /** peer messages are authenticated (every member's key is committed), or why not */
  authentication: 'on' | 'off';
  /** one line for a person: what holds a higher version back, or what the version means */
  note: string;
}

export function range(s: Speaks): string {
  return s.min === s.max ? `${s.min}` : `${s.min}..${s.max}`;
}

export interface ClusterVersionHands {
  readonly nodeId: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** the configuration in force (latest appended) and the committed one */
  membership(): Membership;
  appliedMembership(): Membership;
  clusterId(): string | null;
  /** this member's key: its public half, and a proof for `clusterId` (null: a store without one) */
  ownKey(): { key: string; prove(clusterId: string): string } | null;
  isLeader(): boolean;
  /** leader: commit the raise (a configuration change); rejects when it cannot now */
  raise(version: number, keys: Array<{ nodeId: string; key: string }>): Promise<void>;
}

/** how often the leader looks again, and how old a member's statement may be (a member pings every second) */
const CHECK_EVERY_MS = 1000;
const STATEMENT_MAX_AGE_MS = 5000;

export class ClusterVersion {
  private readonly statements = new Map<string, Statement>();
  private timer: TimerHandle | null = null;
  private raising = false;
  private proof: { clusterId: string; key: string; proof: string } | null = null;
  private lastWaiting: string | null = null;

  constructor(private readonly hands: ClusterVersionHands) {}

  start(): void {
    this.timer = this.hands.clock.setInterval(() => this.check(), CHECK_EVERY_MS);
  }

  stop(): void {
    if (this.timer) this.hands.clock.clearInterval(this.timer);
  }

  /** the committed version: what this member's messages state */
  committed(): number {
    return clusterVersionOf(this.hands.appliedMembership());
  }

  /** what this member's pings carry: the versions it speaks, and its key while that is not committed */
  pingBody(): PingBody {
    const h = this.hands;
    const clusterId = h.clusterId();
    const own = h.ownKey();
    const self = h.membership().members.find((m) => m.nodeId === h.nodeId);
    if (own === null || clusterId === null || self === undefined || self.key !== undefined) return { speaks: SPEAKS };
    if (this.proof?.clusterId !== clusterId || this.proof.key !== own.key) this.proof = { clusterId, key: own.key, proof: own.prove(clusterId) };
    return { speaks: SPEAKS, key: { key: own.key, proof: this.proof.proof } };
  }

  /** a member's ping (its sender already checked by inbound.ts) */
  heard(nodeId: string, name: string, body: PingBody): void {
    const previous = this.statements.get(nodeId);
    let key = previous?.key ?? null;
    let conflict = previous?.conflict ?? false;
    const clusterId = this.hands.clusterId();
    if (body.key !== undefined && clusterId !== null && checkMemberKeyProof(clusterId, nodeId, body.key.key, body.key.proof)) {
      if (key !== null && key !== body.key.key && !conflict) {
        conflict = true;
        this.hands.log.warn({ member: name, nodeId, keys: [key, body.key.key] }, `two different member keys are stated for ${name} (${nodeId}): neither is committed, and the cluster version is not raised while this leader leads; if ${name} was not re-created, something else publishes as it on the bus`);
      }
      key ??= body.key.key;
    }
    this.statements.set(nodeId, { speaks: body.speaks ?? SPEAKS_V1, key, conflict, at: this.hands.clock.now() });
  }

  /** what `nodeId` last said it speaks (undefined: not heard from since this member started) */
  speaksOf(nodeId: string): Speaks | undefined {
    return nodeId === this.hands.nodeId ? SPEAKS : this.statements.get(nodeId)?.speaks;
  }

  view(): ClusterVersionView {
    const applied = this.hands.appliedMembership();
    const version = clusterVersionOf(applied);
    const keyless = applied.members.filter((m) => m.key === undefined).map((m) => m.name);
    const authentication = keyless.length === 0 ? 'on' : 'off';
    let note: string;
    if (version > SPEAKS.max) note = `this node speaks ${range(SPEAKS)} only: run a release that speaks ${version}`;
    else if (keyless.length > 0) {
      const old = applied.members.filter((m) => m.nodeId !== this.hands.nodeId && (this.speaksOf(m.nodeId)?.max ?? 1) < 2).map((m) => m.name);
      note =
        old.length > 0
          ? `mixed versions: peer messages are not authenticated until ${old.join(', ')} run${old.length === 1 ? 's' : ''} a release that speaks 2 (security is that of the oldest member)`
          : `peer messages are not authenticated yet: ${keyless.join(', ')} without a committed key; the leader commits the keys as it raises the cluster version`;
    } else note = version >= 2 ? 'every member key is committed: peer messages are authenticated' : 'version 1';
    return { version, speaks: SPEAKS, authentication, note };
  }

  /** leader: raise the cluster version when every member speaks a higher one */
  private check(): void {
    const h = this.hands;
    if (!h.isLeader() || this.raising) return;
    const membership = h.membership();
    // one configuration change at a time: wait until the latest one is committed
    if (membership !== h.appliedMembership() && JSON.stringify(membership) !== JSON.stringify(h.appliedMembership())) return;
    const own = h.ownKey();
    const plan = planClusterVersion(membership, { nodeId: h.nodeId, key: own?.key ?? null }, this.statements, h.clock.now(), STATEMENT_MAX_AGE_MS);
    if (plan.kind === 'waiting') {
      if (plan.why !== this.lastWaiting) h.log.info({ clusterVersion: clusterVersionOf(membership) }, `cluster version: ${plan.why}`);
      this.lastWaiting = plan.why;
      return;
    }
    this.lastWaiting = null;
    if (plan.kind !== 'raise') return;
    this.raising = true;
    const from = clusterVersionOf(membership);
    h.log.info({ from, to: plan.version, keys: plan.keys.length }, `raising the cluster version from ${from} to ${plan.version}: every member speaks it${plan.keys.length > 0 ? `; committing ${plan.keys.length} member key(s) with it` : ''}`);
    h.raise(plan.version, plan.keys).then(
      () => {
        this.raising = false;
        h.log.info({ clusterVersion: plan.version }, `cluster version ${plan.version} committed`);
      },
      (err: unknown) => {
        this.raising = false;
        h.log.info({ err, to: plan.version }, `cluster version ${plan.version} not committed now; trying again`);
      },
    );
  }
}
