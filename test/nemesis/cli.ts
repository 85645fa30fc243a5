// `npm run test:nemesis [-- --minutes N --seed S --controllers 3|5 --faults a,b --bug NAME]`: one
// torture run, its availability table, and exit 0 when every check held (1 otherwise, with the
// artifacts' folder, the offending operations and the client operations around each incident). --bug plants a test-only bug (actors/plantedBugs.ts).
import { parseArgs } from 'node:util';
import { PLANTED_BUGS, type PlantedBug } from '../../actors/plantedBugs.ts';
import { availabilityTable, FAULT_KINDS, type FaultKind, runNemesis } from './nemesis.ts';

const USAGE = 'npm run test:nemesis -- [--minutes N] [--seed S] [--controllers 3|5] [--faults KIND,…] [--bug NAME]';
function usage(message: string): never {
  process.stderr.write(`error: ${message}; usage: ${USAGE}\n`);
  process.exit(2);
}

let values: { minutes?: string; seed?: string; controllers?: string; faults?: string; bug?: string };
try {
  ({ values } = parseArgs({ options: { minutes: { type: 'string' }, seed: { type: 'string' }, controllers: { type: 'string' }, faults: { type: 'string' }, bug: { type: 'string' } }, strict: true }));
} catch (err) {
  usage((err as Error).message);
}
const minutes = Number(values.minutes ?? '2');
if (!(minutes >= 0)) usage(`--minutes takes a number, not ${JSON.stringify(values.minutes)}`);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(seed)) usage(`--seed takes a whole number, not ${JSON.stringify(values.seed)}`);
const controllers = Number(values.controllers ?? '3');
if (controllers !== 3 && controllers !== 5) usage('--controllers is 3 or 5');
const faults = values.faults === undefined ? undefined : values.faults.split(',').filter((f) => f !== '');
for (const f of faults ?? []) if (!(FAULT_KINDS as readonly string[]).includes(f)) usage(`--faults: no fault kind ${JSON.stringify(f)} (kinds: ${FAULT_KINDS.join(', ')})`);
if (values.bug !== undefined && !(PLANTED_BUGS as readonly string[]).includes(values.bug)) usage(`--bug: no planted bug ${JSON.stringify(values.bug)} (bugs: ${PLANTED_BUGS.join(', ')})`);
const bug = values.bug as PlantedBug | undefined;

const report = await runNemesis({
  seed,
  durationMs: minutes * 60_000,
  controllers,
  ...(faults ? { faults: faults as FaultKind[] } : {}),
  ...(bug ? { bug } : {}),
  progress: (line) => process.stdout.write(`nemesis: ${line}\n`),
});
process.stdout.write(`\n${report.operations} operations, ${report.acknowledgedWrites} acknowledged writes, history ${report.check.verdict} (checked in ${Math.round(report.check.elapsedMs)} ms)\n\n`);
process.stdout.write(`${availabilityTable(report.faults)}\n\n`);
const replay = `npm run test:nemesis -- --seed ${seed} --minutes ${minutes} --controllers ${controllers}${faults ? ` --faults ${faults.join(',')}` : ''}${bug ? ` --bug ${bug}` : ''}`;
if (report.ok) {
  process.stdout.write(`every check held (seed ${seed})\n`);
} else {
  for (const p of report.problems) process.stdout.write(`problem: ${p}\n`);
  // the client operations around each incident (a controller that died, two leaders in a term), and the acknowledged writes lost
  if (report.incidentsText !== '') process.stdout.write(`\n${report.incidentsText}`);
  if (report.check.verdict === 'not linearizable') process.stdout.write(`\n${report.rendering}\n`);
  process.stdout.write(`artifacts: ${report.artifacts}\nreplay: ${replay}\n`);
  process.exitCode = 1;
}
