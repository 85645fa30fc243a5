// The elections timeline and the overview, from frames as the page receives them (the page's own
// model, in Node): each election's cause comes from the raft chart's transitions — the event its
// `always` edge fired on — and its duration from the moment a node left follower to a new leader.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyFrame, clusterGroups, createModel, type Model, namedElections } from '../../runtime/inspect/page/model.js';

const TICK = 'xstate.after.tickInterval.raftRole.follower';
const raftState = (t: number, node: string, role: string, term: number, leader: string | null = null) => ({
  k: 'state',
  t,
  a: `raft:${node}`,
  m: 'raftRole',
  states: [`raftRole.${role}`],
  status: 'active',
  ctx: { core: { role, term, leader } },
});
const step = (t: number, node: string, from: string, to: string, ev: string) => ({ k: 'step', t, a: `raft:${node}`, edges: [`raftRole.${from}||raftRole.${to}`], n: 1, ev });
const batch = (t: number, node: string, ...events: unknown[]) => ({ kind: 'batch', t, node, events, dropped: 0 });
const status = (name: string, clusterId: string, extra: Record<string, unknown> = {}) => ({ name, clusterId, reachable: true, role: 'follower', term: 1, commitIndex: 5, appliedIndex: 5, phase: 'member', members: [], ...extra });

/** three nodes of cluster C, n1 leading term 1 */
function formed(): Model {
  const model = createModel();
  for (const n of ['n1', 'n2', 'n3']) applyFrame(model, batch(1000, n, raftState(1000, n, n === 'n1' ? 'leader' : 'follower', 1, 'n1')));
  return model;
}

