// The bus fuzz's target: three controllers (real LMDB stores) on one bus — in-process, or a real
// nats-server — and valid envelopes of every message type they take, built from their identities,
// for the fuzz to mutate.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Controller, startController, type TransportOption } from '../../runtime/controller.ts';
import type { Bus } from '../../runtime/transport/types.ts';
import { encode, type Sender } from '../../runtime/wire/codec.ts';
import { waitUntil } from '../helpers/cli.ts';

export const PREFIX = 'fuzz';
// slow elections: a busy machine must not change the leader while the fuzz compares terms
const RAFT = { heartbeatMs: 50, electionTimeoutMs: 3000 };

export interface Seed {
  subject: string;
  sender: Sender;
  type: string;
  body: unknown;
}

export interface FuzzCluster {
  nodes: Controller[];
  /** the fuzz's own connection */
  client: Bus;
  stop(): Promise<void>;
}

export async function startFuzzCluster(transport: (name: string) => TransportOption, client: Bus): Promise<FuzzCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'conclave-fuzz-bus-'));
  const nodes: Controller[] = [];
  for (const name of ['f1', 'f2', 'f3']) nodes.push(await startController({ name, dataDir: join(dir, name), prefix: PREFIX, transport: transport(name), raft: RAFT }));
  await nodes[0]!.init();
  await nodes[0]!.waitForLeader(30_000);
  await nodes[0]!.cluster.add('f2');
  await nodes[0]!.cluster.add('f3');
  await nodes[0]!.propose({ op: 'put', key: 'seed', value: { a: [1, 2, 3] } });
  await waitUntil(() => nodes.every((c) => c.status().members.length === 3 && c.status().leader === 'f1' && c.status().appliedIndex === nodes[0]!.status().commitIndex), {
    timeoutMs: 30_000,
    what: 'three members, caught up, agreeing on leader f1',
  });
  return {
    nodes,
    client,
    async stop() {
      for (const c of nodes) await c.stop();
      await client.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** what invalid input must never change, on every node: phase, term, leader, configuration, log and data */
export async function clusterState(nodes: Controller[]) {
  return Promise.all(
    nodes.map(async (c) => {
      const s = c.status();
      const raft = c.memberRuntime().raftStatus();
      return {
        phase: s.phase,
        term: s.term,
        leader: s.leader,
        commit: s.commitIndex,
        lastIndex: raft.lastIndex,
        members: s.members.map((m) => [m.name, m.nodeId, m.voter]),
        data: await c.read({ op: 'list' }, { stale: true }),
      };
    }),
  );
}

/** every node answers on its admin subject; resolves after all earlier messages from `client` were handled */
export async function allAnswer(client: Bus, nodes: Controller[]): Promise<void> {
  await client.flush();
  for (const c of nodes) await client.request(`${PREFIX}.node.${c.name}.admin`, encode(CLI, 'status', {}), { timeoutMs: 20_000 });
}

const CLI: Sender = { name: 'cli', nodeId: null, clusterId: null };

/** one valid envelope of every type a node takes on its peer, admin and discover subjects */
export function seeds(nodes: Controller[]): Seed[] {
  const [leader, follower] = [nodes[0]!, nodes[1]!];
  const id = (c: Controller) => c.store.identity();
  const as = (c: Controller): Sender => ({ name: c.name, nodeId: id(c).nodeId, clusterId: id(c).clusterId, generation: id(c).generation });
  const raft = follower.memberRuntime().raftStatus();
  const { term, lastIndex, lastTerm, membership } = raft;
  const L = id(leader).nodeId;
  const F = id(follower).nodeId;
  const peer = (to: Controller) => `${PREFIX}.node.${to.name}.peer`;
  const admin = (to: Controller) => `${PREFIX}.node.${to.name}.admin`;
  const toFollower = (m: object): Seed => ({ subject: peer(follower), sender: as(leader), type: 'raft', body: { messages: [{ from: L, to: F, term, ...m }] } });
  const toLeader = (m: object): Seed => ({ subject: peer(leader), sender: as(follower), type: 'raft', body: { messages: [{ from: F, to: L, term, ...m }] } });
  const entry = { index: lastIndex + 1, term, type: 'command', data: { op: 'put', key: 'k', value: 1 } };
  const snapshot = { index: lastIndex, term: lastTerm, membership };
  const ghost: Sender = { name: 'ghost', nodeId: '01a22d49-0000-7000-8000-000000000000', clusterId: id(leader).clusterId, generation: id(leader).generation };
  return [
    toFollower({ type: 'vote', lastIndex, lastTerm, transfer: false }),
    toFollower({ type: 'pre-vote', lastIndex, lastTerm, transfer: false }),
    toLeader({ type: 'vote-response', granted: true }),
    toLeader({ type: 'pre-vote-response', granted: true }),
    toFollower({ type: 'append', prevIndex: lastIndex, prevTerm: lastTerm, entries: [entry], commit: raft.commit }),
    toLeader({ type: 'append-response', index: lastIndex, reject: false, rejectHint: 0, hintTerm: 0 }),
    toFollower({ type: 'heartbeat', commit: raft.commit, context: null }),
    toLeader({ type: 'heartbeat-response', context: 'read-1' }),
    toFollower({ type: 'snapshot', snapshot }),
    toFollower({ type: 'timeout-now' }),
    // what a node must refuse, not assert on: a second leader, an ack beyond the log, a commit beyond the log
    toLeader({ type: 'heartbeat', commit: 0, context: null }),
    toLeader({ type: 'append', prevIndex: lastIndex, prevTerm: lastTerm, entries: [], commit: 0 }),
    toLeader({ type: 'append-response', index: lastIndex + 1000, reject: false, rejectHint: 0, hintTerm: 0 }),
    toFollower({ type: 'heartbeat', commit: lastIndex + 1000, context: null }),
    {
      subject: peer(follower),
      sender: as(leader),
      type: 'snapshot-chunk',
      body: { message: { type: 'snapshot', from: L, to: F, term, snapshot }, id: 'transfer-1', seq: 0, last: true, pairs: [['seed', { a: [1, 2, 3] }]] },
    },
    { subject: peer(leader), sender: as(follower), type: 'ping', body: {} },
    ...['whois', 'status', 'init', 'cluster.list', 'snapshot.begin', 'member.removed'].map((type) => ({ subject: admin(follower), sender: CLI, type, body: {} })),
    { subject: admin(leader), sender: CLI, type: 'propose', body: { command: { op: 'put', key: 'fuzz', value: [1, { b: 'c' }] } } },
    { subject: admin(follower), sender: CLI, type: 'read', body: { query: { op: 'get', key: 'seed' }, stale: true } },
    { subject: admin(leader), sender: CLI, type: 'cluster.add', body: { name: 'nobody', timeoutMs: 500 } },
    { subject: admin(leader), sender: CLI, type: 'cluster.remove', body: { name: 'nobody', timeoutMs: 500 } },
    { subject: admin(leader), sender: CLI, type: 'cluster.transfer', body: { name: 'nobody' } },
    { subject: admin(leader), sender: CLI, type: 'snapshot.page', body: { session: 'none', seq: 0 } },
    { subject: admin(follower), sender: ghost, type: 'join.offer', body: { protocolVersion: 1 } },
    {
      subject: `${PREFIX}.discover`,
      sender: { ...ghost, clusterId: null, generation: undefined },
      type: 'join.request',
      body: { cluster: id(leader).clusterId, name: 'ghost', nodeId: ghost.nodeId, protocolVersion: 1, nonce: '0'.repeat(32), ts: Date.now() },
    },
  ];
}

/** the envelope of a seed as a plain object, as encode() would write it */
export function envelopeOf(seed: Seed): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(encode(seed.sender, seed.type, seed.body)));
}

/** paths of every leaf a schema types (number, string, boolean, null); not inside free-form values */
export function typedLeaves(value: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  const last = path[path.length - 1];
  if (last === 'data' || last === 'value' || last === 'expected' || last === 'pairs') return [];
  if (value === null || typeof value !== 'object') return [path];
  const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.flatMap(([k, v]) => typedLeaves(v, [...path, k]));
}

export function setAt(root: unknown, path: Array<string | number>, value: unknown): void {
  let node = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1]!] = value;
}
