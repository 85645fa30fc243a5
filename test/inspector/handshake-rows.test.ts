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
