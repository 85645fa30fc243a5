// When is this node a stale survivor of its cluster (its store older than a `conclave recover`)?
// A peer's envelope saying "generation N+1" is not enough: anyone on the bus can write one, and
// believing it stops this node for good. The claim must come under the node id AND name of a member
// of this node's configuration (the recovered node keeps both), and that member must confirm it
// when asked on its own admin subject. One forged message can do neither. Anyone on the bus can
// answer on that subject too, so when the configuration holds the member's key, the answer must also
// carry the key rotations that `recover` signed with it (runtime/store/memberKey.ts), up to the
// claimed generation: only the holder of the member's committed key can make those.
import type { Membership } from '../machines/raft/types.ts';
import { adminCall } from '../runtime/admin.ts';
import { provenGeneration } from '../runtime/store/memberKey.ts';
import type { Bus } from '../runtime/transport/types.ts';
import type { Sender } from '../runtime/wire/codec.ts';

export interface GenerationClaim {
  name: string;
  nodeId: string | null;
  clusterId: string;
  generation: number;
}

const CONFIRM_TIMEOUT_MS = 2000;

/** why the claim cannot even be checked (not from a configured member), or null */
export function unprovenClaim(membership: Membership, claim: GenerationClaim): string | null {
  if (claim.nodeId === null) return `${claim.name} claims generation ${claim.generation} of cluster ${claim.clusterId} without a node id`;
  const member = membership.members.find((m) => m.nodeId === claim.nodeId);
  if (!member || member.name !== claim.name) {
    return `${claim.name} (${claim.nodeId}) claims generation ${claim.generation} of cluster ${claim.clusterId} but is not that member of this node's configuration`;
  }
  return null;
}

/**
 * Ask the member itself; null when it confirms the claim, else why it is not believed. `membership`
 * and `localGeneration`: this node's configuration and generation, which say the member's key.
 */
export async function unconfirmedClaim(
  bus: Pick<Bus, 'request'>,
  prefix: string,
  asker: Sender,
  claim: GenerationClaim,
  membership: Membership,
  localGeneration: number,
): Promise<string | null> {
  let answer: unknown;
  try {
    answer = await adminCall(bus, prefix, claim.name, asker, 'whois', {}, CONFIRM_TIMEOUT_MS);
  } catch (err) {
    return `${claim.name} did not confirm generation ${claim.generation}: ${(err as Error).message}`;
  }
  const who = (answer ?? {}) as { nodeId?: unknown; clusterId?: unknown; generation?: unknown; keyRotations?: unknown };
  if (who.nodeId !== claim.nodeId || who.clusterId !== claim.clusterId || typeof who.generation !== 'number' || who.generation < claim.generation) {
    return `${claim.name} does not confirm generation ${claim.generation} of cluster ${claim.clusterId} (it answers node ${String(who.nodeId)}, generation ${String(who.generation)})`;
  }
  const key = membership.members.find((m) => m.nodeId === claim.nodeId)?.key;
  // a configuration of an older release holds no keys: the answer is all there is to go on
  if (key === undefined || claim.nodeId === null) return null;
  const proven = provenGeneration(key, localGeneration, who.keyRotations, claim.nodeId, claim.clusterId);
  if (proven >= claim.generation) return null;
  return `${claim.name} does not prove generation ${claim.generation} of cluster ${claim.clusterId}: no key rotation signed with its committed key reaches it (proven: ${proven})`;
}
