// The role chart over three cores wired through in-memory queues, driven by xstate's SimulatedClock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createActor, SimulatedClock } from 'xstate';
import { bootstrapRestore, RaftCore } from '../../machines/raft/core.ts';
import type { RaftMessage } from '../../machines/raft/messages.ts';
import { ROLE_STATE, raftRoleMachine } from '../../machines/raft/roleMachine.ts';
import type { Member } from '../../machines/raft/types.ts';

const TICK_MS = 10;

function threeNodes() {
  const members: Member[] = ['a', 'b', 'c'].map((id) => ({ nodeId: id, name: id, voter: true }));
  const clock = new SimulatedClock();
  const queues = new Map<string, RaftMessage[]>(members.map((m) => [m.nodeId, []]));
  // node a times out first (10 ticks); b and c only after 15 and 19 ticks
  const randomOf: Record<string, number> = { a: 0, b: 0.5, c: 0.9 };
  const actors = members.map((member) => {
    const core = new RaftCore({
      id: member.nodeId,
      electionTicks: 10,
      heartbeatTicks: 1,
      random: () => randomOf[member.nodeId]!,
      restore: bootstrapRestore({ members }),
    });
    const machine = raftRoleMachine.provide({
      actions: {
        // the host's Ready loop: (persisting is a no-op in memory) send, then advance
        emitReady: ({ context }) => {
          while (context.core.hasReady()) {
            const rd = context.core.ready();
            for (const message of rd.messages) queues.get(message.to)!.push(message);
            context.core.advance(rd);
          }
        },
      },
    });
    return createActor(machine, { clock, input: { core, tickMs: TICK_MS } }).start();
  });
  /** one machine event per batch of messages */
  const deliver = () => {
    for (let round = 0; round < 20; round++) {
      let moved = false;
      for (const actor of actors) {
        const queue = queues.get(actor.getSnapshot().context.core.id)!;
        if (queue.length === 0) continue;
        const batch = queue.splice(0, queue.length);
        actor.send({ type: 'PEER_MESSAGE', messages: batch });
        moved = true;
      }
      if (!moved) return;
    }
  };
  /** SimulatedClock fires one round of timers per increment: advance one tick at a time */
  const advance = (ticks: number) => {
    for (let i = 0; i < ticks; i++) clock.increment(TICK_MS);
  };
  return { clock, actors, deliver, advance };
}

test('role chart: an election over the simulated clock; each chart mirrors its core', () => {
  const { advance, actors, deliver } = threeNodes();
  const [a, b, c] = actors as [(typeof actors)[0], (typeof actors)[0], (typeof actors)[0]];
  assert.equal(a.getSnapshot().value, 'follower');
  advance(9);
  deliver();
  assert.equal(a.getSnapshot().value, 'follower', 'no timeout before 10 ticks');
  advance(1);
  assert.equal(a.getSnapshot().value, 'preCandidate');
  deliver();
  assert.equal(a.getSnapshot().value, 'leader');
  assert.equal(b.getSnapshot().value, 'follower');
  assert.equal(c.getSnapshot().value, 'follower');
  const core = a.getSnapshot().context.core;
  assert.equal(core.currentTerm, 2);
  assert.equal(b.getSnapshot().context.core.leader, 'a');
  // heartbeats keep the others from campaigning for a long while
  for (let i = 0; i < 100; i++) {
    advance(1);
    deliver();
  }
  assert.equal(a.getSnapshot().value, 'leader');
  assert.equal(core.currentTerm, 2);
  for (const actor of actors) {
    const snapshot = actor.getSnapshot();
    assert.equal(snapshot.value, ROLE_STATE[snapshot.context.core.currentRole]);
  }
  // a proposal through the chart commits everywhere
  a.send({ type: 'PROPOSE', items: [{ type: 'command', data: { op: 'put', key: 'x', value: '1', id: 'p1' } }] });
  assert.deepEqual(a.getSnapshot().context.lastProposal, { ok: true, firstIndex: 3, term: 2 });
  deliver();
  assert.equal(core.commitIndex, 3);
  advance(1);
  deliver();
  assert.equal(c.getSnapshot().context.core.commitIndex, 3);
  // transfer through the chart: b takes over
  a.send({ type: 'TRANSFER', to: 'b' });
  deliver();
  assert.equal(b.getSnapshot().value, 'leader');
  assert.equal(a.getSnapshot().value, 'follower');
});

test('role chart: the definition names every action, guard and delay', () => {
  const json = JSON.stringify(raftRoleMachine.toJSON());
  for (const name of ['tickCore', 'emitReady', 'stepMessages', 'propose', 'readIndex', 'transferLeadership', 'tickInterval']) assert.ok(json.includes(name), name);
  assert.equal(typeof raftRoleMachine.implementations.guards.coreRoleIs, 'function');
  for (const state of ['follower', 'preCandidate', 'candidate', 'leader', 'learner']) assert.ok(json.includes(`"${state}"`), state);
});
