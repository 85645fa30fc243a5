// Helpers of the hostile-input tests: forge envelopes on a node's subjects, and take the part of a
// node's state that invalid input must never change.
import type { KeyObject } from 'node:crypto';
import { type Controller, type ControllerOptions, startController } from '../../runtime/controller.ts';
import { codeOf } from '../../runtime/errors.ts';
import { connectNats } from '../../runtime/transport/index.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { encode, type Sender } from '../../runtime/wire/codec.ts';
import { signPeerMessage } from '../../runtime/wire/peerSignature.ts';
import { waitUntil } from '../helpers/cli.ts';
import { type NatsServerHandle, startNatsServer } from '../helpers/natsServer.ts';

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

/** what no refused request or forged message may change, on every node: phase, term, leader, configuration, log end, data */
export function clusterState(nodes: readonly Controller[]) {
  return nodes.map((c) => {
    const s = c.status();
    const raft = c.memberRuntime().raftStatus();
    return { phase: s.phase, term: s.term, leader: s.leader, members: raft.membership.members, lastIndex: raft.lastIndex, data: appliedPairs(c) };
  });
}

/** the replicated state as the node has applied it (the store alone may lag it: actors/appliedState.ts) */
export function appliedPairs(c: Controller): Array<[string, unknown]> {
  return c.memberRuntime().appliedState().pairs;
}

/** one key of the replicated state as the node has applied it */
export function appliedValue(c: Controller, key: string): unknown {
  return appliedPairs(c).find(([k]) => k === key)?.[1];
}

/** how many admin requests the nodes refused for `reason` (e.g. `admin:unauthorized:unsigned`) */
export function refusedCount(nodes: readonly Controller[], reason: string): number {
  return nodes.reduce((n, c) => n + (c.refusedCounts().find((r) => r.reason === reason)?.count ?? 0), 0);
}

/** the drop counters of a member's runtime, by reason */
export function drops(c: Controller, reason: string): number {
  return c.memberRuntime().dropped.get(reason) ?? 0;
}

export function senderOf(c: Controller, override: Partial<Sender> = {}): Sender {
  const id = c.store.identity();
  return { name: c.name, nodeId: id.nodeId, clusterId: id.clusterId, generation: id.generation, ...override };
}

/** publish a forged peer message; `key`: signed with it (as whoever holds that member key could) */
export function forgePeer(bus: Bus, prefix: string, to: string, sender: Sender, type: string, body: unknown, key?: KeyObject): void {
  const subject = `${prefix}.node.${to}.peer`;
  const data = encode(sender, type, body);
  bus.publish(subject, key ? signPeerMessage(key, subject, data) : data);
}

/** a member's own key: what a compromised member (or its stolen store) signs with */
export function keyOf(c: Controller): KeyObject {
  return c.store.memberKey().privateKey;
}

export function leaderOf(nodes: Controller[]): Controller {
  const leader = nodes.find((c) => c.status().role === 'leader');
  if (!leader) throw new Error(`no leader among ${nodes.map((c) => c.name).join(', ')}`);
  return leader;
}

/**
 * Start `names` as controllers on the nats-server at `natsUrl` (`extra`: options every one gets; pushed to `nodes` as they start, so
 * the caller's cleanup stops them even when this fails half-way), init the first, add the others, and
 * wait until all are voters that agree on the first as leader and have applied the same.
 */
export async function startVoters(
  nodes: Controller[],
  natsUrl: string,
  root: string,
  prefix: string,
  names: string[],
  raft: { heartbeatMs: number; electionTimeoutMs: number },
  extra: Pick<ControllerOptions, 'operators'> = {},
): Promise<void> {
  for (const name of names) {
    nodes.push(await startController({ name, dataDir: `${root}/${name}`, prefix, transport: { nats: { servers: natsUrl } }, raft, ...extra }));
  }
  const first = nodes[0]!;
  await first.init();
  await first.waitForLeader(30_000);
  for (const name of names.slice(1)) await first.cluster.add(name);
  await waitUntil(() => nodes.every((c) => c.status().members.length === names.length && c.status().members.every((m) => m.voter) && c.status().leader === first.name && c.status().appliedIndex === first.status().appliedIndex), {
    timeoutMs: 60_000,
    what: `${names.length} voters that agree on the leader and have applied the same`,
  });
}

/** the setting of the tests over NATS: a real nats-server, and a forger with a connection of its own */
export async function natsWithForger(): Promise<{ nats: NatsServerHandle; forger: Bus }> {
  const nats = await startNatsServer();
  return { nats, forger: await connectNats({ servers: nats.url, name: 'forger' }) };
}

/** ends what natsWithForger and startVoters started (each may be missing if the suite's setup failed) */
export async function stopAll(nodes: readonly Controller[], forger: Bus | undefined, nats: NatsServerHandle | undefined, tmp: { cleanup(): void }): Promise<void> {
  for (const c of nodes) await c.stop();
  await forger?.close();
  await nats?.stop();
  tmp.cleanup();
}

/** the error code a library call is refused with ('OK' when it is not) */
export async function codeOfCall(call: Promise<unknown>): Promise<string | undefined> {
  try {
    await call;
  } catch (err) {
    return codeOf(err);
  }
  return 'OK';
}