describe('elections, from the raft charts', () => {
  it('killing the leader: the survivors’ election timeout, started by the first to time out, until the new leader', () => {
    const model = formed();
    applyFrame(model, { kind: 'cluster', t: 2000, nodes: [{ name: 'n1', reachable: false, error: 'no responders', checkedAt: 2000 }] });
    applyFrame(model, batch(2100, 'n2', step(2100, 'n2', 'follower', 'preCandidate', TICK), raftState(2100, 'n2', 'preCandidate', 1)));
    applyFrame(model, batch(2150, 'n2', step(2150, 'n2', 'preCandidate', 'candidate', 'PEER_MESSAGE'), raftState(2150, 'n2', 'candidate', 2)));
    applyFrame(model, batch(2160, 'n3', step(2160, 'n3', 'follower', 'preCandidate', TICK), raftState(2160, 'n3', 'preCandidate', 1)));
    applyFrame(model, batch(2400, 'n2', step(2400, 'n2', 'candidate', 'leader', 'PEER_MESSAGE'), raftState(2400, 'n2', 'leader', 2, 'n2')));
    assert.deepEqual(
      model.elections.elections.map(({ start, end, startedBy, cause, previousLeader, leader, term, durationMs }) => ({ start, end, startedBy, cause, previousLeader, leader, term, durationMs })),
      [{ start: 2100, end: 2400, startedBy: 'n2', cause: 'election timeout', previousLeader: 'n1', leader: 'n2', term: 2, durationMs: 300 }],
    );
    const lanes = model.elections.lanes;
    assert.deepEqual(lanes.get('n1')!.map((s) => s.role), ['leader', 'unreachable']);
    assert.deepEqual(lanes.get('n2')!.map((s) => [s.role, s.term]), [['follower', 1], ['preCandidate', 1], ['candidate', 2], ['leader', 2]]);
  });

  it('a leader announced by node id before the page knew its name: the election names it once the page does (failed a fresh-clone run)', () => {
    const model = createModel();
    // the followers' charts report their leader (by node id) before n1's status or chart told the page n1's node id
    applyFrame(model, batch(1000, 'n2', raftState(1000, 'n2', 'follower', 1, 'id-n1')));
    applyFrame(model, batch(1000, 'n3', raftState(1000, 'n3', 'follower', 1, 'id-n1')));
    applyFrame(model, { kind: 'cluster', t: 1500, nodes: [status('n1', 'C', { nodeId: 'id-n1', role: 'leader', leader: 'n1' })] });
    applyFrame(model, batch(1500, 'n1', raftState(1500, 'n1', 'leader', 1, 'id-n1')));
    // n1 is killed; n2 times out and wins
    applyFrame(model, { kind: 'cluster', t: 2000, nodes: [{ name: 'n1', reachable: false, error: 'no responders', checkedAt: 2000 }] });
    applyFrame(model, batch(2100, 'n2', step(2100, 'n2', 'follower', 'preCandidate', TICK), raftState(2100, 'n2', 'preCandidate', 1)));
    applyFrame(model, batch(2400, 'n2', raftState(2400, 'n2', 'leader', 2, 'id-n2')));
    assert.deepEqual(
      namedElections(model).map(({ cause, previousLeader, leader }) => ({ cause, previousLeader, leader })),
      [{ cause: 'election timeout', previousLeader: 'n1', leader: 'n2' }],
    );
  });

  it('nodes that started while the page watched, then elected a leader: a later timeout is an election timeout, not a restart', () => {
    const model = createModel();
    // the inspector polls them before they run: their lanes begin unreachable
    applyFrame(model, { kind: 'cluster', t: 500, nodes: ['n1', 'n2'].map((name) => ({ name, reachable: false, error: 'no responders', checkedAt: 500 })) });
    for (const n of ['n1', 'n2']) {
      applyFrame(model, { kind: 'snapshot', t: 600, node: n, actors: [{ a: `raft:${n}`, m: 'raftRole', states: ['raftRole.follower'], status: 'active', ctx: { core: { role: 'follower', term: 0, leader: null } } }], status: null });
    }
    applyFrame(model, batch(800, 'n1', step(800, 'n1', 'follower', 'preCandidate', TICK), raftState(800, 'n1', 'preCandidate', 0)));
    applyFrame(model, batch(900, 'n1', raftState(900, 'n1', 'leader', 1)));
    assert.equal(model.elections.elections[0]?.cause, 'restart', 'the first election follows their start');
    // n1 is killed much later; n2 (whose chart never changed role meanwhile) times out
    applyFrame(model, { kind: 'cluster', t: 60_000, nodes: [{ name: 'n1', reachable: false, error: 'no responders', checkedAt: 60_000 }] });
    applyFrame(model, batch(60_100, 'n2', step(60_100, 'n2', 'follower', 'preCandidate', TICK), raftState(60_100, 'n2', 'preCandidate', 1)));
    assert.equal(model.elections.open.get(null)?.cause, 'election timeout');
    assert.equal(model.elections.open.get(null)?.previousLeader, 'n1');
  });

  it('a survivor that looked unreachable for a moment (its status answer was late) then times out: an election timeout', () => {
    const model = formed();
    // a busy machine: the inspector's status poll of n2 times out, the next one answers
    applyFrame(model, { kind: 'cluster', t: 1500, nodes: [{ name: 'n2', reachable: false, error: 'timed out', checkedAt: 1500 }] });
    applyFrame(model, { kind: 'cluster', t: 1600, nodes: [status('n2', 'C')] });
    applyFrame(model, { kind: 'cluster', t: 2000, nodes: [{ name: 'n1', reachable: false, error: 'no responders', checkedAt: 2000 }] });
    applyFrame(model, batch(2100, 'n2', step(2100, 'n2', 'follower', 'preCandidate', TICK), raftState(2100, 'n2', 'preCandidate', 1)));
    applyFrame(model, batch(2400, 'n2', step(2400, 'n2', 'candidate', 'leader', 'PEER_MESSAGE'), raftState(2400, 'n2', 'leader', 2, 'n2')));
    assert.deepEqual(
      model.elections.elections.map(({ startedBy, cause, previousLeader, leader }) => ({ startedBy, cause, previousLeader, leader })),
      [{ startedBy: 'n2', cause: 'election timeout', previousLeader: 'n1', leader: 'n2' }],
    );
  });

  it('another cluster on the same bus does not lend its leader to this cluster’s election', () => {
    const model = createModel();
    applyFrame(model, { kind: 'cluster', t: 900, nodes: [status('n1', 'A', { role: 'leader' }), status('n2', 'A'), status('x1', 'B', { role: 'leader' })] });
    applyFrame(model, batch(1000, 'n1', raftState(1000, 'n1', 'leader', 1)));
    applyFrame(model, batch(1000, 'n2', raftState(1000, 'n2', 'follower', 1)));
    applyFrame(model, batch(1001, 'x1', raftState(1001, 'x1', 'leader', 1)));
    applyFrame(model, batch(2100, 'n2', step(2100, 'n2', 'follower', 'preCandidate', TICK), raftState(2100, 'n2', 'preCandidate', 1)));
    assert.equal(model.elections.open.get('A')?.previousLeader, 'n1');
  });

  it('two clusters on one bus electing at the same time: two elections, each closed by its own leader', () => {
    const model = createModel();
    applyFrame(model, { kind: 'cluster', t: 900, nodes: [status('n1', 'A', { role: 'leader' }), status('n2', 'A'), status('x1', 'B', { role: 'leader' }), status('x2', 'B')] });
    for (const [n, role, leader] of [['n1', 'leader', 'n1'], ['n2', 'follower', 'n1'], ['x1', 'leader', 'x1'], ['x2', 'follower', 'x1']] as const) {
      applyFrame(model, batch(1000, n, raftState(1000, n, role, 1, leader)));
    }
    // both leaders die; n2 and x2 time out within a few milliseconds of each other
    applyFrame(model, batch(2100, 'n2', step(2100, 'n2', 'follower', 'preCandidate', TICK), raftState(2100, 'n2', 'preCandidate', 1)));
    applyFrame(model, batch(2105, 'x2', step(2105, 'x2', 'follower', 'preCandidate', TICK), raftState(2105, 'x2', 'preCandidate', 1)));
    applyFrame(model, batch(2300, 'x2', raftState(2300, 'x2', 'leader', 2, 'x2')));
    applyFrame(model, batch(2400, 'n2', raftState(2400, 'n2', 'leader', 2, 'n2')));
    assert.deepEqual(
      model.elections.elections.map(({ startedBy, previousLeader, leader, durationMs }) => ({ startedBy, previousLeader, leader, durationMs })),
      [
        { startedBy: 'n2', previousLeader: 'n1', leader: 'n2', durationMs: 300 },
        { startedBy: 'x2', previousLeader: 'x1', leader: 'x2', durationMs: 195 },
      ],
    );
  });

  it('a transfer: the target becomes candidate on the leader’s TimeoutNow (a peer message), skipping pre-vote', () => {
    const model = formed();
    applyFrame(model, batch(3000, 'n3', step(3000, 'n3', 'follower', 'candidate', 'PEER_MESSAGE'), raftState(3000, 'n3', 'candidate', 2)));
    applyFrame(model, batch(3010, 'n1', step(3010, 'n1', 'leader', 'follower', 'PEER_MESSAGE'), raftState(3010, 'n1', 'follower', 2)));
    applyFrame(model, batch(3040, 'n3', step(3040, 'n3', 'candidate', 'leader', 'PEER_MESSAGE'), raftState(3040, 'n3', 'leader', 2, 'n3')));
    assert.equal(model.elections.elections.length, 1);
    assert.deepEqual({ ...model.elections.elections[0], term: model.elections.elections[0]!.term }, { start: 3000, end: 3040, startedBy: 'n3', cause: 'transfer', term: 2, previousLeader: 'n1', leader: 'n3', durationMs: 40 });
  });

  it('a transfer whose old leader’s step-down reaches the page first (each node’s stream is its own): still a transfer, by its target', () => {
    const model = formed();
    applyFrame(model, batch(3010, 'n1', step(3010, 'n1', 'leader', 'follower', 'PEER_MESSAGE'), raftState(3010, 'n1', 'follower', 2)));
    applyFrame(model, batch(3040, 'n3', step(3000, 'n3', 'follower', 'candidate', 'PEER_MESSAGE'), raftState(3000, 'n3', 'candidate', 2), step(3040, 'n3', 'candidate', 'leader', 'PEER_MESSAGE'), raftState(3040, 'n3', 'leader', 2, 'n3')));
    assert.equal(model.elections.elections.length, 1);
    assert.deepEqual({ ...model.elections.elections[0] }, { start: 3000, end: 3040, startedBy: 'n3', cause: 'transfer', term: 2, previousLeader: 'n1', leader: 'n3', durationMs: 40 });
  });

  it('a leader paused by the demo: its lane says paused (not a step-down); resumed, it steps down on hearing the new term', () => {
    const model = formed();
    // its last step was a tick, as every leader's is
    applyFrame(model, batch(1900, 'n1', step(1900, 'n1', 'leader', 'leader', 'xstate.after.tickInterval.raftRole.leader')));
    applyFrame(model, { kind: 'cluster', t: 2000, nodes: [{ name: 'n1', reachable: false, paused: true, error: 'no answer within 800 ms', checkedAt: 2000 }] });
    const paused = model.elections.lanes.get('n1')!.at(-1)!;
    assert.deepEqual([paused.role, paused.cause], ['unreachable', 'paused']);
    applyFrame(model, batch(2100, 'n2', step(2100, 'n2', 'follower', 'preCandidate', TICK), raftState(2100, 'n2', 'preCandidate', 1)));
    applyFrame(model, batch(2400, 'n2', raftState(2400, 'n2', 'leader', 2, 'n2')));
    applyFrame(model, batch(5000, 'n1', step(5000, 'n1', 'leader', 'follower', 'PEER_MESSAGE'), raftState(5000, 'n1', 'follower', 2, 'n2')));
    assert.deepEqual(model.elections.elections.map((e) => [e.cause, e.previousLeader, e.leader]), [['election timeout', 'n1', 'n2']]);
    assert.deepEqual(model.elections.lanes.get('n1')!.map((s) => [s.role, s.cause]), [['leader', null], ['unreachable', 'paused'], ['follower', 'stepped down: newer term seen']]);
  });

  it('a leader that stops answering is unreachable, not stepped down: its chart did not move', () => {
    const model = formed();
    applyFrame(model, batch(1900, 'n1', step(1900, 'n1', 'leader', 'leader', 'xstate.after.tickInterval.raftRole.leader')));
    applyFrame(model, { kind: 'cluster', t: 2000, nodes: [{ name: 'n1', reachable: false, error: 'no responders', checkedAt: 2000 }] });
    assert.deepEqual(model.elections.lanes.get('n1')!.map((s) => [s.role, s.cause]), [['leader', null], ['unreachable', null]]);
  });

  it('check quorum: the leader steps down on a tick (it heard from no quorum)', () => {
    const model = formed();
    applyFrame(model, batch(4000, 'n1', step(4000, 'n1', 'leader', 'follower', 'xstate.after.tickInterval.raftRole.leader'), raftState(4000, 'n1', 'follower', 1)));
    assert.equal(model.elections.open.get(null)?.cause, 'check-quorum step-down');
    assert.equal(model.elections.open.get(null)?.startedBy, 'n1');
  });

  it('a restart: a node whose chart starts again, and times out before it hears a leader', () => {
    const model = formed();
    // a new process: its first snapshot to this inspector
    applyFrame(model, { kind: 'snapshot', t: 5000, node: 'n3', actors: [{ a: 'raft:n3', m: 'raftRole', states: ['raftRole.follower'], status: 'active', ctx: { core: { role: 'follower', term: 1, leader: null } } }], status: null });
    applyFrame(model, batch(5600, 'n3', step(5600, 'n3', 'follower', 'preCandidate', TICK), raftState(5600, 'n3', 'preCandidate', 1)));
    assert.equal(model.elections.open.get(null)?.cause, 'restart');
    // one that heard its leader first is not fresh any more
    const again = formed();
    applyFrame(again, { kind: 'snapshot', t: 5000, node: 'n3', actors: [{ a: 'raft:n3', m: 'raftRole', states: ['raftRole.follower'], status: 'active', ctx: { core: { role: 'follower', term: 1, leader: null } } }], status: null });
    applyFrame(again, batch(5100, 'n3', raftState(5100, 'n3', 'follower', 2, 'n1')));
    applyFrame(again, batch(5600, 'n3', step(5600, 'n3', 'follower', 'preCandidate', TICK), raftState(5600, 'n3', 'preCandidate', 2)));
    assert.equal(again.elections.open.get(null)?.cause, 'election timeout');
  });
});

