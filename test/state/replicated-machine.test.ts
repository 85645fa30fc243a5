// replicatedMachine: commands are events to an actor of the host machine; answers are
// deterministic (invalid, unhandled and failing events are answered, never thrown); the persisted
// snapshot round-trips; machines that cannot run the same on every node are refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assign, fromPromise, setup } from 'xstate';
import { ConfigError, replicatedMachine } from 'conclave';
import { leaseMachine } from '../../examples/replicated-machine/lease.ts';

const meta = (index: number) => ({ index, term: 1 });

describe('replicatedMachine', () => {
  it('sends each command as an event; reports handled or not; queries { value, context }', () => {
    const state = replicatedMachine(leaseMachine);
    state.restore(null);
    assert.deepEqual(state.query(undefined), { value: 'free', context: { holder: null, fencing: 0, expiresAt: 0 } });
    const granted = state.apply({ type: 'acquire', owner: 'a', now: 1000, ttlMs: 500 }, meta(1));
    assert.deepEqual(granted, { ok: true, handled: true, value: 'held', context: { holder: 'a', fencing: 1, expiresAt: 1500 } });
    const refused = state.apply({ type: 'acquire', owner: 'b', now: 1200, ttlMs: 500 }, meta(2));
    assert.equal(refused.ok && refused.handled, false, 'a held lease is not granted to another owner');
    const takeover = state.apply({ type: 'acquire', owner: 'b', now: 1600, ttlMs: 500 }, meta(3));
    assert.ok(takeover.ok && takeover.handled);
    assert.deepEqual(takeover.ok && takeover.context, { holder: 'b', fencing: 2, expiresAt: 2100 });
  });

  it('answers invalid events deterministically, never throws', () => {
    const state = replicatedMachine(leaseMachine);
    state.restore(null);
    for (const bad of [null, 'acquire', 42, [], {}, { type: 7 }]) {
      const r = state.apply(bad as never, meta(1));
      assert.equal(r.ok, false);
      assert.match(!r.ok ? r.error : '', /an event/);
    }
    const reserved = state.apply({ type: 'xstate.init' } as never, meta(2));
    assert.ok(!reserved.ok && /reserved/.test(reserved.error));
    const unknown = state.apply({ type: 'nope' } as never, meta(3));
    assert.deepEqual(unknown, { ok: true, handled: false, value: 'free', context: { holder: null, fencing: 0, expiresAt: 0 } });
  });

  it('an action that throws stops the machine the same way everywhere and is answered', () => {
    const fragile = setup({
      types: { context: {} as { n: number }, events: {} as { type: 'inc' } | { type: 'boom' } },
      actions: {
        inc: assign({ n: ({ context }) => context.n + 1 }),
        explode: () => {
          throw new Error('kaboom');
        },
      },
    }).createMachine({ id: 'fragile', context: { n: 0 }, on: { inc: { actions: 'inc' }, boom: { actions: 'explode' } } });
    const state = replicatedMachine(fragile);
    state.restore(null);
    assert.ok(state.apply({ type: 'inc' }, meta(1)).ok);
    const boom = state.apply({ type: 'boom' }, meta(2));
    assert.ok(!boom.ok && /kaboom/.test(boom.error), JSON.stringify(boom));
    const after = state.apply({ type: 'inc' }, meta(3));
    assert.ok(!after.ok && /stopped on an error/.test(after.error));
  });

  it('snapshot() is the persisted snapshot; restore() resumes from it on another instance', () => {
    const one = replicatedMachine(leaseMachine);
    one.restore(null);
    one.apply({ type: 'acquire', owner: 'a', now: 0, ttlMs: 100 }, meta(1));
    const snap = JSON.parse(JSON.stringify(one.snapshot()));
    const two = replicatedMachine(leaseMachine, { query: (s, q: 'holder') => (q === 'holder' ? s.context.holder : null) });
    two.restore(snap);
    assert.equal(two.query('holder'), 'a');
    const r = two.apply({ type: 'release', owner: 'a' }, meta(2));
    assert.ok(r.ok && r.handled && r.value === 'free');
  });

  it('refuses machines with delayed transitions or invoked actors (ConfigError)', () => {
    const timed = setup({}).createMachine({ id: 'timed', initial: 'a', states: { a: { after: { 1000: 'b' } }, b: {} } });
    assert.throws(() => replicatedMachine(timed), (err: unknown) => err instanceof ConfigError && /delayed transition/.test(err.message));
    const invoking = setup({ actors: { work: fromPromise(async () => 1) } }).createMachine({ id: 'inv', initial: 'a', states: { a: { invoke: { src: 'work' } } } });
    assert.throws(() => replicatedMachine(invoking), (err: unknown) => err instanceof ConfigError && /invokes an actor/.test(err.message));
  });
});
