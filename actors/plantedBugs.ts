// Test-only: the torture suite (test/nemesis) plants a bug in real `conclave run` processes to prove
// that its checks catch it. A bug is on only when the process's environment holds both
// CONCLAVE_TEST_PLANTED_BUG=<name> and NODE_ENV=test; no configuration file or bus message reaches
// it, and the simulator passes its own (MemberRuntimeOptions.testFaults / makeCore) instead.
import { RaftCore } from '../machines/raft/core.ts';
import type { MemberRuntimeOptions } from './memberTypes.ts';

export const PLANTED_BUGS = ['followerReadsLocally', 'followerAcksBeforeDurable', 'appendSkipsTermCheck'] as const;
export type PlantedBug = (typeof PLANTED_BUGS)[number];

/** the member's options with the planted bug the environment names, if any (read once per member, at creation) */
export function withPlantedBug(opts: MemberRuntimeOptions, env: NodeJS.ProcessEnv = process.env): MemberRuntimeOptions {
  const name = env.CONCLAVE_TEST_PLANTED_BUG;
  if (name === undefined || name === '' || opts.testFaults !== undefined || opts.makeCore !== undefined) return opts;
  if (env.NODE_ENV !== 'test' || !(PLANTED_BUGS as readonly string[]).includes(name)) {
    opts.logger.warn({ plantedBug: name }, `CONCLAVE_TEST_PLANTED_BUG=${name} ignored: planted bugs are for the test suite only (NODE_ENV=test, one of ${PLANTED_BUGS.join(', ')})`);
    return opts;
  }
  opts.logger.warn({ plantedBug: name }, `TEST ONLY: planted bug ${name} is on — this member is deliberately wrong`);
  if (name === 'appendSkipsTermCheck') return { ...opts, makeCore: (o) => new RaftCore({ ...o, testHooks: { appendSkipsTermCheck: true } }) };
  return { ...opts, testFaults: { [name]: true } };
}