describe('the overview', () => {
  it('a node removed from the configuration: shown while it runs (not in the configuration), gone once it stops', () => {
    const model = createModel();
    const members = ['n1', 'n2', 'n3'].map((name) => ({ name, nodeId: `id-${name}`, voter: true, leader: name === 'n1', reachable: true, matchIndex: 5 }));
    applyFrame(model, { kind: 'cluster', t: 1000, nodes: [status('n1', 'C', { role: 'leader', members }), status('n2', 'C'), status('n3', 'C'), status('n4', 'C')] });
    // its charts say which cluster it was in, after it stops too
    for (const n of ['n3', 'n4']) applyFrame(model, batch(1000, n, { k: 'state', t: 1000, a: `bootstrap:${n}`, m: 'bootstrap', states: ['bootstrap.member'], status: 'active', ctx: { clusterId: 'C' } }));
    const shown = () => clusterGroups(model)[0]!.members.map((m) => `${m.name}${m.member ? '' : ' (not in the configuration)'}`);
    assert.deepEqual(shown(), ['n1', 'n2', 'n3', 'n4 (not in the configuration)']);
    applyFrame(model, { kind: 'cluster', t: 2000, nodes: [{ name: 'n4', reachable: false, error: 'no responders', checkedAt: 2000 }] });
    assert.deepEqual(shown(), ['n1', 'n2', 'n3']);
    // a member that stops is still a member: shown, unreachable
    applyFrame(model, { kind: 'cluster', t: 3000, nodes: [{ name: 'n3', reachable: false, error: 'no responders', checkedAt: 3000 }] });
    assert.deepEqual(shown(), ['n1', 'n2', 'n3']);
  });

  it('one group per cluster id; a node of another cluster apart, with the refusal that keeps it out', () => {
    const model = createModel();
    const ours = '0199aaaa-0000-7000-8000-000000000001';
    const theirs = '0199bbbb-0000-7000-8000-000000000002';
    const members = ['n1', 'n2'].map((name, i) => ({ name, nodeId: `id${i}`, voter: true, leader: name === 'n1', reachable: true, matchIndex: name === 'n1' ? 9 : 6 }));
    applyFrame(model, {
      kind: 'cluster',
      t: 1000,
      nodes: [
        status('n1', ours, { role: 'leader', commitIndex: 9, appliedIndex: 9, members, generation: 2, bus: 'nats' }),
        status('n2', ours, { appliedIndex: 6, generation: 2, bus: 'nats' }),
        status('x1', theirs, { role: 'leader', members: [{ name: 'n2', nodeId: 'other', voter: true, leader: false, reachable: false, matchIndex: 0 }] }),
      ],
    });
    const message = `join refused: x1 belongs to cluster ${theirs} but n2 belongs to cluster ${ours}`;
    applyFrame(model, batch(1100, 'n2', { k: 'refused', t: 1100, a: 'n2', type: 'conclave.refused', reason: 'foreign-cluster', from: 'x1', localClusterId: ours, remoteClusterId: theirs, message }));
    const groups = clusterGroups(model);
    assert.deepEqual(groups.map((g) => [g.clusterId, g.members.map((m) => m.name)]), [
      [ours, ['n1', 'n2']],
      [theirs, ['n2', 'x1']],
    ]);
    const n2 = groups[0]!.members.find((m) => m.name === 'n2')!;
    assert.deepEqual({ role: n2.role, matchIndex: n2.matchIndex, appliedIndex: n2.appliedIndex, commitIndex: n2.commitIndex, generation: n2.generation, bus: n2.bus }, { role: 'follower', matchIndex: 6, appliedIndex: 6, commitIndex: 9, generation: 2, bus: 'nats' });
    // the n2 that x1's cluster lists is not our n2
    const theirN2 = groups[1]!.members.find((m) => m.name === 'n2')!;
    assert.equal(theirN2.reachable, false);
    assert.equal(theirN2.appliedIndex, null);
    assert.deepEqual(groups[1]!.refusals.map((r) => r.message), [message]);
    // routine events push the refusal out of the event list, not out of the overview
    for (let i = 0; i < 6000; i++) applyFrame(model, batch(2000 + i, 'n1', { k: 'event', t: 2000 + i, a: 'raft:n1', type: 'xstate.after.tickInterval', src: null, n: 1 }));
    assert.equal(model.events.some((e) => e.k === 'refused'), false);
    assert.deepEqual(clusterGroups(model)[1]!.refusals.map((r) => r.message), [message]);
  });
});
