// The bounded torture run inside `npm test`: every fault kind once (seeded order) on a 3-server
// NATS cluster, then the checks. `npm run test:nemesis -- --minutes N` runs longer;
// NEMESIS_SEED / NEMESIS_SECONDS change this run.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { killLeftoverProcesses } from '../helpers/cli.ts';
import { killLeftoverServers } from './natsCluster.ts';
import { availabilityTable, FAULT_KINDS, runNemesis } from './nemesis.ts';

// whatever a run left behind (a timed-out test's servers and controllers) must not keep this file from exiting
after(async () => {
  await killLeftoverProcesses();
  await killLeftoverServers();
});

const seed = Number(process.env.NEMESIS_SEED ?? '2026');
const seconds = Number(process.env.NEMESIS_SECONDS ?? '0');

test(`torture: kill -9 (leader, follower, all at once), pause (long and brief), NATS server loss and cluster restart, transfer, add/remove, a lagging follower, disk full on a follower — linearizable, one leader per term, converged (seed ${seed})`, { timeout: 15 * 60_000 }, async () => {
  const report = await runNemesis({ seed, durationMs: seconds * 1000, progress: (line) => console.log(`nemesis: ${line}`) });
  console.log(`${report.operations} operations, ${report.acknowledgedWrites} acknowledged writes, history ${report.check.verdict} in ${Math.round(report.check.elapsedMs)} ms`);
  console.log(availabilityTable(report.faults));
  assert.ok(report.acknowledgedWrites > 0, 'the clients got writes through');
  assert.equal(report.faults.length >= FAULT_KINDS.length, true, `every fault kind ran (${report.faults.map((f) => f.kind).join(', ')})`);
  // a failure names its artifacts, its replay and the client operations around each incident
  assert.deepEqual(report.problems, [], `artifacts: ${report.artifacts}\nreplay: npm run test:nemesis -- --seed ${seed}\n${report.incidentsText}`);
  // a linearizable history cannot hold a lost write (window.ts's rule is sound): nothing to show beside the problems
  assert.equal(report.incidentsText, '');
});
