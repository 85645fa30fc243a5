// The demo's pause, at the clock: while paused no timeout, interval or deferred work runs, XState's
// delayed transitions included; on resume what fell due runs once, in the order it fell due.
// Driven by a manual base clock, so "time passes" is a step of the test, not a wait.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, setup } from 'xstate';
import { PausableClock } from '../../actors/pausableClock.ts';
import { ManualClock } from '../helpers/manualClock.ts';

describe('the pausable clock', () => {
  it('holds timeouts, intervals and deferred work while paused; on resume they run once, in order', () => {
    const base = new ManualClock();
    const clock = new PausableClock(base);
    const ran: string[] = [];
    clock.setTimeout(() => ran.push('timeout 10'), 10);
    const cancelled = clock.setTimeout(() => ran.push('cancelled timeout'), 20);
    clock.setInterval(() => ran.push(`interval at ${clock.now()}`), 15);
    base.advance(16);
    assert.deepEqual(ran, ['timeout 10', 'interval at 15']);

    clock.pause();
    assert.equal(clock.isPaused, true);
    clock.setTimeout(() => ran.push('timeout set while paused'), 5);
    clock.soon(() => ran.push('soon'));
    base.advance(100);
    assert.deepEqual(ran, ['timeout 10', 'interval at 15'], 'nothing runs while paused');
    assert.equal(clock.now(), 116, 'the wall clock keeps going');
    clock.clearTimeout(cancelled);

    const due = clock.resume();
    base.settle();
    // the interval missed six periods and fires once; the cancelled timeout never runs
    assert.deepEqual(ran.slice(2), ['soon', 'timeout set while paused', 'interval at 116'], `due on resume: ${due}`);
    base.advance(14);
    assert.deepEqual(ran.slice(5), ['interval at 120'], 'and keeps its period afterwards');
  });

  it("stops an XState actor's delayed transitions (given as createActor's clock) until resumed", () => {
    const base = new ManualClock();
    const clock = new PausableClock(base);
    const machine = setup({ delays: { tick: 50 } }).createMachine({ initial: 'waiting', states: { waiting: { after: { tick: 'ticked' } }, ticked: {} } });
    const actor = createActor(machine, { clock }).start();
    clock.pause();
    base.advance(500);
    assert.equal(actor.getSnapshot().value, 'waiting', 'a paused node does not tick');
    clock.resume();
    base.settle();
    assert.equal(actor.getSnapshot().value, 'ticked', 'resumed, the overdue tick fires');
    actor.stop();
  });
});
