// Runs the raft scenario scripts outside the test runner:
//   node --import tsx test/raft/cli.ts [--rewrite] [name …]
// checks each script's golden output (exit 1 on a difference), or with --rewrite writes it back.
import { readdirSync } from 'node:fs';
import { checkFile, describeMismatches } from './golden.ts';
import { ScriptCluster, ScriptError } from './script.ts';

const args = process.argv.slice(2);
const rewrite = args.includes('--rewrite');
const only = args.filter((a) => a !== '--rewrite');
const dir = new URL('./testdata/', import.meta.url);
const scripts = readdirSync(dir)
  .filter((name) => name.endsWith('.txt') && (only.length === 0 || only.some((o) => name.includes(o))))
  .sort();
if (scripts.length === 0) {
  process.stderr.write(`error: no scenario script matches ${only.join(' ')} in test/raft/testdata: run without names to list them all\n`);
  process.exit(2);
}
let failed = 0;
for (const name of scripts) {
  try {
    const mismatches = checkFile(new URL(name, dir), (script) => new ScriptCluster().run(script, name), rewrite);
    if (mismatches.length === 0) process.stdout.write(`ok ${name}\n`);
    else if (rewrite) process.stdout.write(`rewrote ${name}: ${mismatches.length} output block(s) changed\n`);
    else {
      failed++;
      process.stdout.write(`${describeMismatches(name, mismatches)}\n`);
    }
  } catch (error) {
    if (!(error instanceof ScriptError)) throw error;
    failed++;
    process.stdout.write(`${error.message}\n`);
  }
}
process.exit(failed > 0 ? 1 : 0);
