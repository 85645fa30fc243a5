// Runs every script in testdata/: each reads as a specification of one raft behaviour, and its
// golden output (every message and state change) must match the file. REWRITE=1 rewrites the
// output blocks instead (review the diff); see script.ts.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { checkFile, describeMismatches } from './golden.ts';
import { ScriptCluster } from './script.ts';

const dir = new URL('./testdata/', import.meta.url);
const scripts = readdirSync(dir).filter((name) => name.endsWith('.txt')).sort();
if (scripts.length === 0) throw new Error('no scenario scripts found in test/raft/testdata');
const rewrite = process.env.REWRITE === '1';

for (const name of scripts) {
  test(`scenario ${name}`, () => {
    const mismatches = checkFile(new URL(name, dir), (script) => new ScriptCluster().run(script, name), rewrite);
    if (rewrite && mismatches.length > 0) console.log(`# rewrote ${name}: ${mismatches.length} output block(s) changed`);
    else assert.equal(mismatches.length, 0, describeMismatches(name, mismatches));
  });
}
