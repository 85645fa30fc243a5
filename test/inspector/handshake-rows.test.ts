// The sequence view's rows from what a page receives (the page's own model, in Node). Chart steps
// often share a millisecond: the join actor's `enteringJoin` resolves at once, so its `accepted`
// follows within the same ms. Both must be kept, whether the page was open (batches) or opened late
// (the inspector's current state, where the same event comes in both `notable` and `events`).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyFrame, applyInit, createModel } from '../../runtime/inspect/page/model.js';
import { sequenceRows } from '../../runtime/inspect/page/sequence.js';

const joinState = (t: number, state: string) => ({ k: 'state', t, a: 'join:ctrl1', m: 'join', states: [`join.${state}`], status: state === 'accepted' ? 'done' : 'active' });
/** what ctrl3 published in a demo run: three steps within two milliseconds */
const ctrl3Join = [
  { k: 'actor', t: 100, a: 'join:ctrl1', m: 'join' },
  joinState(118, 'recordingContact'),
  joinState(119, 'enteringJoin'),
  joinState(119, 'accepted'),
];
const labels = (model: ReturnType<typeof createModel>) => sequenceRows(model.handshakes, model.refusals).map((r) => `${r.from ?? r.at} ${r.label}`);

describe('join handshake rows', () => {
  it('a page opened late: steps in the same millisecond are all kept, the copies in notable and events once', () => {
    const model = createModel();
    const events = ctrl3Join.map((e) => ({ ...e, node: 'ctrl3' }));
    // the inspector sends the notable list and the recent events: the same steps, as separate copies
    applyInit(model, { nodes: [], notable: structuredClone(events), events: structuredClone(events) });
    assert.deepEqual(labels(model), [
      'ctrl3 checks the offer: the join rule on both cluster ids',
      'ctrl3 records the contact durably',
      'ctrl3 enters joining',
      'ctrl3 join.accept',
    ]);
  });

  it('a page that was open: a batch with two steps in one millisecond keeps both', () => {
    const model = createModel();
    applyFrame(model, { kind: 'batch', t: 120, node: 'ctrl3', events: structuredClone(ctrl3Join), dropped: 0 });
    assert.ok(labels(model).includes('ctrl3 join.accept'), JSON.stringify(labels(model)));
  });

  it('the two ends in the same millisecond, reaching the page in either order: rows in the handshake\'s order', () => {
    const leaderState = (t: number, state: string) => ({ k: 'state', t, a: 'membership:add:ctrl3', m: 'membership', states: [`membership.${state}`], status: 'active', node: 'ctrl1' });
    const nodeSide = [{ k: 'actor', t: 50, a: 'join:ctrl1', m: 'join', node: 'ctrl3' }, { ...joinState(51, 'accepted'), node: 'ctrl3' }];
    const leaderSide = [leaderState(50, 'offering'), leaderState(51, 'addingLearner'), leaderState(51, 'catchingUp'), leaderState(51, 'promoting')];
    const expected = [
      'ctrl1 join.offer (cluster id, leader, protocol)',
      'ctrl3 checks the offer: the join rule on both cluster ids',
      'ctrl3 join.accept',
      'ctrl1 adds ctrl3 as learner (config entry through raft)',
      'ctrl1 snapshot + log entries (catch-up)',
      'ctrl1 promotes ctrl3 to voter (config entry)',
    ];
    const arriving = (first: Array<{ node: string }>, second: Array<{ node: string }>) => {
      const model = createModel();
      applyFrame(model, { kind: 'batch', t: 60, node: first[0]!.node, events: structuredClone(first), dropped: 0 });
      applyFrame(model, { kind: 'batch', t: 60, node: second[0]!.node, events: structuredClone(second), dropped: 0 });
      return labels(model);
    };
    assert.deepEqual(arriving(nodeSide, leaderSide), expected, "the node's batch first");
    assert.deepEqual(arriving(leaderSide, nodeSide), expected, "the leader's batch first");
  });

  it('refusals from two peers in the same millisecond, in a snapshot frame, are both kept', () => {
    const model = createModel();
    const refusal = (from: string) => ({ k: 'refused', t: 500, a: 'ctrl1', type: 'conclave.refused', reason: 'join-offer', from, localClusterId: 'A', remoteClusterId: 'B', message: 'join rule' });
    applyFrame(model, { kind: 'snapshot', t: 600, node: 'ctrl1', actors: [], recent: [refusal('x1'), refusal('x2')] });
    assert.deepEqual(
      model.refusals.map((r) => r.from),
      ['x1', 'x2'],
    );
  });
});
