// The planted bugs of the torture suite are off unless a test asks for them twice over: the variable
// naming the bug AND NODE_ENV=test. Anything else leaves the member's options untouched, with a warning.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withPlantedBug } from '../../actors/plantedBugs.ts';
import type { MemberRuntimeOptions } from '../../actors/memberTypes.ts';

function options(): { opts: MemberRuntimeOptions; warnings: string[] } {
  const warnings: string[] = [];
  const logger = { warn: (_obj: unknown, msg: string) => warnings.push(msg) } as unknown as MemberRuntimeOptions['logger'];
  return { opts: { logger } as MemberRuntimeOptions, warnings };
}

test('no variable: the options are returned as they are, silently', () => {
  const { opts, warnings } = options();
  assert.equal(withPlantedBug(opts, { NODE_ENV: 'test' }), opts);
  assert.deepEqual(warnings, []);
});

test('the variable without NODE_ENV=test is ignored, with a warning', () => {
  for (const NODE_ENV of [undefined, 'production', 'development', 'TEST']) {
    const { opts, warnings } = options();
    assert.equal(withPlantedBug(opts, { CONCLAVE_TEST_PLANTED_BUG: 'followerReadsLocally', NODE_ENV }), opts);
    assert.match(warnings[0] ?? '', /ignored: planted bugs are for the test suite only/);
  }
});

test('an unknown bug name is ignored, with a warning', () => {
  const { opts, warnings } = options();
  assert.equal(withPlantedBug(opts, { CONCLAVE_TEST_PLANTED_BUG: 'everything', NODE_ENV: 'test' }), opts);
  assert.match(warnings[0] ?? '', /ignored/);
});

test('with both, the named bug is on and said so', () => {
  const { opts, warnings } = options();
  const planted = withPlantedBug(opts, { CONCLAVE_TEST_PLANTED_BUG: 'followerReadsLocally', NODE_ENV: 'test' });
  assert.deepEqual(planted.testFaults, { followerReadsLocally: true });
  assert.match(warnings[0] ?? '', /TEST ONLY: planted bug followerReadsLocally is on/);
  const core = withPlantedBug(options().opts, { CONCLAVE_TEST_PLANTED_BUG: 'appendSkipsTermCheck', NODE_ENV: 'test' });
  assert.equal(typeof core.makeCore, 'function');
});

test('options that already carry test faults (the simulator) are not overridden', () => {
  const { opts } = options();
  const sim = { ...opts, testFaults: { sendBeforePersist: true } };
  assert.equal(withPlantedBug(sim, { CONCLAVE_TEST_PLANTED_BUG: 'followerReadsLocally', NODE_ENV: 'test' }), sim);
});
