// `npm run test:nemesis [-- --minutes N --seed S --controllers 3|5]`: one torture run, its
// availability table, and exit 0 when every check held (1 otherwise, with the artifacts' folder).
import { parseArgs } from 'node:util';
import { availabilityTable, runNemesis } from './nemesis.ts';

function usage(message: string): never {
  process.stderr.write(`error: ${message}; usage: npm run test:nemesis -- [--minutes N] [--seed S] [--controllers 3|5]\n`);
  process.exit(2);
}

let values: { minutes?: string; seed?: string; controllers?: string };
try {
  ({ values } = parseArgs({ options: { minutes: { type: 'string' }, seed: { type: 'string' }, controllers: { type: 'string' } }, strict: true }));
} catch (err) {
  usage((err as Error).message);
}
const minutes = Number(values.minutes ?? '2');
if (!(minutes > 0)) usage(`--minutes takes a positive number, not ${JSON.stringify(values.minutes)}`);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(seed)) usage(`--seed takes a whole number, not ${JSON.stringify(values.seed)}`);
const controllers = Number(values.controllers ?? '3');
if (controllers !== 3 && controllers !== 5) usage('--controllers is 3 or 5');

const report = await runNemesis({ seed, durationMs: minutes * 60_000, controllers, progress: (line) => process.stdout.write(`nemesis: ${line}\n`) });
process.stdout.write(`\n${report.operations} operations, ${report.acknowledgedWrites} acknowledged writes, history ${report.check.verdict} (checked in ${Math.round(report.check.elapsedMs)} ms)\n\n`);
process.stdout.write(`${availabilityTable(report.faults)}\n\n`);
if (report.ok) {
  process.stdout.write(`every check held (seed ${seed})\n`);
} else {
  for (const p of report.problems) process.stdout.write(`problem: ${p}\n`);
  process.stdout.write(`artifacts: ${report.artifacts}\nreplay: npm run test:nemesis -- --seed ${seed} --minutes ${minutes} --controllers ${controllers}\n`);
  process.exitCode = 1;
}
