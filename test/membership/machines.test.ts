// The join and membership statecharts on their own, with their actors supplied by the test.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, fromCallback, fromPromise, toPromise } from 'xstate';
import { type JoinInput, joinMachine } from '../../machines/join/machine.ts';
import { applyChange, caughtUp, learnerProgress, planAdd } from '../../machines/membership/config.ts';
import { type MembershipEvent, type MembershipInput, membershipMachine, type OfferReply } from '../../machines/membership/machine.ts';
import type { Membership } from '../../machines/raft/types.ts';

const A = '0199aaaa-0000-7000-8000-0000000000a1';
const B = '0199bbbb-0000-7000-8000-0000000000b2';

describe('join machine (node side)', () => {
  const base: JoinInput = {
    name: 'n2',
    nodeId: 'id-n2',
    clusterId: null,
    joiningClusterId: null,
    removed: false,
    offer: { name: 'n1', nodeId: 'id-n1', clusterId: A, protocolVersion: 1 },
  };
  function run(input: JoinInput) {
    const calls: string[] = [];
    const machine = joinMachine.provide({
      actors: {
        recordContact: fromPromise(async ({ input: c }) => void calls.push(`contact:${c.clusterId}:${c.by}${c.generation === undefined ? '' : `:g${c.generation}`}`)),
        enterJoining: fromPromise(async ({ input: j }) => void calls.push(`joining:${j.clusterId}`)),
      },
    });
    const actor = createActor(machine, { input }).start();
    return { calls, done: toPromise(actor) };
  }

  it('a blank node records the contact durably, then enters joining, then accepts', async () => {
    const { calls, done } = run(base);
    assert.deepEqual(await done, { accepted: true, error: null, clusterId: A });
    assert.deepEqual(calls, [`contact:${A}:n1`, `joining:${A}`]);
  });

  it('a member of another cluster refuses naming both ids, and records nothing', async () => {
    const { calls, done } = run({ ...base, clusterId: B });
    const out = await done;
    assert.equal(out.accepted, false);
    assert.equal(out.error?.code, 'JOIN_REFUSED');
    assert.ok(out.error!.message.includes(A) && out.error!.message.includes(B));
    assert.deepEqual(calls, []);
  });

  it('a node joining cluster B refuses an offer from A; one joining A accepts again without recording', async () => {
    assert.equal((await run({ ...base, joiningClusterId: B }).done).error?.code, 'JOIN_REFUSED');
    const again = run({ ...base, joiningClusterId: A });
    assert.equal((await again.done).accepted, true);
    assert.deepEqual(again.calls, []);
  });

  it('a node joining generation 1 of A refuses an offer of generation 2 of A (and the reverse); its own generation is accepted again', async () => {
    // disaster recovery while a blank node joins: the stale leader and the recovered one both offer
    const joiningG1 = { ...base, joiningClusterId: A, joiningGeneration: 1 };
    const newer = run({ ...joiningG1, offer: { ...base.offer, name: 'n3', generation: 2 } });
    const out = await newer.done;
    assert.equal(out.accepted, false);
    assert.equal(out.error?.code, 'JOIN_REFUSED');
    assert.match(out.error!.message, /n2 is already joining generation 1 of cluster .* but n3 offers generation 2 of it/);
    assert.equal(out.clusterId, A, 'it answers under the cluster id it is joining');
    assert.deepEqual(newer.calls, []);
    const older = run({ ...base, joiningClusterId: A, joiningGeneration: 2, offer: { ...base.offer, generation: 1 } });
    assert.equal((await older.done).error?.code, 'JOIN_REFUSED');
    const same = run({ ...joiningG1, offer: { ...base.offer, generation: 1 } });
    assert.equal((await same.done).accepted, true);
    assert.deepEqual(same.calls, []);
    // an offer that states no generation (an older leader) is not refused for it
    assert.equal((await run(joiningG1).done).accepted, true);
  });

  it('a blank node contacted by generation 2 of A (a restart since) refuses generation 1 of A, takes 2 or 3, and records the generation it takes', async () => {
    // simulator seed 13530: the node accepted the recovered leader's offer, crashed before its first
    // state (the join is not durable, the contact is), then took the stale leader's offer
    const contacted = { ...base, contactedBy: { clusterId: A, generation: 2 } };
    const older = run({ ...contacted, offer: { ...base.offer, name: 'n5', generation: 1 } });
    const out = await older.done;
    assert.equal(out.error?.code, 'JOIN_REFUSED');
    assert.match(out.error!.message, /n2 was contacted by generation 2 of cluster .* but n5 offers generation 1, an older one/);
    assert.deepEqual(older.calls, []);
    for (const generation of [2, 3]) {
      const taken = run({ ...contacted, offer: { ...base.offer, generation } });
      assert.equal((await taken.done).accepted, true, `generation ${generation}`);
      assert.equal(taken.calls[0], `contact:${A}:${base.offer.name}:g${generation}`);
    }
    // a contact recorded by an older release states no generation: nothing is refused for it
    assert.equal((await run({ ...base, contactedBy: { clusterId: A }, offer: { ...base.offer, generation: 1 } }).done).accepted, true);
  });

  it('a removed node refuses; an offer without a cluster id is refused', async () => {
    assert.equal((await run({ ...base, clusterId: A, removed: true }).done).error?.code, 'REMOVED');
    assert.equal((await run({ ...base, offer: { ...base.offer, clusterId: null } }).done).error?.code, 'BAD_REQUEST');
  });
});

