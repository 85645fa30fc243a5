// Runs every script in testdata/: each reads as a specification of one raft behaviour.
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ScriptCluster } from './script.ts';

const dir = new URL('./testdata/', import.meta.url);
const scripts = readdirSync(dir).filter((name) => name.endsWith('.txt')).sort();
if (scripts.length === 0) throw new Error('no scenario scripts found in test/raft/testdata');

for (const name of scripts) {
  test(`scenario ${name}`, () => {
    new ScriptCluster().run(readFileSync(new URL(name, dir), 'utf8'), name);
  });
}
