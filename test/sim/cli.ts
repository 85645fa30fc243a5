// npm run sim -- --seeds N --nodes K [--seed S] [--steps M] [--hook countVotesTwice|commitPriorTermByCount] [--harsh]
//   [--bug joinSkipsRule|recoveryKeepsGeneration|recoveryLosesCommitted|appendsIgnoreBytes|sendBeforePersist|inboundSkipsJoinRule|
//         forwardIgnoresLeaderLoss|forwardLossSaysNotApplied|forwardRetriesOnNewLeader|removalNoticeBeforeCommit]
//   [--no-membership] [--no-recovery] [--auto-join] [--stop-on-violation]   (--harsh: leaders crash mid-replication, one entry per message;
//   --auto-join: some blank nodes ask to join, see SimConfig.autoJoin)
// Runs seeds S, S+1, … S+N-1; prints each violation with its trace; exits 1 if any was found.
import { parseArgs } from 'node:util';
import type { RaftTestHooks } from '../../machines/raft/core.ts';
import { formatViolation, HARSH_PROFILE, runSimulation, SIM_BUGS, type SimBugs } from './simulator.ts';

/** what --help prints, and a mistyped option after its error line */
const USAGE = `usage: npm run sim -- --seeds N --nodes K [--seed S] [--steps M] [--hook countVotesTwice|commitPriorTermByCount] [--harsh]
  [--bug ${SIM_BUGS.join('|')}]
  [--no-membership] [--no-recovery] [--auto-join] [--stop-on-violation]
Runs seeds S, S+1, … S+N-1 of the deterministic simulation of K real members; prints each violation
with its trace and the command that replays it; exits 1 if any was found.`;

function parse() {
  try {
    return parseArgs({
  options: {
    seeds: { type: 'string', default: '1' },
    nodes: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    steps: { type: 'string', default: '5000' },
    hook: { type: 'string' },
    bug: { type: 'string' },
    'no-membership': { type: 'boolean', default: false },
    'no-recovery': { type: 'boolean', default: false },
    'auto-join': { type: 'boolean', default: false },
    harsh: { type: 'boolean', default: false },
    'stop-on-violation': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
  } catch (err) {
    // a mistyped option: one line and the usage, not a stack trace
    console.error(`error: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

const { values } = parse();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

function count(name: string, raw: string | undefined, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`error: --${name} must be an integer >= ${min}, got ${raw}`);
    process.exit(2);
  }
  return n;
}

const seeds = count('seeds', values.seeds, 1);
const nodes = count('nodes', values.nodes, 1);
const firstSeed = count('seed', values.seed, 0);
const steps = count('steps', values.steps, 1);
let testHooks: RaftTestHooks | undefined;
if (values.hook !== undefined) {
  if (values.hook !== 'countVotesTwice' && values.hook !== 'commitPriorTermByCount') {
    console.error(`error: unknown --hook ${values.hook} (expected countVotesTwice or commitPriorTermByCount)`);
    process.exit(2);
  }
  testHooks = { [values.hook]: true };
}

let bugs: SimBugs | undefined;
if (values.bug !== undefined) {
  if (!(SIM_BUGS as readonly string[]).includes(values.bug)) {
    console.error(`error: unknown --bug ${values.bug} (expected one of ${SIM_BUGS.join(', ')})`);
    process.exit(2);
  }
  bugs = { [values.bug]: true };
}

const replayFlags = [
  values.steps !== '5000' ? ` --steps ${steps}` : '',
  values.hook !== undefined ? ` --hook ${values.hook}` : '',
  values.harsh ? ' --harsh' : '',
  values.bug !== undefined ? ` --bug ${values.bug}` : '',
  values['no-membership'] ? ' --no-membership' : '',
  values['no-recovery'] ? ' --no-recovery' : '',
  values['auto-join'] ? ' --auto-join' : '',
].join('');
const started = Date.now();
let lastProgress = started;
let violations = 0;
let totalSteps = 0;
for (let i = 0; i < seeds; i++) {
  const seed = firstSeed + i;
  const result = await runSimulation({
    seed,
    nodes,
    steps,
    membership: !values['no-membership'],
    recovery: !values['no-recovery'],
    autoJoin: values['auto-join'],
    ...(values.harsh ? { profile: HARSH_PROFILE } : {}),
    ...(testHooks ? { testHooks } : {}),
    ...(bugs ? { bugs } : {}),
  });
  totalSteps += result.stats.steps;
  if (result.violation !== null) {
    violations++;
    console.log(formatViolation(result.violation, replayFlags));
    if (values['stop-on-violation']) break;
  }
  if (Date.now() - lastProgress > 5000) {
    lastProgress = Date.now();
    console.log(`sim: ${i + 1}/${seeds} seeds, ${violations} violations, ${Math.round((Date.now() - started) / 1000)} s`);
  }
}
const seconds = (Date.now() - started) / 1000;
const stepsText = totalSteps >= 1e6 ? `${(totalSteps / 1e6).toFixed(2)}M` : `${Math.round(totalSteps / 1000)}k`;
console.log(
  `sim: ${seeds} seeds × ${nodes} nodes, ${violations} violations, ${stepsText} steps, ${seconds.toFixed(1)} s (${Math.round(totalSteps / seconds)} steps/s)`,
);
process.exit(violations > 0 ? 1 : 0);