describe('membership machine (leader side)', () => {
  const input: MembershipInput = {
    op: 'add',
    target: 'n2',
    leader: { name: 'n1', nodeId: 'id-n1', clusterId: A },
    maxAttempts: 5,
    deadlineMs: null,
    catchUpLag: 0,
    catchUpTimeoutMs: 1000,
    backoffBaseMs: 1,
    backoffMaxMs: 2,
  };
  type Progress = MembershipEvent;
  /** a report of the learner at `matchIndex`, the leader's log at 5, nothing compacted past the learner */
  const at = (matchIndex: number, more: Partial<Progress> = {}): Progress => ({ type: 'PROGRESS', matchIndex, commitIndex: 5, lastIndex: 5, needsSnapshot: false, ...more });
  /** the learner's progress, as watchProgress reports it: a list of reports, one every 20 ms */
  function run(offers: Array<OfferReply | Error>, spec: Partial<MembershipInput> = {}, reports?: Progress[], initial?: Membership) {
    const proposals: string[] = [];
    let membership: Membership = initial ?? { members: [{ nodeId: 'id-n1', name: 'n1', voter: true }] };
    const machine = membershipMachine.provide({
      actors: {
        offerJoin: fromPromise(async () => {
          const next = offers.shift()!;
          if (next instanceof Error) throw next;
          return next;
        }),
        readMembership: fromPromise(async () => membership),
        proposeChange: fromPromise(async ({ input: change }) => {
          proposals.push(change.type);
          const r = applyChange(membership, change);
          if (!r.ok) throw new Error(r.reason);
          membership = r.next;
        }),
        watchProgress: fromCallback(({ sendBack }) => {
          if (reports !== undefined) {
            const t = setInterval(() => {
              const next = reports.shift();
              if (next) sendBack(next);
            }, 20);
            return () => clearInterval(t);
          }
          sendBack(at(0));
          const t = setTimeout(() => sendBack(at(5)), 5);
          return () => clearTimeout(t);
        }),
      },
    });
    const actor = createActor(machine, { input: { ...input, ...spec } }).start();
    return { proposals, done: toPromise(actor), actor, membership: () => membership };
  }
  const party = (clusterId: string | null) => ({ name: 'n2', nodeId: 'id-n2', clusterId });

  it('offer accepted → learner → caught up → voter, retrying an unreachable node with backoff', async () => {
    const unreachable = Object.assign(new Error('no responders'), { code: 'NO_RESPONDERS' });
    const r = run([unreachable, { accepted: true, party: party(A) }]);
    const out = await r.done;
    assert.equal(out.outcome, 'added');
    assert.deepEqual(r.proposals, ['add-learner', 'promote']);
    assert.deepEqual(r.membership().members.map((m) => [m.name, m.voter]), [['n1', true], ['n2', true]]);
  });

  it('the member key the node answers with is committed with it; a node of an older release (no key) is added without', async () => {
    const key = 'k'.repeat(43);
    const keyed = run([{ accepted: true, party: { ...party(A), key } }]);
    assert.equal((await keyed.done).outcome, 'added');
    assert.deepEqual(keyed.membership().members[1], { nodeId: 'id-n2', name: 'n2', voter: true, key });
    const older = run([{ accepted: true, party: party(A) }]);
    assert.equal((await older.done).outcome, 'added');
    assert.deepEqual(older.membership().members[1], { nodeId: 'id-n2', name: 'n2', voter: true });
  });

  it('the leader applies the join rule to the ids the node reports, even when the node refused', async () => {
    const r = run([{ accepted: false, party: party(B), code: 'JOIN_REFUSED', message: 'node says no' }]);
    const out = await r.done;
    assert.equal(r.actor.getSnapshot().value, 'refused');
    assert.equal(out.refusedBy, 'leader');
    assert.ok(out.error!.message.includes(A) && out.error!.message.includes(B));
    assert.deepEqual(r.proposals, []);
  });

  it('a node that refuses after an earlier attempt added it as a learner is withdrawn from the configuration (no phantom learner)', async () => {
    // the node accepted, was added as a learner, never caught up (it went to another generation of
    // the cluster meanwhile) and refuses the next offer: the learner entry is taken back
    const stalled: Progress[] = [at(0)];
    const refusal: OfferReply = { accepted: false, party: party(A), code: 'JOIN_REFUSED', message: 'n2 is already joining generation 1' };
    const r = run([{ accepted: true, party: party(A) }, refusal], { catchUpTimeoutMs: 50 }, stalled);
    const out = await r.done;
    assert.equal(r.actor.getSnapshot().value, 'refused');
    assert.equal(out.refusedBy, 'node');
    assert.equal(out.withdrawn, true);
    assert.match(out.error!.message, /n2 is already joining generation 1 \(n2 was listed as a learner: withdrawn from the configuration\)/);
    assert.deepEqual(r.proposals, ['add-learner', 'withdraw-learner']);
    assert.deepEqual(r.membership(), { members: [{ nodeId: 'id-n1', name: 'n1', voter: true }] }, 'not remembered as removed: it may ask again');
  });

  it('a refusal withdraws nothing else: no entry, a voter, or another node id under the name stay as they are', async () => {
    const refusal: OfferReply = { accepted: false, party: party(A), code: 'JOIN_REFUSED', message: 'no' };
    const none = run([refusal]);
    assert.equal((await none.done).withdrawn, false);
    assert.deepEqual(none.proposals, []);
    const voter: Membership = { members: [{ nodeId: 'id-n1', name: 'n1', voter: true }, { nodeId: 'id-n2', name: 'n2', voter: true }] };
    const asVoter = run([refusal], {}, undefined, voter);
    assert.equal((await asVoter.done).withdrawn, false);
    assert.deepEqual(asVoter.proposals, []);
    const other: Membership = { members: [{ nodeId: 'id-n1', name: 'n1', voter: true }, { nodeId: 'id-old', name: 'n2', voter: false }] };
    const otherId = run([refusal], {}, undefined, other);
    assert.equal((await otherId.done).withdrawn, false);
    assert.deepEqual(otherId.proposals, []);
  });

  it('a non-transient error fails at once; attempts run out on transient ones', async () => {
    const fatal = Object.assign(new Error('not leader'), { code: 'NOT_LEADER' });
    const r1 = run([fatal]);
    await r1.done;
    assert.equal(r1.actor.getSnapshot().value, 'failed');
    const t = () => Object.assign(new Error('timeout'), { code: 'TIMEOUT' });
    const r2 = run([t(), t()], { maxAttempts: 2 });
    await r2.done;
    assert.equal(r2.actor.getSnapshot().value, 'failed');
    assert.equal(r2.actor.getSnapshot().context.attempt, 2);
  });

  it('a learner receiving a large snapshot is not timed out while the transfer moves on; one that stalls is', async () => {
    // 15 reports 20 ms apart (300 ms) against a 100 ms catch-up timeout: each acknowledges more snapshot bytes
    const streaming: Progress[] = Array.from({ length: 15 }, (_, i) => at(0, { streamed: (i + 1) * 256 * 1024 }));
    streaming.push(at(5, { streamed: 0 }));
    const moving = run([{ accepted: true, party: party(A) }], { catchUpTimeoutMs: 100 }, streaming);
    assert.equal((await moving.done).outcome, 'added');
    const stalled: Progress[] = Array.from({ length: 15 }, () => at(0, { streamed: 256 * 1024 }));
    const stuck = run([{ accepted: true, party: party(A) }], { catchUpTimeoutMs: 100, maxAttempts: 1 }, stalled);
    const out = await stuck.done;
    assert.equal(out.error?.code, 'CATCH_UP');
  });

  it('plans: no-op for a voter, resume for a learner, replace for a changed node id', () => {
    const m = { members: [{ nodeId: 'x', name: 'n1', voter: true }, { nodeId: 'y', name: 'n2', voter: false }] };
    assert.deepEqual(planAdd(m, 'n1', 'x'), { kind: 'noop' });
    assert.deepEqual(planAdd(m, 'n2', 'y'), { kind: 'resume' });
    assert.deepEqual(planAdd(m, 'n2', 'z'), { kind: 'replace', staleNodeId: 'y' });
    assert.deepEqual(planAdd(m, 'n3', 'w'), { kind: 'add' });
    assert.equal(applyChange(m, { type: 'remove', nodeId: 'x' }).ok, false, 'the last voter cannot be removed');
    assert.deepEqual(applyChange(m, { type: 'withdraw-learner', nodeId: 'y' }), { ok: true, next: { members: [m.members[0]] } });
    assert.equal(applyChange(m, { type: 'withdraw-learner', nodeId: 'x' }).ok, false, 'a voter is never withdrawn');
    assert.equal(caughtUp({ matchIndex: 10, commitIndex: 12, needsSnapshot: false }, 2), true);
    assert.equal(caughtUp({ matchIndex: 9, commitIndex: 12, needsSnapshot: false }, 2), false);
    assert.equal(caughtUp({ matchIndex: 12, commitIndex: 12, needsSnapshot: true }, 2), false, 'not while it needs a snapshot');
  });

  it('a learner is caught up only when the leader still holds the log after its match index and no snapshot is on its way', () => {
    // seed 3335 of the simulator: the learner had installed snapshot 71 and acknowledged it; the leader
    // had compacted to 73 meanwhile (first index 74) and committed 73: within the lag of the commit,
    // but only another snapshot could catch it up. It was promoted, the quorum of two waited on it.
    const status = (state: 'probe' | 'replicate' | 'snapshot', matchIndex: number, firstIndex: number) => ({
      commit: 73,
      lastIndex: 73,
      firstIndex,
      progress: { 'id-n6': { matchIndex, nextIndex: matchIndex + 1, state, recentActive: true, voter: false } },
    });
    const compactedPast = learnerProgress(status('probe', 71, 74), 'id-n6');
    assert.deepEqual(compactedPast, { matchIndex: 71, commitIndex: 73, lastIndex: 73, needsSnapshot: true });
    assert.equal(caughtUp(compactedPast, 16), false);
    assert.equal(caughtUp(learnerProgress(status('snapshot', 71, 72), 'id-n6'), 16), false, 'a snapshot on its way');
    assert.equal(caughtUp(learnerProgress(status('replicate', 73, 74), 'id-n6'), 16), true, 'it holds the snapshot the log starts after');
    assert.equal(caughtUp(learnerProgress(status('replicate', 71, 60), 'id-n6'), 16), true, 'the log holds what it lacks');
    assert.equal(caughtUp(learnerProgress(status('replicate', 71, 60), 'id-unknown'), 16), false, 'no progress known');
    // under load the last index runs ahead of the commit by what is in flight: within the lag of the commit is enough
    assert.equal(caughtUp({ matchIndex: 40, commitIndex: 50, needsSnapshot: false }, 16), true);
  });

  it('the chart promotes a learner that needs a snapshot only once it has it', async () => {
    const needing = (n: number) => Array.from({ length: n }, () => at(3, { needsSnapshot: true }));
    const stuck = run([{ accepted: true, party: party(A) }], { catchUpLag: 16, catchUpTimeoutMs: 100, maxAttempts: 1 }, needing(10));
    const out = await stuck.done;
    assert.equal(out.error?.code, 'CATCH_UP');
    assert.match(out.error!.message, /a snapshot still to install/);
    assert.deepEqual(stuck.proposals, ['add-learner'], 'never promoted while it needs a snapshot');
    const installed = run([{ accepted: true, party: party(A) }], { catchUpLag: 16, catchUpTimeoutMs: 1000 }, [...needing(3), at(5)]);
    assert.equal((await installed.done).outcome, 'added');
    assert.deepEqual(installed.proposals, ['add-learner', 'promote']);
  });
});
