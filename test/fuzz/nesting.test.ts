// The nesting check on JSON text (runtime/wire/limits.ts), which every message from the bus meets
// before it is parsed, agrees with the check on the value itself for any JSON, at any limit: its
// shortcut (few enough opening brackets cannot nest too deep) and its full pass (strings skipped,
// brackets and escaped quotes inside them included) never disagree with it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { nestsDeeperThan, textNestsDeeperThan } from '../../runtime/wire/limits.ts';
import { fuzzParams } from '../helpers/fuzz.ts';

/** strings full of what a bracket scanner could trip over */
const tricky = fc.stringMatching(/^[[\]{}"\\a ]{0,12}$/);
const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(tricky, fc.integer(), fc.boolean(), fc.constant(null)),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(tricky, tie('value'), { maxKeys: 3 }),
  ),
}));

/** `levels` arrays around `inner`: deep enough to cross any limit tried */
const wrapped = fc.tuple(value, fc.nat(40)).map(([inner, levels]) => {
  let v: unknown = inner;
  for (let i = 0; i < levels; i++) v = i % 2 === 0 ? [v] : { k: v };
  return v;
});

describe('nesting: the text check agrees with the value check', () => {
  it('for any JSON value and any limit', () => {
    fc.assert(
      fc.property(fc.oneof(value, wrapped), fc.nat(45), (v, limit) => {
        assert.equal(textNestsDeeperThan(JSON.stringify(v), limit), nestsDeeperThan(v, limit));
      }),
      fuzzParams(500),
    );
  });
});
