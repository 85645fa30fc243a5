// When is this node a stale survivor of its cluster (its store older than a `conclave recover`)?
// A peer's envelope saying "generation N+1" is not enough: anyone on the bus can write one, and
// believing it stops this node for good. The claim must come under the node id AND name of a member
// of this node's configuration (the recovered node keeps both), and that member must confirm it
// when asked on its own admin subject. One forged message can do neither; impersonating a member's
// subject as well is what peer authentication (a later issue) closes.
import type { Membership } from '../machines/raft/types.ts';
import { adminCall } from '../runtime/admin.ts';
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

/** ask the member itself; null when it confirms the claim, else why it is not believed */
export async function unconfirmedClaim(bus: Pick<Bus, 'request'>, prefix: string, asker: Sender, claim: GenerationClaim): Promise<string | null> {
  let answer: unknown;
  try {
    answer = await adminCall(bus, prefix, claim.name, asker, 'whois', {}, CONFIRM_TIMEOUT_MS);
  } catch (err) {
    return `${claim.name} did not confirm generation ${claim.generation}: ${(err as Error).message}`;
  }
  const who = (answer ?? {}) as { nodeId?: unknown; clusterId?: unknown; generation?: unknown };
  if (who.nodeId === claim.nodeId && who.clusterId === claim.clusterId && typeof who.generation === 'number' && who.generation >= claim.generation) return null;
  return `${claim.name} does not confirm generation ${claim.generation} of cluster ${claim.clusterId} (it answers node ${String(who.nodeId)}, generation ${String(who.generation)})`;
}
