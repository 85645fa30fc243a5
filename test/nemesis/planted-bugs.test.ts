// Each planted bug (actors/plantedBugs.ts, on only with NODE_ENV=test in the controllers' environment)
// must make a short torture run fail, and the report must show what went wrong: the operations the
// checker could not order, or the invariant a controller died on (or the two leaders of a term) with
// the client operations around it. Replay one with
// `npm run test:nemesis -- --minutes 0 --seed S --faults … --bug NAME`.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { killLeftoverProcesses } from '../helpers/cli.ts';
import { killLeftoverServers } from './natsCluster.ts';
import type { PlantedBug } from '../../actors/plantedBugs.ts';
import { type FaultKind, type NemesisReport, runNemesis } from './nemesis.ts';

// whatever a run left behind (a timed-out test's servers and controllers) must not keep this file from exiting
after(async () => {
  await killLeftoverProcesses();
  await killLeftoverServers();
});

/**
 * The first of `seeds` whose run the planted bug makes fail as `shows` expects. A bug shows under
 * timing (a pause that outlasts an election, a crash before a lagging write), so the hunt goes over a
 * few seeded runs, as the simulator hunts seeds; every run that passes is printed.
 */
async function plantedRun(bug: PlantedBug, faults: FaultKind[], seeds: number[], shows: (report: NemesisReport) => boolean): Promise<NemesisReport> {
  for (const seed of seeds) {
    const started = performance.now();
    const report = await runNemesis({ seed, durationMs: 0, faults, bug, convergeTimeoutMs: 15_000, progress: (line) => console.log(`nemesis: ${line}`) });
    console.log(`${bug}, seed ${seed}: ${report.operations} operations, ${report.acknowledgedWrites} acknowledged writes, history ${report.check.verdict}, run ${Math.round((performance.now() - started) / 1000)} s`);
    for (const p of report.problems) console.log(`problem: ${p.split('\n')[0]}`);
    if (!report.ok && shows(report)) {
      assert.ok(report.artifacts !== null && existsSync(join(report.artifacts, 'history.jsonl')), 'a failing run keeps its history');
      return report;
    }
    console.log(`${bug}: seed ${seed} did not show it${report.ok ? '' : ' as expected'}; the next seed`);
    if (report.artifacts) cleanup(report);
  }
  assert.fail(`planted bug ${bug} went unnoticed in seeds ${seeds.join(', ')} (faults ${faults.join(',')})`);
}

/** the checker's verdict, and its rendering names operations of the history (with their processes) */
function assertNotLinearizable(report: NemesisReport): void {
  assert.equal(report.check.verdict, 'not linearizable', report.problems.join('\n'));
  const key = report.check.keys.find((k) => k.verdict === 'not linearizable')!;
  assert.ok((key.conflict ?? []).length > 0, 'the report has a conflicting set of operations');
  const text = readFileSync(join(report.artifacts!, 'checker.txt'), 'utf8');
  for (const op of key.conflict!) assert.ok(text.includes(op.process), `the rendering shows ${op.process}'s operation`);
  assert.match(text, /cannot be ordered/);
  console.log(text.split('\n').slice(0, 12).join('\n'));
}

/**
 * The report of an incident (a controller that died, two leaders in a term) names client operations
 * of its window: found here from the kept history itself, then looked up, by process and operation,
 * in incidents.txt and in what the run printed.
 */
function assertIncidentShowsOperations(report: NemesisReport, problem: RegExp): void {
  const incident = report.incidents.find((i) => problem.test(i.problem));
  assert.ok(incident !== undefined, `an incident for ${problem} among ${report.incidents.map((i) => i.problem).join(' | ')}`);
  const events = readFileSync(join(report.artifacts!, 'history.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { process: string; type: string; f: string; key: string; time: number });
  const open = new Map<string, (typeof events)[number]>();
  const inside: Array<(typeof events)[number]> = [];
  for (const e of events) {
    if (e.type === 'invoke') open.set(e.process, e);
    else if (open.has(e.process)) {
      const invoke = open.get(e.process)!;
      open.delete(e.process);
      if (invoke.time <= incident.to && e.time >= incident.from) inside.push(invoke);
    }
  }
  assert.ok(inside.length > 0, `client operations ran between ${incident.from} and ${incident.to}`);
  const names = (text: string, op: (typeof events)[number]) => text.split('\n').some((l) => l.trimStart().startsWith(`${op.process} `) && l.includes(`${op.f}(${op.key}`));
  const all = readFileSync(join(report.artifacts!, 'incidents.txt'), 'utf8');
  const block = all.slice(all.indexOf(incident.problem.split('\n')[0]!)).split(/\nincident \d+: /)[0]!;
  assert.ok(
    inside.some((op) => names(block, op)),
    `incidents.txt names an operation of the window:\n${block.slice(0, 2000)}`,
  );
  assert.ok(
    inside.some((op) => names(report.incidentsText, op)),
    `the printed report names an operation of the window:\n${report.incidentsText.slice(0, 2000)}`,
  );
  console.log(block.split('\n').slice(0, 16).join('\n'));
}

function cleanup(report: NemesisReport): void {
  rmSync(report.artifacts!, { recursive: true, force: true });
}

const notLinearizable = (report: NemesisReport) => report.check.verdict === 'not linearizable';

test('planted bug: a follower answering linearizable reads locally gives a stale read (not linearizable)', { timeout: 8 * 60_000 }, async () => {
  const report = await plantedRun('followerReadsLocally', ['kill-follower'], [1, 2, 3], notLinearizable);
  assertNotLinearizable(report);
  cleanup(report);
});

test('planted bug: followers acknowledging appends before they are durable lose acknowledged entries when every controller crashes', { timeout: 8 * 60_000 }, async () => {
  // either a follower that lost entries won the election (acknowledged writes gone: not linearizable),
  // or one restarts with a commit index its log no longer reaches and the core refuses to start
  const refused = (report: NemesisReport) => report.problems.some((p) => /exited by itself .*restored commit \d+ beyond last index \d+/.test(p));
  const report = await plantedRun('followerAcksBeforeDurable', ['kill-all', 'kill-all'], [1, 2, 3, 4], (r) => refused(r) || notLinearizable(r));
  if (refused(report)) assertIncidentShowsOperations(report, /exited by itself .*restored commit \d+ beyond last index \d+/);
  else assertNotLinearizable(report);
  cleanup(report);
});

test('planted bug: skipping the term check on append lets a resumed leader be followed in a newer term (two leaders in one term, or a term going back)', { timeout: 8 * 60_000 }, async () => {
  const termAnomaly = (report: NemesisReport) => report.problems.some((p) => /exited by itself .*term would go back|saw two leaders in one term|had \d+ leaders/.test(p));
  const report = await plantedRun('appendSkipsTermCheck', ['pause-leader-brief', 'pause-leader-brief', 'pause-leader-brief', 'pause-leader-brief'], [3, 4, 5, 6], termAnomaly);
  assert.ok(termAnomaly(report), `the run reports the term anomaly:\n${report.problems.join('\n')}`);
  assertIncidentShowsOperations(report, /exited by itself .*term would go back|saw two leaders in one term|had \d+ leaders/);
  cleanup(report);
});
