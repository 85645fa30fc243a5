// Helpers of the hostile-input tests: forge envelopes on a node's subjects, and take the part of a
// node's state that invalid input must never change.
import type { Controller } from '../../runtime/controller.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { encode, type Sender } from '../../runtime/wire/codec.ts';

/** what no invalid (or forged) peer message may change: phase, term, leader, configuration */
export function stateOf(c: Controller) {
  const s = c.status();
  return {
    phase: s.phase,
    term: s.term,
    leader: s.leader,
    members: s.members.map((m) => ({ name: m.name, nodeId: m.nodeId, voter: m.voter })),
  };
}

/** the drop counters of a member's runtime, by reason */
export function drops(c: Controller, reason: string): number {
  return c.memberRuntime().dropped.get(reason) ?? 0;
}

export function senderOf(c: Controller, override: Partial<Sender> = {}): Sender {
  const id = c.store.identity();
  return { name: c.name, nodeId: id.nodeId, clusterId: id.clusterId, generation: id.generation, ...override };
}

export function forgePeer(bus: Bus, prefix: string, to: string, sender: Sender, type: string, body: unknown): void {
  bus.publish(`${prefix}.node.${to}.peer`, encode(sender, type, body));
}

export function leaderOf(nodes: Controller[]): Controller {
  const leader = nodes.find((c) => c.status().role === 'leader');
  if (!leader) throw new Error(`no leader among ${nodes.map((c) => c.name).join(', ')}`);
  return leader;
}
